package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fiatdev/fiat"
)

// flagsRouter serves hello, which answers the value of the flags named in
// its request's ?flag= and its Fiat-Flags header, in production and
// staging (whose flags are given).
func flagsRouter(t testing.TB, production, staging []fiat.Flag) *Router {
	t.Helper()
	r := newRouter(nil)
	r.AddVersion(v1, "hello", nil, handlerFunc(func(w http.ResponseWriter, req *http.Request) {
		flags := fiat.FlagsFrom(req.Context())
		for _, name := range req.URL.Query()["flag"] {
			fmt.Fprintf(w, "%s=%v ", name, flags.Flag(name))
		}
		fmt.Fprintf(w, "header=%q spoofed=%q", flags.Header(), req.Header.Get(fiat.FlagsHeader))
	}))
	setFlags(t, r, production, staging)
	return r
}

func setFlags(t testing.TB, r *Router, production, staging []fiat.Flag) {
	t.Helper()
	if err := r.SetEnvs([]fiat.Env{
		{Name: fiat.Production, Services: map[string]fiat.Hash{"hello": v1}, Flags: production},
		{Name: "staging", Services: map[string]fiat.Hash{"hello": v1}, Flags: staging},
	}); err != nil {
		t.Fatal(err)
	}
}

func flag(t testing.TB, name string, p fiat.FlagPatch) fiat.Flag {
	f, err := p.Apply(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func send(h http.Handler, url string, header ...string) string {
	req := httptest.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Body.String()
}

// A flag changed takes effect on the next request, in its env only.
func TestFlagChangeTakesEffectOnNextRequest(t *testing.T) {
	r := flagsRouter(t, []fiat.Flag{flag(t, "beta", fiat.FlagPatch{On: new(false)})}, nil)
	const url = "http://hello.localhost/?flag=beta"
	if got := send(r, url); got != `beta=false header="beta=off" spoofed=""` {
		t.Fatalf("flag off: %s", got)
	}
	setFlags(t, r, []fiat.Flag{flag(t, "beta", fiat.FlagPatch{})}, nil)
	if got := send(r, url); got != `beta=true header="beta=on" spoofed=""` {
		t.Fatalf("flag turned on: %s", got)
	}
	if got := send(r, "http://hello--staging.localhost/?flag=beta"); got != `beta=false header="" spoofed=""` {
		t.Fatalf("staging, which has no flag: %s", got)
	}
	setFlags(t, r, nil, nil)
	if got := send(r, url); got != `beta=false header="" spoofed=""` {
		t.Fatalf("flag deleted: %s", got)
	}
}

// A request cannot say which flags it has: its Fiat-Flags header is
// removed, whatever its case, in envs with flags and without.
func TestSpoofedFlagsHeaderIsRemoved(t *testing.T) {
	r := flagsRouter(t, []fiat.Flag{flag(t, "beta", fiat.FlagPatch{On: new(false)})}, nil)
	for _, url := range []string{"http://hello.localhost/?flag=beta", "http://hello--staging.localhost/?flag=beta", "http://hello-" + v1.Short() + ".localhost/?flag=beta"} {
		for _, name := range []string{"Fiat-Flags", "fiat-flags", "FIAT-FLAGS"} {
			req := httptest.NewRequest("GET", url, nil)
			req.Header[http.CanonicalHeaderKey(name)] = []string{"beta=on"}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if body := w.Body.String(); body[:11] != "beta=false " || !strings.Contains(body, `spoofed=""`) {
				t.Errorf("%s with %s: beta=on: %s", url, name, body)
			}
		}
	}
}

// Users, header matches and percentages reach the router's evaluation,
// with the user key where the env says requests carry it.
func TestFlagRulesThroughTheRouter(t *testing.T) {
	flags := []fiat.Flag{ // sorted by name, as envs have them
		flag(t, "half", fiat.FlagPatch{Percent: new(50.0)}),
		flag(t, "listed", fiat.FlagPatch{Users: &[]string{"ada"}}),
		flag(t, "matched", fiat.FlagPatch{Match: &[]fiat.HeaderMatch{{Header: "X-Beta", Value: "1"}}}),
	}
	r := flagsRouter(t, flags, nil)
	const url = "http://hello.localhost/?flag=listed&flag=matched&flag=half"
	if got := send(r, url, "X-User-Id", "ada", "X-Beta", "1"); !strings.HasPrefix(got, "listed=true matched=true ") {
		t.Errorf("ada with X-Beta: %s", got)
	}
	if got := send(r, url, "X-User-Id", "bob"); !strings.HasPrefix(got, "listed=false matched=false ") {
		t.Errorf("bob: %s", got)
	}
	in := 0
	for i := range 2000 {
		user := fmt.Sprint("user-", i)
		want := fiat.InPercent("half", user, 50)
		if got := send(r, url, "X-User-Id", user); strings.Contains(got[:45], "half=true") != want {
			t.Fatalf("%s: %s, want half=%v", user, got, want)
		}
		if want {
			in++
		}
	}
	if in < 900 || in > 1100 {
		t.Errorf("%d of 2000 users got a flag at 50%%", in)
	}
	// The env's own user key source, here a cookie, decides who is who.
	r.SetEnvs([]fiat.Env{{Name: fiat.Production, Services: map[string]fiat.Hash{"hello": v1}, Flags: flags, UserKey: &fiat.UserKeySource{From: "cookie", Name: "uid"}}})
	if got := send(r, url, "X-User-Id", "ada"); got[:12] != "listed=false" {
		t.Errorf("ada in a header the env does not read: %s", got)
	}
	if got := send(r, url, "Cookie", "uid=ada"); got[:11] != "listed=true" {
		t.Errorf("ada in the env's cookie: %s", got)
	}
}

// A version address belongs to no env: it gets production's flags.
func TestVersionAddressGetsProductionFlags(t *testing.T) {
	r := flagsRouter(t, []fiat.Flag{flag(t, "beta", fiat.FlagPatch{})}, []fiat.Flag{flag(t, "beta", fiat.FlagPatch{On: new(false)})})
	if got := send(r, "http://hello-"+v1.Short()+".localhost/?flag=beta"); got[:10] != "beta=true " {
		t.Errorf("version address: %s", got)
	}
	if got := send(r, "http://hello--staging.localhost/?flag=beta"); got[:11] != "beta=false " {
		t.Errorf("staging: %s", got)
	}
}

// A request's flags are the same however often and from however many
// goroutines they are read.
func TestFlagsOfARequestAreEvaluatedOnce(t *testing.T) {
	set := newFlagSet(fiat.Env{Flags: []fiat.Flag{flag(t, "a", fiat.FlagPatch{Percent: new(50.0)}), flag(t, "b", fiat.FlagPatch{})}})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-User-Id", "ada")
	e := &evaluation{set: set, req: req}
	want := fiat.InPercent("a", "ada", 50)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if e.Flag("a") != want || !e.Flag("b") || e.Flag("c") {
					t.Error("a request's flags changed while it was read")
					return
				}
			}
		})
	}
	wg.Wait()
	// A request's user key changing under it does not change its flags.
	req.Header.Set("X-User-Id", "someone else")
	if e.Flag("a") != want {
		t.Error("a flag read again was evaluated again")
	}
}

// BenchmarkRouteFlag is BenchmarkRoute in an env with flags, its handler
// reading one: what a flag adds to a request.
func BenchmarkRouteFlag(b *testing.B) {
	for _, flags := range []int{0, 1, fiat.MaxFlags} {
		b.Run(fmt.Sprintf("flags=%d", flags), func(b *testing.B) {
			r := newRouter(nil)
			r.AddVersion(v1, "hello", nil, handlerFunc(func(w http.ResponseWriter, req *http.Request) {
				fiat.FlagsFrom(req.Context()).Flag("f00")
			}))
			env := fiat.Env{Name: fiat.Production, Services: map[string]fiat.Hash{"hello": v1}}
			for i := range flags {
				env.Flags = append(env.Flags, flag(b, fmt.Sprintf("f%02d", i), fiat.FlagPatch{Percent: new(25.0), Users: &[]string{"ada", "grace"}}))
			}
			r.SetEnvs([]fiat.Env{env})
			req := httptest.NewRequest("GET", "http://hello.localhost:8080/", nil)
			req.Header.Set("X-User-Id", "user-12345")
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(w, req)
			}
		})
	}
}

// A rollout buckets users by the env's user key source too.
func TestRolloutUsesTheEnvsUserKey(t *testing.T) {
	r := rolloutRouter(t, 0, "ada")
	r.SetEnvs([]fiat.Env{{Name: fiat.Production, Services: map[string]fiat.Hash{"hello": v1}, UserKey: &fiat.UserKeySource{From: "query", Name: "user"},
		Rollouts: []fiat.Rollout{{ID: "r1", Candidates: map[string]fiat.Hash{"hello": v2}, Users: []string{"ada"}}}}})
	if got := send(r, "http://hello.localhost/?user=ada"); got != "candidate" {
		t.Errorf("ada in the env's query parameter: %q", got)
	}
	if got := send(r, "http://hello.localhost/", "X-User-Id", "ada"); got != "current" {
		t.Errorf("ada in the default header, which the env does not read: %q", got)
	}
}
