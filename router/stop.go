package router

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fiatdev/fiat"
)

// Versions that nothing uses are stopped here, the one place that knows
// who uses a running version: every env's table, the versions they call,
// the versions running versions call, and every request. A stopped version
// keeps its addresses: its next request starts it again.

// Retire stops the versions ids that nothing uses any more, once the
// requests they are serving are answered: a change switched envs away
// from them. Callers stop before the versions they call, so a request
// that crosses several services finishes everywhere.
func (r *Router) Retire(ids ...fiat.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	leaving := map[*version]bool{}
	for _, id := range ids {
		if v := r.versions[id]; v != nil {
			leaving[v] = true
		}
	}
	used := r.used(leaving)
	var stopping []*version
	for v := range leaving {
		if !used[v] {
			stopping = append(stopping, v)
		}
	}
	if len(stopping) > 0 {
		go r.stopInOrder(stopping)
	}
}

// stopInOrder stops versions in waves: each wave those that no version
// still to stop calls.
func (r *Router) stopInOrder(versions []*version) {
	for len(versions) > 0 {
		var wave, rest []*version
		for _, v := range versions {
			if slices.ContainsFunc(versions, func(caller *version) bool { return slices.Contains(caller.uses, v.id) }) {
				rest = append(rest, v)
			} else {
				wave = append(wave, v)
			}
		}
		if len(wave) == 0 { // only a cycle, which uses never form
			wave, rest = rest, nil
		}
		var stopped sync.WaitGroup
		for _, v := range wave {
			stopped.Go(func() { r.stop(v) })
		}
		stopped.Wait()
		versions = rest
	}
}

// StopIdle stops the running versions that nothing uses and that no
// request has used for idle.
func (r *Router) StopIdle(idle time.Duration) {
	before := time.Now().Add(-idle).UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	used := r.used(nil)
	for _, v := range r.versions {
		if v.running.Load() != nil && !used[v] && v.lastUsed.Load() < before {
			go r.stop(v)
		}
	}
}

// makeRoom stops the version nothing uses that had a request the longest
// ago, if starting v, which nothing uses either, would run more than
// MaxUnused of them: requests to old versions' addresses, however many a
// client knows, start a bounded number of them.
func (r *Router) makeRoom(v *version) {
	r.mu.Lock()
	defer r.mu.Unlock()
	used := r.used(nil)
	if used[v] {
		return
	}
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

// used is the set of versions that envs serve, that running versions
// other than those leaving call, and that those call in turn. r.mu is
// held.
func (r *Router) used(leaving map[*version]bool) map[*version]bool {
	used := map[*version]bool{}
	var use func(v *version)
	use = func(v *version) {
		if v == nil || used[v] {
			return
		}
		used[v] = true
		for _, id := range v.uses {
			use(r.versions[id])
		}
	}
	for _, rt := range r.envs.Load().services {
		use(rt.current)
		use(rt.candidate)
	}
	for _, v := range r.versions {
		if v.running.Load() != nil && !leaving[v] {
			for _, id := range v.uses {
				use(r.versions[id])
			}
		}
	}
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
