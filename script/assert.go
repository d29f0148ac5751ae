package script

import (
	"fmt"
	"regexp"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// assertModule is `assert` in test files. A failed assertion is an error,
// located at the assert call, that fails the test.
var assertModule = &starlarkstruct.Module{Name: "assert", Members: starlark.StringDict{
	"eq":       starlark.NewBuiltin("assert.eq", assertEq),
	"ne":       starlark.NewBuiltin("assert.ne", assertNe),
	"true":     starlark.NewBuiltin("assert.true", assertTrue),
	"contains": starlark.NewBuiltin("assert.contains", assertContains),
	"fails":    starlark.NewBuiltin("assert.fails", assertFails),
}}

// assertionFailed is the error of a failed assertion; msg is the optional
// message the test gave.
func assertionFailed(b *starlark.Builtin, msg starlark.Value, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if msg != starlark.None {
		text, ok := starlark.AsString(msg)
		if !ok {
			text = msg.String()
		}
		what = text + ": " + what
	}
	return fmt.Errorf("%s: %s", b.Name(), what)
}

func assertEq(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var got, want starlark.Value
	var msg starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "got", &got, "want", &want, "msg?", &msg); err != nil {
		return nil, err
	}
	eq, err := starlark.EqualThread(thread, got, want)
	if err != nil {
		return nil, err
	}
	if !eq {
		return nil, assertionFailed(b, msg, "got %s, want %s", got, want)
	}
	return starlark.None, nil
}

func assertNe(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var got, unwanted starlark.Value
	var msg starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "got", &got, "unwanted", &unwanted, "msg?", &msg); err != nil {
		return nil, err
	}
	eq, err := starlark.EqualThread(thread, got, unwanted)
	if err != nil {
		return nil, err
	}
	if eq {
		return nil, assertionFailed(b, msg, "got %s, want anything else", got)
	}
	return starlark.None, nil
}

func assertTrue(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cond starlark.Value
	var msg starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "cond", &cond, "msg?", &msg); err != nil {
		return nil, err
	}
	if !cond.Truth() {
		return nil, assertionFailed(b, msg, "got %s, want a true value", cond)
	}
	return starlark.None, nil
}

func assertContains(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var container, item starlark.Value
	var msg starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "container", &container, "item", &item, "msg?", &msg); err != nil {
		return nil, err
	}
	in, err := starlark.BinaryThread(thread, syntax.IN, item, container)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if !in.Truth() {
		return nil, assertionFailed(b, msg, "%s does not contain %s", container, item)
	}
	return starlark.None, nil
}

// assertFails calls fn, which must fail with an error matching pattern, and
// returns the error's message.
func assertFails(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var fn starlark.Callable
	var pattern string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "fn", &fn, "pattern", &pattern); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	_, err = starlark.Call(thread, fn, nil, nil)
	if err == nil {
		return nil, assertionFailed(b, starlark.None, "%s succeeded, want an error matching %q", fn.Name(), pattern)
	}
	if !re.MatchString(err.Error()) {
		return nil, assertionFailed(b, starlark.None, "%s failed with %q, want an error matching %q", fn.Name(), err.Error(), pattern)
	}
	return starlark.String(err.Error()), nil
}
