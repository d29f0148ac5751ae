package router

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// orderedStop records the order versions stop in.
type orderedStop struct {
	fiat.Running
	name  string
	mu    *sync.Mutex
	order *[]string
}

func (s *orderedStop) Stop(ctx context.Context) error {
	s.mu.Lock()
	*s.order = append(*s.order, s.name)
	s.mu.Unlock()
	return nil
}

// A set of versions retired together stops callers first: a request in
// flight on the old web, which calls the old api, finishes, and the old
// api stops only after the old web has.
func TestRetireStopsCallersFirst(t *testing.T) {
	r := newRouter(nil)
	var mu sync.Mutex
	var order []string
	release := make(chan struct{})
	inHandler := make(chan struct{})
	oldAPI := &orderedStop{Running: says("api one"), name: "api", mu: &mu, order: &order}
	oldWeb := &orderedStop{Running: handlerFunc(func(w http.ResponseWriter, req *http.Request) {
		close(inHandler)
		<-release
		// The request crosses to the api it was deployed with.
		r.Version("api", v1).ServeHTTP(w, req)
	}), name: "web", mu: &mu, order: &order}
	r.AddVersion(v1, "api", nil, oldAPI)
	r.AddVersion(v2, "web", map[string]fiat.Hash{"api": v1}, oldWeb)
	r.AddVersion(v3, "api", nil, says("api two"))
	r.AddVersion(v4, "web", map[string]fiat.Hash{"api": v3}, says("web two"))
	if err := r.SetEnvs([]fiat.Env{{Name: fiat.Production, Services: map[string]fiat.Hash{"web": v2, "api": v1}}}); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string)
	go func() { answered <- get(t, r, "web.localhost").Body.String() }()
	<-inHandler
	if err := r.SetEnvs([]fiat.Env{{Name: fiat.Production, Services: map[string]fiat.Hash{"web": v4, "api": v3}}}); err != nil {
		t.Fatal(err)
	}
	r.Retire(v1, v2)
	time.Sleep(3 * stopPoll)
	mu.Lock()
	stoppedEarly := len(order)
	mu.Unlock()
	if stoppedEarly != 0 {
		t.Fatalf("%v stopped while a request crossing them was in flight", order)
	}
	close(release)
	if body := <-answered; body != "api one" {
		t.Errorf("the request in flight got %q from the api, want the old api's answer", body)
	}
	waitUntil(t, "both to stop", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 2 })
	if order[0] != "web" || order[1] != "api" {
		t.Errorf("stopped in the order %v, want web then api", order)
	}
}

// A version that a served version uses is in use, whether or not an env
// serves it: it is neither retired nor stopped when idle.
func TestUsedVersionsKeepRunning(t *testing.T) {
	r := newRouter(nil)
	usedAPI := says("api used by web")
	r.AddVersion(v1, "api", nil, usedAPI)
	r.AddVersion(v2, "api", nil, says("api served"))
	r.AddVersion(v3, "web", map[string]fiat.Hash{"api": v1}, says("web"))
	if err := r.SetEnvs([]fiat.Env{{Name: fiat.Production, Services: map[string]fiat.Hash{"web": v3, "api": v2}}}); err != nil {
		t.Fatal(err)
	}
	r.Retire(v1)
	r.StopIdle(0)
	time.Sleep(3 * stopPoll)
	if usedAPI.stops.Load() != 0 {
		t.Error("the api version web uses was stopped")
	}
}
