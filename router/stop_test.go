package router

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
)

// waitUntil polls cond for up to ten seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

// TestRetireStopsWhatNoEnvUses switches an env from v1 to v2 while a
// request to v1 is in flight: v1 is stopped once that request is answered,
// not before, and starts again at its version address; a version another
// env still uses is not stopped.
func TestRetireStopsWhatNoEnvUses(t *testing.T) {
	var starts atomic.Int32
	restarted := says("v1 again")
	r := newRouter(func(ctx context.Context, id fiat.Hash) (fiat.Running, error) {
		starts.Add(1)
		return restarted, nil
	})
	release := make(chan struct{})
	inHandler := make(chan struct{})
	slow := &stopCounter{Running: handlerFunc(func(w http.ResponseWriter, req *http.Request) {
		close(inHandler)
		<-release
		w.Write([]byte("slow v1"))
	})}
	one, two := says("two"), says("three")
	r.AddVersion(v1, "hello", nil, slow)
	r.AddVersion(v2, "hello", nil, one)
	r.AddVersion(v3, "hello", nil, two)
	if err := r.SetEnvs([]fiat.Env{
		{Name: "production", Services: map[string]fiat.Hash{"hello": v1}},
		{Name: "staging", Services: map[string]fiat.Hash{"hello": v3}},
	}); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string)
	go func() {
		answered <- get(t, r, "hello.localhost").Body.String()
	}()
	<-inHandler
	if err := r.SetEnvs([]fiat.Env{
		{Name: "production", Services: map[string]fiat.Hash{"hello": v2}},
		{Name: "staging", Services: map[string]fiat.Hash{"hello": v2}},
	}); err != nil {
		t.Fatal(err)
	}
	r.Retire(v1, v3)
	time.Sleep(3 * stopPoll)
	if slow.stops.Load() != 0 {
		t.Fatal("v1 was stopped with a request in flight")
	}
	close(release)
	if body := <-answered; body != "slow v1" {
		t.Errorf("the request in flight got %q", body)
	}
	waitUntil(t, "v1 to stop", func() bool { return slow.stops.Load() == 1 })
	waitUntil(t, "v3 to stop", func() bool { return two.stops.Load() == 1 })
	if one.stops.Load() != 0 {
		t.Error("v2, which envs use, was stopped")
	}
	if body := get(t, r, "hello-"+v1.Short()+".localhost").Body.String(); body != "v1 again" || starts.Load() != 1 {
		t.Errorf("v1's address after it stopped: %q after %d starts, want it started again", body, starts.Load())
	}
}

// TestStopIdle stops a running version no env uses once no request has
// come for the idle time, and leaves alone one requested since.
func TestStopIdle(t *testing.T) {
	r := newRouter(nil)
	idle, busy, serving := says("idle"), says("busy"), says("serving")
	r.AddVersion(v1, "hello", nil, idle)
	r.AddVersion(v2, "hello", nil, busy)
	r.AddVersion(v3, "hello", nil, serving)
	if err := r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v3}}}); err != nil {
		t.Fatal(err)
	}
	get(t, r, "hello-"+v1.Short()+".localhost")
	time.Sleep(20 * time.Millisecond)
	get(t, r, "hello-"+v2.Short()+".localhost")
	r.StopIdle(10 * time.Millisecond)
	waitUntil(t, "the idle version to stop", func() bool { return idle.stops.Load() == 1 })
	time.Sleep(3 * stopPoll)
	if busy.stops.Load() != 0 || serving.stops.Load() != 0 {
		t.Errorf("stopped: busy %d times, serving %d times; want neither", busy.stops.Load(), serving.stops.Load())
	}
}

type stopCounter struct {
	fiat.Running
	stops atomic.Int32
}

func (s *stopCounter) Stop(ctx context.Context) error { s.stops.Add(1); return nil }

// TestRequestsStartBoundedOldVersions requests the addresses of more old
// versions than may run at once: the one requested longest ago stops for
// each new one, and a version an env uses is not counted or stopped.
func TestRequestsStartBoundedOldVersions(t *testing.T) {
	started := map[fiat.Hash]*saying{}
	var mu sync.Mutex
	r := New(Config{Addresses: fiat.Addresses{Domain: "localhost"}, Metrics: metrics.New(), MaxUnused: 2, Logger: slog.New(slog.DiscardHandler),
		Load: func(ctx context.Context, id fiat.Hash) (fiat.Running, error) {
			mu.Lock()
			defer mu.Unlock()
			s := says(string(id[:1]))
			started[id] = s
			return s, nil
		}})
	old := []fiat.Hash{v1, v2, v3}
	for _, id := range old {
		r.AddVersion(id, "hello", nil, nil)
	}
	current := says("current")
	r.AddVersion(v4, "hello", nil, current)
	if err := r.SetEnvs([]fiat.Env{{Name: fiat.Production, Services: map[string]fiat.Hash{"hello": v4}}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range old {
		if w := get(t, r, "hello-"+id.Short()+".localhost"); w.Code != 200 {
			t.Fatalf("%s: %d", id.Short(), w.Code)
		}
		time.Sleep(2 * time.Millisecond) // distinct last requests
	}
	mu.Lock()
	first := started[v1]
	mu.Unlock()
	waitUntil(t, "the version requested longest ago to stop", func() bool { return first.stops.Load() == 1 })
	time.Sleep(3 * stopPoll)
	mu.Lock()
	defer mu.Unlock()
	if started[v2].stops.Load() != 0 || started[v3].stops.Load() != 0 || current.stops.Load() != 0 {
		t.Errorf("stopped: v2 %d, v3 %d, the env's %d times; want none", started[v2].stops.Load(), started[v3].stops.Load(), current.stops.Load())
	}
}
