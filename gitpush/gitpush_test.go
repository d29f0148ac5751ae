package gitpush

import (
	"cmp"
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/project"
)

// recording deploys nothing, and remembers the envs it was asked to.
type recording struct {
	mu   sync.Mutex
	envs []string
}

func (r *recording) Deploy(ctx context.Context, env string, b project.Bundle) (deploy.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.envs = append(r.envs, env)
	return deploy.Result{Env: env}, nil
}

func serve(t *testing.T, cfg Config) (*httptest.Server, *recording) {
	rec := &recording{}
	cfg.Deployer, cfg.Dir = rec, filepath.Join(t.TempDir(), "git")
	if cfg.Branches == nil {
		cfg.Branches = DefaultBranches()
	}
	cfg.MaxBundle = cmp.Or(cfg.MaxBundle, 1<<20)
	cfg.MaxPush = cmp.Or(cfg.MaxPush, 1<<20)
	cfg.MaxRepoBytes = cmp.Or(cfg.MaxRepoBytes, 1<<20)
	cfg.MaxRepos = cmp.Or(cfg.MaxRepos, 10)
	srv := httptest.NewServer(Handler(cfg))
	t.Cleanup(srv.Close)
	return srv, rec
}

// git runs git in dir and returns what it printed and whether it worked.
func git(t *testing.T, dir string, args ...string) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed: these tests run the git client (apt-get install -y git; .ci/run installs it)")
	}
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// repoWith makes a repository with one commit of files.
func repoWith(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, data := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "one"}} {
		if out, ok := git(t, dir, args...); !ok {
			t.Fatal(out)
		}
	}
	return dir
}

func TestBranchesDeployWhereTheySay(t *testing.T) {
	srv, rec := serve(t, Config{Branches: Branches{"main": "staging"}})
	dir := repoWith(t, map[string]string{"fiat.toml": "[services.a]\n"})
	if out, ok := git(t, dir, "push", srv.URL+"/git/app", "main"); !ok {
		t.Fatal(out)
	}
	if out, ok := git(t, dir, "push", srv.URL+"/git/app", "main:feature"); ok || !strings.Contains(out, "branch feature deploys nowhere") {
		t.Errorf("a branch no rule names: %s", out)
	}
	if out, ok := git(t, dir, "push", srv.URL+"/git/app", ":main"); ok || !strings.Contains(out, "fiat does not delete a deployed branch") {
		t.Errorf("deleting a branch: %s", out)
	}
	if len(rec.envs) != 1 || rec.envs[0] != "staging" {
		t.Errorf("deployed to %v, want staging once", rec.envs)
	}
	for _, bad := range []string{"main", "=x", "main=", "main=Bad_Env"} {
		if _, err := ParseBranches([]string{bad}); err == nil {
			t.Errorf("--git-branch %q was accepted", bad)
		}
	}
	if env, err := DefaultBranches().Env("Not--An-Env"); err == nil {
		t.Errorf("a branch that names no env deploys to %q", env)
	}
}

// Repositories are bounded: in number, and each push in size.
func TestPushesAreBounded(t *testing.T) {
	srv, rec := serve(t, Config{MaxRepos: 1, MaxPush: 64 << 10})
	dir := repoWith(t, map[string]string{"fiat.toml": "[services.a]\n"})
	if out, ok := git(t, dir, "push", srv.URL+"/git/one", "main"); !ok {
		t.Fatal(out)
	}
	if out, ok := git(t, dir, "push", srv.URL+"/git/two", "main"); ok || !strings.Contains(out, "at most 1 pushed repositories") {
		t.Errorf("a second repository over the limit of one: %s", out)
	}
	noise := make([]byte, 256<<10) // what does not compress
	rand.NewChaCha8([32]byte{1}).Read(noise)
	os.WriteFile(filepath.Join(dir, "noise.bin"), noise, 0o644)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "noise")
	if out, ok := git(t, dir, "push", srv.URL+"/git/one", "main"); ok || !strings.Contains(out, "over fiat's limit") {
		t.Errorf("a push over the limit: %s", out)
	}
	if len(rec.envs) != 1 {
		t.Errorf("deployed %d times, want once", len(rec.envs))
	}
	for _, path := range []string{"/git/..%2f..%2fetc/info/refs?service=git-receive-pack", "/git/app/info/refs?service=git-upload-pack"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}
