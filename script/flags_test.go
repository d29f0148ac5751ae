package script

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
)

// onFlags are flags on when listed.
type onFlags map[string]bool

func (f onFlags) Flag(name string) bool { return f[name] }
func (f onFlags) Header() string        { return "" }

// A handler reads the flags the router evaluated for its request.
func TestFlagReadsTheRequestsFlags(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
http.route("GET", "/", lambda req: "new" if flag("new_checkout") else "old")
`})
	for _, c := range []struct {
		flags onFlags
		want  string
	}{{onFlags{"new_checkout": true}, "new"}, {onFlags{"other": true}, "old"}} {
		r := httptest.NewRequestWithContext(fiat.WithFlags(context.Background(), c.flags), "GET", "/", nil)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		if w.Body.String() != c.want {
			t.Errorf("with %v: %q, want %q", c.flags, w.Body, c.want)
		}
	}
	if got := do(a, "GET", "/", "").body; got != "old" {
		t.Errorf("a request with no flags: %q, want old", got)
	}
}

func TestFlagRefusesMisuse(t *testing.T) {
	got := problems(t, map[string]string{"main.star": `
on = flag("beta")
http.route("GET", "/", lambda req: "x")
`})
	if !strings.Contains(got, "main.star:2:10") || !strings.Contains(got, "not at the top level of a module") {
		t.Errorf("flag at top level: %s", got)
	}
	a, _ := start(t, map[string]string{"main.star": `
http.route("GET", "/bad", lambda req: flag("New Checkout"))
http.route("GET", "/none", lambda req: flag())
`})
	if r := do(a, "GET", "/bad", ""); r.status != http.StatusInternalServerError || !strings.Contains(r.body, "flag names use lowercase letters") {
		t.Errorf("flag with a bad name: %d %s", r.status, r.body)
	}
	if r := do(a, "GET", "/none", ""); r.status != http.StatusInternalServerError || !strings.Contains(r.body, "missing argument for name") {
		t.Errorf("flag without a name: %d %s", r.status, r.body)
	}
}

// testProblems runs the tests of files and returns their problems.
func testProblems(t *testing.T, files map[string]string) string {
	t.Helper()
	a, _ := start(t, files)
	err := a.Test(context.Background())
	if err == nil {
		return ""
	}
	if _, ok := err.(fiat.Problems); !ok {
		t.Fatalf("Test: %v", err)
	}
	return err.Error()
}

// A test runs once per combination of the flags it reads, itself or in
// the handlers it calls, even those it reads only when another is on; a
// failure names its combination.
func TestTestsRunAcrossFlags(t *testing.T) {
	main := map[string]string{"main.star": `
def checkout(req):
    if flag("new_checkout"):
        if flag("fast_pay"):
            return "new fast"
        return "new"
    return "old"

http.route("GET", "/checkout", checkout)
`}
	main["main_test.star"] = `
def test_checkout():
    body = app.get("/checkout").body
    if flag("beta"):
        assert.ne(body, "new fast")
`
	got := testProblems(t, main)
	if got != "main_test.star:5:18: test_checkout [beta=on, fast_pay=on, new_checkout=on]: assert.ne: got \"new fast\", want anything else" {
		t.Errorf("a test failing only with every flag on: %q", got)
	}
	main["main_test.star"] = `
def test_checkout():
    assert.true(app.get("/checkout").body in ["old", "new", "new fast"])
`
	if got := testProblems(t, main); got != "" {
		t.Errorf("a test that passes in every combination: %s", got)
	}
}

// A test reading more flags than are combined runs 2^maxTestFlags times,
// the flags beyond them off.
func TestTestFlagsAreCapped(t *testing.T) {
	got := testProblems(t, map[string]string{
		"main.star": `http.route("GET", "/", lambda req: "x")`,
		"main_test.star": `
def test_many():
    on = [name for name in ["a", "b", "c", "d", "e", "f", "g"] if flag(name)]
    log("run", len(on))
    assert.true(not flag("g"), "g is on")
    assert.true(len(on) < 6, "all six on")
`})
	if !strings.Contains(got, "test_many [a=on, b=on, c=on, d=on, e=on, f=on]: assert.true: all six on") {
		t.Errorf("six flags combined: %q", got)
	}
}

// A process a test calls hears the test's flags in Fiat-Flags.
func TestTestFlagsReachCalledServices(t *testing.T) {
	called := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(fiat.FlagsFrom(r.Context()).Header()))
	})
	p, err := Compile(version(map[string]string{
		"main.star": `http.route("GET", "/", lambda req: "x")`,
		"main_test.star": `
def test_header():
    flag("b")
    flag("a")
    header = services.api.get("/").body
    assert.true(header in ["a=off, b=off", "a=off, b=on", "a=on, b=off", "a=on, b=on"], header)
    assert.ne(header, "a=on, b=off")
`}))
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Start(Options{Uses: map[string]http.Handler{"api": called}})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Test(context.Background())
	if err == nil || !strings.Contains(err.Error(), "test_header [a=on, b=off]: assert.ne") {
		t.Errorf("Test = %v, want test_header to fail with a on and b off", err)
	}
}
