package script

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/fiatdev/fiat"
)

// Runtime is fiat's runtime of script services.
type Runtime struct {
	programs *Cache
	logger   *slog.Logger
	// latest is the program of each service's last version compiled: the
	// next version compiles only the modules it changes.
	latest struct {
		sync.Mutex
		programs map[string]*Program
	}
	// caching tracks programs being written to the cache.
	caching sync.WaitGroup
}

var _ fiat.Runtime = (*Runtime)(nil)

// NewRuntime returns a runtime that keeps compiled programs in programs,
// so that a version compiles once, also across restarts.
func NewRuntime(programs *Cache, logger *slog.Logger) *Runtime {
	r := &Runtime{programs: programs, logger: logger}
	r.latest.programs = map[string]*Program{}
	return r
}

// Start starts version id from its compiled program if the cache has it,
// else compiles it, taking the modules it does not change from its
// service's last version compiled.
func (r *Runtime) Start(ctx context.Context, id fiat.Hash, version func(context.Context) (*fiat.Version, error), uses map[string]http.Handler) (fiat.Running, error) {
	prog, err := r.programs.Get(id)
	if err != nil {
		v, err := version(ctx)
		if err != nil {
			return nil, err
		}
		r.latest.Lock()
		previous := r.latest.programs[v.Service]
		r.latest.Unlock()
		if prog, err = CompileFrom(v, previous); err != nil {
			return nil, err
		}
		r.latest.Lock()
		r.latest.programs[v.Service] = prog
		r.latest.Unlock()
		// Off the caller's path: encoding a program takes CPU the next
		// deploy may want, and a lost cache write costs only a compile.
		r.caching.Go(func() {
			if err := r.programs.Put(prog); err != nil {
				r.logger.Warn("could not cache compiled program", "service", v.Service, "version", id, "err", err)
			}
		})
	}
	app, err := prog.Start(Options{Logger: r.logger, Uses: uses})
	if err != nil {
		return nil, err
	}
	return app, nil
}

// Close waits for the programs being cached.
func (r *Runtime) Close() {
	r.caching.Wait()
}

// Stop stops nothing: an App holds no resource but memory, which is
// released once nothing refers to it.
func (a *App) Stop(context.Context) error { return nil }
