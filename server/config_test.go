package server_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/deploy"
)

// TestConfig sets, unsets and lists a script service's config with the
// CLI: each change is a new version, served at once and rolled back like
// any other; a secret is never shown or logged; bad keys are refused.
func TestConfig(t *testing.T) {
	var log logBuffer
	cfg := testConfig(t.TempDir())
	cfg.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := startConfig(t, cfg)
	dir := t.TempDir()
	files := map[string]string{
		"fiat.toml": "[services.app]\n",
		"main.star": `
def handle(req):
    log("serving with", len(config("TOKEN", "")), "characters of token")
    return "%s, token %s" % (config("GREETING", "hello"), config("TOKEN") != None)

http.route("GET", "/", handle)
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	first := n.deployJSON(dir)
	url := n.srv.Addresses.Service("app", "production")
	body := func() string { _, b, _ := n.get(url); return b }
	if got := body(); got != "hello, token False" {
		t.Fatalf("before any config: %q", got)
	}

	set := func(args ...string) deploy.Result {
		t.Helper()
		code, out, errOut := n.fiat(append([]string{"config", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("fiat config %v: exit %d\n%s%s", args, code, out, errOut)
		}
		var res deploy.Result
		oneJSONValue(t, out, &res)
		return res
	}
	greeted := set("set", "app", "GREETING=bonjour")
	if !greeted.Services[0].Changed || greeted.Services[0].Version == first.Services[0].Version || body() != "bonjour, token False" {
		t.Fatalf("after config set: %+v, serving %q", greeted, body())
	}
	set("set", "app", "TOKEN=hunter2", "--secret")
	if got := body(); got != "bonjour, token True" {
		t.Errorf("after setting a secret: %q", got)
	}
	code, out, _ := n.fiat("config", "list", "app", "--json")
	var listed api.Config
	oneJSONValue(t, out, &listed)
	if code != 0 || listed.Config["GREETING"] != "bonjour" || listed.Config["TOKEN"] != "(secret)" || len(listed.Secrets) != 1 {
		t.Errorf("config list: %+v", listed)
	}
	// Setting a secret again without --secret keeps it secret.
	set("set", "app", "TOKEN=hunter3")
	for _, args := range [][]string{{"config", "list", "app"}, {"versions", "app", "--json"}, {"config", "list", "app", "--json"}} {
		if _, out, errOut := n.fiat(args...); strings.Contains(out+errOut, "hunter") {
			t.Errorf("fiat %v shows a secret:\n%s%s", args, out, errOut)
		}
	}
	if strings.Contains(log.String(), "hunter") {
		t.Errorf("the server's log shows a secret:\n%s", log.String())
	}

	// Back one version: the secret's first value; back again: no secret.
	n.fiat("rollback", "app")
	n.fiat("rollback", "app")
	if got := body(); got != "bonjour, token False" {
		t.Errorf("after two rollbacks: %q, want the version with only GREETING", got)
	}
	set("unset", "app", "GREETING")
	if got := body(); got != "hello, token False" {
		t.Errorf("after config unset: %q", got)
	}

	for _, refused := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "set", "app", "1X=a"}, "environment variable"},
		{[]string{"config", "set", "app", "PORT=80"}, "set by fiat"},
		{[]string{"config", "set", "app", "GREETING"}, "KEY=VALUE"},
		{[]string{"config", "unset", "app", "NEVER_SET"}, "was not set with fiat config set"},
		{[]string{"config", "set", "nope", "A=b"}, `service "nope" is not in env`},
		{[]string{"config", "list", "app", "--env", "nowhere"}, `env "nowhere" does not exist`},
		{[]string{"scale", "app=2"}, "is a script service, which has no instances"},
		{[]string{"scale", "nope=2"}, `service "nope" is not in env`},
		{[]string{"scale", "app"}, "SERVICE=N"},
	} {
		if code, out, errOut := n.fiat(refused.args...); code == 0 || !strings.Contains(errOut, refused.want) {
			t.Errorf("fiat %v: exit %d, %q%q; want a refusal saying %q", refused.args, code, out, errOut, refused.want)
		}
	}
	if _, err := n.admin.Configure(t.Context(), "production", "app", deploy.ConfigChange{Set: map[string]string{"A": "1"}, Unset: []string{"A"}}); err == nil {
		t.Error("a change that sets and unsets one key was accepted")
	}

	// A deploy of new code keeps what config set set.
	set("set", "app", "GREETING=kept", "TOKEN=still-secret", "--secret")
	main := strings.Replace(files["main.star"], `"%s, token %s"`, `"%s! token %s"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "main.star"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := n.deployJSON(dir); !res.Services[0].Changed || body() != "kept! token True" {
		t.Errorf("a deploy after config set: %+v, serving %q; want the new code with the config kept", res, body())
	}
	if _, out, _ := n.fiat("config", "list", "app", "--json"); !strings.Contains(out, `"TOKEN": "(secret)"`) {
		t.Errorf("after the deploy, the secret is shown or gone:\n%s", out)
	}
}
