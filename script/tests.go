package script

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Test runs every test_* function of every *_test.star file, each under the
// version's limits, and returns a fiat.Problem for each failure, located at
// the failing assertion (or where the error happened) and naming the test.
// A test that reads flags, itself or through the requests it makes, runs
// once per combination of them, each forced on or off, and its problem
// names the first combination that fails. It returns nil when every test
// passes or there are none, and ctx's error if ctx ends first.
func (a *App) Test(ctx context.Context) error {
	l := &loader{app: a, prog: a.prog, done: map[string]*module{}, started: a.modules}
	var problems fiat.Problems
	for _, path := range a.prog.testFiles() {
		var globals starlark.StringDict
		if p := a.runTest(ctx, l, path, "", nil, func(thread *starlark.Thread) (err error) {
			globals, err = l.load(thread, path)
			return err
		}); p != nil {
			problems = append(problems, *p)
			continue
		}
		for _, test := range testsIn(globals, path) {
			// The first run, every flag off, finds the flags the test
			// reads; each run may find more, until maxTestFlags.
			read := &readFlags{}
			for on := uint64(0); on < 1<<read.count() && ctx.Err() == nil; on++ {
				if p := a.runTest(ctx, l, path, test.Name(), &forcedFlags{read, on}, func(thread *starlark.Thread) error {
					_, err := starlark.Call(thread, test, nil, nil)
					return err
				}); p != nil {
					problems = append(problems, *p)
					break
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return problems
	}
	return nil
}

// runTest runs the top level of the test file at path (test "", flags
// nil: all off) or a test with flags on a thread of its own, stopped early
// if ctx ends.
func (a *App) runTest(ctx context.Context, l *loader, path, test string, flags *forcedFlags, run func(*starlark.Thread) error) *fiat.Problem {
	h := newHost(a)
	h.test = cmp.Or(test, path)
	h.ctx = context.WithValue(ctx, testKey{}, h.test)
	if flags != nil {
		h.ctx = fiat.WithFlags(h.ctx, flags)
	}
	h.thread.Load = l.load
	stop := context.AfterFunc(ctx, func() { h.stop(canceled) })
	defer stop()
	if err := h.run(func() error { return run(&h.thread) }); err != nil {
		p := h.problem(err, test+flags.String())
		if len(h.failedRequests) > 0 {
			p.Message += " (" + strings.Join(h.failedRequests, "; ") + ")"
		}
		return &p
	}
	return nil
}

// maxTestFlags bounds the flags whose combinations a test runs with: 6
// make 64 runs. Flags a test reads beyond them are off in every run.
const maxTestFlags = 6

// readFlags are the flags the runs of one test have read, in the order
// first read.
type readFlags struct {
	mu    sync.Mutex
	names []string
}

func (r *readFlags) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.names)
}

// forcedFlags are the flags of one run of a test: the flag read i-th is on
// if bit i of on is, and a flag read for the first time is off.
type forcedFlags struct {
	read *readFlags
	on   uint64
}

func (f *forcedFlags) Flag(name string) bool {
	r := f.read
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.Index(r.names, name)
	if i < 0 {
		if len(r.names) < maxTestFlags {
			r.names = append(r.names, name)
		}
		return false
	}
	return f.on&(1<<i) != 0
}

func (f *forcedFlags) Header() string {
	f.read.mu.Lock()
	names := slices.Sorted(slices.Values(f.read.names))
	f.read.mu.Unlock()
	return fiat.FlagsHeaderOf(names, f.Flag)
}

// String names the combination, " [a=on, b=off]", or is "" for a run that
// read no flag.
func (f *forcedFlags) String() string {
	if f == nil {
		return ""
	}
	if header := f.Header(); header != "" {
		return " [" + header + "]"
	}
	return ""
}

// maxFailedRequests bounds the failed requests a test's problem shows,
// and maxFailedBody the part of each response body it shows.
const (
	maxFailedRequests = 3
	maxFailedBody     = 500
)

// noteFailure remembers a request the test made that failed, for the
// test's problem to show: why a test failed is often why a request did.
func (h *host) noteFailure(method, path string, status int, body string) {
	note := fmt.Sprintf("%s %s answered %d: %s", method, path, status, clip(strings.TrimSpace(body), maxFailedBody))
	h.failedRequests = append(h.failedRequests, note)
	if len(h.failedRequests) > maxFailedRequests {
		h.failedRequests = h.failedRequests[1:]
	}
}

// testsIn returns the test functions defined in the test file at path, in
// the order they are defined.
func testsIn(globals starlark.StringDict, path string) []*starlark.Function {
	var tests []*starlark.Function
	for name, v := range globals {
		if fn, ok := v.(*starlark.Function); ok && strings.HasPrefix(name, "test_") && fn.Name() == name && fn.Position().Filename() == path {
			tests = append(tests, fn)
		}
	}
	slices.SortFunc(tests, func(a, b *starlark.Function) int { return int(a.Position().Line - b.Position().Line) })
	return tests
}

// appModule is `app` in test files: the service's own routes, called in
// process.
var appModule = requestModule("app", func(h *host) (context.Context, http.Handler, error) { return h.ctx, h.app, nil })

type builtinFunc = func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// requestModule is a module named name whose get, post, put, delete and
// request send a request, within the context, to the handler that target
// gives for the thread's host.
func requestModule(name string, target func(h *host) (context.Context, http.Handler, error)) *starlarkstruct.Module {
	send := func(thread *starlark.Thread, fn, method, path string, body starlark.Value, headers *starlark.Dict) (starlark.Value, error) {
		h := hostOf(thread)
		ctx, to, err := target(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		return h.send(ctx, fn, to, method, path, body, headers)
	}
	method := func(method string, withBody bool) builtinFunc {
		return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var path string
			var body starlark.Value = starlark.String("")
			var headers *starlark.Dict
			params := []any{"path", &path, "headers?", &headers}
			if withBody {
				params = []any{"path", &path, "body?", &body, "headers?", &headers}
			}
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, params...); err != nil {
				return nil, err
			}
			return send(thread, b.Name(), method, path, body, headers)
		}
	}
	request := func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var method, path string
		var body starlark.Value = starlark.String("")
		var headers *starlark.Dict
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "method", &method, "path", &path, "body?", &body, "headers?", &headers); err != nil {
			return nil, err
		}
		return send(thread, b.Name(), method, path, body, headers)
	}
	return &starlarkstruct.Module{Name: name, Members: starlark.StringDict{
		"get":     starlark.NewBuiltin(name+".get", method(http.MethodGet, false)),
		"post":    starlark.NewBuiltin(name+".post", method(http.MethodPost, true)),
		"put":     starlark.NewBuiltin(name+".put", method(http.MethodPut, true)),
		"delete":  starlark.NewBuiltin(name+".delete", method(http.MethodDelete, false)),
		"request": starlark.NewBuiltin(name+".request", request),
	}}
}
