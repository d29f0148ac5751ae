// Package deploy changes what envs serve: it validates a project's new
// versions, stores them, and switches envs in one transaction, then swaps the
// router's tables. Deploy, rollback, promote, fork and delete all pass
// through here, so every change is validated, durable and atomic the same way.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/router"
	"github.com/fiatdev/fiat/script"
	"github.com/fiatdev/fiat/store"
)

// ErrInvalid marks a request that cannot be carried out as asked (a bad
// name, a missing env); the message says what to do.
var ErrInvalid = errors.New("invalid request")

// Deployer carries out changes on one node.
type Deployer struct {
	store     store.Store
	router    *router.Router
	programs  *script.Cache
	metrics   *metrics.Metrics
	logger    *slog.Logger
	addresses fiat.Addresses
	// mu serializes changes, so validation sees the state the change
	// applies to.
	mu sync.Mutex
	// caching tracks programs being written to the cache after a deploy.
	caching sync.WaitGroup
	// latest is the program of each service's last validated version:
	// the next version compiles only the modules it changes.
	latest map[string]*script.Program
}

// Config is what a Deployer needs.
type Config struct {
	Store     store.Store
	Programs  *script.Cache
	Metrics   *metrics.Metrics
	Logger    *slog.Logger
	Addresses fiat.Addresses
	// MaxBody is the largest request body a handler may read.
	MaxBody int64
}

// New returns a Deployer and the Router it switches, loaded with the
// store's state. Versions start lazily, on their first request.
func New(ctx context.Context, cfg Config) (*Deployer, *router.Router, error) {
	d := &Deployer{
		store:     cfg.Store,
		programs:  cfg.Programs,
		metrics:   cfg.Metrics,
		logger:    cfg.Logger,
		addresses: cfg.Addresses,
		latest:    map[string]*script.Program{},
	}
	d.router = router.New(router.Config{Addresses: cfg.Addresses, Load: d.load, Metrics: cfg.Metrics, MaxBody: cfg.MaxBody})
	state, err := cfg.Store.State(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range state.Versions {
		d.router.AddVersion(v.ID, v.Service, nil)
	}
	if err := d.router.SetEnvs(state.Envs); err != nil {
		return nil, nil, err
	}
	return d, d.router, nil
}

// load starts a version that is stored but not running: from its compiled
// program on disk if there is one, else compiled again from the store.
func (d *Deployer) load(ctx context.Context, id fiat.Hash) (http.Handler, error) {
	prog, err := d.programs.Get(id)
	if err != nil {
		v, err := d.store.Version(ctx, id)
		if err != nil {
			return nil, err
		}
		if prog, err = script.Compile(v); err != nil {
			return nil, err
		}
		if err := d.programs.Put(prog); err != nil {
			d.logger.Warn("could not cache compiled program", "version", id, "err", err)
		}
	}
	return prog.Start(script.Options{Logger: d.logger})
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
}

// ServiceResult is one service of an env after a change.
type ServiceResult struct {
	Name       string    `json:"name"`
	Version    fiat.Hash `json:"version"`
	Changed    bool      `json:"changed"`
	URL        string    `json:"url"`
	VersionURL string    `json:"version_url"`
}

// Deploy validates the project in bundle and, if every service compiles,
// starts and passes its tests, points env at its versions. A refused deploy
// returns fiat.Problems and changes nothing.
func (d *Deployer) Deploy(ctx context.Context, env string, bundle project.Bundle) (Result, error) {
	began := time.Now()
	res, err := d.deploy(ctx, env, bundle, began)
	d.metrics.Change("deploy", time.Since(began), err)
	return res, err
}

func (d *Deployer) deploy(ctx context.Context, env string, bundle project.Bundle, began time.Time) (Result, error) {
	if err := checkEnvName(env); err != nil {
		return Result{}, err
	}
	versions, problems := project.Versions(bundle)
	if len(problems) > 0 {
		return Result{}, problems
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	current, _ := d.router.Env(env)
	set := map[string]fiat.Hash{}
	var fresh []*fiat.Version
	for _, v := range versions {
		if current.Services[v.Service] == v.ID {
			continue
		}
		set[v.Service] = v.ID
		if !d.router.Knows(v.ID) { // a known one was validated when first deployed
			fresh = append(fresh, v)
		}
	}
	if len(set) > 0 {
		now := time.Now().UTC()
		for _, v := range fresh {
			v.Created = now
		}
		rec, ready, err := d.validateAndStore(ctx, bundle, store.Change{Env: env, Kind: "deploy", Versions: fresh, Set: set})
		if err != nil {
			return Result{}, err
		}
		for _, v := range fresh {
			d.router.AddVersion(v.ID, v.Service, ready[v.ID])
		}
		if err := d.router.SetEnvs([]fiat.Env{rec.After}); err != nil {
			return Result{}, err
		}
		// Off the deploy's path: encoding a program takes CPU the next
		// deploy may want, and a lost cache write costs only a compile.
		d.caching.Go(func() { d.cachePrograms(fresh, ready) })
	}
	res := Result{Env: env}
	for _, v := range versions {
		_, changed := set[v.Service]
		res.Services = append(res.Services, d.serviceResult(env, v.Service, v.ID, changed))
	}
	res.DeployMS = millis(time.Since(began))
	return res, nil
}

// validateAndStore validates the new versions of c while the store writes
// c, and commits c only if they all pass: on two cores the store's work hides
// behind the compile and the tests. A refused change returns fiat.Problems
// and leaves the store as it was.
func (d *Deployer) validateAndStore(ctx context.Context, bundle project.Bundle, c store.Change) (store.Record, map[fiat.Hash]*script.App, error) {
	ready := map[fiat.Hash]*script.App{}
	var problems fiat.Problems
	validated := make(chan struct{})
	go func() {
		defer close(validated)
		for _, v := range c.Versions {
			app, err := validate(ctx, v, d.latest[v.Service], d.logger)
			if err != nil {
				problems = append(problems, asProblems(bundle, v, err)...)
				continue
			}
			ready[v.ID] = app
			d.latest[v.Service] = app.Program()
		}
	}()
	pending, err := d.store.Begin(ctx, c)
	<-validated
	if err == nil {
		defer pending.Abort()
	}
	switch {
	case problems != nil:
		return store.Record{}, nil, problems
	case err != nil:
		return store.Record{}, nil, err
	}
	if err := pending.Commit(); err != nil {
		return store.Record{}, nil, err
	}
	return pending.Record(), ready, nil
}

// validate compiles v, taking the modules it does not change from
// previous, and runs its top level and its tests.
func validate(ctx context.Context, v *fiat.Version, previous *script.Program, logger *slog.Logger) (*script.App, error) {
	prog, err := script.CompileFrom(v, previous)
	if err != nil {
		return nil, err
	}
	app, err := prog.Start(script.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := app.Test(ctx); err != nil {
		return nil, err
	}
	return app, nil
}

// asProblems locates a service's problems in the project: script paths are
// relative to the service's dir, users think in paths relative to fiat.toml.
func asProblems(bundle project.Bundle, v *fiat.Version, err error) fiat.Problems {
	var ps fiat.Problems
	if !errors.As(err, &ps) {
		return fiat.Problems{{Path: v.Service, Message: err.Error()}}
	}
	out := slices.Clone(ps)
	for i := range out {
		out[i].Path = bundle.Path(v.Service, out[i].Path)
	}
	return out
}

// cachePrograms keeps the compiled programs of new versions on disk, so a
// restart starts them without compiling. A failure only costs a compile later.
func (d *Deployer) cachePrograms(fresh []*fiat.Version, ready map[fiat.Hash]*script.App) {
	for _, v := range fresh {
		if err := d.programs.Put(ready[v.ID].Program()); err != nil {
			d.logger.Warn("could not cache compiled program", "service", v.Service, "version", v.ID, "err", err)
		}
	}
}

// Close waits for background work to finish.
func (d *Deployer) Close() {
	d.caching.Wait()
}

// Rollback points service in env back at the version it had before (to is
// empty) or at the version whose hash starts with to.
func (d *Deployer) Rollback(ctx context.Context, env, service, to string) (Result, error) {
	return d.change(ctx, "rollback", env, func() (store.Change, error) {
		if to == "" {
			return store.Change{Env: env, Kind: "rollback", Undo: []string{service}}, nil
		}
		if err := fiat.CheckHashPrefix(to); err != nil {
			return store.Change{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		id, err := d.store.Resolve(ctx, service, to)
		if err != nil {
			return store.Change{}, err
		}
		return store.Change{Env: env, Kind: "rollback", Set: map[string]fiat.Hash{service: id}}, nil
	})
}

// Promote points every service of env to at the version it has in env from,
// in one step.
func (d *Deployer) Promote(ctx context.Context, from, to string) (Result, error) {
	if err := checkEnvName(from); err != nil {
		return Result{}, err
	}
	return d.change(ctx, "promote", to, func() (store.Change, error) {
		if _, ok := d.router.Env(to); !ok {
			return store.Change{}, fmt.Errorf("%w: env %q does not exist: create it with `fiat env fork %s --from %s`", ErrInvalid, to, to, from)
		}
		return store.Change{Env: to, Kind: "promote", CopyFrom: from}, nil
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
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := build()
	if err != nil {
		return Result{}, err
	}
	rec, err := store.Apply(ctx, d.store, c)
	if err != nil {
		return Result{}, err
	}
	if c.Delete {
		err = d.router.SetEnvs(nil, env)
	} else {
		err = d.router.SetEnvs([]fiat.Env{rec.After})
	}
	if err != nil {
		return Result{}, err
	}
	switched := map[string]bool{}
	for _, s := range rec.Switched {
		switched[s.Service] = true
	}
	res := Result{Env: env}
	for _, service := range slices.Sorted(maps.Keys(rec.After.Services)) {
		res.Services = append(res.Services, d.serviceResult(env, service, rec.After.Services[service], switched[service]))
	}
	res.DeployMS = millis(time.Since(began))
	return res, nil
}

func (d *Deployer) serviceResult(env, service string, id fiat.Hash, changed bool) ServiceResult {
	return ServiceResult{
		Name:       service,
		Version:    id,
		Changed:    changed,
		URL:        d.addresses.Service(service, env),
		VersionURL: d.addresses.Version(service, id),
	}
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
