package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fiatdev/fiat"
)

// asNewUser runs the CLI as someone who just installed it: in an empty
// directory, with no FIAT_ variables and nothing in their config dir,
// which it returns.
func asNewUser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"FIAT_TOKEN", "FIAT_TOKEN_FILE", "FIAT_SERVER"} {
		t.Setenv(name, "")
	}
	config := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Chdir(t.TempDir())
	return config
}

// oneJSONValue decodes out, which must hold exactly one JSON value.
func oneJSONValue(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("not a JSON value: %v\n%s", err, out)
	}
	if dec.More() || strings.TrimSpace(out[dec.InputOffset():]) != "" {
		t.Fatalf("more than one JSON value:\n%s", out)
	}
}

// TestCLIFindsTheToken runs the CLI away from the server's directory and
// gives it the token each way it takes one, right and wrong: a wrong or
// missing token must say where it was read from and how to fix it, and a
// login's token must go to no other server.
func TestCLIFindsTheToken(t *testing.T) {
	n := start(t, t.TempDir())
	n.deployJSON(writeProject(t, t.TempDir(), "app", "ok"))
	config := asNewUser(t)
	admin := n.srv.Admin.String()
	envList := func(args ...string) (int, string, string) {
		t.Helper()
		return runFiat(append([]string{"env", "list"}, args...)...)
	}
	expectRefusal := func(what string, code int, errOut string, wants ...string) {
		t.Helper()
		if code == 0 {
			t.Fatalf("%s: the command succeeded", what)
		}
		for _, want := range wants {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: the error lacks %q:\n%s", what, want, errOut)
			}
		}
	}

	code, _, errOut := envList("--server", admin)
	expectRefusal("no token anywhere", code, errOut, "FIAT_TOKEN", "FIAT_TOKEN_FILE", "fiat login "+"http://"+admin, filepath.Join(config, "fiat", "config.json"))

	t.Setenv("FIAT_TOKEN_FILE", n.srv.TokenPath)
	if code, out, errOut := envList("--server", admin); code != 0 || !strings.Contains(out, "production") {
		t.Fatalf("token from FIAT_TOKEN_FILE: exit %d\n%s%s", code, out, errOut)
	}
	wrong := filepath.Join(t.TempDir(), "wrong-token")
	os.WriteFile(wrong, []byte("not-the-token\n"), 0o600)
	t.Setenv("FIAT_TOKEN_FILE", wrong)
	code, _, errOut = envList("--server", admin)
	expectRefusal("a wrong token in FIAT_TOKEN_FILE", code, errOut, "refused", "FIAT_TOKEN_FILE ("+wrong+")", "fiat login", "admin-token")
	code, out, _ := envList("--server", admin, "--json")
	var refusal struct{ Error string }
	oneJSONValue(t, out, &refusal)
	expectRefusal("--json, a wrong token", code, refusal.Error, "FIAT_TOKEN_FILE")
	t.Setenv("FIAT_TOKEN", "not-the-token-either")
	code, _, errOut = envList("--server", admin)
	expectRefusal("a wrong FIAT_TOKEN, which goes before FIAT_TOKEN_FILE", code, errOut, "from FIAT_TOKEN:")
	t.Setenv("FIAT_TOKEN", "")
	t.Setenv("FIAT_TOKEN_FILE", "")

	saved := filepath.Join(config, "fiat", "config.json")
	code, _, errOut = runFiat("login", admin, "--token-file", wrong)
	expectRefusal("login with a wrong token", code, errOut, "refused", wrong)
	if _, err := os.Stat(saved); err == nil {
		t.Fatal("login saved a token the server refused")
	}
	// A config someone made readable by all is made private.
	os.MkdirAll(filepath.Dir(saved), 0o755)
	os.WriteFile(saved, []byte("{}"), 0o644)
	if code, out, errOut := runFiat("login", admin, "--token-file", n.srv.TokenPath); code != 0 || !strings.Contains(out, saved) {
		t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
	}
	if info, err := os.Stat(saved); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the saved login: %v (%v), want mode 0600", info.Mode(), err)
	}
	if info, err := os.Stat(filepath.Dir(saved)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("the saved login's dir: %v (%v), want mode 0700", info.Mode(), err)
	}
	var envs []fiat.Env
	code, out, errOut = envList("--json")
	if code != 0 {
		t.Fatalf("after login, with no --server and no token: exit %d\n%s%s", code, out, errOut)
	}
	oneJSONValue(t, out, &envs)
	if len(envs) != 1 || envs[0].Services["app"] == "" {
		t.Errorf("after login: envs %+v", envs)
	}

	var sawToken atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawToken.Store(strings.Contains(r.Header.Get("Authorization"), n.srv.Token))
		http.Error(w, `{"error": "no"}`, 401)
	}))
	defer other.Close()
	code, _, errOut = envList("--server", other.URL)
	expectRefusal("another server than the login's", code, errOut, "no admin token for "+other.URL)
	if sawToken.Load() {
		t.Error("the token saved for one server was sent to another")
	}

	// Logging in reads the token from standard input when no file is given.
	stdin, w, _ := os.Pipe()
	w.WriteString("not-the-token\n")
	w.Close()
	defer func(old *os.File) { os.Stdin = old }(os.Stdin)
	os.Stdin = stdin
	code, _, errOut = runFiat("login", admin)
	expectRefusal("login with a wrong token on standard input", code, errOut, "refused", "standard input")
	if code, out, errOut := envList(); code != 0 || !strings.Contains(out, "production") {
		t.Errorf("a refused login replaced the saved one: exit %d\n%s%s", code, out, errOut)
	}
	os.WriteFile(saved, []byte(`{"server": "http://`+admin+`", "token": "stale"}`), 0o600)
	code, _, errOut = envList()
	expectRefusal("a stale saved token", code, errOut, "refused", saved)
}

// TestCLIServerAddresses gives the server's address in every form a user
// types it.
func TestCLIServerAddresses(t *testing.T) {
	n := start(t, t.TempDir())
	n.deployJSON(writeProject(t, t.TempDir(), "app", "ok"))
	admin := n.srv.Admin.String()
	_, port, _ := strings.Cut(admin, ":")
	for _, addr := range []string{admin, "localhost:" + port, "http://" + admin, "http://" + admin + "/", "http://localhost:" + port + "/"} {
		if code, out, errOut := runFiat("env", "list", "--server", addr); code != 0 || !strings.Contains(out, "production") {
			t.Errorf("--server %s: exit %d\n%s%s", addr, code, out, errOut)
		}
		t.Setenv("FIAT_SERVER", addr)
		if code, out, errOut := runFiat("env", "list"); code != 0 || !strings.Contains(out, "production") {
			t.Errorf("FIAT_SERVER=%s: exit %d\n%s%s", addr, code, out, errOut)
		}
	}
	for _, addr := range []string{"http://" + admin + "/v1", "ftp://" + admin, "http://"} {
		if code, _, errOut := runFiat("env", "list", "--server", addr); code == 0 || !strings.Contains(errOut, "host:port") {
			t.Errorf("--server %s: exit %d, %q; want it refused, saying what to give", addr, code, errOut)
		}
	}
}

// TestCLIRefusesEmptyFlags gives every env and hash flag an empty value,
// as `--env "$ENV"` does with ENV unset: each command must be refused and
// change nothing, least of all production.
func TestCLIRefusesEmptyFlags(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	first := n.deployJSON(writeProject(t, dir, "app", "first")).Services[0]
	n.fiat("env", "fork", "staging")
	n.deployJSON(writeProject(t, dir, "app", "second"), "--env", "staging")
	before, _ := n.admin.Envs(t.Context())
	for _, tc := range []struct {
		empty string
		args  []string
	}{
		{"--env", []string{"deploy", dir, "--env", ""}},
		{"--env", []string{"deploy", dir, "--env="}},
		{"--to", []string{"rollback", "app", "--to", ""}},
		{"--env", []string{"rollback", "app", "--env", "", "--to", string(first.Version[:8])}},
		{"--from", []string{"env", "fork", "copy", "--from", ""}},
		{"--from", []string{"promote", "--from", "", "--to", "production"}},
		{"--to", []string{"promote", "--from", "staging", "--to", ""}},
		{"--server", []string{"env", "list", "--server", ""}},
	} {
		code, out, errOut := n.fiat(tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.empty+" is empty") {
			t.Errorf("fiat %q: exit %d, %q; want it refused, saying %s is empty\n%s", tc.args, code, errOut, tc.empty, out)
		}
		code, out, _ = n.fiat(append(tc.args, "--json")...)
		var refusal struct{ Error string }
		oneJSONValue(t, out, &refusal)
		if code == 0 || !strings.Contains(refusal.Error, tc.empty+" is empty") {
			t.Errorf("fiat %q --json: exit %d, %q", tc.args, code, out)
		}
	}
	if after, _ := n.admin.Envs(t.Context()); !equalJSON(after, before) {
		t.Errorf("refused commands changed the envs: %v, before %v", after, before)
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestCLIJSONListsAreNeverNull lists the envs of a version no env uses:
// [], not null.
func TestCLIJSONListsAreNeverNull(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	n.deployJSON(writeProject(t, dir, "app", "first"))
	n.deployJSON(writeProject(t, dir, "app", "second"))
	code, out, _ := n.fiat("versions", "app", "--json")
	var versions []struct{ Envs []string }
	oneJSONValue(t, out, &versions)
	if code != 0 || len(versions) != 2 || versions[1].Envs == nil {
		t.Errorf("versions --json of a version no env uses:\n%s", out)
	}
	if strings.Contains(out, "null") {
		t.Errorf("versions --json prints null:\n%s", out)
	}
}
