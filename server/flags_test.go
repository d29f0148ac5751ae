package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/internal/pgtest"
	"github.com/fiatdev/fiat/store"
)

// checkoutProject writes a project whose app answers which checkout the
// request's flags give it, and what Fiat-Flags header it was sent.
func checkoutProject(t *testing.T, dir string) string {
	t.Helper()
	write(t, dir, map[string]string{
		"fiat.toml": "[services.app]\n",
		"main.star": `
def handle(req):
    checkout = "new" if flag("new_checkout") else "old"
    return checkout + " " + req.headers.get("fiat-flags", "-")

http.route("GET", "/", handle)
`,
	})
	return dir
}

// getWith requests app in env as user ("" for none) with header pairs,
// and returns the body.
func (n *node) getWith(env, user string, header ...string) string {
	n.t.Helper()
	req, _ := http.NewRequest("GET", n.srv.Addresses.Service("app", env), nil)
	if user != "" {
		req.Header.Set("X-User-Id", user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	code, body := n.do(req)
	if code != http.StatusOK {
		n.t.Fatalf("GET app as %q: %d %s", user, code, body)
	}
	return body
}

// flagJSON runs fiat with args and --json, and decodes what it prints
// into v.
func (n *node) flagJSON(v any, args ...string) {
	n.t.Helper()
	code, out, errOut := n.fiat(append(args, "--json")...)
	if code != 0 {
		n.t.Fatalf("fiat %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		n.t.Fatalf("fiat %s --json printed %q: %v", strings.Join(args, " "), out, err)
	}
}

// usersWith returns which of 1000 users get the new checkout.
func (n *node) usersWith() map[string]bool {
	in := map[string]bool{}
	for i := range 1000 {
		user := fmt.Sprintf("user-%d", i)
		if strings.HasPrefix(n.getWith(fiat.Production, user), "new") {
			in[user] = true
		}
	}
	return in
}

// TestFlagsThroughTheCLI sets, changes, evaluates, logs, forks and
// deletes a flag as a user would, each change taking effect on the next
// request, and restarts the server: the flags and who gets them survive.
func TestFlagsThroughTheCLI(t *testing.T) {
	data := t.TempDir()
	n := start(t, data)
	n.deployJSON(checkoutProject(t, t.TempDir()))
	if got := n.getWith(fiat.Production, "ada"); got != "old -" {
		t.Fatalf("before any flag: %q", got)
	}

	var f fiat.Flag
	n.flagJSON(&f, "flag", "set", "new_checkout", "--users", "ada,grace")
	if !f.On || f.Percent != 0 || len(f.Users) != 2 {
		t.Fatalf("fiat flag set --users: %+v", f)
	}
	if got := n.getWith(fiat.Production, "ada"); got != "new -" {
		t.Errorf("listed ada, the request after the change: %q", got)
	}
	if got := n.getWith(fiat.Production, "bob"); got != "old -" {
		t.Errorf("bob, not listed: %q", got)
	}

	// Raising the percentage only adds users, and gives it to about as
	// many as it says.
	n.flagJSON(&f, "flag", "set", "new_checkout", "--percent", "10")
	at10 := n.usersWith()
	n.flagJSON(&f, "flag", "set", "new_checkout", "--percent", "20")
	at20 := n.usersWith()
	for user := range at10 {
		if !at20[user] {
			t.Errorf("%s got the flag at 10%% and not at 20%%", user)
		}
	}
	if len(at10) < 60 || len(at10) > 140 || len(at20) < 150 || len(at20) > 250 {
		t.Errorf("%d and %d of 1000 users got the flag at 10%% and 20%%", len(at10), len(at20))
	}

	n.flagJSON(&f, "flag", "set", "new_checkout", "--match", "header:x-beta=1")
	if got := n.getWith(fiat.Production, "", "X-Beta", "1"); got != "new -" {
		t.Errorf("a request with the header: %q", got)
	}
	if got := n.getWith(fiat.Production, "", "X-Beta", "2"); got != "old -" {
		t.Errorf("a request with another value: %q", got)
	}
	// A request saying it has the flag does not get it, nor does the
	// service see what it said.
	if got := n.getWith(fiat.Production, "bob", "Fiat-Flags", "new_checkout=on"); got != "old -" {
		t.Errorf("a request with a forged Fiat-Flags: %q", got)
	}

	var eval deploy.FlagEval
	n.flagJSON(&eval, "flag", "eval", "new_checkout", "--user", "grace")
	if !eval.On || !strings.Contains(eval.Why, `user "grace" is listed`) {
		t.Errorf("fiat flag eval --user grace: %+v", eval)
	}
	n.flagJSON(&eval, "flag", "eval", "new_checkout", "--header", "X-Beta=1")
	if !eval.On || !strings.Contains(eval.Why, "header X-Beta") {
		t.Errorf("fiat flag eval --header X-Beta=1: %+v", eval)
	}
	if code, out, _ := n.fiat("flag", "eval", "new_checkout", "--user", "bob"); code != 0 || !strings.Contains(out, "new_checkout is ") || !strings.Contains(out, "for user bob in production: user \"bob\" is in bucket") {
		t.Errorf("fiat flag eval --user bob: exit %d %s", code, out)
	}

	// The env's user key source decides who is who, for flags and
	// rollouts alike.
	var flags deploy.EnvFlags
	n.flagJSON(&flags, "flag", "user-key", "cookie:uid")
	if flags.UserKey != (fiat.UserKeySource{From: "cookie", Name: "uid"}) {
		t.Errorf("fiat flag user-key: %+v", flags)
	}
	if got := n.getWith(fiat.Production, "", "Cookie", "uid=ada"); got != "new -" {
		t.Errorf("ada in the cookie: %q", got)
	}

	n.flagJSON(&f, "flag", "set", "new_checkout", "--off")
	if got := n.getWith(fiat.Production, "", "Cookie", "uid=ada"); got != "old -" {
		t.Errorf("listed ada once the flag is off: %q", got)
	}
	n.flagJSON(&f, "flag", "set", "new_checkout", "--on")

	var log []store.FlagEntry
	n.flagJSON(&log, "flag", "log", "new_checkout")
	if len(log) != 6 || log[0].Flag.Percent != 0 || log[1].Flag.Percent != 10 || log[2].Flag.Percent != 20 || log[4].Flag.On || !log[5].Flag.On {
		t.Errorf("fiat flag log: %+v", log)
	}
	if code, out, _ := n.fiat("flag", "log", "new_checkout"); code != 0 || !strings.Contains(out, "flag") || !strings.Contains(out, "off (when on: ada, grace; header:X-Beta=1; 20% of users)") {
		t.Errorf("fiat flag log, for people: exit %d\n%s", code, out)
	}

	// A fork has the flags, as an env of its own.
	n.fiat("env", "fork", "pr-1")
	n.flagJSON(&f, "flag", "set", "new_checkout", "--off", "--env", "pr-1")
	if got := n.getWith(fiat.Production, "", "Cookie", "uid=ada"); got != "new -" {
		t.Errorf("production, after its fork's flag changed: %q", got)
	}
	if got := n.getWith("pr-1", "", "Cookie", "uid=ada"); got != "old -" {
		t.Errorf("pr-1, whose flag is off: %q", got)
	}

	n.flagJSON(&flags, "flag", "list")
	before := n.usersWithCookie()
	n.stop()
	n = start(t, data)
	var after deploy.EnvFlags
	n.flagJSON(&after, "flag", "list")
	if fmt.Sprint(after) != fmt.Sprint(flags) {
		t.Errorf("flags after a restart:\n%+v\nbefore:\n%+v", after, flags)
	}
	if now := n.usersWithCookie(); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Errorf("after a restart, %d users get the flag, %d before, not all the same", len(now), len(before))
	}

	n.flagJSON(&map[string]string{}, "flag", "delete", "new_checkout")
	if got := n.getWith(fiat.Production, "", "Cookie", "uid=ada"); got != "old -" {
		t.Errorf("after the flag's delete: %q", got)
	}
}

// usersWithCookie is usersWith for users who send their key in the uid
// cookie.
func (n *node) usersWithCookie() map[string]bool {
	in := map[string]bool{}
	for i := range 300 {
		user := fmt.Sprintf("user-%d", i)
		if strings.HasPrefix(n.getWith(fiat.Production, "", "Cookie", "uid="+user), "new") {
			in[user] = true
		}
	}
	return in
}

// TestDeployTestsRunAcrossFlags deploys a service whose test fails only
// with one flag on and the other off: the deploy is refused, naming that
// combination, and nothing changes.
func TestDeployTestsRunAcrossFlags(t *testing.T) {
	n := start(t, t.TempDir())
	dir := checkoutProject(t, t.TempDir())
	first := n.deployJSON(dir).Services[0].Version
	write(t, dir, map[string]string{
		"main_test.star": `
def test_checkout():
    body = app.get("/").body
    if flag("beta"):
        return
    assert.true(body.startswith("old"), "the new checkout needs beta")
`,
	})
	code, _, errOut := n.fiat("deploy", dir)
	if code == 0 || !strings.Contains(errOut, "main_test.star:6:16: test_checkout [beta=off, new_checkout=on]: assert.true: the new checkout needs beta") {
		t.Errorf("deploy of a test failing in one combination: exit %d\n%s", code, errOut)
	}
	if envs, _ := n.admin.Envs(t.Context()); envs[0].Services["app"] != first {
		t.Errorf("a refused deploy changed production: %+v", envs[0])
	}
}

// TestFlagsRefuseBadInput checks that every mistake is refused with a
// message that says what to do, and changes nothing.
func TestFlagsRefuseBadInput(t *testing.T) {
	n := start(t, t.TempDir())
	n.deployJSON(checkoutProject(t, t.TempDir()))
	n.fiat("flag", "set", "beta", "--percent", "5")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"flag", "set", "Beta"}, []string{`flag name "Beta" must start with a lowercase letter`}},
		{[]string{"flag", "set", ""}, []string{"flag name is empty"}},
		{[]string{"flag", "set", "beta", "--percent", "101"}, []string{"percent 101", "0 to 100"}},
		{[]string{"flag", "set", "beta", "--percent", "0.001"}, []string{"a hundredth"}},
		{[]string{"flag", "set", "beta", "--on", "--off"}, []string{"--on and --off are both given"}},
		{[]string{"flag", "set", "beta", "--users", "ada,ada"}, []string{"listed twice"}},
		{[]string{"flag", "set", "beta", "--match", "X-Beta=1"}, []string{"header:NAME=VALUE"}},
		{[]string{"flag", "set", "beta", "--match", "header:X-Beta="}, []string{"give a value"}},
		{[]string{"flag", "set", "beta", "--match", "header:Fiat-Flags=x"}, []string{"fiat sets Fiat-Flags itself"}},
		{[]string{"flag", "set", "beta"}, []string{"changes nothing", "give on or off"}},
		{[]string{"flag", "set", "beta", "--env", "nowhere"}, []string{`env "nowhere" does not exist`}},
		{[]string{"flag", "set", "beta", "--env", ""}, []string{"--env is empty"}},
		{[]string{"flag", "delete", "nosuch"}, []string{`no flag "nosuch"`}},
		{[]string{"flag", "log", "nosuch"}, []string{`never had a flag "nosuch"`}},
		{[]string{"flag", "eval", "nosuch", "--user", "ada"}, []string{`no flag "nosuch"`}},
		{[]string{"flag", "eval", "beta", "--header", "X-Beta"}, []string{"not NAME=VALUE"}},
		{[]string{"flag", "list", "--env", "nowhere"}, []string{`env "nowhere" does not exist`}},
		{[]string{"flag", "user-key", "body:x"}, []string{`"body" is not header, cookie or query`}},
		{[]string{"flag", "user-key", "header"}, []string{"header:NAME, cookie:NAME or query:NAME"}},
		{[]string{"flag", "frob"}, []string{"unknown command"}},
	} {
		n.refusedCLI(c.want, c.args...)
	}
	// The API refuses what the CLI would not send.
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/v1/flags/beta", `{"percent": "ten"}`, "not the JSON this endpoint takes"},
		{"POST", "/v1/flags/beta", `{"users": ["b", "a", "b"]}`, "listed twice"},
		{"POST", "/v1/flags/beta", `{"match": [{"header": "x-beta", "value": "1"}]}`, "not canonical"},
		{"POST", "/v1/flags/BAD", `{}`, "must start with a lowercase letter"},
		{"POST", "/v1/flags/beta", `{"env": ""}`, "env is empty"},
		{"POST", "/v1/user-key", `{"source": "cookie:"}`, "header:NAME, cookie:NAME or query:NAME"},
		{"POST", "/v1/flags/beta/eval", `{"user": 7}`, "not the JSON"},
		{"GET", "/v1/flags?env=", "", "env is empty"},
	} {
		code, body := n.adminCall(c.method, c.path, "Bearer "+n.srv.Token, c.body)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s: %d %s; want 400 saying %q", c.method, c.path, c.body, code, body, c.want)
		}
	}
	var flags deploy.EnvFlags
	n.flagJSON(&flags, "flag", "list")
	if len(flags.Flags) != 1 || flags.Flags[0].Percent != 5 || flags.UserKey != fiat.DefaultUserKey {
		t.Errorf("refused changes changed the flags: %+v", flags)
	}
	var failed struct{ Error string }
	if code, out, _ := n.fiat("flag", "set", "Beta", "--json"); code == 0 || json.Unmarshal([]byte(out), &failed) != nil || !strings.Contains(failed.Error, "lowercase") {
		t.Errorf("fiat flag set Beta --json: exit %d %q; want one JSON error", code, out)
	}
}

// TestFlagsReachAnotherNode sets a flag on one node of two sharing a
// store: the other serves it, as it serves deploys.
func TestFlagsReachAnotherNode(t *testing.T) {
	c := startCluster(t, pgtest.Database(t), 2)
	a, b := c.nodes[0], c.nodes[1]
	if _, err := a.admin.Deploy(t.Context(), fiat.Production, mustLoad(t, checkoutProject(t, t.TempDir()))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.SetFlag(t.Context(), fiat.Production, "new_checkout", fiat.FlagPatch{Users: &[]string{"ada"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node b to give ada the flag", func() bool { return b.getWith(fiat.Production, "ada") == "new -" })
	if got := b.getWith(fiat.Production, "bob"); got != "old -" {
		t.Errorf("node b, bob: %q", got)
	}
	if err := a.admin.DeleteFlag(t.Context(), fiat.Production, "new_checkout"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node b to delete the flag", func() bool { return b.getWith(fiat.Production, "ada") == "old -" })
	c.converged()
}

// TestProcessGetsFlags checks that a process service hears the flags
// evaluated for each request in Fiat-Flags, every flag of the env sorted
// by name, and never a header its client forged.
func TestProcessGetsFlags(t *testing.T) {
	cfg := testConfig(filepath.Join(publicDir(t), "data"))
	cfg.MaxBundle = 32 << 20
	n := startConfig(t, cfg)
	n.deployJSON(writeProcessProject(t, t.TempDir(), "hi"))
	headers := func(user string, header ...string) string {
		req, _ := http.NewRequest("GET", n.srv.Addresses.Service("app", fiat.Production)+"/headers", nil)
		req.Header.Set("X-User-Id", user)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		_, body := n.do(req)
		return body
	}
	if got := headers("ada", "Fiat-Flags", "admin=on"); !strings.Contains(got, "Fiat-Flags=\n") {
		t.Errorf("with no flag, a forged header reached the instance:\n%s", got)
	}
	n.fiat("flag", "set", "zeta", "--users", "ada")
	n.fiat("flag", "set", "beta", "--off")
	n.fiat("flag", "set", "admin", "--users", "root")
	for user, want := range map[string]string{"ada": "Fiat-Flags=admin=off, beta=off, zeta=on\n", "bob": "Fiat-Flags=admin=off, beta=off, zeta=off\n"} {
		if got := headers(user, "Fiat-Flags", "admin=on"); !strings.Contains(got, want) {
			t.Errorf("%s: the instance saw\n%s\nwant %q", user, got, want)
		}
	}
}
