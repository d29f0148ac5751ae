package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// rolloutRouter serves hello at v1 in production, and rolls out v2 to
// percent of its users and to users.
func rolloutRouter(t testing.TB, percent float64, users ...string) *Router {
	r := newRouter(nil)
	r.AddVersion(v1, "hello", nil, says("current"))
	r.AddVersion(v2, "hello", nil, says("candidate"))
	setRollout(t, r, percent, users...)
	return r
}

func setRollout(t testing.TB, r *Router, percent float64, users ...string) {
	t.Helper()
	err := r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v1},
		Rollouts: []fiat.Rollout{{ID: "r1", Candidates: map[string]fiat.Hash{"hello": v2}, Percent: percent, Users: users}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// getAs requests host as the user with key user ("" for none), and says
// what answered.
func getAs(t *testing.T, h http.Handler, host, user string) string {
	t.Helper()
	req := httptest.NewRequest("GET", "http://"+host+"/", nil)
	if user != "" {
		req.Header.Set("X-User-Id", user)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		return fmt.Sprint(w.Code)
	}
	return w.Body.String()
}

// TestRolloutIsSticky checks that a rollout's percentage is a share of
// users, within a tolerance over many of them, that each user stays on
// the version they got, and that raising the percentage only adds users.
func TestRolloutIsSticky(t *testing.T) {
	const users = 20000
	r := rolloutRouter(t, 5)
	in := map[string]bool{}
	for i := range users {
		user := fmt.Sprintf("user-%d", i)
		got := getAs(t, r, "hello.localhost", user)
		if again := getAs(t, r, "hello.localhost", user); again != got {
			t.Fatalf("user %s got %s, then %s", user, got, again)
		}
		in[user] = got == "candidate"
	}
	wantShare(t, "5%", count(in), users, 0.05)
	setRollout(t, r, 25)
	now := map[string]bool{}
	for i := range users {
		user := fmt.Sprintf("user-%d", i)
		now[user] = getAs(t, r, "hello.localhost", user) == "candidate"
		if in[user] && !now[user] {
			t.Fatalf("user %s had the candidate at 5%% and lost it at 25%%", user)
		}
	}
	wantShare(t, "25%", count(now), users, 0.25)
	setRollout(t, r, 100)
	if got := getAs(t, r, "hello.localhost", "anyone"); got != "candidate" {
		t.Errorf("at 100%%, a user got %s", got)
	}
	setRollout(t, r, 0)
	if got := getAs(t, r, "hello.localhost", "user-1"); got != "current" {
		t.Errorf("at 0%%, a user got %s", got)
	}
}

func count(in map[string]bool) int {
	n := 0
	for _, yes := range in {
		if yes {
			n++
		}
	}
	return n
}

// wantShare checks that n of total is share, give or take a point.
func wantShare(t *testing.T, what string, n, total int, share float64) {
	t.Helper()
	if got := float64(n) / float64(total); got < share-0.01 || got > share+0.01 {
		t.Errorf("%s: %.2f%% of users got the candidate, want %.0f%% give or take 1", what, 100*got, 100*share)
	}
}

// TestRolloutUsers checks that listed users get the candidate whatever
// the percentage, and the others do not.
func TestRolloutUsers(t *testing.T) {
	r := rolloutRouter(t, 0, "ada", "grace")
	for user, want := range map[string]string{"ada": "candidate", "grace": "candidate", "alan": "current", "Ada": "current", "": "current"} {
		if got := getAs(t, r, "hello.localhost", user); got != want {
			t.Errorf("user %q got %s, want %s", user, got, want)
		}
	}
	// The version address and other envs are not split.
	if got := getAs(t, r, "hello-"+v1.Short()+".localhost", "ada"); got != "current" {
		t.Errorf("ada at v1's address got %s", got)
	}
}

// TestRolloutWithoutUserKey checks that requests without a user key get
// the candidate at the rollout's rate, each independently.
func TestRolloutWithoutUserKey(t *testing.T) {
	const requests = 20000
	r := rolloutRouter(t, 30)
	n := 0
	for range requests {
		if getAs(t, r, "hello.localhost", "") == "candidate" {
			n++
		}
	}
	wantShare(t, "30% without a user key", n, requests, 0.30)
}

// TestRolloutTogether checks that the services of one rollout split their
// users alike: a user gets every candidate or none, and a service the env
// only has in the rollout answers nobody else.
func TestRolloutTogether(t *testing.T) {
	r := newRouter(nil)
	r.AddVersion(v1, "api", nil, says("api-current"))
	r.AddVersion(v2, "api", nil, says("api-candidate"))
	r.AddVersion(v3, "web", nil, says("web-current"))
	r.AddVersion(v4, "web", nil, says("web-candidate"))
	r.AddVersion(fiat.Hash("e"+string(v1[1:])), "db", nil, says("db-candidate"))
	err := r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"api": v1, "web": v3},
		Rollouts: []fiat.Rollout{{ID: "r1", Percent: 40, Candidates: map[string]fiat.Hash{"api": v2, "web": v4, "db": fiat.Hash("e" + string(v1[1:]))}}}}})
	if err != nil {
		t.Fatal(err)
	}
	both := 0
	for i := range 2000 {
		user := fmt.Sprintf("u%d", i)
		api, web, db := getAs(t, r, "api.localhost", user), getAs(t, r, "web.localhost", user), getAs(t, r, "db.localhost", user)
		switch {
		case api == "api-candidate" && web == "web-candidate" && db == "db-candidate":
			both++
		case api == "api-current" && web == "web-current" && db == "404":
		default:
			t.Fatalf("user %s got %s, %s and %s: a mix", user, api, web, db)
		}
	}
	wantShare(t, "40% of two services", both, 2000, 0.40)
}

// TestCandidatesCountAsUsed checks that a candidate keeps running while
// its rollout lasts, idle or not, and is stopped once the rollout ends
// without it.
func TestCandidatesCountAsUsed(t *testing.T) {
	r := newRouter(nil)
	current, candidate := says("current"), says("candidate")
	r.AddVersion(v1, "hello", nil, current)
	r.AddVersion(v2, "hello", nil, candidate)
	setRollout(t, r, 10)
	r.Retire(v2)
	r.StopIdle(0)
	time.Sleep(50 * time.Millisecond)
	if candidate.stops.Load() != 0 || !r.IsRunning(v2) {
		t.Fatalf("a candidate was stopped while its rollout lasts")
	}
	r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v1}}})
	r.Retire(v2)
	waitUntil(t, "the aborted candidate stops", func() bool { return candidate.stops.Load() == 1 })
	if current.stops.Load() != 0 {
		t.Errorf("the current version stopped")
	}
}

// BenchmarkRouteRollout is BenchmarkRoute through a rollout's split, for a
// user who is listed, one who is bucketed, and a request without a key.
func BenchmarkRouteRollout(b *testing.B) {
	for _, user := range []string{"listed", "user-12345", ""} {
		b.Run(fmt.Sprintf("user=%q", user), func(b *testing.B) {
			r := newRouter(nil)
			nothing := handlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			r.AddVersion(v1, "hello", nil, nothing)
			r.AddVersion(v2, "hello", nil, nothing)
			setRollout(b, r, 25, "listed", "other")
			req := httptest.NewRequest("GET", "http://hello.localhost:8080/", nil)
			if user != "" {
				req.Header.Set("X-User-Id", user)
			}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(w, req)
			}
		})
	}
}
