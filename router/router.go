// Package router is fiat's only hot path: it resolves a request's host to a
// version and hands the request to that version's handler. Resolving is a
// lookup in in-memory tables that changes swap atomically; nothing here
// touches the database.
package router

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
)

// Loader starts a version that is not running yet, e.g. the first request
// to it after a restart.
type Loader func(ctx context.Context, id fiat.Hash) (fiat.Running, error)

// Config is what a Router needs.
type Config struct {
	Addresses fiat.Addresses
	Load      Loader
	Metrics   *metrics.Metrics
	// MaxBody is the largest request body, in bytes, a handler may read.
	MaxBody int64
	// Logger hears why a version could not start, which its public answer
	// does not say.
	Logger *slog.Logger
	// MaxUnused bounds the versions no env uses that run at once, started
	// by requests to their addresses; 0 means DefaultMaxUnused.
	MaxUnused int
}

// DefaultMaxUnused is how many versions no env uses may run at once.
const DefaultMaxUnused = 32

// Router serves every public address.
type Router struct {
	cfg Config
	// envs is swapped whole on every change, so a request sees one env's
	// services either all before or all after a change.
	envs atomic.Pointer[envTable]
	// versionAddrs finds versions by their version address. Versions live
	// forever, so it only grows and needs no swapping.
	versionAddrs sync.Map   // versionKey -> *version
	mu           sync.Mutex // serializes writers
	versions     map[fiat.Hash]*version
}

// envKey is a service in an env, as an env address names it.
type envKey struct{ env, service string }

// versionKey is a version as its version address names it.
type versionKey struct{ service, short string }

// envTable is one immutable generation of the env addresses.
type envTable struct {
	services map[envKey]*route
	envs     map[string]fiat.Env
	// flags are the flags of each env that has some.
	flags map[string]*flagSet
}

// New returns a Router with no envs and no versions.
func New(cfg Config) *Router {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxUnused == 0 {
		cfg.MaxUnused = DefaultMaxUnused
	}
	r := &Router{cfg: cfg, versions: map[fiat.Hash]*version{}}
	r.envs.Store(&envTable{services: map[envKey]*route{}, envs: map[string]fiat.Env{}, flags: map[string]*flagSet{}})
	return r
}

// AddVersion makes a stored version routable at its version address;
// uses are the versions it calls. If started is nil the version is started
// by the Loader on its first request; if the version runs already, started
// is stopped.
func (r *Router) AddVersion(id fiat.Hash, service string, uses map[string]fiat.Hash, started fiat.Running) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.versions[id]
	if v == nil {
		v = &version{
			id:      id,
			service: service,
			uses:    slices.Collect(maps.Values(uses)),
			header:  []string{id.Short()},
		}
		r.versions[id] = v
		r.versionAddrs.Store(versionKey{service, id.Short()}, v)
	}
	if started != nil && !v.running.CompareAndSwap(nil, &running{started}) {
		go started.Stop(context.Background())
	}
}

// SetEnvs replaces the mappings of the given envs in one atomic step, and
// removes the envs named in deleted. Every version they use must have been
// added first.
func (r *Router) SetEnvs(envs []fiat.Env, deleted ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.envs.Load()
	next := &envTable{services: make(map[envKey]*route, len(old.services)), envs: make(map[string]fiat.Env, len(old.envs)+len(envs)), flags: maps.Clone(old.flags)}
	for name, env := range old.envs {
		next.envs[name] = env
	}
	for _, name := range deleted {
		delete(next.envs, name)
		delete(next.flags, name)
	}
	for _, env := range envs {
		next.envs[env.Name] = env
		if set := newFlagSet(env); set != nil {
			next.flags[env.Name] = set
		} else {
			delete(next.flags, env.Name)
		}
	}
	for _, env := range next.envs {
		if err := r.addRoutes(next.services, env); err != nil {
			return err
		}
	}
	r.envs.Store(next)
	return nil
}

// Env returns the mapping of one env as the router serves it now.
func (r *Router) Env(name string) (fiat.Env, bool) {
	env, ok := r.envs.Load().envs[name]
	return env, ok
}

// Envs returns every env as the router serves it now, sorted by name.
func (r *Router) Envs() []fiat.Env {
	table := r.envs.Load().envs
	envs := make([]fiat.Env, 0, len(table))
	for _, env := range table {
		envs = append(envs, env)
	}
	slices.SortFunc(envs, func(a, b fiat.Env) int { return strings.Compare(a.Name, b.Name) })
	return envs
}

// Started makes started the running version id, which the router knows,
// unless it runs already or the router does not know it: then running is
// stopped.
func (r *Router) Started(id fiat.Hash, started fiat.Running) {
	r.mu.Lock()
	v := r.versions[id]
	r.mu.Unlock()
	if v == nil || !v.running.CompareAndSwap(nil, &running{started}) {
		go started.Stop(context.Background())
	}
}

// RunningVersion returns version id if it is started, else nil.
func (r *Router) RunningVersion(id fiat.Hash) fiat.Running {
	r.mu.Lock()
	v := r.versions[id]
	r.mu.Unlock()
	if v == nil {
		return nil
	}
	if running := v.running.Load(); running != nil {
		return running.Running
	}
	return nil
}

// IsRunning reports whether version id is started.
func (r *Router) IsRunning(id fiat.Hash) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.versions[id]
	return v != nil && v.running.Load() != nil
}

// Running returns the started version that env's service is at, or nil
// if the env does not have the service or the version is not running.
func (r *Router) Running(env, service string) fiat.Running {
	rt := r.envs.Load().services[envKey{env, service}]
	if rt == nil || rt.current == nil {
		return nil
	}
	v := rt.current
	if running := v.running.Load(); running != nil {
		return running.Running
	}
	return nil
}

// Version returns the handler of version id of service, which serves a
// request to exactly that version as its version address does, or nil if
// the router does not know the version. Versions call the versions they
// use through it.
func (r *Router) Version(service string, id fiat.Hash) http.Handler {
	found, ok := r.versionAddrs.Load(versionKey{service, id.Short()})
	if !ok || found.(*version).id != id {
		return nil
	}
	return versionHandler{found.(*version), r}
}

type versionHandler struct {
	v *version
	r *Router
}

func (h versionHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) { h.v.serve(w, req, h.r) }

// Knows reports whether a version has been added.
func (r *Router) Knows(id fiat.Hash) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.versions[id] != nil
}

func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	addr, ok := r.cfg.Addresses.Parse(req.Host)
	if !ok {
		r.notFound(w, req.Host)
		return
	}
	var v *version
	table := r.envs.Load()
	if addr.Version != "" {
		if found, ok := r.versionAddrs.Load(versionKey{addr.Service, addr.Version}); ok {
			v = found.(*version)
		}
		// A version address is no env's: it gets production's flags.
		req = withFlags(req, table, fiat.Production)
	} else if rt := table.services[envKey{addr.Env, addr.Service}]; rt != nil {
		v = rt.pick(req)
		req = withFlags(req, table, addr.Env)
	}
	if v == nil {
		r.notFound(w, req.Host)
		return
	}
	v.serve(w, req, r)
}

func (r *Router) notFound(w http.ResponseWriter, host string) {
	http.Error(w, fmt.Sprintf("fiat: no service answers at %q. Deploy one with `fiat deploy`: "+
		"a service named hello answers at %s in production and at %s in env staging.",
		host, r.cfg.Addresses.Service("hello", fiat.Production), r.cfg.Addresses.Service("hello", "staging")), http.StatusNotFound)
}

// version is one version as the router serves it, shared by every address
// that points at it.
type version struct {
	id      fiat.Hash
	service string
	// uses are the versions it calls.
	uses   []fiat.Hash
	header []string // the Fiat-Version header's value, shared by every response
	// metrics are made at the version's first request, so that a version
	// nobody requests adds no series to /metrics, however many there are.
	metrics atomic.Pointer[metrics.Version]
	running atomic.Pointer[running]
	// start serializes making metrics, starting the version and stopping
	// it.
	start sync.Mutex
	// inFlight counts the requests being served, and lastUsed is when the
	// last one began (unix nanoseconds): a version is stopped only when
	// it has none, and has had none for a while.
	inFlight atomic.Int64
	lastUsed atomic.Int64
}

func (v *version) metricsOf(m *metrics.Metrics) *metrics.Version {
	if vm := v.metrics.Load(); vm != nil {
		return vm
	}
	v.start.Lock()
	defer v.start.Unlock()
	if vm := v.metrics.Load(); vm != nil {
		return vm
	}
	vm := m.Version(v.service, v.id.Short())
	v.metrics.Store(vm)
	return vm
}

type running struct{ fiat.Running }

func (v *version) handler(ctx context.Context, r *Router) (http.Handler, error) {
	if running := v.running.Load(); running != nil {
		return running.Running, nil
	}
	r.makeRoom(v)
	v.start.Lock()
	defer v.start.Unlock()
	if running := v.running.Load(); running != nil {
		return running.Running, nil
	}
	h, err := r.cfg.Load(ctx, v.id)
	if err != nil {
		return nil, err
	}
	v.running.Store(&running{h})
	return h, nil
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

func (v *version) serve(w http.ResponseWriter, req *http.Request, r *Router) {
	began := time.Now()
	v.inFlight.Add(1)
	defer v.inFlight.Add(-1)
	v.lastUsed.Store(began.UnixNano())
	sw := statusWriters.Get().(*statusWriter)
	sw.ResponseWriter, sw.code, sw.version = w, 0, v.header
	vm := v.metricsOf(r.cfg.Metrics)
	defer func() {
		vm.Observe(sw.status(), time.Since(began))
		sw.ResponseWriter, sw.version = nil, nil
		statusWriters.Put(sw)
	}()
	if req.ContentLength > r.cfg.MaxBody {
		http.Error(sw, fmt.Sprintf("fiat: request body of %d bytes exceeds the limit of %d bytes", req.ContentLength, r.cfg.MaxBody), http.StatusRequestEntityTooLarge)
		return
	}
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = http.MaxBytesReader(sw, req.Body, r.cfg.MaxBody)
	}
	h, err := v.handler(req.Context(), r)
	if err != nil {
		// Why is fiat's business (it may name the store's server), not
		// the public's.
		r.cfg.Logger.Error("a version could not start", "version", v.id.Short(), "service", v.service, "err", err)
		http.Error(sw, fmt.Sprintf("fiat: version %s of %s could not start; the server's log says why", v.id.Short(), v.service), http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(sw, req)
	if sw.code == 0 {
		// The handler wrote nothing: the response still names its version.
		sw.WriteHeader(http.StatusOK)
	}
}

// statusWriter remembers the status code for metrics, and makes sure a
// response names the version that answered and sets no header that only
// fiat may set, whatever the handler did.
type statusWriter struct {
	http.ResponseWriter
	code    int
	version []string // the Fiat-Version header
}

func (w *statusWriter) WriteHeader(code int) {
	if code < 200 {
		// Informational responses are fiat's to send (100 Continue), and
		// 101 would hand the client's connection to the handler.
		return
	}
	if w.code == 0 {
		w.code = code
		w.seal()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
		w.seal()
	}
	return w.ResponseWriter.Write(b)
}

// seal sets the headers only fiat sets, just before they are sent.
func (w *statusWriter) seal() {
	header := w.ResponseWriter.Header()
	for name := range header {
		if fiat.IsReservedHeader(name) {
			delete(header, name)
		}
	}
	header[fiat.VersionHeader] = w.version
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection to the handler, which switches protocols (a
// process's WebSocket): the response is the handler's to write, and is
// counted as 101.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}
