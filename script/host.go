package script

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fiatdev/fiat"
	"go.starlark.net/lib/json"
	starlarktime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// predeclared are the names every module sees besides Starlark's universe.
// They are the whole of what a script can reach outside the interpreter.
var predeclared = starlark.StringDict{
	"json":     json.Module,
	"time":     starlarktime.Module,
	"log":      starlark.NewBuiltin("log", logBuiltin),
	"config":   starlark.NewBuiltin("config", configBuiltin),
	"flag":     starlark.NewBuiltin("flag", flagBuiltin),
	"response": starlark.NewBuiltin("response", responseBuiltin),
	// Each version has its own (App.predeclared): this one, which uses
	// nothing, lets modules compile before the version runs.
	"services": newServices(nil),
	"http": &starlarkstruct.Module{Name: "http", Members: starlark.StringDict{
		"route":  starlark.NewBuiltin("http.route", routeBuiltin),
		"static": starlark.NewBuiltin("http.static", staticBuiltin),
	}},
}

// testPredeclared adds what test files see: assertions and the service's
// own routes.
var testPredeclared = func() starlark.StringDict {
	d := maps.Clone(predeclared)
	d["assert"] = assertModule
	d["app"] = appModule
	return d
}()

func isTestFile(path string) bool { return strings.HasSuffix(path, "_test.star") }

func predeclaredFor(path string) starlark.StringDict {
	if isTestFile(path) {
		return testPredeclared
	}
	return predeclared
}

// predeclaredFor is what the module at path sees in this App: its
// `services` reach the versions this one uses.
func (a *App) predeclaredFor(path string) starlark.StringDict {
	d := maps.Clone(predeclaredFor(path))
	d["services"] = a.services
	return d
}

// host is fiat's side of one Starlark thread. Every host function reaches
// the world outside the interpreter through it (the clock, the log, the
// service's own routes), so recording those calls for traces has one place
// to hook in. A host runs one thing at a time.
type host struct {
	thread starlark.Thread
	app    *App

	// stoppedBy is the limit that cancelled the thread, if one did. It is
	// written by the thread itself (steps) and by the timer (time).
	stoppedBy atomic.Int32
	// timer cancels the thread when a run exceeds the time limit; nil when
	// the version has none.
	timer *time.Timer

	// routes collects the version's routes while its top level runs; nil at
	// any other time, which is how http.route refuses to run in a handler.
	routes *routeTable
	// ctx bounds the requests a test makes with app.get and friends.
	ctx context.Context
	// test names the test this host runs; "" when it runs requests.
	test string
	// req is the request the host runs, if it runs one.
	req *http.Request
	// deadline is when the run's time limit ends, if it has one.
	deadline time.Time
	// failedRequests describe the last requests a test made that failed.
	failedRequests []string
}

// testKey marks the requests a test makes, by the test's name.
type testKey struct{}

func testOf(ctx context.Context) string {
	name, _ := ctx.Value(testKey{}).(string)
	return name
}

const hostKey = "fiat.host"

func hostOf(thread *starlark.Thread) *host { return thread.Local(hostKey).(*host) }

// Limits that stop a run, stored in host.stoppedBy.
const (
	notStopped int32 = iota
	stepLimit
	timeLimit
	memoryLimit
	canceled
)

func newHost(app *App) *host {
	h := &host{app: app}
	h.thread.SetLocal(hostKey, h)
	h.thread.Print = func(thread *starlark.Thread, msg string) { hostOf(thread).log(msg) }
	starlarktime.SetNow(&h.thread, h.now)
	maxSteps := app.prog.config.MaxSteps
	if maxSteps == 0 {
		maxSteps = math.MaxUint64
	}
	h.thread.SetMaxExecutionSteps(maxSteps)
	h.thread.OnMaxSteps = func(thread *starlark.Thread) { hostOf(thread).stop(stepLimit) }
	h.thread.SetMaxAllocs(app.prog.memory())
	h.thread.OnMaxAllocs = func(thread *starlark.Thread) { hostOf(thread).stop(memoryLimit) }
	if app.prog.config.Timeout > 0 {
		h.timer = time.AfterFunc(math.MaxInt64, func() { h.stop(timeLimit) })
		h.timer.Stop()
	}
	return h
}

// stop cancels the thread's run, remembering the first reason.
func (h *host) stop(why int32) {
	if h.stoppedBy.CompareAndSwap(notStopped, why) {
		h.thread.Cancel("stopped by fiat")
	}
}

// begin prepares the thread to run one top level, request or test under
// the version's limits.
func (h *host) begin() {
	h.thread.Steps = 0
	h.thread.Allocs = 0
	h.stoppedBy.Store(notStopped)
	h.thread.Uncancel()
	if h.timer != nil {
		h.timer.Reset(h.app.prog.config.Timeout)
		h.deadline = time.Now().Add(h.app.prog.config.Timeout)
	}
}

// end reports whether the host may run again. It may not once the timer has
// fired: its callback may yet cancel whatever the thread runs next.
func (h *host) end() bool {
	return h.timer == nil || h.timer.Stop()
}

// limitExceeded describes the limit that stopped the run, or is "".
func (h *host) limitExceeded() string {
	switch h.stoppedBy.Load() {
	case stepLimit:
		return fmt.Sprintf("exceeded its limit of %d execution steps (max_steps in fiat.toml)", h.app.prog.config.MaxSteps)
	case timeLimit:
		return fmt.Sprintf("exceeded its time limit of %s (timeout in fiat.toml)", h.app.prog.config.Timeout)
	case memoryLimit:
		return fmt.Sprintf("exceeded its memory budget of %s (memory in fiat.toml)", bytesText(h.app.prog.memory()))
	case canceled:
		return "was canceled"
	}
	return ""
}

// memory is the version's memory budget, in bytes.
func (p *Program) memory() uint64 { return cmp.Or(p.config.Memory, fiat.DefaultMemory) }

// bytesText writes n bytes as fiat.toml does, like "64MiB".
func bytesText(n uint64) string {
	for _, unit := range []struct {
		name string
		size uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= unit.size && n%unit.size == 0 {
			return fmt.Sprintf("%d%s", n/unit.size, unit.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// now is the clock of time.now().
func (h *host) now() (time.Time, error) { return time.Now(), nil }

// log writes one line to the service's log.
func (h *host) log(msg string) { h.app.log(h.testName(), slog.LevelInfo, clip(msg, maxMessage)) }

// maxMessage bounds the length of a message fiat writes to a service's
// log, answers with or reports as a problem: a script's value in a
// message can be as large as its memory budget.
const maxMessage = 8 << 10

// clip shortens msg to about max bytes, saying how long it was.
func clip(msg string, max int) string {
	if len(msg) <= max {
		return msg
	}
	n := max
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return fmt.Sprintf("%s... (%d bytes in all)", msg[:n], len(msg))
}

// testName names the test whose run this is: the test the host runs, or
// the one that made the request it runs. Requests are asked only here, when
// something is logged, to keep the lookup off every request's path.
func (h *host) testName() string {
	if h.test == "" && h.req != nil {
		return testOf(h.req.Context())
	}
	return h.test
}

// configBuiltin is config(key, default=None): the value the service's
// config gives key (`fiat config set`), or default.
func configBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var key string
	var fallback starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "key", &key, "default?", &fallback); err != nil {
		return nil, err
	}
	if value, ok := hostOf(thread).app.prog.environ[key]; ok {
		return starlark.String(value), nil
	}
	return fallback, nil
}

// flagBuiltin is flag(name): whether the request gets the env's flag
// name, as the router evaluated it for the request, or, in a test, as the
// test's run forces it; False for a flag the env does not have.
func flagBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name); err != nil {
		return nil, err
	}
	if err := fiat.CheckFlagName(name); err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	h := hostOf(thread)
	ctx := h.ctx
	if h.req != nil {
		ctx = h.req.Context()
	}
	if ctx == nil || h.routes != nil {
		return nil, fmt.Errorf("%s(%q): flags are read by handlers and tests, per request, not at the top level of a module, which runs once per version", b.Name(), name)
	}
	return starlark.Bool(fiat.FlagsFrom(ctx).Flag(name)), nil
}

// logBuiltin is log(*args): print without its keyword argument.
func logBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("%s: unexpected keyword argument %s", b.Name(), kwargs[0][0])
	}
	return starlark.Call(thread, starlark.Universe["print"], args, nil)
}
