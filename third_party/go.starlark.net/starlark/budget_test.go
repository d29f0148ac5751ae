package starlark_test

// fiat: tests of fiat's changes (see FIAT.md): each runs a script that
// would run for minutes, exhaust memory or overflow the stack, and checks
// that the thread's budgets stop it promptly with a clear error.

import (
	"strings"
	"testing"
	"time"

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
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}
	start := time.Now()
	_, err := starlark.ExecFileOptions(opts, thread, "budget.star", src, nil)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
	return err
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
