package router

import (
	"context"
	"time"

	"github.com/fiatdev/fiat"
)

// Versions that no env uses are stopped here, the one place that knows
// who uses a running version: every env's table and every request. A
// stopped version keeps its addresses: its next request starts it again.

// Retire stops the versions ids that no env uses any more, once the
// requests they are serving are answered: a change switched envs away from
// them.
func (r *Router) Retire(ids ...fiat.Hash) {
	used := r.used()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if v := r.versions[id]; v != nil && !used[v] {
			go r.stop(v)
		}
	}
}

// StopIdle stops the running versions that no env uses and that no
// request has used for idle.
func (r *Router) StopIdle(idle time.Duration) {
	used := r.used()
	before := time.Now().Add(-idle).UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.versions {
		if v.running.Load() != nil && !used[v] && v.lastUsed.Load() < before {
			go r.stop(v)
		}
	}
}

// makeRoom stops the version no env uses that had a request the longest
// ago, if starting v, which no env uses either, would run more than
// MaxUnused of them: requests to old versions' addresses, however many a
// client knows, start a bounded number of them.
func (r *Router) makeRoom(v *version) {
	used := r.used()
	if used[v] {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest *version
	running := 0
	for _, other := range r.versions {
		if other == v || used[other] || other.running.Load() == nil {
			continue
		}
		running++
		if oldest == nil || other.lastUsed.Load() < oldest.lastUsed.Load() {
			oldest = other
		}
	}
	if running >= r.cfg.MaxUnused {
		go r.stop(oldest)
	}
}

// used is the set of versions some env uses now.
func (r *Router) used() map[*version]bool {
	used := map[*version]bool{}
	for _, rt := range r.envs.Load().services {
		used[rt.current] = true
		used[rt.candidate] = true
	}
	delete(used, nil)
	return used
}

// stopPoll is how often a version being stopped checks that its requests
// are answered.
const stopPoll = 10 * time.Millisecond

// maxStopWait bounds how long a version being stopped waits for its
// requests: longer than any response may take to write.
const maxStopWait = 2 * time.Minute

// stop takes v's running version out of the router, waits for v's
// requests in flight, and stops it. A request that comes meanwhile starts
// v again.
func (r *Router) stop(v *version) {
	v.start.Lock()
	old := v.running.Swap(nil)
	v.start.Unlock()
	if old == nil {
		return
	}
	// A request counts itself before it looks for the running version, so
	// one that found the old one is counted here. Requests that keep
	// coming to its version address (each starting it again) do not keep
	// the old one up for longer than a response may take.
	for deadline := time.Now().Add(maxStopWait); v.inFlight.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(stopPoll)
	}
	if err := old.Stop(context.Background()); err != nil {
		r.cfg.Logger.Warn("a version did not stop cleanly", "version", v.id.Short(), "service", v.service, "err", err)
	}
}
