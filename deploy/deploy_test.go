package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/router"
	"github.com/fiatdev/fiat/script"
	"github.com/fiatdev/fiat/store"
	"github.com/fiatdev/fiat/store/sqlite"
)

// faultyStore is a real store whose Apply can be made to fail, or to return
// a record other than the one it committed.
type faultyStore struct {
	store.Store
	mu sync.Mutex
	// failApply is returned by Apply, which then changes nothing.
	failApply error
	// tamper changes the record a committed Apply returns.
	tamper func(*store.Record)
}

func (s *faultyStore) Apply(ctx context.Context, c store.Change) (store.Record, error) {
	s.mu.Lock()
	fail, tamper := s.failApply, s.tamper
	s.mu.Unlock()
	if fail != nil {
		return store.Record{}, fail
	}
	rec, err := s.Store.Apply(ctx, c)
	if err == nil && tamper != nil {
		tamper(&rec)
	}
	return rec, err
}

type node struct {
	d      *Deployer
	router *router.Router
	store  *faultyStore
	log    *strings.Builder
}

func newNode(t *testing.T) *node {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "fiat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return nodeOn(t, &faultyStore{Store: db})
}

// nodeOn starts a node on s, with a cache of its own, as another node
// sharing one store does.
func nodeOn(t *testing.T, s *faultyStore) *node {
	t.Helper()
	return nodeWith(t, s, func(rt fiat.Runtime) fiat.Runtime { return rt })
}

// nodeWith starts a node on s whose script runtime is wrap's.
func nodeWith(t *testing.T, s *faultyStore, wrap func(fiat.Runtime) fiat.Runtime) *node {
	t.Helper()
	programs, err := script.OpenCache(filepath.Join(t.TempDir(), "programs.pack"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { programs.Close() })
	scripts := script.NewRuntime(programs, slog.New(slog.DiscardHandler))
	t.Cleanup(scripts.Close)
	log := &strings.Builder{}
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return log.Write(p)
	}), nil))
	d, r, err := New(t.Context(), Config{Store: s, Runtimes: map[fiat.Kind]fiat.Runtime{fiat.Script: wrap(scripts)}, Metrics: metrics.New(), Logger: logger, Addresses: fiat.Addresses{Domain: "localhost"}, MaxBody: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return &node{d: d, router: r, store: s, log: log}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// bundle is a project of one script service per entry of services, each
// answering GET / with the text given; extra adds or replaces files.
func bundle(services map[string]string, extra ...fiat.File) project.Bundle {
	toml := ""
	var b project.Bundle
	for name, says := range services {
		toml += fmt.Sprintf("[services.%s]\ndir = %q\ntimeout = \"5m\"\nmax_steps = 10_000_000_000\n", name, name)
		b.Files = append(b.Files, fiat.File{Path: name + "/main.star", Data: fmt.Appendf(nil, "http.route(\"GET\", \"/\", lambda req: %q)\n", says)})
	}
	b.Files = append(b.Files, fiat.File{Path: "fiat.toml", Data: []byte(toml)})
	for _, f := range extra {
		b.Files = replaceFile(b.Files, f)
	}
	return b
}

func replaceFile(files []fiat.File, f fiat.File) []fiat.File {
	for i := range files {
		if files[i].Path == f.Path {
			files[i] = f
			return files
		}
	}
	return append(files, f)
}

// get answers GET / at host through the node's router.
func (n *node) get(host string) (int, string) {
	w := httptest.NewRecorder()
	n.router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil))
	body, _ := io.ReadAll(w.Body)
	return w.Code, string(body)
}

func (n *node) wantServes(t *testing.T, host, want string) {
	t.Helper()
	if code, body := n.get(host); code != 200 || body != want {
		t.Errorf("%s answers %d %q, want 200 %q", host, code, body, want)
	}
}

func (n *node) deploy(t *testing.T, env string, b project.Bundle) Result {
	t.Helper()
	res, err := n.d.Deploy(t.Context(), env, b)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	return res
}

func (n *node) state(t *testing.T) store.State {
	t.Helper()
	st, err := n.store.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestFailedApplyChangesNothing checks that a deploy or rollback whose
// transaction fails reports it and leaves both store and router as they
// were.
func TestFailedApplyChangesNothing(t *testing.T) {
	n := newNode(t)
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "one"}))
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "two"}))
	before := n.state(t)
	disk := errors.New("disk I/O error")
	n.store.failApply = disk
	changed := bundle(map[string]string{"api": "three"})
	if _, err := n.d.Deploy(t.Context(), fiat.Production, changed); !errors.Is(err, disk) {
		t.Errorf("Deploy = %v, want the store's error", err)
	}
	if _, err := n.d.Rollback(t.Context(), fiat.Production, "api", ""); !errors.Is(err, disk) {
		t.Errorf("Rollback = %v, want the store's error", err)
	}
	n.store.failApply = nil
	if after := n.state(t); !reflect.DeepEqual(after, before) {
		t.Errorf("a failed change changed the store:\nbefore: %+v\nafter:  %+v", before, after)
	}
	n.wantServes(t, "api.localhost", "two")
	versions, _ := project.Versions(changed)
	if n.router.Knows(versions[0].ID) {
		t.Errorf("the router knows version %s, which was never stored", versions[0].ID.Short())
	}
	// The same deploy goes through once the store works again.
	n.deploy(t, fiat.Production, changed)
	n.wantServes(t, "api.localhost", "three")
}

// TestRefusedDeployLeavesNothingBehind checks that a deploy with one bad
// service stores nothing, not even its good services' versions, and
// serves nothing new.
func TestRefusedDeployLeavesNothingBehind(t *testing.T) {
	n := newNode(t)
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "one", "web": "one"}))
	before := n.state(t)
	refused := bundle(map[string]string{"api": "two", "web": "two"},
		fiat.File{Path: "web/main_test.star", Data: []byte("def test_fails():\n    assert.eq(app.get(\"/\").body, \"three\")\n")})
	_, err := n.d.Deploy(t.Context(), fiat.Production, refused)
	var problems fiat.Problems
	if !errors.As(err, &problems) || !strings.Contains(err.Error(), "web/main_test.star:2") {
		t.Fatalf("Deploy = %v, want a problem at web/main_test.star:2", err)
	}
	if after := n.state(t); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused deploy changed the store:\nbefore: %+v\nafter:  %+v", before, after)
	}
	versions, _ := project.Versions(refused)
	for _, v := range versions {
		if n.router.Knows(v.ID) {
			t.Errorf("the router knows %s %s of a refused deploy", v.Service, v.ID.Short())
		}
	}
	n.wantServes(t, "api.localhost", "one")
	n.wantServes(t, "web.localhost", "one")
}

// TestRouterRecoversFromARefusedSwitch checks that when the router cannot
// take a committed change as reported, it serves what the store holds
// rather than what it served before.
func TestRouterRecoversFromARefusedSwitch(t *testing.T) {
	n := newNode(t)
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "one"}))
	n.store.tamper = func(rec *store.Record) {
		rec.After.Services["ghost"] = fiat.Hash(strings.Repeat("g", fiat.HashLen))
	}
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "two"}))
	n.wantServes(t, "api.localhost", "two")
	if !strings.Contains(n.log.String(), "the router refused a change") {
		t.Errorf("the refused switch was not logged:\n%s", n.log)
	}
	if env, _ := n.router.Env(fiat.Production); len(env.Services) != 1 {
		t.Errorf("router serves %v, want only what the store holds", env.Services)
	}
}

// stuck is a service whose test runs until its deploy is cancelled.
func stuck(says string) project.Bundle {
	return bundle(map[string]string{"api": says},
		fiat.File{Path: "api/main_test.star", Data: []byte("def test_forever():\n    while True:\n        pass\n")})
}

// TestRollbackDuringASlowDeploy checks that a deploy whose tests run on
// holds up no other change: a rollback meanwhile takes effect at once, and
// the deploy, cancelled by its client, stops, changing nothing.
func TestRollbackDuringASlowDeploy(t *testing.T) {
	n := newNode(t)
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "one"}))
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "two"}))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	deployed := make(chan error, 1)
	go func() {
		_, err := n.d.Deploy(ctx, fiat.Production, stuck("three"))
		deployed <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the deploy reach its test
	if _, err := n.d.Rollback(t.Context(), fiat.Production, "api", ""); err != nil {
		t.Fatalf("Rollback during a deploy: %v", err)
	}
	select {
	case err := <-deployed:
		t.Fatalf("the deploy ended (%v) before it was cancelled: its test should still run", err)
	default:
	}
	n.wantServes(t, "api.localhost", "one")

	cancel()
	select {
	case err := <-deployed:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Deploy = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled deploy's test went on running")
	}
	n.wantServes(t, "api.localhost", "one")
	versions, _ := project.Versions(stuck("three"))
	if _, err := n.store.Version(t.Context(), versions[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a cancelled deploy stored its version: %v", err)
	}
}

// TestDeployOvertaken checks what a deploy does when another change to the
// env commits while it is validated: a change that moved one of its
// services elsewhere refuses it, one that did not is kept and the deploy
// applied on top.
func TestDeployOvertaken(t *testing.T) {
	n := newNode(t)
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "one", "web": "one"}))
	seen, _ := n.router.Env(fiat.Production)
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "two", "web": "one"}))

	// api moved from what this deploy saw: refused, nothing changed.
	versions, _ := project.Versions(bundle(map[string]string{"api": "three", "web": "one"}))
	_, err := n.d.commitDeploy(t.Context(), fiat.Production, versions, versions[:1], seen.Services, nil)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "deploy again") {
		t.Fatalf("overtaken deploy = %v, want ErrConflict saying to deploy again", err)
	}
	n.wantServes(t, "api.localhost", "two")

	// Another project's service changed meanwhile: no conflict.
	n.deploy(t, fiat.Production, bundle(map[string]string{"db": "one"}))
	seen, _ = n.router.Env(fiat.Production)
	n.deploy(t, fiat.Production, bundle(map[string]string{"db": "two"}))
	versions, _ = project.Versions(bundle(map[string]string{"api": "four", "web": "one"}))
	if _, err := n.d.commitDeploy(t.Context(), fiat.Production, versions, versions[:1], seen.Services, nil); err != nil {
		t.Fatalf("deploy overtaken by a change to another service: %v", err)
	}
	n.wantServes(t, "api.localhost", "four")
	n.wantServes(t, "db.localhost", "two")

	// The same versions deployed meanwhile: applied again on top, switching nothing.
	seen, _ = n.router.Env(fiat.Production)
	five := bundle(map[string]string{"api": "five", "web": "one"})
	n.deploy(t, fiat.Production, five)
	versions, _ = project.Versions(five)
	rec, err := n.d.commitDeploy(t.Context(), fiat.Production, versions, nil, seen.Services, nil)
	if err != nil || len(rec.Switched) != 0 {
		t.Fatalf("deploy overtaken by the same deploy = %+v, %v; want nothing switched", rec, err)
	}
	n.wantServes(t, "api.localhost", "five")
}

// TestConcurrentChanges runs deploys to several envs and rollbacks at once,
// and checks that the router ends up serving exactly what the store holds.
func TestConcurrentChanges(t *testing.T) {
	n := newNode(t)
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "zero"}))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			env := fmt.Sprintf("env%d", w)
			for i := range 5 {
				if _, err := n.d.Deploy(t.Context(), env, bundle(map[string]string{"api": fmt.Sprintf("%d-%d", w, i)})); err != nil {
					t.Errorf("Deploy: %v", err)
				}
				if _, err := n.d.Deploy(t.Context(), fiat.Production, bundle(map[string]string{"api": fmt.Sprintf("%d-%d", w, i)})); err != nil && !errors.Is(err, store.ErrConflict) {
					t.Errorf("Deploy to production: %v", err)
				}
				if _, err := n.d.Rollback(t.Context(), env, "api", ""); err != nil && !errors.Is(err, store.ErrNoPrevious) {
					t.Errorf("Rollback: %v", err)
				}
			}
		})
	}
	wg.Wait()
	st := n.state(t)
	if got := n.router.Envs(); !reflect.DeepEqual(got, st.Envs) {
		t.Errorf("router serves %+v, store holds %+v", got, st.Envs)
	}
}

// TestRollbackMakesNoEnv checks that rolling back in an env or a service
// that does not exist is refused and creates neither.
func TestRollbackMakesNoEnv(t *testing.T) {
	n := newNode(t)
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "one"}))
	n.deploy(t, fiat.Production, bundle(map[string]string{"api": "two"}))
	versions, _ := n.store.Versions(t.Context(), "api")
	old := string(versions[1].ID[:fiat.MinPrefixLen])
	for _, env := range []string{"staging", fiat.Production} {
		service := "api"
		if env == fiat.Production {
			service = "web"
		}
		for _, to := range []string{"", old} {
			if _, err := n.d.Rollback(t.Context(), env, service, to); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Rollback(%s, %s, %q) = %v, want ErrNotFound", env, service, to, err)
			}
		}
	}
	if envs := n.router.Envs(); len(envs) != 1 || len(envs[0].Services) != 1 {
		t.Errorf("envs after refused rollbacks: %+v", envs)
	}
	if _, err := n.d.Promote(t.Context(), fiat.Production, "staging"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Promote to a missing env = %v, want ErrNotFound", err)
	}
	if envs := n.router.Envs(); len(envs) != 1 {
		t.Errorf("envs after a refused promote: %+v", envs)
	}
}

// TestNodesServeEachOthersChanges runs two nodes on one store: each serves
// the changes the other makes, in order, starting versions it never
// validated from the store.
func TestNodesServeEachOthersChanges(t *testing.T) {
	a := newNode(t)
	b := nodeOn(t, a.store)
	served := func(n *node) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := n.d.follower.waitFor(ctx, a.d.follower.Position()); err != nil {
			t.Fatalf("a node did not serve the other's change: %v", err)
		}
		if err := n.d.follower.waitFor(ctx, b.d.follower.Position()); err != nil {
			t.Fatalf("a node did not serve the other's change: %v", err)
		}
	}
	a.deploy(t, fiat.Production, bundle(map[string]string{"api": "one"}))
	served(b)
	b.wantServes(t, "api.localhost", "one")
	b.deploy(t, fiat.Production, bundle(map[string]string{"api": "two"}))
	served(a)
	a.wantServes(t, "api.localhost", "two")
	if _, err := a.d.Fork(t.Context(), "staging", fiat.Production); err != nil {
		t.Fatal(err)
	}
	if _, err := b.d.Rollback(t.Context(), fiat.Production, "api", ""); err != nil {
		t.Fatal(err)
	}
	served(a)
	served(b)
	for _, n := range []*node{a, b} {
		n.wantServes(t, "api.localhost", "one")
		n.wantServes(t, "api--staging.localhost", "two")
	}
	if err := b.d.DeleteEnv(t.Context(), "staging"); err != nil {
		t.Fatal(err)
	}
	served(a)
	if code, _ := a.get("api--staging.localhost"); code != 404 {
		t.Errorf("a deleted env answers %d on the other node, want 404", code)
	}
	if got, want := a.router.Envs(), b.router.Envs(); !reflect.DeepEqual(got, want) {
		t.Errorf("the nodes serve %+v and %+v", got, want)
	}
	if h := a.d.Health(); !h.CaughtUp || h.Position != b.d.Health().Position {
		t.Errorf("health %+v and %+v, want both caught up at one position", h, b.d.Health())
	}
}
