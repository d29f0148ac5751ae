package script

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
)

// Options configure a started version.
type Options struct {
	// Logger receives the service's log: log() calls and failed requests.
	// nil means slog.Default().
	Logger *slog.Logger
	// Uses serves the requests to each service the version uses, by name.
	Uses map[string]http.Handler
}

// App is a started version: its top level has run, its globals are frozen
// and it serves its routes. It is safe for concurrent use.
type App struct {
	prog *Program
	// logger is the service's log, with the service and version attributes.
	logger *slog.Logger
	mux    *http.ServeMux
	// services is its `services`, which call what it uses.
	services *services
	// modules are the modules the top level loaded, frozen.
	modules map[string]*module
	workers sync.Pool // of *worker
}

// Start runs the top level of main.star and of the modules it loads,
// freezes their globals and returns an App serving the routes they
// declared. Errors at top level, exceeded limits and bad routes come back
// as fiat.Problems.
func (p *Program) Start(opts Options) (*App, error) {
	logger := cmp.Or(opts.Logger, slog.Default())
	a := &App{
		prog:   p,
		logger: logger.With("service", p.service, "version", p.id.Short()),
		mux:    http.NewServeMux(),
	}
	a.services = newServices(opts.Uses)
	a.workers.New = func() any { return newWorker(a) }

	h := newHost(a)
	h.routes = &routeTable{mux: a.mux}
	l := &loader{app: a, prog: p, done: map[string]*module{}}
	h.thread.Load = l.load
	err := h.run(func() error {
		_, err := l.load(&h.thread, mainModule)
		return err
	})

	problems := h.routes.problems
	switch {
	case err != nil:
		problems = append(problems, h.problem(err, ""))
	case len(problems) == 0 && len(h.routes.routes) == 0 && !h.routes.static:
		problems = append(problems, fiat.Problem{Path: mainModule, Message: "declares no routes: add http.route(method, path, handler)"})
	}
	if len(problems) > 0 {
		return nil, problems
	}
	for _, rt := range h.routes.routes {
		// Handlers that are not globals (lambdas, nested functions) are
		// not frozen with the modules.
		rt.handler.Freeze()
	}
	a.modules = l.done
	return a, nil
}

// Program is the compiled program the App runs.
func (a *App) Program() *Program { return a.prog }

// run runs f, a top level or a test, under the version's limits. A panic
// in a host function fails the run, not the process.
func (h *host) run(f func() error) (err error) {
	h.begin()
	defer func() {
		h.end()
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error: %v", p)
		}
	}()
	return f()
}

// problem locates err, which stopped the top level of a module (test "")
// or a test.
func (h *host) problem(err error, test string) fiat.Problem {
	msg, pos := origin(err)
	limit := h.limitExceeded()
	switch {
	case test != "" && limit != "":
		msg = test + " " + limit
	case test != "":
		msg = test + ": " + msg
	case limit != "":
		msg = "top level " + limit
	}
	return problemAt(pos, clip(msg, maxMessage))
}

// A module is the outcome of running a module's top level.
type module struct {
	globals starlark.StringDict
	err     error
}

// loader runs the top level of each module at its first load, and freezes
// its globals. Compile has checked that every load names a module of the
// version and that there are no cycles.
type loader struct {
	app  *App
	prog *Program
	done map[string]*module
	// started are the modules of a started App, which tests load as they
	// are instead of running their top level a second time.
	started map[string]*module
}

func (l *loader) load(thread *starlark.Thread, name string) (starlark.StringDict, error) {
	path, err := modulePath(name)
	if err != nil {
		return nil, err
	}
	m := l.started[path]
	if m == nil {
		m = l.done[path]
	}
	if m == nil {
		globals, err := l.prog.modules[path].Init(thread, l.app.predeclaredFor(path))
		globals.Freeze()
		m = &module{globals, err}
		l.done[path] = m
	}
	return m.globals, m.err
}

// ServeHTTP serves r with the version's routes.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// A worker runs requests of one App, one at a time. The App pools them so
// that a request reuses a thread and a request value instead of allocating
// new ones.
type worker struct {
	h    *host
	req  request
	args starlark.Tuple // holds &req
	ans  answer
}

func newWorker(a *App) *worker {
	w := &worker{h: newHost(a)}
	w.args = starlark.Tuple{&w.req}
	return w
}

// ServeHTTP runs the route's handler.
func (rt *route) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	a := rt.app
	w := a.workers.Get().(*worker)
	defer func() {
		// A panic in a host function fails this request only. The worker
		// is dropped: the panic may have left it inconsistent.
		if p := recover(); p != nil {
			a.fail(rw, r, http.StatusInternalServerError, fmt.Sprintf("%s: internal error: %v", a.prog.service, p), "stack", string(debug.Stack()))
		}
	}()
	w.req = request{http: r, route: rt, thread: &w.h.thread}
	w.h.req = r
	w.h.begin()
	result, err := starlark.Call(&w.h.thread, rt.handler, w.args, nil)
	if err == nil {
		err = rt.render(&w.h.thread, result, &w.ans)
	}
	reusable := w.h.end()
	if err != nil {
		status, msg := w.failure(err)
		a.fail(rw, r, status, msg)
	} else {
		w.ans.write(rw)
	}
	w.req, w.h.req, w.ans = request{}, nil, answer{}
	if reusable {
		a.workers.Put(w)
	}
}

// failure is the response to a handler's error.
func (w *worker) failure(err error) (status int, msg string) {
	service := w.h.app.prog.service
	switch w.h.stoppedBy.Load() {
	case stepLimit:
		return http.StatusServiceUnavailable, service + ": request " + w.h.limitExceeded()
	case timeLimit:
		return http.StatusGatewayTimeout, service + ": request " + w.h.limitExceeded()
	case memoryLimit:
		return http.StatusInsufficientStorage, service + ": request " + w.h.limitExceeded()
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("%s: request body is larger than the limit of %d bytes", service, tooLarge.Limit)
	}
	status = http.StatusInternalServerError
	if errors.As(err, new(badRequest)) {
		status = http.StatusBadRequest
	}
	msg, pos := origin(err)
	return status, clip(atLine(pos, msg), maxMessage)
}

// fail answers a request that failed, and logs why.
func (a *App) fail(rw http.ResponseWriter, r *http.Request, status int, msg string, attrs ...any) {
	a.log(testOf(r.Context()), slog.LevelError, msg, append([]any{"method", r.Method, "path", r.URL.Path, "status", status}, attrs...)...)
	http.Error(rw, msg, status)
}

// log writes to the service's log. What tests log, deploy after deploy,
// is not the service's traffic: it goes at debug level, naming the test.
func (a *App) log(test string, level slog.Level, msg string, attrs ...any) {
	if test != "" {
		level = slog.LevelDebug
		attrs = append(attrs, "test", test)
	}
	a.logger.Log(context.Background(), level, msg, attrs...)
}
