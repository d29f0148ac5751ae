package deploy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/store/sqlite"
)

// frontAndBack is a project whose web uses api: web answers with what api
// answered and the version that answered it.
func frontAndBack(web, api string) project.Bundle {
	return project.Bundle{Files: []fiat.File{
		{Path: "fiat.toml", Data: []byte("[services.web]\ndir = \"web\"\nuses = [\"api\"]\n[services.api]\ndir = \"api\"\n")},
		{Path: "web/main.star", Data: fmt.Appendf(nil, `
def index(req):
    r = services.api.get("/")
    return "%s via " + r.body + " from " + r.headers["fiat-version"]
http.route("GET", "/", index)
`, web)},
		{Path: "web/main_test.star", Data: []byte(`
def test_api_answers():
    assert.eq(services.api.get("/").status, 200)
`)},
		{Path: "api/main.star", Data: fmt.Appendf(nil, "http.route(\"GET\", \"/\", lambda req: %q)\n", api)},
	}}
}

func countingNode(t *testing.T) (*node, *counting) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "fiat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rt := &counting{starts: map[fiat.Hash]int{}, stops: map[fiat.Hash]int{}}
	n := nodeWith(t, &faultyStore{Store: db}, func(scripts fiat.Runtime) fiat.Runtime { rt.Runtime = scripts; return rt })
	return n, rt
}

func byName(res Result) map[string]ServiceResult {
	of := map[string]ServiceResult{}
	for _, s := range res.Services {
		of[s.Name] = s
	}
	return of
}

// A change to api makes a new web, which calls only the new api; a change
// to web leaves api alone; each deploy says why a service changed.
func TestUsesChangeTheirUsers(t *testing.T) {
	n, rt := countingNode(t)
	first := byName(n.deploy(t, fiat.Production, frontAndBack("web 1", "api 1")))
	n.wantServes(t, "web.localhost", "web 1 via api 1 from "+first["api"].Version.Short())

	apiChanged := byName(n.deploy(t, fiat.Production, frontAndBack("web 1", "api 2")))
	if s := apiChanged["api"]; !s.Changed || s.Why != "files" {
		t.Errorf("api after its change: %+v, want changed for its files", s)
	}
	if s := apiChanged["web"]; !s.Changed || s.Why != "uses api" {
		t.Errorf("web after api's change: %+v, want changed because it uses api", s)
	}
	n.wantServes(t, "web.localhost", "web 1 via api 2 from "+apiChanged["api"].Version.Short())

	webChanged := byName(n.deploy(t, fiat.Production, frontAndBack("web 2", "api 2")))
	if s := webChanged["api"]; s.Changed || s.Version != apiChanged["api"].Version {
		t.Errorf("api after a change to web: %+v, want it untouched", s)
	}
	if s := webChanged["web"]; !s.Changed || s.Why != "files" {
		t.Errorf("web after its change: %+v, want changed for its files", s)
	}
	if starts, _ := rt.count(apiChanged["api"].Version); starts != 1 {
		t.Errorf("api started %d times, want once: a change to web does not start it", starts)
	}

	// The old web still calls the old api at its version address.
	n.wantServes(t, "web-"+first["web"].Version.Short()+".localhost", "web 1 via api 1 from "+first["api"].Version.Short())
}

// Rolling back api takes web back with it, to the web that called the api
// it goes back to.
func TestRollbackTakesCallersAlong(t *testing.T) {
	n, _ := countingNode(t)
	first := byName(n.deploy(t, fiat.Production, frontAndBack("web", "api 1")))
	n.deploy(t, fiat.Production, frontAndBack("web", "api 2"))
	res, err := n.d.Rollback(t.Context(), fiat.Production, "api", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := byName(res); got["web"].Version != first["web"].Version || got["api"].Version != first["api"].Version {
		t.Errorf("after rolling api back: %+v, want web and api as first deployed", res.Services)
	}
	n.wantServes(t, "web.localhost", "web via api 1 from "+first["api"].Version.Short())
}

// Envs share versions: a fork starts nothing, and a change to one service
// in the fork starts only it and its users.
func TestForkSharesVersions(t *testing.T) {
	n, rt := countingNode(t)
	prod := byName(n.deploy(t, fiat.Production, frontAndBack("web", "api 1")))
	rt.mu.Lock()
	before := len(rt.starts)
	rt.mu.Unlock()
	if _, err := n.d.Fork(t.Context(), "pr-7", fiat.Production); err != nil {
		t.Fatal(err)
	}
	n.wantServes(t, "web--pr-7.localhost", "web via api 1 from "+prod["api"].Version.Short())
	rt.mu.Lock()
	after := len(rt.starts)
	rt.mu.Unlock()
	if after != before {
		t.Errorf("the fork started %d versions, want none", after-before)
	}
	pr := byName(n.deploy(t, "pr-7", frontAndBack("web", "api 2")))
	for _, s := range []string{"web", "api"} {
		if starts, _ := rt.count(pr[s].Version); !pr[s].Changed || starts != 1 {
			t.Errorf("%s in pr-7: %+v, started %d times; want a new version started once", s, pr[s], starts)
		}
	}
	n.wantServes(t, "web.localhost", "web via api 1 from "+prod["api"].Version.Short())
}

// A deploy whose api fails its tests is refused with api's problem, and
// web's tests, which call the api being deployed, are not what fails.
func TestTestsCallTheVersionsDeployedWithThem(t *testing.T) {
	n, _ := countingNode(t)
	b := frontAndBack("web", "api")
	b.Files = replaceFile(b.Files, fiat.File{Path: "api/main.star", Data: []byte("http.route(\"GET\", \"/\", lambda req: response(503))\n")})
	_, err := n.d.Deploy(t.Context(), fiat.Production, b)
	if err == nil || !strings.Contains(err.Error(), "web/main_test.star") {
		t.Fatalf("a web whose tests get 503 from the api deployed with it: %v, want its test failing", err)
	}
	if code, _ := n.get("web.localhost"); code != http.StatusNotFound {
		t.Errorf("the refused deploy serves web: %d", code)
	}
}

// Across 50 deploys under load, no request of a web version reaches any
// api but the one it was deployed with, and none fails.
func TestNoCrossVersionCallsUnderLoad(t *testing.T) {
	n, _ := countingNode(t)
	var mu sync.Mutex
	apiOf := map[string]string{} // web short → api short
	deploy := func(i int) {
		b := frontAndBack(fmt.Sprintf("web %d", i/2), fmt.Sprintf("api %d", (i+1)/2))
		versions, problems := project.Versions(b)
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		mu.Lock()
		for _, v := range versions {
			if v.Service == "web" {
				apiOf[v.ID.Short()] = v.Uses["api"].Short()
			}
		}
		mu.Unlock()
		n.deploy(t, fiat.Production, b)
	}
	deploy(0)
	stop := make(chan struct{})
	var served atomic.Int64
	var failures sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		failures.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := httptest.NewRecorder()
				n.router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://web.localhost/", nil))
				web := w.Header().Get(fiat.VersionHeader)
				mu.Lock()
				want := apiOf[web]
				mu.Unlock()
				if w.Code != 200 || !strings.HasSuffix(w.Body.String(), " from "+want) {
					select {
					case errs <- fmt.Sprintf("web %s answered %d %q, want a call to api %s", web, w.Code, w.Body.String(), want):
					default:
					}
				}
				served.Add(1)
			}
		})
	}
	for i := 1; i <= 50; i++ {
		deploy(i)
	}
	close(stop)
	failures.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if served.Load() < 50 {
		t.Errorf("only %d requests were served during 50 deploys", served.Load())
	}
}

// A config change to api makes a new web too, which calls the api with the
// new config.
func TestConfigReachesCallers(t *testing.T) {
	n, _ := countingNode(t)
	b := frontAndBack("web", "api")
	b.Files = replaceFile(b.Files, fiat.File{Path: "api/main.star", Data: []byte("http.route(\"GET\", \"/\", lambda req: config(\"COLOUR\", \"none\"))\n")})
	n.deploy(t, fiat.Production, b)
	res, err := n.d.Configure(t.Context(), fiat.Production, "api", ConfigChange{Set: map[string]string{"COLOUR": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	got := byName(res)
	if s := got["web"]; !s.Changed || s.Why != "uses api" {
		t.Errorf("web after api's config changed: %+v, want a new version that uses the new api", s)
	}
	if s := got["api"]; !s.Changed || s.Why != "config" {
		t.Errorf("api after its config changed: %+v", s)
	}
	n.wantServes(t, "web.localhost", "web via blue from "+got["api"].Version.Short())
}

// A rollout of a change to api makes a candidate web that calls only the
// candidate api, and the current web only the current api: a user gets the
// whole new set or the whole old one.
func TestRolloutCandidatesCallCandidates(t *testing.T) {
	n, _ := countingNode(t)
	current := byName(n.deploy(t, fiat.Production, frontAndBack("web", "api 1")))
	if _, err := n.d.DeployRollout(t.Context(), fiat.Production, frontAndBack("web", "api 2"), RolloutPlan{Percent: 50}); err != nil {
		t.Fatal(err)
	}
	versions, problems := project.Versions(frontAndBack("web", "api 2"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	candidateAPI := versions[slices.IndexFunc(versions, func(v *fiat.Version) bool { return v.Service == "api" })].ID
	seen := map[string]bool{}
	for i := range 200 {
		req := httptest.NewRequest(http.MethodGet, "http://web.localhost/", nil)
		req.Header.Set("X-User-Id", fmt.Sprintf("user-%d", i))
		w := httptest.NewRecorder()
		n.router.ServeHTTP(w, req)
		body := w.Body.String()
		switch body {
		case "web via api 1 from " + current["api"].Version.Short(), "web via api 2 from " + candidateAPI.Short():
			seen[body] = true
		default:
			t.Fatalf("user-%d got %d %q: a web that called an api of the other set", i, w.Code, body)
		}
	}
	if len(seen) != 2 {
		t.Errorf("200 users at 50%% all got %v", seen)
	}
}

// A call to a version this node does not know yet (one started for another
// node's change, calling before this node applied the change that stores
// what it uses) waits for the change rather than fail.
func TestCallWaitsForTheVersionItUses(t *testing.T) {
	n, _ := countingNode(t)
	b := frontAndBack("web", "api 1")
	versions, _ := project.Versions(b)
	api := versions[slices.IndexFunc(versions, func(v *fiat.Version) bool { return v.Service == "api" })].ID
	answered := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		n.d.calls(map[string]fiat.Hash{"api": api}, nil)["api"].ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		answered <- w
	}()
	// Let the call begin first: on a node that does not wait it fails at
	// once. (If it begins later it succeeds either way.)
	time.Sleep(20 * time.Millisecond)
	n.deploy(t, fiat.Production, b)
	if w := <-answered; w.Code != 200 || w.Body.String() != "api 1" {
		t.Errorf("the call made before the api was deployed got %d %q", w.Code, w.Body)
	}
}
