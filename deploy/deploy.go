// Package deploy changes what envs serve: it validates a project's new
// versions, stores them, and switches envs in one transaction, then swaps the
// router's tables. Deploy, rollback, promote, fork and delete all pass
// through here, so every change is validated, durable and atomic the same way.
package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/router"
	"github.com/fiatdev/fiat/store"
)

// ErrInvalid marks a request that cannot be carried out as asked (a bad
// name, a missing env); the message says what to do.
var ErrInvalid = errors.New("invalid request")

// Deployer carries out changes on one node. A change is validated first,
// outside any lock, then applied in one short transaction that checks the
// env still holds what validation saw: no change ever waits on another's
// tests.
type Deployer struct {
	store     store.Store
	router    *router.Router
	runtimes  map[fiat.Kind]fiat.Runtime
	metrics   *metrics.Metrics
	logger    *slog.Logger
	addresses fiat.Addresses
	// follower applies every change to the router, this node's and other
	// nodes' alike, in the order they commit.
	follower  *follower
	stop      context.CancelFunc
	following sync.WaitGroup
	// known is every version the router knows, without files: its kind
	// says which runtime starts it, a deploy carries its vars over, and
	// its uses are what it calls.
	known struct {
		sync.Mutex
		of map[fiat.Hash]store.VersionInfo
	}
	rollouts rollouts
}

// Config is what a Deployer needs.
type Config struct {
	Store store.Store
	// Runtimes run the versions of each kind of service.
	Runtimes  map[fiat.Kind]fiat.Runtime
	Metrics   *metrics.Metrics
	Logger    *slog.Logger
	Addresses fiat.Addresses
	// MaxBody is the largest request body a handler may read.
	MaxBody int64
	// StopIdle is how long a version that no env uses runs after its last
	// request; 0 means DefaultStopIdle.
	StopIdle time.Duration
}

// DefaultStopIdle is how long a version no env uses runs after its last
// request.
const DefaultStopIdle = 5 * time.Minute

// New returns a Deployer and the Router it switches, loaded with the
// store's state and following its changes until Close. The versions
// stored before New start lazily, on their first request; those of later
// changes, before the change is served.
func New(ctx context.Context, cfg Config) (*Deployer, *router.Router, error) {
	d := &Deployer{
		store:     cfg.Store,
		runtimes:  cfg.Runtimes,
		metrics:   cfg.Metrics,
		logger:    cfg.Logger,
		addresses: cfg.Addresses,
	}
	d.known.of = map[fiat.Hash]store.VersionInfo{}
	d.router = router.New(router.Config{Addresses: cfg.Addresses, Load: d.load, Metrics: cfg.Metrics, MaxBody: cfg.MaxBody, Logger: cfg.Logger})
	state, err := cfg.Store.State(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range state.Versions {
		d.know(v)
		d.router.AddVersion(v.ID, v.Service, v.Uses, nil)
	}
	if err := d.router.SetEnvs(state.Envs); err != nil {
		return nil, nil, err
	}
	d.follower = newFollower(cfg.Store, d.router, cfg.Metrics, cfg.Logger, state.Position, d.know, d.load)
	d.follower.ended = d.rollouts.sawEnd
	cfg.Metrics.ChangeApplied(state.Position, 0)
	following, stop := context.WithCancel(context.Background())
	d.stop = stop
	d.following.Go(func() { d.follower.run(following) })
	d.following.Go(func() { d.stopIdle(following, cmp.Or(cfg.StopIdle, DefaultStopIdle)) })
	d.following.Go(func() { d.driveRollouts(following) })
	return d, d.router, nil
}

// Health says whether the node follows the store's changes.
func (d *Deployer) Health() Health {
	return d.follower.health()
}

// stopIdle stops, until ctx ends, the versions no env uses once they have
// had no request for idle.
func (d *Deployer) stopIdle(ctx context.Context, idle time.Duration) {
	every(ctx, max(min(idle/4, time.Minute), time.Millisecond), func() { d.router.StopIdle(idle) })
}

// every calls f every period until ctx ends.
func every(ctx context.Context, period time.Duration, f func()) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

// know remembers version v, which the router is told of.
func (d *Deployer) know(v store.VersionInfo) {
	v.Envs = nil
	d.known.Lock()
	defer d.known.Unlock()
	d.known.of[v.ID] = v
}

// version returns what is known of version id, if the router knows it.
func (d *Deployer) version(id fiat.Hash) (store.VersionInfo, bool) {
	d.known.Lock()
	defer d.known.Unlock()
	v, ok := d.known.of[id]
	return v, ok
}

// config returns the config of version id, if the router knows it.
func (d *Deployer) config(id fiat.Hash) (fiat.Config, bool) {
	v, ok := d.version(id)
	return v.Config, ok
}

// load starts a version that is stored but not running, with its kind's
// runtime, which reads it from the store only if it kept nothing of it.
func (d *Deployer) load(ctx context.Context, id fiat.Hash) (fiat.Running, error) {
	v, ok := d.version(id)
	if !ok {
		return nil, fmt.Errorf("version %s: %w", id, store.ErrNotFound)
	}
	rt, err := d.runtime(v.Config.Kind)
	if err != nil {
		return nil, err
	}
	running, err := rt.Start(ctx, id, func(ctx context.Context) (*fiat.Version, error) { return d.store.Version(ctx, id) }, d.calls(v.Uses, nil))
	if err != nil {
		return nil, err
	}
	if scaler, ok := running.(fiat.Scaler); ok {
		if n, scaled := d.instancesOf(id); scaled {
			if err := scaler.Scale(ctx, n); err != nil {
				running.Stop(context.Background())
				return nil, err
			}
		}
	}
	return running, nil
}

// instancesOf is how many instances the envs that serve version id run of
// it, the most any says, if any env scaled its service.
func (d *Deployer) instancesOf(id fiat.Hash) (n int, scaled bool) {
	for _, env := range d.router.Envs() {
		for service, at := range env.Services {
			if i, ok := env.Instances[service]; ok && at == id {
				n, scaled = max(n, i), true
			}
		}
	}
	return n, scaled
}

// runtime is the runtime of kind.
func (d *Deployer) runtime(kind fiat.Kind) (fiat.Runtime, error) {
	rt, ok := d.runtimes[kind]
	if !ok {
		return nil, fmt.Errorf("%w: this fiat does not run %s services", ErrInvalid, kind)
	}
	return rt, nil
}

// Envs lists every env and its services.
func (d *Deployer) Envs() []fiat.Env {
	return d.router.Envs()
}

// Result is what a change did to an env, as the CLI shows it.
type Result struct {
	Env string `json:"env"`
	// DeployMS is the server-side time the change took, validation included.
	DeployMS float64         `json:"deploy_ms"`
	Services []ServiceResult `json:"services"`
	// Rollout is the rollout a deploy with a rollout plan started.
	Rollout *fiat.Rollout `json:"rollout,omitempty"`
}

// ServiceResult is one service of an env after a change.
type ServiceResult struct {
	Name    string    `json:"name"`
	Version fiat.Hash `json:"version"`
	Changed bool      `json:"changed"`
	// Why says what changed the service: "new", "files", "config", "uses
	// api" (a version it uses changed), or several of them.
	Why string `json:"why,omitempty"`
	// Instances is how many instances the env runs, if it was scaled.
	Instances  *int   `json:"instances,omitempty"`
	URL        string `json:"url"`
	VersionURL string `json:"version_url"`
}

// maxConflicts bounds how often a deploy is applied again after changes
// that did not conflict with it came first.
const maxConflicts = 3

// Deploy validates the project in bundle and, if every service compiles,
// starts and passes its tests, points env at its versions. A refused deploy
// returns fiat.Problems and changes nothing; so does one whose ctx ends
// first (its tests are stopped), and one that another change to the same
// services overtook while it was validated.
func (d *Deployer) Deploy(ctx context.Context, env string, bundle project.Bundle) (Result, error) {
	began := time.Now()
	res, err := d.deploy(ctx, env, bundle, nil, began)
	d.metrics.Change("deploy", time.Since(began), err)
	return res, err
}

// deploy deploys bundle to env, rolling its changes out if rollout is set.
func (d *Deployer) deploy(ctx context.Context, env string, bundle project.Bundle, rollout *RolloutPlan, began time.Time) (Result, error) {
	if err := checkEnvName(env); err != nil {
		return Result{}, err
	}
	// Every problem at once: the versions fiat.toml lets us build are
	// validated even when it has problems of its own.
	versions, problems := project.Versions(bundle)
	d.carryVars(env, versions)
	rec, err := d.deployVersions(ctx, env, versions, rollout, func(invalid map[string]fiat.Problems) fiat.Problems {
		return bundle.Problems(problems, invalid)
	})
	if err != nil {
		return Result{}, err
	}
	res := d.result(rec, func(service string) bool {
		return slices.ContainsFunc(versions, func(v *fiat.Version) bool { return v.Service == service })
	})
	d.explain(res, rec, versions)
	if rollout != nil {
		res.Rollout = startedBy(rec.After, versions)
	}
	res.DeployMS = millis(time.Since(began))
	return res, nil
}

// carryVars gives each version the vars (`fiat config set`) of the
// version of its service that env serves: a deploy changes code, not the
// config set beside it.
func (d *Deployer) carryVars(env string, versions []*fiat.Version) {
	at, _ := d.router.Env(env)
	carried := false
	for _, v := range versions {
		current, ok := d.config(at.Services[v.Service])
		if !ok || len(current.Vars) == 0 {
			continue
		}
		v.Config.Vars, v.Config.Secrets = maps.Clone(current.Vars), slices.Clone(current.Secrets)
		carried = true
	}
	if carried {
		// Their users change with them.
		fiat.HashSet(versions)
	}
}

// deployVersions validates the versions env does not have yet and points
// env at versions, or rolls them out if rollout is set. problems gives every problem the deploy has, from those
// of the versions that failed validation, by service: any, and the deploy
// is refused.
func (d *Deployer) deployVersions(ctx context.Context, env string, versions []*fiat.Version, rollout *RolloutPlan, problems func(invalid map[string]fiat.Problems) fiat.Problems) (store.Record, error) {
	// The change is decided on what the router serves now, which is
	// every change committed so far.
	seen, _ := d.router.Env(env)
	var fresh []*fiat.Version
	for _, v := range versions {
		if seen.Services[v.Service] != v.ID && !d.router.Knows(v.ID) { // a known one was validated when first deployed
			fresh = append(fresh, v)
		}
	}
	progress(ctx, "%d of %d services have a version to start and test", len(fresh), len(versions))
	ready, invalid := d.validate(ctx, fresh)
	if err := ctx.Err(); err != nil {
		stopAll(ready)
		return store.Record{}, err
	}
	if all := problems(invalid); len(all) > 0 {
		stopAll(ready)
		return store.Record{}, all
	}
	now := time.Now().UTC()
	for _, v := range fresh {
		v.Created = now
	}
	var rec store.Record
	var err error
	if rollout != nil {
		rec, err = d.commitRollout(ctx, env, versions, fresh, seen.Services, ready, *rollout)
	} else {
		rec, err = d.commitDeploy(ctx, env, versions, fresh, seen.Services, ready)
	}
	if err != nil {
		stopAll(ready)
		return rec, err
	}
	if rec.ID == 0 {
		progress(ctx, "nothing changed in env %s", env)
	} else {
		progress(ctx, "env %s switched in one transaction (change %d)", env, rec.ID)
	}
	return rec, nil
}

// commitDeploy points env at versions, expecting each of their services to
// be where seen has it. Another change may have come first while the
// versions were validated: if it left each service where seen has it or
// already at the version deployed, the deploy is applied to what it left;
// if it moved one elsewhere (a rollback, another deploy), the deploy is
// refused rather than undo that change unseen.
func (d *Deployer) commitDeploy(ctx context.Context, env string, versions, fresh []*fiat.Version, seen map[string]fiat.Hash, ready map[fiat.Hash]fiat.Running) (store.Record, error) {
	for attempt := 1; ; attempt++ {
		c := store.Change{Env: env, Kind: "deploy", Set: map[string]fiat.Hash{}, Expect: map[string]fiat.Hash{}}
		for _, v := range versions {
			c.Expect[v.Service] = seen[v.Service]
			if seen[v.Service] != v.ID {
				c.Set[v.Service] = v.ID
			}
		}
		if len(c.Set) == 0 {
			return store.Record{Env: env, Kind: "deploy", Switched: []store.Switch{}, After: fiat.Env{Name: env, Services: seen}}, nil
		}
		c.Versions = fresh
		rec, err := d.commit(ctx, c, ready)
		if !errors.Is(err, store.ErrConflict) || attempt == maxConflicts {
			return rec, err
		}
		now, err2 := d.store.Env(ctx, env)
		if err2 != nil && !errors.Is(err2, store.ErrNotFound) {
			return rec, err2
		}
		for _, v := range versions {
			if at := now.Services[v.Service]; at != seen[v.Service] && at != v.ID {
				return rec, fmt.Errorf("%w; this deploy changed nothing: deploy again to deploy over it", err)
			}
		}
		seen = now.Services
	}
}

// validate starts and tests each version with its kind's runtime, each
// after the versions of the set it uses, which its tests may call. It
// returns the started versions, and the problems of the others by
// service, their paths relative to the service's dir.
func (d *Deployer) validate(ctx context.Context, versions []*fiat.Version) (map[fiat.Hash]fiat.Running, map[string]fiat.Problems) {
	ready := map[fiat.Hash]fiat.Running{}
	problems := map[string]fiat.Problems{}
	// The versions started so far may be called while the next ones start.
	var mu sync.Mutex
	pending := func(id fiat.Hash) fiat.Running {
		mu.Lock()
		defer mu.Unlock()
		return ready[id]
	}
	for _, v := range usedFirst(versions) {
		if slices.ContainsFunc(slices.Collect(maps.Keys(v.Uses)), func(used string) bool { return problems[used] != nil }) {
			progress(ctx, "%s: not started, since a service it uses failed", v.Service)
			continue // what it uses failed: their problems are its
		}
		progress(ctx, "%s: starting version %s and running its tests", v.Service, v.ID.Short())
		began := time.Now()
		running, err := d.start(ctx, v, pending)
		if err != nil {
			progress(ctx, "%s: failed", v.Service)
			problems[v.Service] = asProblems(v, err)
			continue
		}
		progress(ctx, "%s: ready and tested in %s", v.Service, time.Since(began).Round(time.Millisecond))
		mu.Lock()
		ready[v.ID] = running
		mu.Unlock()
	}
	return ready, problems
}

// start starts v and runs its tests.
func (d *Deployer) start(ctx context.Context, v *fiat.Version, pending func(fiat.Hash) fiat.Running) (fiat.Running, error) {
	rt, err := d.runtime(v.Config.Kind)
	if err != nil {
		return nil, err
	}
	running, err := rt.Start(ctx, v.ID, func(context.Context) (*fiat.Version, error) { return v, nil }, d.calls(v.Uses, pending))
	if err != nil {
		return nil, err
	}
	if err := running.Test(ctx); err != nil {
		running.Stop(ctx)
		return nil, err
	}
	return running, nil
}

// stopAll stops versions started for a change that was not made.
func stopAll(started map[fiat.Hash]fiat.Running) {
	for _, running := range started {
		go running.Stop(context.Background())
	}
}

// asProblems is err, which refused v, as problems.
func asProblems(v *fiat.Version, err error) fiat.Problems {
	var ps fiat.Problems
	if !errors.As(err, &ps) {
		return fiat.Problems{{Message: v.Service + ": " + err.Error()}}
	}
	return ps
}

// commit applies c, and returns once this node's router serves it. The
// versions c stores start with the handlers in ready, if any, else on
// their first request.
func (d *Deployer) commit(ctx context.Context, c store.Change, ready map[fiat.Hash]fiat.Running) (store.Record, error) {
	handlers := map[fiat.Hash]fiat.Running{}
	for id, running := range ready {
		handlers[id] = running
	}
	d.follower.start(handlers)
	rec, err := d.store.Apply(ctx, c)
	if err != nil {
		d.follower.forget(handlers)
		return store.Record{}, err
	}
	d.warm(ctx, rec, handlers)
	d.follower.offer(rec)
	// The change is durable: wait for it to be served even if the client
	// goes, but not forever if this node cannot read the store.
	wait, cancel := context.WithTimeout(context.WithoutCancel(ctx), servedWithin)
	defer cancel()
	if err := d.follower.waitFor(wait, rec.ID); err != nil {
		return store.Record{}, fmt.Errorf("change %d to env %s is committed, but this node does not serve it yet (%s): other nodes may; this one will once it reads the store again", rec.ID, c.Env, d.follower.health().Error)
	}
	return rec, nil
}

// warm starts the versions that rec points its env at and that are
// neither started for it nor running, so that the change is served by
// versions ready to serve: a rollback to a process's stopped version
// returns once its instances are ready. One that fails to start here
// starts on its first request.
func (d *Deployer) warm(ctx context.Context, rec store.Record, started map[fiat.Hash]fiat.Running) {
	for id := range rec.After.Routed() {
		if started[id] == nil && d.router.Knows(id) {
			d.follower.startServed(ctx, id)
		}
	}
}

// servedWithin bounds how long a committed change waits for this node to
// serve it: only a store that cannot be read takes more than moments.
const servedWithin = 10 * time.Second

// Close stops following the store's changes and waits for background
// work to finish.
func (d *Deployer) Close() {
	d.stop()
	d.following.Wait()
}

// Rollback points service in env back at the version it had before (to is
// empty) or at the version whose hash starts with to. It makes no env and
// adds no service to one.
func (d *Deployer) Rollback(ctx context.Context, env, service, to string) (Result, error) {
	return d.change(ctx, "rollback", env, func() (store.Change, error) {
		if to == "" {
			// The services that call this version go back with it, to
			// the versions that called the one it goes back to.
			at, _ := d.router.Env(env)
			return store.Change{Env: env, Kind: "rollback", Undo: append([]string{service}, d.callersOf(at, service)...)}, nil
		}
		if err := fiat.CheckHashPrefix(to); err != nil {
			return store.Change{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		id, err := d.store.Resolve(ctx, service, to)
		if err != nil {
			return store.Change{}, err
		}
		return store.Change{Env: env, Kind: "rollback", Set: map[string]fiat.Hash{service: id}, Existing: true}, nil
	})
}

// Promote points every service of env to at the version it has in env from,
// in one step. Both envs must exist.
func (d *Deployer) Promote(ctx context.Context, from, to string) (Result, error) {
	if err := checkEnvName(from); err != nil {
		return Result{}, err
	}
	return d.change(ctx, "promote", to, func() (store.Change, error) {
		return store.Change{Env: to, Kind: "promote", CopyFrom: from, Existing: true}, nil
	})
}

// Fork creates env name with the same versions as env from.
func (d *Deployer) Fork(ctx context.Context, name, from string) (Result, error) {
	if err := checkEnvName(from); err != nil {
		return Result{}, err
	}
	return d.change(ctx, "fork", name, func() (store.Change, error) {
		return store.Change{Env: name, Kind: "fork", CopyFrom: from, Create: true}, nil
	})
}

// DeleteEnv removes env name; its versions stay at their addresses.
func (d *Deployer) DeleteEnv(ctx context.Context, name string) error {
	_, err := d.change(ctx, "delete", name, func() (store.Change, error) {
		if name == fiat.Production {
			return store.Change{}, fmt.Errorf("%w: env production cannot be deleted: bare service addresses point at it", ErrInvalid)
		}
		return store.Change{Env: name, Kind: "delete", Delete: true}, nil
	})
	return err
}

// change applies a change that needs no validation, since every version it
// points at was validated when first deployed.
func (d *Deployer) change(ctx context.Context, kind, env string, build func() (store.Change, error)) (Result, error) {
	began := time.Now()
	res, err := d.switchEnv(ctx, env, build, began)
	d.metrics.Change(kind, time.Since(began), err)
	return res, err
}

func (d *Deployer) switchEnv(ctx context.Context, env string, build func() (store.Change, error), began time.Time) (Result, error) {
	if err := checkEnvName(env); err != nil {
		return Result{}, err
	}
	c, err := build()
	if err != nil {
		return Result{}, err
	}
	rec, err := d.commit(ctx, c, nil)
	if err != nil {
		return Result{}, err
	}
	res := d.result(rec, func(string) bool { return true })
	res.DeployMS = millis(time.Since(began))
	return res, nil
}

// result describes the services of the env after rec that show says to,
// marking those rec switched.
func (d *Deployer) result(rec store.Record, show func(service string) bool) Result {
	switched := map[string]bool{}
	for _, s := range rec.Switched {
		switched[s.Service] = true
	}
	res := Result{Env: rec.Env, Services: []ServiceResult{}}
	for _, service := range slices.Sorted(maps.Keys(rec.After.Services)) {
		if !show(service) {
			continue
		}
		id := rec.After.Services[service]
		sr := ServiceResult{
			Name:       service,
			Version:    id,
			Changed:    switched[service],
			URL:        d.addresses.Service(service, rec.Env),
			VersionURL: d.addresses.Version(service, id),
		}
		if n, ok := rec.After.Instances[service]; ok {
			sr.Instances = &n
		}
		res.Services = append(res.Services, sr)
	}
	return res
}

func checkEnvName(name string) error {
	if err := fiat.CheckEnvName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
