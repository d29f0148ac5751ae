package server_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
)

// gitRepo is a git work tree that pushes to a node.
type gitRepo struct {
	t   *testing.T
	dir string
}

// newGitRepo makes a repository holding a one-service script project that
// answers body, with remote fiat pointing at n with token.
func newGitRepo(t *testing.T, n *node, token, body string) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed: the tests of git push run the git client (apt-get install -y git; .ci/run installs it)")
	}
	g := &gitRepo{t: t, dir: t.TempDir()}
	writeProject(t, g.dir, "app", body)
	g.git("init", "-q", "-b", "main")
	g.commit("first")
	g.git("remote", "add", "fiat", "http://fiat:"+token+"@"+n.srv.Admin.String()+"/git/app")
	return g
}

func (g *gitRepo) run(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (g *gitRepo) git(args ...string) string {
	g.t.Helper()
	out, err := g.run(args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (g *gitRepo) commit(msg string) {
	g.t.Helper()
	g.git("add", "-A")
	g.git("commit", "-q", "-m", msg)
}

func (g *gitRepo) write(name, data string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.dir, name), []byte(data), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// TestGitPushDeploys pushes a project: it deploys, with its progress shown
// as remote: lines; a broken commit is rejected with the reason while the
// last good one keeps serving; pushing the same commit again changes
// nothing; a branch pr-7 deploys to env pr-7.
func TestGitPushDeploys(t *testing.T) {
	n := start(t, t.TempDir())
	g := newGitRepo(t, n, n.srv.Token, "pushed")
	out := g.git("push", "fiat", "main")
	if !strings.Contains(out, "remote: fiat: app: ready and tested") || !strings.Contains(out, "main is live in production") {
		t.Errorf("the push did not show the deploy's progress:\n%s", out)
	}
	url := n.srv.Addresses.Service("app", fiat.Production)
	if _, body, _ := n.get(url); body != "pushed" {
		t.Fatalf("after the push production answers %q", body)
	}

	g.write("main.star", "def handle(req):\n    return 'broken'\n\nhttp.route(\"GET\", \"/\", handle\n")
	g.commit("broken")
	out, err := g.run("push", "fiat", "main")
	if err == nil || !strings.Contains(out, "[remote rejected] main -> main (deploy refused: main.star:") || !strings.Contains(out, "remote:   main.star:") {
		t.Errorf("a broken push: %v\n%s", err, out)
	}
	if _, body, _ := n.get(url); body != "pushed" {
		t.Errorf("after a refused push production answers %q", body)
	}

	g.git("reset", "-q", "--hard", "HEAD~1")
	before := changes(t, n)
	out = g.git("push", "fiat", "main:master") // the same commit, to a branch that deploys to production too
	if !strings.Contains(out, "unchanged") || changes(t, n) != before {
		t.Errorf("pushing the same commit again changed something:\n%s", out)
	}
	g.write("main.star", "def handle(req):\n    return 'preview'\n\nhttp.route(\"GET\", \"/\", handle)\n")
	g.commit("preview")
	g.git("push", "fiat", "main:pr-7")
	if _, body, _ := n.get(n.srv.Addresses.Service("app", "pr-7")); body != "preview" {
		t.Errorf("a push of pr-7 made env pr-7 answer %q", body)
	}
	if _, body, _ := n.get(url); body != "pushed" {
		t.Errorf("a push of pr-7 changed production: %q", body)
	}
}

// changes describes what the node serves and has stored: the same
// description, nothing changed.
func changes(t *testing.T, n *node) string {
	t.Helper()
	versions, _ := n.admin.Versions(t.Context(), "app") // none yet is an error
	return fmt.Sprint(n.srv.Deployer.Envs(), len(versions))
}

// A push without the token, or with a wrong one, deploys nothing; one
// over the bundle limit, or holding a symbolic link, is rejected saying so.
func TestGitPushRefuses(t *testing.T) {
	n := start(t, t.TempDir())
	wrong := newGitRepo(t, n, "not-the-token", "wrong")
	if out, err := wrong.run("push", "fiat", "main"); err == nil || !strings.Contains(out, "Authentication failed") {
		t.Errorf("a push with a wrong token: %v\n%s", err, out)
	}
	nothing := changes(t, n)
	if strings.Contains(nothing, "app") {
		t.Error("a push with a wrong token deployed")
	}

	g := newGitRepo(t, n, n.srv.Token, "big")
	g.write("big.star", strings.Repeat("# padding\n", 10_000)) // 100 KB, over the test server's 64 KiB
	g.commit("big")
	if out, err := g.run("push", "fiat", "main"); err == nil || !strings.Contains(out, "too large") {
		t.Errorf("a push over the bundle limit: %v\n%s", err, out)
	}
	g.git("rm", "-q", "big.star")
	if err := os.Symlink("/etc/passwd", filepath.Join(g.dir, "passwd.star")); err != nil {
		t.Fatal(err)
	}
	g.commit("a link")
	if out, err := g.run("push", "fiat", "main"); err == nil || !strings.Contains(out, "passwd.star is a symbolic link") {
		t.Errorf("a push with a symbolic link: %v\n%s", err, out)
	}
	if changes(t, n) != nothing {
		t.Error("a refused push deployed")
	}
}

// A credential helper gives git the token, for a remote without it in its
// URL: git asks it after fiat's 401.
func TestGitPushWithACredentialHelper(t *testing.T) {
	n := start(t, t.TempDir())
	g := newGitRepo(t, n, n.srv.Token, "helped")
	g.git("remote", "set-url", "fiat", "http://"+n.srv.Admin.String()+"/git/app")
	helper := "!f() { echo username=me; echo password=" + n.srv.Token + "; }; f"
	if out := g.git("-c", "credential.helper="+helper, "push", "fiat", "main"); !strings.Contains(out, "main is live in production") {
		t.Errorf("a push through a credential helper:\n%s", out)
	}
	if _, body, _ := n.get(n.srv.Addresses.Service("app", fiat.Production)); body != "helped" {
		t.Errorf("after the push production answers %q", body)
	}
}
