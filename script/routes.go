package script

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// A route is one http.route declaration: a handler for the requests that
// match its method and path.
type route struct {
	app     *App
	method  string // as declared: "GET", or "*" for any
	path    string // as declared: "/users/{id}"
	handler starlark.Callable
	// params are the names of the path's wildcards, in order.
	params []string
	// declared is where http.route was called.
	declared syntax.Position
}

func (rt *route) String() string { return rt.method + " " + rt.path }

// pattern is the route as an http.ServeMux pattern. A path ending in "/"
// becomes ".../{$}" so that "/" means the root only, as users expect; a
// subtree takes an explicit {rest...} wildcard.
func (rt *route) pattern() string {
	p := rt.path
	if strings.HasSuffix(p, "/") {
		p += "{$}"
	}
	if rt.method == "*" {
		return p
	}
	return rt.method + " " + p
}

// where locates the handler, for messages about what it returned.
func (rt *route) where() syntax.Position {
	if fn, ok := rt.handler.(*starlark.Function); ok {
		return fn.Position()
	}
	return rt.declared
}

// routeTable collects the routes of a version while its top level runs.
// Bad routes become problems, and the top level goes on so that the user
// sees all of them at once.
type routeTable struct {
	mux      *http.ServeMux
	routes   []*route
	problems fiat.Problems
	// static is set once http.static serves files.
	static bool
}

func routeBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := hostOf(thread)
	if h.routes == nil {
		return nil, fmt.Errorf("%s: routes are declared at the top level of a module, while the version starts; not in a handler or a test", b.Name())
	}
	rt := &route{app: h.app, declared: thread.CallFrame(1).Pos}
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "method", &rt.method, "path", &rt.path, "handler", &rt.handler); err != nil {
		return nil, err
	}
	if err := h.routes.add(rt); err != nil {
		h.routes.problems = append(h.routes.problems, problemAt(rt.declared, err.Error()))
	}
	return starlark.None, nil
}

func (t *routeTable) add(rt *route) error {
	if !isMethod(rt.method) {
		return fmt.Errorf("http.route: method %q is not an uppercase HTTP method like \"GET\", or \"*\" for any", rt.method)
	}
	if !strings.HasPrefix(rt.path, "/") {
		return fmt.Errorf("http.route: path %q must start with \"/\"", rt.path)
	}
	if err := register(t.mux, rt); err != nil {
		return rejection(t.routes, rt, err)
	}
	rt.params = wildcards(rt.path)
	t.routes = append(t.routes, rt)
	return nil
}

// rejection explains why ServeMux refused rt: an invalid path, or a
// conflict with a route declared before it. ServeMux's own message names Go
// source lines and its translated patterns; users need the routes as they
// wrote them.
func rejection(routes []*route, rt *route, err error) error {
	if err := register(http.NewServeMux(), rt); err != nil {
		// Keep only the reason: the rest quotes the translated pattern and
		// an offset into it.
		reason := err.Error()
		if i := strings.LastIndex(reason, ": "); i >= 0 {
			reason = reason[i+2:]
		}
		return fmt.Errorf("http.route: invalid path %q: %s", rt.path, reason)
	}
	for _, other := range routes {
		pair := http.NewServeMux()
		if register(pair, other) != nil {
			continue
		}
		if err := register(pair, rt); err != nil {
			why := err.Error()
			if _, after, ok := strings.Cut(why, "):\n"); ok {
				why = strings.ReplaceAll(after, "\n", " ")
			}
			return fmt.Errorf("http.route: route %s conflicts with route %s declared at %s: %s", rt, other, other.declared, why)
		}
	}
	return fmt.Errorf("http.route: %v", err)
}

// register adds rt to mux, turning ServeMux's panic on a bad or conflicting
// pattern into an error.
// register adds rt to mux, served by handler if given, else by rt's own
// handler.
func register(mux *http.ServeMux, rt *route, handler ...http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	var h http.Handler = rt
	if len(handler) > 0 {
		h = handler[0]
	}
	mux.Handle(rt.pattern(), h)
	return nil
}

func isMethod(m string) bool {
	if m == "*" {
		return true
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return m != ""
}

// wildcards returns the names of path's {name} and {name...} segments.
func wildcards(path string) []string {
	var names []string
	for seg := range strings.SplitSeq(path, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
			if name != "$" {
				names = append(names, name)
			}
		}
	}
	return names
}
