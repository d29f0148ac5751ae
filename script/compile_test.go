package script

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

const okMain = `http.route("GET", "/", lambda req: "ok")` + "\n"

func TestCompileProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"syntax error", map[string]string{"main.star": "def f(:\n"},
			"main.star:1:8: got ':', want ')'"},
		{"every undefined name", map[string]string{"main.star": okMain + "x = foo\ny = bar(baz)\n"},
			"main.star:2:5: undefined: foo\nmain.star:3:5: undefined: bar\nmain.star:3:9: undefined: baz"},
		{"every file", map[string]string{"main.star": okMain + "x = foo\n", "lib.star": "y = (\n", "z.star": "w = nope"},
			"lib.star:2:1: got end of file, want primary expression\nmain.star:2:5: undefined: foo\nz.star:1:5: undefined: nope"},
		{"no main.star", map[string]string{"lib.star": "x = 1"},
			"main.star: no such file: a script service starts from main.star"},
		{"test names outside tests", map[string]string{"main.star": okMain + "assert.eq(app, 1)\n"},
			"main.star:2:1: undefined: assert\nmain.star:2:11: undefined: app"},
		{"test file", map[string]string{"main.star": okMain, "main_test.star": "def test_x():\n    assert.eq(1, nope)\n"},
			"main_test.star:2:18: undefined: nope"},
		{"missing module", map[string]string{"main.star": okMain + `load("lib.star", "x")`},
			`main.star:2:6: cannot load "lib.star": no such .star file in the service`},
		{"outside the service", map[string]string{"main.star": okMain + `load("../lib.star", "x")` + "\n" + `load("/lib.star", "y")`},
			`main.star:2:6: cannot load "../lib.star": load paths are relative to the service's directory and stay inside it, like "lib/util.star"` + "\n" +
				`main.star:3:6: cannot load "/lib.star": load paths are relative to the service's directory and stay inside it, like "lib/util.star"`},
		{"not a module", map[string]string{"main.star": okMain + `load("data.json", "x")`, "data.json": "{}"},
			`main.star:2:6: cannot load "data.json": no such .star file in the service`},
		{"test file from main", map[string]string{"main.star": okMain + `load("main_test.star", "x")`, "main_test.star": "x = 1"},
			`main.star:2:6: cannot load "main_test.star": only test files may load test files`},
		{"load cycle", map[string]string{"main.star": okMain + `load("a.star", "x")`, "a.star": `load("b.star", "y")` + "\nx = y", "b.star": `load("a.star", "x")` + "\ny = x"},
			"b.star:1:6: load cycle: a.star loads b.star loads a.star"},
		{"loading itself", map[string]string{"main.star": okMain + `load("main.star", "x")`},
			"main.star:2:6: load cycle: main.star loads main.star"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(version(tc.files))
			if _, ok := err.(fiat.Problems); !ok {
				t.Fatalf("got %v, want fiat.Problems", err)
			}
			if err.Error() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", err, tc.want)
			}
		})
	}
}

func TestTopLevelProblems(t *testing.T) {
	spin := okMain + "def spin():\n    n = 0\n    while True:\n        n += 1\nspin()"
	for _, tc := range []struct {
		name   string
		files  map[string]string
		config fiat.Config
		want   string
		// anyPosition is for a timer, which stops the thread anywhere in
		// its loop, including the jump back.
		anyPosition bool
	}{
		{"error", map[string]string{"main.star": okMain + "x = 1 // 0"}, fiat.Config{},
			"main.star:2:7: floored division by zero", false},
		{"error in a loaded module", map[string]string{"main.star": okMain + `load("lib/util.star", "x")`, "lib/util.star": "def f():\n    return {}[1]\nx = f()"}, fiat.Config{},
			"lib/util.star:2:14: key 1 not in dict", false},
		{"name not in module", map[string]string{"main.star": okMain + `load("lib.star", "nope")`, "lib.star": "x = 1"}, fiat.Config{},
			"main.star:2:1: load: name nope not found in module lib.star", false},
		{"step limit", map[string]string{"main.star": spin}, fiat.Config{MaxSteps: 1000},
			"main.star:5:9: top level exceeded its limit of 1000 execution steps (max_steps in fiat.toml)", false},
		{"time limit", map[string]string{"main.star": spin}, fiat.Config{Timeout: 10 * time.Millisecond},
			"main.star: top level exceeded its time limit of 10ms (timeout in fiat.toml)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.config.Kind = fiat.Script
			got := problems(t, tc.files, tc.config)
			if tc.anyPosition {
				got = regexp.MustCompile(`^main.star:\d+:\d+`).ReplaceAllString(got, "main.star")
			}
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	a, log := start(t, map[string]string{
		"main.star": `
load("lib/util.star", "greet")
load("./lib/other.star", "shout")
http.route("GET", "/{name}", lambda req: shout(greet(req.params["name"])))
`,
		"lib/util.star": `
log("util loaded")
def greet(name):
    return "hello " + name
`,
		"lib/other.star": `
load("lib/util.star", "greet")
def shout(s):
    return s.upper() + "!"
`,
		"README.md": "not a module",
	})
	if got := do(a, "GET", "/ann", ""); got.body != "HELLO ANN!" {
		t.Errorf("got %q, want %q", got.body, "HELLO ANN!")
	}
	if n := strings.Count(log.String(), "util loaded"); n != 1 {
		t.Errorf("lib/util.star ran %d times, want once:\n%s", n, log)
	}
}

// TestCompileFrom checks that a version compiled from an earlier one
// shares the modules it does not change and compiles the rest, and that
// both versions keep answering with their own code.
func TestCompileFrom(t *testing.T) {
	lib := "def greet(name):\n    return 'hello ' + name\n"
	oldFiles := map[string]string{
		"main.star": `load("lib.star", "greet")` + "\n" + `http.route("GET", "/{name}", lambda req: greet(req.params["name"]))` + "\n",
		"lib.star":  lib,
	}
	old, err := Compile(version(oldFiles))
	if err != nil {
		t.Fatal(err)
	}
	newFiles := map[string]string{
		"main.star":      `load("lib.star", "greet")` + "\n" + `http.route("GET", "/{name}", lambda req: greet(req.params["name"]) + "!")` + "\n",
		"lib.star":       lib,
		"other/lib.star": lib, // same source, other path: its positions differ
		"main_test.star": "def test_x():\n    assert.eq(app.get('/ann').body, 'hello ann!')\n",
	}
	p, err := CompileFrom(version(newFiles), old)
	if err != nil {
		t.Fatal(err)
	}
	if p.modules["lib.star"] != old.modules["lib.star"] {
		t.Errorf("unchanged lib.star was compiled again")
	}
	if p.modules["main.star"] == old.modules["main.star"] {
		t.Errorf("changed main.star was taken from the earlier version")
	}
	if p.modules["other/lib.star"] == old.modules["lib.star"] {
		t.Errorf("other/lib.star was taken from lib.star: its errors would name the wrong file")
	}
	for prog, want := range map[*Program]string{old: "hello ann", p: "hello ann!"} {
		a, err := prog.Start(discardLog)
		if err != nil {
			t.Fatal(err)
		}
		if got := do(a, "GET", "/ann", ""); got.status != 200 || got.body != want {
			t.Errorf("version %s answers %d %q, want 200 %q", prog.ID(), got.status, got.body, want)
		}
	}

	// A module that no longer compiles is reported, not taken from before.
	broken := map[string]string{"main.star": oldFiles["main.star"], "lib.star": lib + "x = nope\n"}
	if _, err := CompileFrom(version(broken), old); err == nil || !strings.Contains(err.Error(), "lib.star:3:5: undefined: nope") {
		t.Errorf("CompileFrom with a broken lib.star: %v, want lib.star:3:5: undefined: nope", err)
	}
}
