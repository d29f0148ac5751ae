package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
)

// getAs requests service in production as user ("" for no user key), and
// returns the status and the body.
func (n *node) getAs(service, user string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+service+".localhost/", nil)
	if user != "" {
		req.Header.Set("X-User-Id", user)
	}
	resp, err := n.public.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// rolloutJSON runs fiat with args and --json, and decodes what it prints.
func (n *node) rolloutJSON(args ...string) deploy.RolloutStatus {
	n.t.Helper()
	code, out, errOut := n.fiat(append(args, "--json")...)
	if code != 0 {
		n.t.Fatalf("fiat %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	var st deploy.RolloutStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		n.t.Fatalf("fiat %s --json printed %q: %v", strings.Join(args, " "), out, err)
	}
	return st
}

// refusedCLI runs fiat with args, which must fail saying each of want.
func (n *node) refusedCLI(want []string, args ...string) {
	n.t.Helper()
	code, out, errOut := n.fiat(args...)
	if code == 0 {
		n.t.Errorf("fiat %s succeeded:\n%s", strings.Join(args, " "), out)
		return
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			n.t.Errorf("fiat %s says %q, which does not say %q", strings.Join(args, " "), errOut, w)
		}
	}
}

// TestRolloutUnderLoad rolls a version out, raises its share, finishes
// it, then rolls out and aborts another, while clients keep requesting as
// users and as nobody: no request fails, a user sees only the two
// versions of the rollout, never goes back to the current one as the
// percentage rises, and after the finish and the abort everyone gets the
// version that won. A plain deploy meanwhile is refused, saying what to do.
func TestRolloutUnderLoad(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	n.deployJSON(writeProject(t, dir, "app", "one"))
	res := n.deployJSON(writeProject(t, dir, "app", "two"), "--rollout", "10")
	if res.Rollout == nil || res.Rollout.Percent != 10 || res.Services[0].Changed {
		t.Fatalf("deploy --rollout 10: %+v; want a rollout and the current version unchanged", res)
	}
	stop := make(chan struct{})
	var candidateSeen atomic.Int64
	var client atomic.Int64
	wait := hammer(t, 8, stop, func() error {
		user := fmt.Sprintf("user-%d", client.Add(1)%64)
		if client.Load()%5 == 0 {
			user = ""
		}
		code, body, err := n.getAs("app", user)
		switch {
		case err != nil:
			return err
		case code != 200 || body != "one" && body != "two" && body != "three":
			return fmt.Errorf("user %q got %d %q", user, code, body)
		case body == "two":
			candidateSeen.Add(1)
		}
		return nil
	})
	n.refusedCLI([]string{"rolling out", "--finish", "--abort"}, "deploy", writeProject(t, dir, "app", "three"))
	had := map[string]bool{}
	for _, percent := range []string{"10", "50", "90"} {
		n.rolloutJSON("rollout", "app", "--percent", percent)
		for i := range 64 {
			user := fmt.Sprintf("user-%d", i)
			_, body, err := n.getAs("app", user)
			if err != nil {
				t.Fatal(err)
			}
			if had[user] && body != "two" {
				t.Fatalf("user %s had the candidate and got %q at %s%%", user, body, percent)
			}
			had[user] = body == "two"
		}
	}
	st := n.rolloutJSON("rollout", "app")
	if st.Rollout == nil || st.Rollout.Percent != 90 || len(st.Services) != 1 || st.Services[0].Candidate.Requests == 0 {
		t.Errorf("fiat rollout app under load: %+v", st)
	}
	st = n.rolloutJSON("rollout", "app", "--finish")
	if st.Rollout != nil || st.EndedAs != "finished" {
		t.Fatalf("after --finish: %+v", st)
	}
	for i := range 64 {
		if _, body, _ := n.getAs("app", fmt.Sprintf("user-%d", i)); body != "two" {
			t.Fatalf("after the finish, a user got %q", body)
		}
	}
	n.deployJSON(writeProject(t, dir, "app", "three"), "--rollout", "50", "--users", "user-1")
	if _, body, _ := n.getAs("app", "user-1"); body != "three" {
		t.Errorf("user-1, listed, got %q", body)
	}
	if st := n.rolloutJSON("rollout", "app", "--abort"); st.Rollout != nil || st.EndedAs != "aborted" {
		t.Fatalf("after --abort: %+v", st)
	}
	for i := range 64 {
		if _, body, _ := n.getAs("app", fmt.Sprintf("user-%d", i)); body != "two" {
			t.Fatalf("after the abort, a user got %q", body)
		}
	}
	close(stop)
	if served := wait(); served == 0 || candidateSeen.Load() == 0 {
		t.Errorf("%d requests served, %d by the candidate", served, candidateSeen.Load())
	}
}

// failingProject writes a project whose one route fails at every request.
func failingProject(t *testing.T, dir, service string) string {
	t.Helper()
	write(t, dir, map[string]string{
		"fiat.toml": fmt.Sprintf("[services.%s]\n", service),
		"main.star": "def handle(req):\n    fail(\"the candidate is broken\")\n\nhttp.route(\"GET\", \"/\", handle)\n",
	})
	return dir
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// autoLoad requests service as many users until stop is closed, and
// counts the answers that are not 200.
func autoLoad(t *testing.T, n *node, service string, stop chan struct{}) (failed *atomic.Int64, wait func() int64) {
	failed = new(atomic.Int64)
	var i atomic.Int64
	wait = hammer(t, 4, stop, func() error {
		code, _, err := n.getAs(service, fmt.Sprintf("u%d", i.Add(1)%500))
		if code != 200 {
			failed.Add(1)
		}
		return err
	})
	return failed, wait
}

// TestAutoRolloutAbortsAFailingCandidate rolls out, with --auto, a
// candidate whose handler fails: it is aborted by itself, saying why,
// and the env serves the version it had, to everyone.
func TestAutoRolloutAbortsAFailingCandidate(t *testing.T) {
	n := start(t, t.TempDir())
	n.deployJSON(writeProject(t, t.TempDir(), "app", "good"))
	n.deployJSON(failingProject(t, t.TempDir(), "app"), "--auto", "--steps", "20,50,100", "--interval", "1h", "--min-requests", "20")
	stop := make(chan struct{})
	failed, wait := autoLoad(t, n, "app", stop)
	var st deploy.RolloutStatus
	waitFor(t, "the auto rollout to abort", func() bool {
		st = n.rolloutJSON("rollout", "app")
		return st.Rollout == nil
	})
	close(stop)
	wait()
	if st.EndedAs != "aborted" || st.Ended == nil || !strings.Contains(st.Ended.Verdict, "errors") || st.Ended.Percent != 20 {
		t.Fatalf("the rollout ended as %q: %+v; want aborted at 20%% for its errors", st.EndedAs, st.Ended)
	}
	if failed.Load() == 0 {
		t.Errorf("no request failed: the candidate was not served")
	}
	for i := range 100 {
		if code, body, _ := n.getAs("app", fmt.Sprintf("u%d", i)); code != 200 || body != "good" {
			t.Fatalf("after the abort, user u%d got %d %q", i, code, body)
		}
	}
	_, out, _ := n.fiat("rollout", "app")
	if !strings.Contains(out, "aborted at 20%") {
		t.Errorf("fiat rollout app after the abort says:\n%s", out)
	}
}

// TestAutoRolloutFinishesAGoodCandidate rolls out, with --auto, a
// candidate as good as the current version: it goes through every step
// and finishes by itself.
func TestAutoRolloutFinishesAGoodCandidate(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	n.deployJSON(writeProject(t, dir, "app", "one"))
	res := n.deployJSON(writeProject(t, dir, "app", "two"), "--auto", "--steps", "10,50,100", "--interval", "100ms", "--min-requests", "20")
	if res.Rollout == nil || res.Rollout.Percent != 10 || res.Rollout.Auto == nil {
		t.Fatalf("deploy --auto: %+v", res.Rollout)
	}
	stop := make(chan struct{})
	failed, wait := autoLoad(t, n, "app", stop)
	var st deploy.RolloutStatus
	seen := map[float64]bool{}
	waitFor(t, "the auto rollout to finish", func() bool {
		st = n.rolloutJSON("rollout", "app")
		if st.Rollout != nil {
			seen[st.Rollout.Percent] = true
		}
		return st.Rollout == nil
	})
	close(stop)
	wait()
	if st.EndedAs != "finished" || !strings.Contains(st.Ended.Verdict, "finished after 100%") || failed.Load() != 0 {
		t.Fatalf("the rollout ended as %q (%+v), %d requests failed; want finished after 100%%, none failed", st.EndedAs, st.Ended, failed.Load())
	}
	if !seen[50] && !seen[100] {
		t.Errorf("the rollout was seen at %v only", seen)
	}
	if _, body, _ := n.getAs("app", "anyone"); body != "two" {
		t.Errorf("after the finish, a user got %q", body)
	}
}

// TestServicesRollOutTogether deploys two changed services with
// --rollout: a user gets both candidates or neither, and a service the
// env did not have answers only the rollout's users until it finishes.
func TestServicesRollOutTogether(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	project := func(version string, services ...string) string {
		files := map[string]string{"fiat.toml": ""}
		for _, s := range services {
			files["fiat.toml"] += fmt.Sprintf("[services.%s]\ndir = %q\n", s, s)
			files[s+"/main.star"] = fmt.Sprintf("http.route(\"GET\", \"/\", lambda req: %q)\n", s+"-"+version)
		}
		write(t, dir, files)
		return dir
	}
	n.deployJSON(project("1", "api", "web"))
	res := n.deployJSON(project("2", "api", "web", "db"), "--rollout", "40")
	if res.Rollout == nil || len(res.Rollout.Candidates) != 3 {
		t.Fatalf("deploy --rollout of three services: %+v", res.Rollout)
	}
	_, out, _ := n.fiat("env", "list")
	if !strings.Contains(out, "candidate for 40% of users") {
		t.Errorf("fiat env list does not show the candidates:\n%s", out)
	}
	in := 0
	for i := range 500 {
		user := fmt.Sprintf("user-%d", i)
		_, api, _ := n.getAs("api", user)
		_, web, _ := n.getAs("web", user)
		code, db, _ := n.getAs("db", user)
		switch {
		case api == "api-2" && web == "web-2" && db == "db-2":
			in++
		case api == "api-1" && web == "web-1" && code == 404:
		default:
			t.Fatalf("user %s got %q, %q and %d %q: a mix", user, api, web, code, db)
		}
	}
	if in < 150 || in > 250 {
		t.Errorf("%d of 500 users got the candidates at 40%%", in)
	}
	n.rolloutJSON("rollout", "db", "--finish")
	for _, s := range []string{"api", "web", "db"} {
		if _, body, _ := n.getAs(s, "anyone"); body != s+"-2" {
			t.Errorf("after the finish, %s answers %q", s, body)
		}
	}
}

// TestRolloutSurvivesARestart stops a server during a rollout and starts
// one on the same data dir: it serves the same split to the same users,
// and the rollout finishes there.
func TestRolloutSurvivesARestart(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	n := start(t, data)
	n.deployJSON(writeProject(t, dir, "app", "one"))
	n.deployJSON(writeProject(t, dir, "app", "two"), "--rollout", "30", "--users", "ada")
	before := map[string]string{}
	for i := range 200 {
		user := fmt.Sprintf("user-%d", i)
		_, before[user], _ = n.getAs("app", user)
	}
	n.stop()
	n = start(t, data)
	if _, body, _ := n.getAs("app", "ada"); body != "two" {
		t.Errorf("after a restart, listed user ada got %q", body)
	}
	for user, body := range before {
		if _, now, _ := n.getAs("app", user); now != body {
			t.Fatalf("user %s got %q before the restart and %q after", user, body, now)
		}
	}
	if st := n.rolloutJSON("rollout", "app"); st.Rollout == nil || st.Rollout.Percent != 30 {
		t.Fatalf("after a restart, fiat rollout app: %+v", st)
	}
	n.rolloutJSON("rollout", "app", "--finish")
	n.stop()
	n = start(t, data)
	if _, body, _ := n.getAs("app", "user-1"); body != "two" {
		t.Errorf("after the finish and a restart, a user got %q", body)
	}
}

// TestRolloutRefusesBadInput checks that every mistake is refused with a
// message that says what to do, and changes nothing.
func TestRolloutRefusesBadInput(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	first := n.deployJSON(writeProject(t, dir, "app", "one")).Services[0].Version
	two := writeProject(t, t.TempDir(), "app", "two")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"deploy", two, "--rollout", "101"}, []string{"percent 101", "0 to 100"}},
		{[]string{"deploy", two, "--rollout", "0.001"}, []string{"a hundredth"}},
		{[]string{"deploy", two, "--rollout", "5", "--env", "nowhere"}, []string{"does not exist", "without --rollout"}},
		{[]string{"deploy", two, "--users", "ada"}, []string{"--users is for rollouts"}},
		{[]string{"deploy", two, "--rollout", "5", "--users", "ada,ada"}, []string{"listed twice"}},
		{[]string{"deploy", two, "--auto", "--steps", "50,10"}, []string{"each larger than the one before"}},
		{[]string{"deploy", two, "--auto", "--interval", "1ms"}, []string{"interval 1ms", "at least"}},
		{[]string{"deploy", two, "--auto", "--min-requests", "0"}, []string{"min requests 0"}},
		{[]string{"rollout", "app", "--finish"}, []string{"not rolling out"}},
		{[]string{"rollout", "nosuch", "--env", "nowhere"}, []string{"env \"nowhere\" does not exist"}},
	} {
		n.refusedCLI(c.want, c.args...)
	}
	if code, out, _ := n.fiat("rollout", "app"); code != 0 || !strings.Contains(out, "app is not rolling out in production") {
		t.Errorf("fiat rollout app before any rollout: exit %d\n%s", code, out)
	}
	n.deployJSON(two, "--rollout", "5")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"rollout", "app", "--finish", "--abort"}, []string{"one of them"}},
		{[]string{"rollout", "app", "--percent", "-1"}, []string{"percent -1"}},
		{[]string{"deploy", writeProject(t, t.TempDir(), "app", "three"), "--rollout", "5"}, []string{"rolling out", "--finish", "--abort"}},
		{[]string{"rollback", "app"}, []string{"rolling out"}},
		{[]string{"config", "set", "app", "A=1"}, []string{"rolling out"}},
	} {
		n.refusedCLI(c.want, c.args...)
	}
	if envs, _ := n.admin.Envs(t.Context()); envs[0].Services["app"] != first || len(envs[0].Rollouts) != 1 || envs[0].Rollouts[0].Percent != 5 {
		t.Errorf("refused changes changed the env: %+v", envs[0])
	}
}

// TestProcessRollout rolls out a process service as a script's: its
// candidate's instances run beside the current ones, users stay on their
// side as the percentage rises, `fiat ps` shows the candidate, and an abort
// under load fails no request and stops the candidate's instances.
func TestProcessRollout(t *testing.T) {
	cfg := testConfig(filepath.Join(publicDir(t), "data"))
	cfg.MaxBundle = 32 << 20
	n := startConfig(t, cfg)
	dir := t.TempDir()
	n.deployJSON(writeProcessProject(t, dir, "current"))
	res := n.deployJSON(writeProcessProject(t, dir, "candidate"), "--rollout", "30")
	if res.Rollout == nil {
		t.Fatalf("deploy --rollout 30: %+v", res)
	}
	greeting := func(user string) string {
		code, body, err := n.getAs("app", user)
		if err != nil || code != 200 {
			t.Fatalf("user %q: %d %q %v", user, code, body, err)
		}
		g, _, _ := strings.Cut(body, " from ")
		return g
	}
	had := map[string]bool{}
	for _, percent := range []string{"30", "60"} {
		n.rolloutJSON("rollout", "app", "--percent", percent)
		candidates := 0
		for i := range 100 {
			user := fmt.Sprintf("user-%d", i)
			on := greeting(user) == "candidate"
			if had[user] && !on {
				t.Fatalf("user %s had the candidate and lost it at %s%%", user, percent)
			}
			had[user] = on
			if on {
				candidates++
			}
		}
		if candidates == 0 || candidates == 100 {
			t.Errorf("at %s%%, %d of 100 users got the candidate", percent, candidates)
		}
	}
	var candidate fiat.Hash
	for _, p := range n.processes() {
		if p.Candidate {
			candidate = p.Version
		}
	}
	if candidate == "" || candidate != res.Rollout.Candidates["app"] {
		t.Fatalf("fiat ps lists %+v, want the candidate %s", n.processes(), res.Rollout.Candidates["app"])
	}

	stop := make(chan struct{})
	served := hammer(t, 4, stop, func() error {
		code, body, err := n.getAs("app", fmt.Sprint("user-", rand.IntN(100)))
		if err != nil || code != 200 {
			return fmt.Errorf("during the abort: %d %q %v", code, body, err)
		}
		return nil
	})
	n.rolloutJSON("rollout", "app", "--abort")
	close(stop)
	served()
	for i := range 100 {
		if g := greeting(fmt.Sprintf("user-%d", i)); g != "current" {
			t.Fatalf("after the abort user-%d got %q", i, g)
		}
	}
	waitFor(t, "the candidate's instances to stop", func() bool {
		for _, p := range n.processes() {
			if p.Version == candidate {
				return false
			}
		}
		return true
	})
}
