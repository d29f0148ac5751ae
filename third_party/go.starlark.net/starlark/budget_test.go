package starlark_test

// fiat: tests of fiat's changes (see FIAT.md): each runs a script that
// would run for minutes, exhaust memory or overflow the stack, and checks
// that the thread's budgets stop it promptly with a clear error.

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// run executes src on a thread with the given step and allocation limits
// (0: none) and returns its error, failing the test if it took longer
// than a generous bound.
func run(t *testing.T, src string, maxSteps, maxAllocs uint64) error {
	t.Helper()
	thread := &starlark.Thread{}
	thread.SetMaxExecutionSteps(maxSteps)
	thread.SetMaxAllocs(maxAllocs)
	start := time.Now()
	_, err := execScript(thread, src)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
	return err
}

// execScript executes src on thread, in the dialect fiat's scripts use, with the
// json module.
func execScript(thread *starlark.Thread, src string) (starlark.StringDict, error) {
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}
	return starlark.ExecFileOptions(opts, thread, "budget.star", src, starlark.StringDict{"json": json.Module})
}

func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got error %v, want one containing %q", err, want)
	}
}

// Keys whose hashes collide make every insertion compare them all. Steps
// bound that work.
func TestCollidingKeysRunOutOfSteps(t *testing.T) {
	keys := make([]starlark.Value, 200000)
	for i := range keys {
		keys[i] = collider(i)
	}
	thread := &starlark.Thread{}
	thread.SetMaxExecutionSteps(5_000_000)
	_, err := starlark.Call(thread, starlark.Universe["set"], starlark.Tuple{starlark.NewList(keys)}, nil)
	wantError(t, err, "too many steps")
}

// collider is a value whose hash is that of every other.
type collider int

func (c collider) String() string        { return "collider" }
func (c collider) Type() string          { return "collider" }
func (c collider) Freeze()               {}
func (c collider) Truth() starlark.Bool  { return true }
func (c collider) Hash() (uint32, error) { return 1, nil }

// Seeded hashes keep keys from colliding by construction.
func TestKeysDoNotCollide(t *testing.T) {
	for name, keys := range map[string]string{
		// Floats between 0 and 1 all hashed as the int 0.
		"fractions": `[1.0 / (i + 2) for i in range(200000)]`,
		// Ints hashed by their lowest 32 bits only.
		"ints": `[i * 4294967296 for i in range(200000)]`,
		// Functions hashed by their name.
		"lambdas": `[lambda: i for i in range(200000)]`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := run(t, "set("+keys+")", 5_000_000, 0); err != nil {
				t.Error(err)
			}
		})
	}
}

// Values that share their elements are small but take exponential time
// to hash or compare element by element.
func TestSharedStructureRunsOutOfSteps(t *testing.T) {
	const build = `
t = tuple(range(100))
u = tuple([x for x in range(100)])
for i in range(5):
    t = (t,) * 100
    u = (u,) * 100
`
	for name, use := range map[string]string{
		"hash":    "{t: 1}",
		"compare": "t == u",
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, run(t, build+use, 10_000_000, 0), "too many steps")
		})
	}
}

func TestDeepTupleIsNotHashed(t *testing.T) {
	err := run(t, "t = ()\nfor i in range(100000):\n    t = (t,)\n{t: 1}", 0, 0)
	wantError(t, err, "cannot hash a tuple nested more than 1000 levels deep")
}

// Freezing used to recurse: a function that refers to itself through a
// cell never ended, and values that share tuples took exponential time.
func TestFreeze(t *testing.T) {
	for name, src := range map[string]string{
		"closure on itself": `
def outer():
    def g():
        return g
    return g
x = outer()
`,
		"shared tuples": `
t = ([],)
for i in range(60):
    t = (t, t)
`,
		"deep list": `
x = []
for i in range(100000):
    x = [x]
`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := run(t, src, 0, 0); err != nil {
				t.Error(err)
			}
		})
	}
}

// Each of these would allocate gigabytes. The budget refuses them before
// they allocate, after charging only what a script of this size can.
func TestAllocationBudget(t *testing.T) {
	const budget = 16 << 20
	for name, src := range map[string]string{
		"string repeat": `"x" * 1000000000`,
		"list repeat":   `[1] * 100000000`,
		"tuple repeat":  `(1,) * 100000000`,
		"concatenation": "s = 'x' * 1000000\nfor i in range(100):\n    s = s + s",
		"list growth":   "l = []\nfor i in range(10000000):\n    l.append(i)",
		"comprehension": `[i for i in range(10000000)]`,
		"dict growth":   "{i: i for i in range(10000000)}",
		"set growth":    "set(range(10000000))",
		"join":          `",".join(["x" * 1000000] * 1000)`,
		"replace":       `("x" * 1000).replace("x", "y" * 1000000)`,
		"format":        `("{}" * 1000).format(*(["x" * 1000000] * 1000))`,
		"interpolation": `("%s" * 1000) % tuple(["x" * 1000000] * 1000)`,
		"str":           `str(["x" * 1000000] * 1000)`,
		"repr":          `repr(("x" * 1000000,) * 1000)`,
		"list of range": `list(range(1000000000))`,
		"sorted range":  `sorted(range(1000000000))`,
		"zip":           `zip(range(1000000000), range(1000000000))`,
		"enumerate":     `enumerate(range(1000000000))`,
		"split":         `("," * 10000000).split(",")`,
		"upper":         "s = 'x' * 1000000\nfor i in range(100):\n    s.upper()",
		"slice":         "l = [1] * 1000000\nfor i in range(100):\n    l[::-1]",
		"args":          "def f(*args): return args\nf(*range(100000000))",
		"dict items":    "d = {i: i for i in range(100000)}\nfor i in range(100):\n    d.items()",
		"print":         "print(*(['x' * 1000000] * 1000))",
		"fail":          "fail(*(['x' * 1000000] * 1000))",
		"json encode":   `json.encode(["x" * 1000000] * 1000)`,
		"json indent":   `json.indent("[" * 1000 + "]" * 1000, indent = "x" * 1000000)`,
		"json decode":   `json.decode("[" + ",".join(["1"] * 10000000) + "]")`,
		"int":           "x = 1 << 500\nl = []\nfor i in range(100000):\n    l.append(x + i)",
	} {
		t.Run(name, func(t *testing.T) {
			thread := &starlark.Thread{}
			thread.SetMaxAllocs(budget)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := execScript(thread, src)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			wantError(t, err, "too many allocations")
			if thread.Allocs <= budget {
				t.Errorf("charged %d bytes, want more than the budget", thread.Allocs)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 8*budget {
				t.Errorf("allocated %d bytes under a budget of %d", grew, budget)
			}
		})
	}
}

// Built-ins charge steps for their work, so that the step limit bounds the
// CPU a thread uses, not only the instructions it runs.
func TestBuiltinsChargeSteps(t *testing.T) {
	const prelude = "big = list(range(3000000))\n"
	for name, src := range map[string]string{
		"all":    "all(big[1:])",
		"any":    "any([0] * 3000000)",
		"min":    "min(big)",
		"sorted": "sorted(big, reverse = True)",
		"in":     "-1 in big",
		"index":  "big.index(2999999)",
		"join":   "','.join([str(x) for x in range(10)] * 300000)",
		"set":    "set(big)",
		"dict":   "dict([(x, x) for x in range(10)] * 300000)",
		"str":    "str(big)",
		"json":   "json.encode(big)",
		"count":  "s = 'x' * 60000000\nfor i in range(10):\n    s.count('y')",
		"equal":  "big == list(big)",
		"extend": "l = []\nl.extend(big)\nl.extend(big)",
	} {
		t.Run(name, func(t *testing.T) {
			thread := &starlark.Thread{}
			thread.SetMaxExecutionSteps(4_000_000)
			_, err := execScript(thread, prelude+src)
			wantError(t, err, "too many steps")
		})
	}
}

// Ints are bounded in size: multiplying and converting them takes time
// that grows faster than their size, and a built-in cannot stop halfway.
func TestIntSize(t *testing.T) {
	for name, src := range map[string]string{
		"multiplication": "x = 3\nfor i in range(100):\n    x = x * x",
		"shift":          "x = 1\nfor i in range(1000):\n    x = x << 500",
		"addition":       "x = 1\nfor i in range(131):\n    x = x << 500\nx = x << 35\nx + x",
		"int of string":  `int("9" * 100000)`,
		"json":           `json.decode("9" * 100000)`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := execScript(&starlark.Thread{}, src)
			wantError(t, err, "limit of 65536 bits")
		})
	}
	_, err := execScript(&starlark.Thread{}, "x = "+strings.Repeat("9", 30000))
	wantError(t, err, "int literal too long: more than 20000 digits")
}

// Values nested deeper than NestingLimit are refused by every walk that
// recurses, rather than exhausting the goroutine's stack; a million
// levels used to kill the process.
func TestNesting(t *testing.T) {
	const deepList = "x = []\nfor i in range(1000000):\n    x = [x]\n"
	for name, src := range map[string]string{
		"str":                      deepList + "str(x)",
		"json encode":              deepList + "json.encode(x)",
		"json decode":              `json.decode("[" * 1000000 + "]" * 1000000)`,
		"json decode with default": `json.decode("[" * 1000000, None)`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := execScript(&starlark.Thread{}, src)
			wantError(t, err, "nested more than 1000 levels deep")
		})
	}
	// String, used in error messages, elides instead.
	x := starlark.NewList(nil)
	for range 100000 {
		x = starlark.NewList([]starlark.Value{x})
	}
	if s := x.String(); !strings.Contains(s, "[...]") || len(s) > 3000 {
		t.Errorf("String of a deep list: %.100s... (%d bytes)", s, len(s))
	}
}

// A value that shares its elements can print to more than fits in memory.
// String stops at a bound; str charges the thread as it writes.
func TestStringOfSharedValue(t *testing.T) {
	x := starlark.Tuple{starlark.String(strings.Repeat("x", 1000))}
	for range 4 {
		x = starlark.Tuple{x, x, x, x, x, x, x, x, x, x}
	}
	if s := x.String(); len(s) > 1<<20+100 || !strings.HasSuffix(s, "...") {
		t.Errorf("String of a value of 10 MB: %d bytes, ending %q", len(s), s[len(s)-10:])
	}
}
