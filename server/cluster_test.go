package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/internal/pgtest"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/server"
	"github.com/fiatdev/fiat/store/postgres"
)

// cluster is nodes sharing one PostgreSQL database.
type cluster struct {
	t     *testing.T
	store string
	nodes []*node
}

func startCluster(t *testing.T, storeURL string, size int) *cluster {
	t.Helper()
	c := &cluster{t: t, store: storeURL}
	for range size {
		c.nodes = append(c.nodes, c.startNode(t.TempDir()))
	}
	return c
}

func (c *cluster) startNode(data string) *node {
	c.t.Helper()
	cfg := testConfig(data)
	cfg.Store = c.store
	return startConfig(c.t, cfg)
}

// versions tracks the body each version answers, known before it is
// deployed, since clients may be served it the moment it switches.
type versions struct {
	sync.Mutex
	bodyOf map[string]string // short hash → body
}

func (vs *versions) bundle(t *testing.T, dir, body string) project.Bundle {
	t.Helper()
	b := mustLoad(t, writeProject(t, dir, "app", body))
	built, problems := project.Versions(b)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	vs.Lock()
	vs.bodyOf[built[0].ID.Short()] = body
	vs.Unlock()
	return b
}

// check reports what is wrong with a response, if anything: every
// request to a known env must be answered 200 by a version deployed, with
// that version's body.
func (vs *versions) check(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	version := resp.Header.Get("Fiat-Version")
	vs.Lock()
	want, known := vs.bodyOf[version]
	vs.Unlock()
	if resp.StatusCode != http.StatusOK || !known || string(body) != want {
		return fmt.Errorf("%d %q from version %q (known %v, which answers %q)", resp.StatusCode, body, version, known, want)
	}
	return nil
}

// load requests production's app from every node until stop is closed,
// and returns how many requests were served; it fails t at the first
// request that is not served as it should be.
func (c *cluster) load(vs *versions, stop chan struct{}) func() int64 {
	var waits []func() int64
	for _, n := range c.nodes {
		url := n.srv.Addresses.Service("app", fiat.Production)
		waits = append(waits, hammer(c.t, 1, stop, func() error {
			if err := vs.check(n.public.Get(url)); err != nil {
				return fmt.Errorf("node %s: %w", n.srv.Admin, err)
			}
			return nil
		}))
	}
	return func() int64 {
		var served int64
		for _, wait := range waits {
			served += wait()
		}
		return served
	}
}

// converged waits until every node has applied the store's last change,
// and then checks that each serves exactly the store's envs.
func (c *cluster) converged() {
	c.t.Helper()
	db, err := postgres.Open(c.t.Context(), c.store)
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	state, err := db.State(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	envs, last := state.Envs, state.Position
	for _, n := range c.nodes {
		waitFor(c.t, fmt.Sprintf("node %s to apply change %d", n.srv.Admin, last), func() bool {
			h := n.srv.Deployer.Health()
			return h.CaughtUp && h.Position >= last
		})
		if got := n.srv.Deployer.Envs(); !sameEnvs(got, envs) {
			c.t.Errorf("node %s serves envs %v, the store has %v", n.srv.Admin, got, envs)
		}
		for _, env := range envs {
			for service, id := range env.Services {
				_, _, header := n.get(n.srv.Addresses.Service(service, env.Name))
				if got := header.Get("Fiat-Version"); got != id.Short() {
					c.t.Errorf("node %s serves %s in %s at %q, the store has %s", n.srv.Admin, service, env.Name, got, id.Short())
				}
			}
		}
	}
}

func sameEnvs(a, b []fiat.Env) bool {
	if len(a) != len(b) {
		return false
	}
	byName := map[string]fiat.Env{}
	for _, e := range a {
		byName[e.Name] = e
	}
	for _, e := range b {
		other, ok := byName[e.Name]
		if !ok || len(other.Services) != len(e.Services) {
			return false
		}
		for service, id := range e.Services {
			if other.Services[service] != id {
				return false
			}
		}
	}
	return true
}

// TestClusterConverges makes deploys, rollbacks, forks, promotions and
// deletions on random nodes of three, from several clients at once, while
// every node serves production under load: no request fails, every change
// is either applied or refused saying why, and every node ends up serving
// the store's state.
func TestClusterConverges(t *testing.T) {
	c := startCluster(t, pgtest.Database(t), 3)
	vs := &versions{bodyOf: map[string]string{}}
	if _, err := c.nodes[0].admin.Deploy(t.Context(), fiat.Production, vs.bundle(t, t.TempDir(), "first")); err != nil {
		t.Fatal(err)
	}
	c.converged()
	stop := make(chan struct{})
	served := c.load(vs, stop)
	var applied atomic.Int64
	var changers sync.WaitGroup
	for w := range 3 {
		dir := t.TempDir()
		changers.Go(func() {
			for i := range 15 {
				n := c.nodes[rand.IntN(len(c.nodes))]
				var err error
				switch op := rand.IntN(10); {
				case op < 5:
					_, err = n.admin.Deploy(t.Context(), fiat.Production, vs.bundle(t, dir, fmt.Sprintf("writer %d, deploy %d", w, i)))
				case op < 7:
					_, err = n.admin.Rollback(t.Context(), fiat.Production, "app", "")
				case op < 8:
					_, err = n.admin.Fork(t.Context(), "staging", fiat.Production)
				case op < 9:
					_, err = n.admin.Promote(t.Context(), "staging", fiat.Production)
				default:
					err = n.admin.DeleteEnv(t.Context(), "staging")
				}
				if err == nil {
					applied.Add(1)
					continue
				}
				// Refusals that say what is in the way are part of the game.
				var apiErr *api.Error
				if !errors.As(err, &apiErr) || (apiErr.Status != http.StatusConflict && apiErr.Status != http.StatusNotFound) {
					t.Errorf("writer %d, change %d on node %s: %v", w, i, n.srv.Admin, err)
				}
			}
		})
	}
	changers.Wait()
	close(stop)
	if n := served(); n < 100 {
		t.Errorf("only %d requests served during the changes", n)
	}
	if applied.Load() < 10 {
		t.Errorf("only %d of 45 changes were applied", applied.Load())
	}
	c.converged()
}

// health asks a node's admin API whether it is caught up.
func health(t *testing.T, admin string) (int, deploy.Health) {
	t.Helper()
	resp, err := http.Get(admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h deploy.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	return resp.StatusCode, h
}

// TestKilledNodeCatchesUp kills one node's process with SIGKILL, makes
// changes on another, and restarts it: once it serves, it says it is
// caught up at the store's position and serves every change it missed.
func TestKilledNodeCatchesUp(t *testing.T) {
	storeURL := pgtest.Database(t)
	c := startCluster(t, storeURL, 1)
	a := c.nodes[0]
	vs := &versions{bodyOf: map[string]string{}}
	dir := t.TempDir()
	data := t.TempDir()
	startB := func() (*exec.Cmd, served) {
		cmd, stdout := fiatProcess(t, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--json", "--data", data, "--store", storeURL)
		var s served
		if err := json.NewDecoder(stdout).Decode(&s); err != nil {
			t.Fatalf("fiat serve --json did not print a JSON value: %v", err)
		}
		return cmd, s
	}
	getApp := func(b served, env string) (string, string) {
		req, _ := http.NewRequest("GET", "http://"+b.Router+"/", nil)
		u, _ := url.Parse(fiat.Addresses{Domain: "localhost"}.Service("app", env))
		req.Host = u.Host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("Fiat-Version"), string(body)
	}

	if _, err := a.admin.Deploy(t.Context(), fiat.Production, vs.bundle(t, dir, "before the kill")); err != nil {
		t.Fatal(err)
	}
	cmd, b := startB()
	if _, body := getApp(b, fiat.Production); body != "before the kill" {
		t.Fatalf("node b serves %q, want the version deployed before it started", body)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	var last deploy.Result
	for i := range 3 {
		res, err := a.admin.Deploy(t.Context(), fiat.Production, vs.bundle(t, dir, fmt.Sprint("while b was down ", i)))
		if err != nil {
			t.Fatal(err)
		}
		last = res
	}
	if _, err := a.admin.Fork(t.Context(), "staging", fiat.Production); err != nil {
		t.Fatal(err)
	}

	_, b = startB()
	code, h := health(t, b.Admin)
	if want := a.srv.Deployer.Health().Position; code != http.StatusOK || !h.CaughtUp || h.Position != want {
		t.Errorf("restarted node b: /healthz %d %+v, want 200, caught up at position %d", code, h, want)
	}
	for _, env := range []string{fiat.Production, "staging"} {
		if version, body := getApp(b, env); version != last.Services[0].Version.Short() || body != "while b was down 2" {
			t.Errorf("restarted node b serves app in %s at %s (%q), want %s, deployed while it was down", env, version, body, last.Services[0].Version.Short())
		}
	}
}

// TestPostgresRestartUnderCluster kills the PostgreSQL server under two
// nodes serving under load: they go on serving what they have, changes
// fail at once saying the store is unreachable, /healthz says the nodes
// are not caught up; once the server is back, changes work again on every
// node, with no node restarted, and no request failed throughout.
func TestPostgresRestartUnderCluster(t *testing.T) {
	pg := pgtest.Start(t)
	c := startCluster(t, pgtest.DatabaseOn(t, pg.URL), 2)
	vs := &versions{bodyOf: map[string]string{}}
	dir := t.TempDir()
	if _, err := c.nodes[0].admin.Deploy(t.Context(), fiat.Production, vs.bundle(t, dir, "before")); err != nil {
		t.Fatal(err)
	}
	c.converged()
	// A change node 1 has applied but never served a request of: it
	// started the version when it applied the change, not lazily.
	if _, err := c.nodes[0].admin.Deploy(t.Context(), fiat.Production, vs.bundle(t, dir, "just before")); err != nil {
		t.Fatal(err)
	}
	position := c.nodes[0].srv.Deployer.Health().Position
	waitFor(t, "node 1 to apply the last change", func() bool { return c.nodes[1].srv.Deployer.Health().Position >= position })

	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := c.nodes[1].get(c.nodes[1].srv.Addresses.Service("app", fiat.Production)); body != "just before" {
		t.Errorf("node 1, with PostgreSQL down, answers %q, want the version it applied before", body)
	}
	stop := make(chan struct{})
	served := c.load(vs, stop)
	_, err := c.nodes[1].admin.Deploy(t.Context(), fiat.Production, vs.bundle(t, dir, "refused"))
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable || !strings.Contains(apiErr.Message, "the store is unreachable: ") {
		t.Errorf("deploy with PostgreSQL down: %v, want 503, the store is unreachable", err)
	}
	for _, n := range c.nodes {
		waitFor(t, "/healthz to say the node cannot follow the store", func() bool {
			code, h := health(t, "http://"+n.srv.Admin.String())
			return code == http.StatusServiceUnavailable && !h.CaughtUp && h.Error != ""
		})
	}

	if err := pg.StartAgain(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a deploy to work again", func() bool {
		_, err := c.nodes[1].admin.Deploy(t.Context(), fiat.Production, vs.bundle(t, dir, "after"))
		return err == nil
	})
	c.converged()
	for _, n := range c.nodes {
		if code, h := health(t, "http://"+n.srv.Admin.String()); code != http.StatusOK || !h.CaughtUp {
			t.Errorf("node %s once PostgreSQL is back: /healthz %d %+v", n.srv.Admin, code, h)
		}
	}
	close(stop)
	if n := served(); n < 50 {
		t.Errorf("only %d requests were served while PostgreSQL restarted", n)
	}
}

// TestConflictingDeploysFromTwoNodes deploys two versions of one service
// on two nodes at the same moment, again and again: each deploy is either
// applied, in the history, or refused saying what changed under it; none
// is lost silently, and the env ends at the version of the last applied.
func TestConflictingDeploysFromTwoNodes(t *testing.T) {
	storeURL := pgtest.Database(t)
	c := startCluster(t, storeURL, 2)
	vs := &versions{bodyOf: map[string]string{}}
	dirs := []string{t.TempDir(), t.TempDir()}
	db, err := postgres.Open(t.Context(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	refused := 0
	for round := range 10 {
		results := make([]deploy.Result, 2)
		errs := make([]error, 2)
		bundles := []project.Bundle{vs.bundle(t, dirs[0], fmt.Sprint(round, " from a")), vs.bundle(t, dirs[1], fmt.Sprint(round, " from b"))}
		before := c.nodes[0].srv.Deployer.Health().Position
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, n := range c.nodes {
			wg.Go(func() {
				<-start
				results[i], errs[i] = n.admin.Deploy(t.Context(), fiat.Production, bundles[i])
			})
		}
		close(start)
		wg.Wait()
		recs, err := db.Changes(t.Context(), before, 10)
		if err != nil {
			t.Fatal(err)
		}
		applied := map[fiat.Hash]bool{}
		for _, rec := range recs {
			for _, sw := range rec.Switched {
				applied[sw.To] = true
			}
		}
		for i, err := range errs {
			var apiErr *api.Error
			switch {
			case err == nil && !applied[results[i].Services[0].Version]:
				t.Errorf("round %d: the deploy on node %d answered %+v, but the history after %d has no such change: %+v", round, i, results[i], before, recs)
			case err == nil:
			case errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict && strings.Contains(apiErr.Message, "is now at") && strings.Contains(apiErr.Message, "deploy again"):
				refused++
			default:
				t.Errorf("round %d: the deploy on node %d failed with %v, want it applied or refused as a conflict", round, i, err)
			}
		}
		if errs[0] != nil && errs[1] != nil {
			t.Errorf("round %d: both deploys were refused: %v; %v", round, errs[0], errs[1])
		}
		var last fiat.Hash
		for _, rec := range recs {
			for _, sw := range rec.Switched {
				last = sw.To
			}
		}
		if env, err := db.Env(t.Context(), fiat.Production); err != nil || env.Services["app"] != last {
			t.Errorf("round %d: production is at %v (%v), want %s, the last version the history switched to", round, env.Services["app"], err, last.Short())
		}
	}
	t.Logf("%d of 20 deploys were refused as conflicts", refused)
	c.converged()
}

// TestServeWaitsForPostgres starts a node while its PostgreSQL is down: it
// says so, retries, and serves once PostgreSQL is up.
func TestServeWaitsForPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	storeURL := pgtest.DatabaseOn(t, pg.URL)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	cfg := testConfig(t.TempDir())
	cfg.Store = storeURL
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	started := make(chan error, 1)
	var srv *server.Server
	go func() {
		var err error
		srv, err = server.Start(t.Context(), cfg)
		started <- err
	}()
	waitFor(t, "the node to say the store is unreachable", func() bool {
		return strings.Contains(log.String(), "the store is unreachable: trying again")
	})
	select {
	case err := <-started:
		t.Fatalf("the node started with its store down: %v", err)
	default:
	}
	if err := pg.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil {
		t.Fatalf("the node did not start once PostgreSQL was up: %v", err)
	}
	defer srv.Shutdown(context.Background())
	admin := &api.Client{Server: "http://" + srv.Admin.String(), Token: srv.Token}
	if _, err := admin.Deploy(t.Context(), fiat.Production, mustLoad(t, writeProject(t, t.TempDir(), "app", "up"))); err != nil {
		t.Fatal(err)
	}
}

// TestProcessServiceOnTwoNodes deploys a process service on one node of
// two: the other runs its own instances of it, ready before it serves
// the change, and stops them when a later deploy replaces it.
func TestProcessServiceOnTwoNodes(t *testing.T) {
	storeURL := pgtest.Database(t)
	root := publicDir(t)
	var nodes []*node
	for i := range 2 {
		cfg := testConfig(filepath.Join(root, fmt.Sprint("node-", i)))
		cfg.Store, cfg.MaxBundle = storeURL, 32<<20
		nodes = append(nodes, startConfig(t, cfg))
	}
	a, b := nodes[0], nodes[1]
	dir := t.TempDir()
	res := a.deployJSON(writeProcessProject(t, dir, "one"))
	waitFor(t, "node b to apply the deploy", func() bool {
		return b.srv.Deployer.Health().Position >= a.srv.Deployer.Health().Position
	})
	// Node b started its instance before it served the change: it serves
	// it at once, and has the instance running already.
	if len(instancesIn(b.data)) != 1 {
		t.Errorf("node b runs %d instances once it applied the deploy, want 1", len(instancesIn(b.data)))
	}
	url := b.srv.Addresses.Service("app", fiat.Production)
	if _, body, _ := b.get(url); !strings.HasPrefix(body, "one from ") {
		t.Errorf("node b serves %q", body)
	}
	a.deployJSON(writeProcessProject(t, dir, "two"))
	waitFor(t, "node b to serve the second deploy", func() bool {
		_, body, _ := b.get(url)
		return strings.HasPrefix(body, "two from ")
	})
	waitFor(t, "node b to stop the first version's instance", func() bool { return len(instancesIn(b.data)) == 1 })
	if res.Services[0].Version == "" {
		t.Error("no version")
	}
}
