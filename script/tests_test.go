package script

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

const testedMain = `
def add(a, b):
    return a + b

def create(req):
    data = req.json()
    return response(201, {"created": data["name"]}, headers={"X-Id": "7"})

http.route("GET", "/users/{id}", lambda req: {"id": req.params["id"]})
http.route("POST", "/users", create)
http.route("PUT", "/users/{id}", lambda req: req.method + " " + req.body)
http.route("DELETE", "/users/{id}", lambda req: None)
http.route("GET", "/headers", lambda req: req.headers.get("x-token", "none"))
log("main loaded")
`

func TestTestsPass(t *testing.T) {
	a, log := start(t, map[string]string{
		"main.star": testedMain,
		"main_test.star": `
load("main.star", "add")
load("helpers_test.star", "must_get")

def test_add():
    assert.eq(add(1, 2), 3)

def test_routes():
    r = app.get("/users/42")
    assert.eq(r.status, 200)
    assert.eq(r.json(), {"id": "42"})
    assert.eq(r.headers["content-type"], "application/json")
    r = app.post("/users", body={"name": "ann"})
    assert.eq(r.status, 201)
    assert.eq(r.json()["created"], "ann")
    assert.eq(r.headers["x-id"], "7")
    assert.eq(app.put("/users/1", body="x").body, "PUT x")
    assert.eq(app.delete("/users/1").status, 204)
    assert.eq(app.get("/headers", headers={"X-Token": "t"}).body, "t")
    assert.eq(app.request("PATCH", "/users/1").status, 405)
    assert.eq(app.request("POST", "/users", body='{"name": "bo"}').json(), {"created": "bo"})
    assert.eq(app.get("/nope").status, 404)

def test_assertions_that_hold():
    assert.ne(1, 2)
    assert.true([1])
    assert.contains([1, 2], 2)
    assert.contains({"a": 1}, "a")
    assert.contains("hello", "ell")
    assert.eq(assert.fails(lambda: fail("oops"), "oo+ps"), "fail: oops")
    must_get("/users/1")
`,
		"helpers_test.star": `
def must_get(path):
    r = app.get(path)
    assert.eq(r.status, 200, "GET " + path)
    return r
`,
	})
	if err := a.Test(context.Background()); err != nil {
		t.Errorf("Test: %v", err)
	}
	if n := strings.Count(log.String(), "main loaded"); n != 1 {
		t.Errorf("main.star ran %d times, want once: tests load the started modules", n)
	}
}

func TestTestsFail(t *testing.T) {
	a, _ := start(t, map[string]string{
		"main.star": testedMain,
		"main_test.star": `
def test_eq():
    assert.eq(app.get("/nope").status, 200)

def test_eq_message():
    assert.eq(1, 2, "numbers")

def test_ne():
    assert.ne("a", "a")

def test_true():
    assert.true(0, msg="zero")

def test_contains():
    assert.contains([1], 2)

def test_fails_but_succeeds():
    assert.fails(lambda: 1, "x")

def test_fails_otherwise():
    assert.fails(lambda: fail("a"), "b")

def test_error():
    x = {}["k"]

def test_route():
    http.route("GET", "/x", str)

def test_spin():
    while True:
        pass

def test_passes_after_failures():
    assert.eq(1, 1)

def helper():
    fail("not a test")
`,
		"other_test.star": `x = 1 // 0`,
	}, fiat.Config{Kind: fiat.Script, MaxSteps: 10_000, Timeout: time.Minute})
	err := a.Test(context.Background())
	if _, ok := err.(fiat.Problems); !ok {
		t.Fatalf("Test: got %v, want fiat.Problems", err)
	}
	want := `main_test.star:3:14: test_eq: assert.eq: got 404, want 200
main_test.star:6:14: test_eq_message: assert.eq: numbers: got 1, want 2
main_test.star:9:14: test_ne: assert.ne: got "a", want anything else
main_test.star:12:16: test_true: assert.true: zero: got 0, want a true value
main_test.star:15:20: test_contains: assert.contains: [1] does not contain 2
main_test.star:18:17: test_fails_but_succeeds: assert.fails: lambda succeeded, want an error matching "x"
main_test.star:21:17: test_fails_otherwise: assert.fails: lambda failed with "fail: a", want an error matching "b"
main_test.star:24:11: test_error: key "k" not in dict
main_test.star:27:15: test_route: http.route: routes are declared at the top level of a module, while the version starts; not in a handler or a test
main_test.star:29:1: test_spin exceeded its limit of 10000 execution steps (max_steps in fiat.toml)
other_test.star:1:7: floored division by zero`
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}

func TestTestsNone(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": okMain})
	if err := a.Test(context.Background()); err != nil {
		t.Errorf("Test: got %v, want nil", err)
	}
}

func TestTestsCanceled(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": okMain, "main_test.star": "def test_spin():\n    while True:\n        pass\n"},
		fiat.Config{Kind: fiat.Script, MaxSteps: 1 << 62, Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Test(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Test: got %v, want %v", err, context.DeadlineExceeded)
	}
}

// TestTestLogsAreNotTraffic checks that what a version logs while its tests
// run, on every deploy, goes at debug level and names the test, so that it
// is not mistaken for the service's traffic.
func TestTestLogsAreNotTraffic(t *testing.T) {
	p, err := Compile(version(map[string]string{
		"main.star": `
def hello(req):
    log("hello", req.params["name"])
    return "hi"

http.route("GET", "/hello/{name}", hello)
http.route("GET", "/broken", lambda req: 1 // 0)
`,
		"main_test.star": `
log("test file loaded")

def test_hello():
    log("calling hello")
    assert.eq(app.get("/hello/tester").body, "hi")
    assert.eq(app.get("/broken").status, 500)
`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	log := &logBuffer{}
	a, err := p.Start(Options{Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Test(context.Background()); err != nil {
		t.Fatal(err)
	}
	do(a, "GET", "/hello/user", "")
	do(a, "GET", "/broken", "")
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	for _, want := range []string{
		`level=DEBUG msg="test file loaded" service=hello version=\S+ test=main_test.star$`,
		`level=DEBUG msg="calling hello" service=hello version=\S+ test=test_hello$`,
		`level=DEBUG msg="hello tester" service=hello version=\S+ test=test_hello$`,
		`level=DEBUG msg="main.star:7: floored division by zero" .* test=test_hello$`,
		`level=INFO msg="hello user" service=hello version=\S+$`,
		`level=ERROR msg="main.star:7: floored division by zero" .* status=500$`,
	} {
		if !slices.ContainsFunc(lines, regexp.MustCompile(want).MatchString) {
			t.Errorf("no log line matches %s; log:\n%s", want, log)
		}
	}
}
