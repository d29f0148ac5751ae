package script

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Test runs every test_* function of every *_test.star file, each under the
// version's limits, and returns a fiat.Problem for each failure, located at
// the failing assertion (or where the error happened) and naming the test.
// It returns nil when every test passes or there are none, and ctx's error
// if ctx ends first.
func (a *App) Test(ctx context.Context) error {
	l := &loader{app: a, prog: a.prog, done: map[string]*module{}, started: a.modules}
	var problems fiat.Problems
	for _, path := range a.prog.testFiles() {
		var globals starlark.StringDict
		if p := a.runTest(ctx, l, path, "", func(thread *starlark.Thread) (err error) {
			globals, err = l.load(thread, path)
			return err
		}); p != nil {
			problems = append(problems, *p)
			continue
		}
		for _, test := range testsIn(globals, path) {
			if p := a.runTest(ctx, l, path, test.Name(), func(thread *starlark.Thread) error {
				_, err := starlark.Call(thread, test, nil, nil)
				return err
			}); p != nil {
				problems = append(problems, *p)
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

// runTest runs the top level of the test file at path (test "") or a test
// on a thread of its own, stopped early if ctx ends.
func (a *App) runTest(ctx context.Context, l *loader, path, test string, run func(*starlark.Thread) error) *fiat.Problem {
	h := newHost(a)
	h.test = cmp.Or(test, path)
	h.ctx = context.WithValue(ctx, testKey{}, h.test)
	h.thread.Load = l.load
	stop := context.AfterFunc(ctx, func() { h.stop(canceled) })
	defer stop()
	if err := h.run(func() error { return run(&h.thread) }); err != nil {
		p := h.problem(err, test)
		if len(h.failedRequests) > 0 {
			p.Message += " (" + strings.Join(h.failedRequests, "; ") + ")"
		}
		return &p
	}
	return nil
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
