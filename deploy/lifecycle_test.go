package deploy

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// counting is a runtime that counts, by version, the starts and stops of
// the versions it starts.
type counting struct {
	fiat.Runtime
	mu            sync.Mutex
	starts, stops map[fiat.Hash]int
}

func (c *counting) Start(ctx context.Context, id fiat.Hash, version func(context.Context) (*fiat.Version, error), uses map[string]http.Handler) (fiat.Running, error) {
	running, err := c.Runtime.Start(ctx, id, version, uses)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts[id]++
	return &countedStop{Running: running, stopped: func() { c.mu.Lock(); c.stops[id]++; c.mu.Unlock() }}, nil
}

func (c *counting) count(id fiat.Hash) (starts, stops int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts[id], c.stops[id]
}

type countedStop struct {
	fiat.Running
	stopped func()
}

func (c *countedStop) Stop(ctx context.Context) error { c.stopped(); return c.Running.Stop(ctx) }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

// TestReplacedVersionsStopAndRollbacksStartFirst deploys two versions: the
// first stops once the second serves; a rollback to it starts it before
// it returns, not at its first request, and stops the second.
func TestReplacedVersionsStopAndRollbacksStartFirst(t *testing.T) {
	n, rt := countingNode(t)
	v1 := n.deploy(t, fiat.Production, bundle(map[string]string{"app": "one"})).Services[0].Version
	v2 := n.deploy(t, fiat.Production, bundle(map[string]string{"app": "two"})).Services[0].Version
	waitUntil(t, "the replaced version to stop", func() bool { _, stops := rt.count(v1); return stops == 1 })
	if _, err := n.d.Rollback(t.Context(), fiat.Production, "app", ""); err != nil {
		t.Fatal(err)
	}
	if starts, _ := rt.count(v1); starts != 2 || !n.router.IsRunning(v1) {
		t.Errorf("after the rollback returned, version one started %d times and runs: %v; want it started again before", starts, n.router.IsRunning(v1))
	}
	n.wantServes(t, "app.localhost", "one")
	waitUntil(t, "the version rolled back from to stop", func() bool { _, stops := rt.count(v2); return stops == 1 })
	if starts, _ := rt.count(v1); starts != 2 {
		t.Errorf("version one started %d times, want 2: the request after the rollback started it again", starts)
	}
}
