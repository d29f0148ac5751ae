package script

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
)

func init() {
	// A host function with a bug, to show that its panic fails one request.
	predeclared["crash"] = starlark.NewBuiltin("crash", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		var m map[string]int
		m["boom"]++
		return starlark.None, nil
	})
}

const limitsScript = `
def spin(req):
    n = 0
    while True:
        n += 1

def fail_here(req):
    x = {"a": 1}
    return x["b"]

def helper(s):
    fail("bad " + s)

http.route("GET", "/spin", spin)
http.route("GET", "/ok", lambda req: "ok")
http.route("GET", "/error", fail_here)
http.route("GET", "/nested", lambda req: helper("input"))
http.route("GET", "/crash", lambda req: crash())
`

func TestStepLimit(t *testing.T) {
	a, log := start(t, map[string]string{"main.star": limitsScript}, fiat.Config{MaxSteps: 10_000, Timeout: time.Minute})
	// Alternate so that pooled threads that hit the limit serve again.
	for range 5 {
		want := "hello: request exceeded its limit of 10000 execution steps (max_steps in fiat.toml)\n"
		if got := do(a, "GET", "/spin", ""); got.status != 503 || got.body != want {
			t.Fatalf("got %d %q, want 503 %q", got.status, got.body, want)
		}
		if got := do(a, "GET", "/ok", ""); got.status != 200 {
			t.Fatalf("after a 503: got %d %q, want 200", got.status, got.body)
		}
	}
	if !strings.Contains(log.String(), `level=ERROR msg="hello: request exceeded its limit of 10000 execution steps`) {
		t.Errorf("the log does not say so:\n%s", log)
	}
}

func TestTimeLimit(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": limitsScript}, fiat.Config{MaxSteps: 1 << 62, Timeout: 100 * time.Millisecond})
	done := make(chan result)
	go func() { done <- do(a, "GET", "/spin", "") }()
	// Requests beside the spinning one are served as usual.
	for range 50 {
		if got := do(a, "GET", "/ok", ""); got.status != 200 || got.body != "ok" {
			t.Errorf("beside a spinning request: got %d %q, want 200 ok", got.status, got.body)
		}
	}
	want := "hello: request exceeded its time limit of 100ms (timeout in fiat.toml)\n"
	if got := <-done; got.status != 504 || got.body != want {
		t.Errorf("got %d %q, want 504 %q", got.status, got.body, want)
	}
	if got := do(a, "GET", "/ok", ""); got.status != 200 {
		t.Errorf("after a 504: got %d %q, want 200", got.status, got.body)
	}
}

func TestHandlerErrors(t *testing.T) {
	a, log := start(t, map[string]string{"main.star": limitsScript})
	for _, tc := range []struct{ path, want string }{
		{"/error", "main.star:9: key \"b\" not in dict"},
		{"/nested", "main.star:12: fail: bad input"},
		{"/crash", "hello: internal error: assignment to entry in nil map"},
	} {
		got := do(a, "GET", tc.path, "")
		if got.status != 500 || got.body != tc.want+"\n" {
			t.Errorf("%s: got %d %q, want 500 %q", tc.path, got.status, got.body, tc.want)
		}
		if line := "level=ERROR msg=" + quoteLog(tc.want) + " service=hello version=" + a.prog.id.Short(); !strings.Contains(log.String(), line) {
			t.Errorf("%s: the log has no line %s:\n%s", tc.path, line, log)
		}
	}
	if got := do(a, "GET", "/ok", ""); got.status != 200 {
		t.Errorf("after a panic: got %d %q, want 200", got.status, got.body)
	}
}

// quoteLog quotes s as slog's text handler does.
func quoteLog(s string) string {
	if strings.ContainsAny(s, " \"=") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}

func TestConcurrentRequests(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
def user(req):
    n = int(req.params["id"])
    total = 0
    for i in range(n):
        total += i
    return {"id": n, "total": total, "q": req.query.get("q", "")}
http.route("GET", "/users/{id}", user)
http.route("GET", "/fail", lambda req: fail("no"))
`}, fiat.Config{MaxSteps: 20_000, Timeout: time.Minute})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := (g*200 + i) % 500
				if i%7 == 0 {
					n = 100_000 // too many steps for the limit
				}
				got := do(a, "GET", "/users/"+itoa(n)+"?q=x", "")
				switch {
				case n == 100_000:
					if got.status != 503 {
						t.Errorf("/users/%d: got %d %q, want 503", n, got.status, got.body)
					}
				case got.status != 200 || got.body != `{"id":`+itoa(n)+`,"q":"x","total":`+itoa(n*(n-1)/2)+`}`:
					t.Errorf("/users/%d: got %d %q", n, got.status, got.body)
				}
				if i%10 == 0 {
					if got := do(a, "GET", "/fail", ""); got.status != 500 {
						t.Errorf("/fail: got %d %q, want 500", got.status, got.body)
					}
				}
			}
		})
	}
	wg.Wait()
}

// Globals, and the state of handlers that are not globals, are frozen once
// the version has started, so that requests running in parallel cannot race
// on them.
func TestGlobalsFrozen(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
SEEN = []
def remember(req):
    SEEN.append(req.path)
    return "ok"

def counter():
    count = {"n": 0}
    def handle(req):
        count["n"] += 1
        return str(count["n"])
    return handle

http.route("GET", "/", remember)
http.route("GET", "/count", counter())
`})
	for _, tc := range []struct{ path, want string }{
		{"/", "main.star:4: append: cannot append to frozen list\n"},
		{"/count", "main.star:10: cannot insert into frozen hash table\n"},
	} {
		if got := do(a, "GET", tc.path, ""); got.status != 500 || got.body != tc.want {
			t.Errorf("%s: got %d %q, want 500 %q", tc.path, got.status, got.body, tc.want)
		}
	}
}
