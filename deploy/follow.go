package deploy

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/router"
	"github.com/fiatdev/fiat/store"
)

// follower is the one writer of a node's router: it applies the store's
// history of changes, in order, whichever node made them. A change this
// node made is handed to it at once; every other change it reads from the
// store when the store says there is one.
type follower struct {
	store   store.Store
	router  *router.Router
	metrics *metrics.Metrics
	logger  *slog.Logger

	mu sync.Mutex
	// position is that of the last change applied.
	position int64
	// applied is closed, and replaced, whenever position moves.
	applied chan struct{}
	// err is why the last read of the history failed, nil once one works.
	err error
	// behind is true while the last read of the history did not reach
	// its end.
	behind bool
	// started are versions validated on this node, by id, to serve with
	// the handlers that validation started once their change is applied.
	started map[fiat.Hash]fiat.Running
	// starting are the versions being started for changes, by this node's
	// commit or by the follower, closed once started: one start serves
	// both.
	starting map[fiat.Hash]chan struct{}
	// know is told the kind of every version applied, and load starts a
	// version another node stored.
	know func(store.VersionInfo)
	load func(ctx context.Context, id fiat.Hash) (fiat.Running, error)
	// ended, if set, hears of every change that ended a rollout.
	ended func(store.Record)
}

// batch is how many changes the follower reads at once.
const batch = 256

func newFollower(s store.Store, r *router.Router, m *metrics.Metrics, logger *slog.Logger, position int64,
	know func(store.VersionInfo), load func(context.Context, fiat.Hash) (fiat.Running, error)) *follower {
	return &follower{store: s, router: r, metrics: m, logger: logger, position: position, applied: make(chan struct{}), started: map[fiat.Hash]fiat.Running{}, starting: map[fiat.Hash]chan struct{}{}, know: know, load: load}
}

// run follows the history until ctx ends. A failed read is retried with
// backoff; meanwhile the router serves what it has.
func (f *follower) run(ctx context.Context) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		f.mu.Lock()
		position := f.position
		f.mu.Unlock()
		recs, err := f.store.Changes(ctx, position, batch)
		prepared := f.prepare(ctx, recs)
		f.mu.Lock()
		if err != nil && ctx.Err() == nil && f.err == nil {
			f.logger.Error("cannot read the store's changes: serving what this node has, and trying again", "position", position, "err", err)
		}
		f.err = err
		f.behind = len(recs) == batch
		for _, rec := range recs {
			if rec.ID > f.position { // this node's own changes may be applied already
				f.apply(rec, prepared)
			}
		}
		f.mu.Unlock()
		// Versions started for changes this node had applied meanwhile.
		stopAll(prepared)
		switch {
		case err != nil:
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			sleep(ctx, backoff)
		case len(recs) < batch:
			backoff = 0
			f.store.Wait(ctx, f.Position())
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// prepare starts the versions that recs leave envs pointing at, unless
// they run on this node already, so that no request waits for one to
// start (a process's instances, after a rollback to a stopped version), or
// fails to if the store is unreachable by then. Versions that a later
// change in recs replaces, and any that fails to start here, start on
// their first request instead.
func (f *follower) prepare(ctx context.Context, recs []store.Record) map[fiat.Hash]fiat.Running {
	after := map[string]fiat.Env{}
	for _, rec := range recs {
		switch {
		case rec.Deleted:
			delete(after, rec.Env)
		case rec.After.Name != "":
			after[rec.Env] = rec.After
		}
	}
	served := map[fiat.Hash]bool{}
	for _, env := range after {
		for id := range env.Routed() {
			served[id] = true
		}
	}
	stored := map[fiat.Hash]store.VersionInfo{}
	for _, rec := range recs {
		for _, v := range rec.Versions {
			stored[v.ID] = v
		}
	}
	prepared := map[fiat.Hash]fiat.Running{}
	for id := range served {
		if v, ok := stored[id]; ok {
			f.know(v)
		}
		if running := f.startServed(ctx, id); running != nil {
			prepared[id] = running
		}
	}
	return prepared
}

// startServed starts version id, which a change serves, unless it runs or
// is being started already (then it waits for that start). A version the
// router knows is handed to it; one it does not know yet is returned, to
// serve once its change is applied.
func (f *follower) startServed(ctx context.Context, id fiat.Hash) fiat.Running {
	f.mu.Lock()
	_, started := f.started[id]
	if started || f.router.IsRunning(id) {
		f.mu.Unlock()
		return nil
	}
	if done, ok := f.starting[id]; ok {
		f.mu.Unlock()
		<-done
		return nil
	}
	done := make(chan struct{})
	f.starting[id] = done
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.starting, id)
		f.mu.Unlock()
		close(done)
	}()
	running, err := f.load(ctx, id)
	if err != nil {
		f.logger.Warn("cannot start a version a change serves: it will start on its first request", "version", id.Short(), "err", err)
		return nil
	}
	if f.router.Knows(id) {
		f.router.Started(id, running)
		return nil
	}
	return running
}

// offer hands the follower a change this node committed. If it follows
// the last change applied, it is applied now, without reading the store.
func (f *follower) offer(rec store.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rec.Follows == f.position {
		f.apply(rec, nil)
	}
}

// start remembers the handlers of versions validated on this node, for
// when their change is applied; forget drops those of a change that failed.
func (f *follower) start(ready map[fiat.Hash]fiat.Running) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, h := range ready {
		f.started[id] = h
	}
}

func (f *follower) forget(ready map[fiat.Hash]fiat.Running) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range ready {
		delete(f.started, id)
	}
}

// apply makes the router serve rec, starting its versions with the
// handlers started on this node, or else prepared. f.mu is held.
func (f *follower) apply(rec store.Record, prepared map[fiat.Hash]fiat.Running) {
	before, _ := f.router.Env(rec.Env)
	for _, v := range rec.Versions {
		f.know(v)
		h, ok := f.started[v.ID]
		if !ok {
			h = prepared[v.ID]
		}
		f.router.AddVersion(v.ID, v.Service, v.Uses, h)
		delete(f.started, v.ID)
		delete(prepared, v.ID)
	}
	for id := range rec.After.Routed() {
		if running, ok := prepared[id]; ok {
			f.router.Started(id, running)
			delete(prepared, id)
		}
	}
	var err error
	switch {
	case rec.Deleted:
		err = f.router.SetEnvs(nil, rec.Env)
	case rec.After.Name != "":
		err = f.router.SetEnvs([]fiat.Env{rec.After})
	}
	if err != nil {
		// Every version a change uses was stored by it or before it, so
		// the router has it: this is a bug, and the store has the truth.
		f.logger.Error("the router refused a change: reloading the store's state", "position", rec.ID, "env", rec.Env, "err", err)
		if err := f.reload(); err != nil {
			f.logger.Error("cannot reload the store's state: serving what this node has", "err", err)
		}
	}
	f.scale(rec.After)
	// What the env used before and no env uses now stops once its
	// requests in flight are answered.
	f.router.Retire(slices.Collect(before.Routed())...)
	if rec.Ended != nil && f.ended != nil {
		f.ended(rec)
	}
	f.position = rec.ID
	close(f.applied)
	f.applied = make(chan struct{})
	f.metrics.ChangeApplied(rec.ID, time.Since(rec.At))
}

// scale runs as many instances of env's services as it says, where it
// says.
func (f *follower) scale(env fiat.Env) {
	for service, n := range env.Instances {
		if scaler, ok := f.router.Running(env.Name, service).(fiat.Scaler); ok {
			go func() {
				if err := scaler.Scale(context.Background(), n); err != nil {
					f.logger.Error("cannot scale a service", "env", env.Name, "service", service, "instances", n, "err", err)
				}
			}()
		}
	}
}

// reload makes the router serve the store's state. f.mu is held.
func (f *follower) reload() error {
	state, err := f.store.State(context.Background())
	if err != nil {
		return err
	}
	for _, v := range state.Versions {
		f.know(v)
		f.router.AddVersion(v.ID, v.Service, v.Uses, f.started[v.ID])
	}
	return f.router.SetEnvs(state.Envs)
}

// waitFor returns once the change at position is applied, or when ctx ends.
func (f *follower) waitFor(ctx context.Context, position int64) error {
	for {
		f.mu.Lock()
		done, applied := f.position >= position, f.applied
		f.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-applied:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// nextApplied is closed when the follower next applies a change.
func (f *follower) nextApplied() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// Position is that of the last change the router serves.
func (f *follower) Position() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.position
}

// Health says where the node is in the store's history.
type Health struct {
	Position int64 `json:"position"`
	// CaughtUp is false while the node cannot read the store's history,
	// or has not read it to its end: it serves what it has, which may be
	// behind.
	CaughtUp bool   `json:"caught_up"`
	Error    string `json:"error,omitempty"`
}

func (f *follower) health() Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := Health{Position: f.position, CaughtUp: f.err == nil && !f.behind}
	if f.err != nil {
		h.Error = f.err.Error()
	}
	return h
}
