package script

// Requests, scripts and tests that try to crash fiat, keep a core busy past
// their limits, or take more memory than their budget. Each of them once
// did one of those.

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// A body of deep JSON overflowed the stack of the decoder, which killed
// the process.
func TestDeepJSONBody(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
http.route("POST", "/echo", lambda req: req.json())
http.route("GET", "/ok", lambda req: "ok")
`})
	for name, body := range map[string]string{
		"2.5 MB of [":   strings.Repeat("[", 2_500_000),
		"balanced":      strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000),
		"objects":       strings.Repeat(`{"a":`, 200_000) + "1" + strings.Repeat("}", 200_000),
		"one too deep":  strings.Repeat("[", 1001) + strings.Repeat("]", 1001),
		"deep and wide": strings.Repeat("["+strings.Repeat("[", 1000)+strings.Repeat("]", 1000)+"],", 100) + "1",
	} {
		got := do(a, "POST", "/echo", body)
		if got.status != 400 || !strings.Contains(got.body, "request.json: body is not JSON: at offset ") || !strings.Contains(got.body, "value nested more than 1000 levels deep") {
			t.Errorf("%s: got %d %.200q, want 400 saying the body is nested too deep", name, got.status, got.body)
		}
	}
	deepest := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	if got := do(a, "POST", "/echo", deepest); got.status != 200 || got.body != deepest {
		t.Errorf("1000 levels: got %d %.100q, want 200 and the body back", got.status, got.body)
	}
	if got := do(a, "GET", "/ok", ""); got.status != 200 {
		t.Errorf("after deep bodies: got %d %q", got.status, got.body)
	}
}

// Values built deep in a loop used to be walked recursively, slowly or
// until the stack overflowed.
func TestDeepValues(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
def deep(req):
    x = []
    t = ()
    for i in range(100000):
        x = [x]
        t = (t,)
    op = req.params["op"]
    if op == "str":
        return str(x)
    elif op == "repr":
        return repr(t)
    elif op == "format":
        return "%s" % x
    elif op == "log":
        log(x)
    elif op == "json":
        return json.encode(x)
    elif op == "response":
        return x
    elif op == "hash":
        return {t: 1}
    elif op == "equal":
        return str(x == [x])
http.route("GET", "/deep/{op}", deep)
`}, fiat.Config{MaxSteps: 10_000_000, Timeout: time.Minute})
	for op, want := range map[string]string{
		"str":      "cannot print a value nested more than 1000 levels deep",
		"repr":     "cannot print a value nested more than 1000 levels deep",
		"format":   "cannot print a value nested more than 1000 levels deep",
		"log":      "cannot print a value nested more than 1000 levels deep",
		"json":     "json.encode: value nested more than 1000 levels deep",
		"response": "returned a list that is not JSON: json.encode: value nested more than 1000 levels deep",
		"hash":     "cannot hash a tuple nested more than 1000 levels deep",
		"equal":    "comparison exceeded maximum recursion depth",
	} {
		if got := do(a, "GET", "/deep/"+op, ""); got.status != 500 || !strings.Contains(got.body, want) {
			t.Errorf("%s: got %d %.300q, want 500 %q", op, got.status, got.body, want)
		}
	}
}

// A top level that hashes a deep tuple was refused only by the process
// dying; one whose closure refers to itself too, when it was frozen.
func TestDeepTopLevel(t *testing.T) {
	got := problems(t, map[string]string{"main.star": `
t = ()
for i in range(1000000):
    t = (t,)
seen = {t: True}
`}, fiat.Config{MaxSteps: 100_000_000, Timeout: time.Minute, Memory: 512 << 20})
	if want := "main.star:5:10: cannot hash a tuple nested more than 1000 levels deep"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	start(t, map[string]string{"main.star": `
def outer():
    def handle(req):
        return str(handle)
    return handle
http.route("GET", "/", outer())
`})
}

// An attack that would run for minutes inside one built-in call.
type cpuAttack struct{ name, src string }

// cpuAttacks are handlers whose every built-in call the step limit once
// did not count and the time limit could not interrupt.
var cpuAttacks = []cpuAttack{
	{"compare-shared", "t = tuple(range(100))\nu = tuple(list(range(100)))\nfor i in range(6):\n    t = (t,) * 100\n    u = (u,) * 100\nreturn str(t == u)"},
	{"hash-shared", "t = tuple(range(100))\nfor i in range(6):\n    t = (t,) * 100\nreturn str({t: 1})"},
	{"sort-shared", "t = tuple(range(100))\nu = tuple(list(range(100)))\nfor i in range(5):\n    t = (t,) * 100\n    u = (u,) * 100\nreturn str(sorted([t, u] * 10))"},
	{"in-shared", "t = tuple(range(100))\nu = tuple(list(range(100)))\nfor i in range(6):\n    t = (t,) * 100\n    u = (u,) * 100\nreturn str(t in [u])"},
	{"all-of-a-range", "return str(all(range(1, 2147483647)))"},
	{"set-of-a-range", "return str(len(set(range(1, 2147483647))))"},
}

// Built-ins stop within moments of their request's time limit, however
// long their work would take, while other requests are served.
func TestCPUInBuiltinsStopsAtTimeLimit(t *testing.T) {
	const timeout = 500 * time.Millisecond
	a, _ := start(t, attackScript(), fiat.Config{MaxSteps: 1 << 62, Timeout: timeout, Memory: 1 << 30})
	var wg sync.WaitGroup
	for _, attack := range cpuAttacks {
		wg.Go(func() {
			began := time.Now()
			got := do(a, "GET", "/attack/"+attack.name, "")
			if took := time.Since(began); took > timeout+time.Second {
				t.Errorf("%s: answered after %s, under a time limit of %s", attack.name, took, timeout)
			}
			want := "hello: request exceeded its time limit of 500ms (timeout in fiat.toml)\n"
			if got.status != 504 || got.body != want {
				t.Errorf("%s: got %d %.200q, want 504 %q", attack.name, got.status, got.body, want)
			}
		})
	}
	for range 20 {
		if got := do(a, "GET", "/ok", ""); got.status != 200 {
			t.Errorf("beside the attacks: got %d %q", got.status, got.body)
		}
	}
	wg.Wait()
}

// The work built-ins do counts toward the step limit.
func TestCPUInBuiltinsCountsSteps(t *testing.T) {
	a, _ := start(t, attackScript(), fiat.Config{MaxSteps: 2_000_000, Timeout: time.Minute, Memory: 1 << 30})
	for _, attack := range cpuAttacks {
		want := "hello: request exceeded its limit of 2000000 execution steps (max_steps in fiat.toml)\n"
		if got := do(a, "GET", "/attack/"+attack.name, ""); got.status != 503 || got.body != want {
			t.Errorf("%s: got %d %.200q, want 503 %q", attack.name, got.status, got.body, want)
		}
	}
}

// attackScript serves each of cpuAttacks at /attack/NAME.
func attackScript() map[string]string {
	var src strings.Builder
	for i, attack := range cpuAttacks {
		src.WriteString("def attack" + itoa(i) + "(req):\n    " + strings.ReplaceAll(attack.src, "\n", "\n    ") + "\n")
		src.WriteString(`http.route("GET", "/attack/` + attack.name + `", attack` + itoa(i) + ")\n")
	}
	src.WriteString(`http.route("GET", "/ok", lambda req: "ok")` + "\n")
	return map[string]string{"main.star": src.String()}
}

// Keys whose hashes collided made a set take time quadratic in its size:
// 60,000 ints took 90 s. Hashes are seeded now, and the rest is steps.
func TestCollidingKeys(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
http.route("GET", "/ints", lambda req: str(len(set([i * 4294967296 for i in range(60000)]))))
http.route("GET", "/fractions", lambda req: str(len(set([1 / (i + 2) for i in range(60000)]))))
http.route("GET", "/lambdas", lambda req: str(len(set([lambda: i for i in range(60000)]))))
`}, fiat.Config{MaxSteps: 1_000_000, Timeout: 2 * time.Second})
	for _, path := range []string{"/ints", "/fractions", "/lambdas"} {
		if got := do(a, "GET", path, ""); got.status != 200 || got.body != "60000" {
			t.Errorf("%s: got %d %.200q, want 200 60000", path, got.status, got.body)
		}
	}
}

// Ints grew without bound, and multiplying and printing them took seconds
// inside one built-in call.
func TestIntSize(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
def square(req):
    x = 3
    for i in range(25):
        x = x * x
    return str(x)
http.route("GET", "/square", square)
http.route("GET", "/parse", lambda req: str(int("9" * 1000000)))
`}, fiat.Config{MaxSteps: 1_000_000, Timeout: 2 * time.Second})
	for path, want := range map[string]string{
		"/square": "main.star:5: int too large: about 103874 bits, more than the limit of 65536 bits\n",
		"/parse":  "main.star:8: int: literal of 1000000 digits is larger than the limit of 65536 bits\n",
	} {
		if got := do(a, "GET", path, ""); got.status != 500 || got.body != want {
			t.Errorf("%s: got %d %.200q, want 500 %q", path, got.status, got.body, want)
		}
	}
}

// Each of these once allocated gigabytes for one request, or got the
// server killed. Under a budget of 1 MiB they stop before they allocate.
func TestMemoryBudget(t *testing.T) {
	const budget = 1 << 20
	a, _ := start(t, map[string]string{"main.star": `
ROUTES = {
    "repeat": lambda req: "x" * 1000000000,
    "join": lambda req: ",".join(["x" * 1000000000] * 100),
    "join-small": lambda req: ",".join(["x" * 100000] * 100),
    "sorted": lambda req: sorted(range(1000000000)),
    "list": lambda req: list(range(1000000000)),
    "body": lambda req: "x" * 1048577,
    "json": lambda req: ["x" * 1000] * 2000,
    "format": lambda req: "{}{}".format("x" * 600000, "y" * 600000),
    "interpolate": lambda req: "%s%s" % ("x" * 600000, "y" * 600000),
    "str": lambda req: str(["x" * 100000] * 100),
    "replace": lambda req: "xxxx".replace("x", "y" * 1000000),
    "upper": lambda req: [("x" * 100000).upper() for i in range(20)],
    "split": lambda req: ("," * 200000).split(","),
    "dict": lambda req: {i: i for i in range(100000)},
    "read-body": lambda req: len(req.body),
}
for name, handler in ROUTES.items():
    http.route("*", "/" + name, handler)
http.route("GET", "/ok", lambda req: "ok")
`}, fiat.Config{MaxSteps: 100_000_000, Timeout: time.Minute, Memory: budget})
	want := "hello: request exceeded its memory budget of 1MiB (memory in fiat.toml)\n"
	for _, name := range []string{"repeat", "join", "join-small", "sorted", "list", "body", "json", "format", "interpolate", "str", "replace", "upper", "split", "dict"} {
		allocated := allocatedBy(func() {
			if got := do(a, "GET", "/"+name, ""); got.status != 507 || got.body != want {
				t.Errorf("%s: got %d %.200q, want 507 %q", name, got.status, got.body, want)
			}
		})
		if allocated > 16*budget {
			t.Errorf("%s: allocated %d bytes under a budget of %d", name, allocated, budget)
		}
	}
	if got := do(a, "POST", "/read-body", strings.Repeat("x", 600_000)); got.status != 507 || got.body != want {
		t.Errorf("a body larger than half the budget: got %d %.200q, want 507 %q", got.status, got.body, want)
	}
	if got := do(a, "GET", "/ok", ""); got.status != 200 {
		t.Errorf("after the budget was exceeded: got %d %q", got.status, got.body)
	}
}

// allocatedBy is the number of bytes the process allocated while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The top level and each test have a memory budget of their own.
func TestMemoryBudgetOfTopLevelAndTests(t *testing.T) {
	config := fiat.Config{MaxSteps: 1_000_000, Timeout: time.Minute, Memory: 1 << 20}
	if got, want := problems(t, map[string]string{"main.star": `BIG = "x" * 1000000000`}, config), "main.star:1:11: top level exceeded its memory budget of 1MiB (memory in fiat.toml)"; got != want {
		t.Errorf("top level: got %q, want %q", got, want)
	}
	a, _ := start(t, map[string]string{
		"main.star": `http.route("GET", "/", lambda req: "ok")`,
		"main_test.star": `
def test_big():
    big = "x" * 1000000000

def test_after():
    assert.eq(app.get("/").body, "ok")
`}, config)
	if got, want := a.Test(context.Background()).Error(), "main_test.star:3:15: test_big exceeded its memory budget of 1MiB (memory in fiat.toml)"; got != want {
		t.Errorf("tests: got %q, want %q", got, want)
	}
}

// A failing test said what its assertion saw, not why: the handler's
// error and the body of the request that failed.
func TestFailingTestShowsTheFailedRequest(t *testing.T) {
	a, _ := start(t, map[string]string{
		"main.star": `
def greet(req):
    return "hello " + req.parms["name"]
http.route("GET", "/greet/{name}", greet)
http.route("GET", "/missing", lambda req: response(404, "no such thing"))
`,
		"main_test.star": `
def test_greet():
    app.get("/missing")
    r = app.get("/greet/ann")
    assert.eq(r.status, 200)
`})
	want := `main_test.star:5:14: test_greet: assert.eq: got 500, want 200 (GET /greet/ann answered 500: main.star:3: request has no .parms field or method (did you mean .params?))`
	if got := a.Test(context.Background()).Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// A handler may not answer with an informational status, nor set the
// headers that say which version answered or describe the connection.
func TestResponseRefusesWhatFiatSets(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
http.route("GET", "/101", lambda req: response(101))
http.route("GET", "/version", lambda req: response(200, "hi", {"fiat-version": "abc"}))
http.route("GET", "/connection", lambda req: response(200, "hi", {"Connection": "close"}))
http.route("GET", "/encoding", lambda req: response(200, "hi", {"Transfer-Encoding": "chunked"}))
`})
	for path, want := range map[string]string{
		"/101":        "main.star:2: response: status 101 is not a status a handler answers with: give one from 200 to 599\n",
		"/version":    "main.star:3: response: header Fiat-Version is fiat's to set, not a handler's: leave it out\n",
		"/connection": "main.star:4: response: header Connection is fiat's to set, not a handler's: leave it out\n",
		"/encoding":   "main.star:5: response: header Transfer-Encoding is fiat's to set, not a handler's: leave it out\n",
	} {
		if got := do(a, "GET", path, ""); got.status != 500 || got.body != want {
			t.Errorf("%s: got %d %q, want 500 %q", path, got.status, got.body, want)
		}
	}
}

// A message can hold a script's value, as large as its budget: what fiat
// logs and answers is clipped.
func TestLongMessagesAreClipped(t *testing.T) {
	a, log := start(t, map[string]string{"main.star": `
def shout(req):
    log("y" * 100000)
    fail("x" * 100000)
http.route("GET", "/", shout)
`})
	got := do(a, "GET", "/", "")
	if got.status != 500 || len(got.body) > 9000 || !strings.HasSuffix(got.body, "... (100019 bytes in all)\n") {
		t.Errorf("got %d, %d bytes ending %q", got.status, len(got.body), got.body[max(0, len(got.body)-40):])
	}
	if n := len(log.String()); n > 20000 || !strings.Contains(log.String(), "... (100000 bytes in all)") {
		t.Errorf("the log has %d bytes:\n%.300s", n, log)
	}
}
