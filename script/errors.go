package script

import (
	"errors"

	"github.com/fiatdev/fiat"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// origin finds where in the user's code err happened and what it says
// there: the innermost Starlark error of the chain (a failing load wraps the
// loaded module's error) and its innermost frame that is not a built-in.
func origin(err error) (string, syntax.Position) {
	var inner *starlark.EvalError
	for e := err; e != nil; e = errors.Unwrap(e) {
		if ee, ok := e.(*starlark.EvalError); ok {
			inner = ee
		}
	}
	if inner == nil {
		return err.Error(), syntax.Position{}
	}
	for i := range inner.CallStack {
		if pos := inner.CallStack.At(i).Pos; pos.Filename() != "<builtin>" {
			return inner.Msg, pos
		}
	}
	return inner.Msg, syntax.Position{}
}

func problemAt(pos syntax.Position, msg string) fiat.Problem {
	if !pos.IsValid() {
		return fiat.Problem{Message: msg}
	}
	return fiat.Problem{Path: pos.Filename(), Line: int(pos.Line), Col: int(pos.Col), Message: msg}
}

// compileProblems turns the error of parsing and resolving one file into
// problems: the first syntax error, or every resolve error.
func compileProblems(err error) fiat.Problems {
	var syntaxErr syntax.Error
	var resolveErrs resolve.ErrorList
	switch {
	case errors.As(err, &syntaxErr):
		return fiat.Problems{problemAt(syntaxErr.Pos, syntaxErr.Msg)}
	case errors.As(err, &resolveErrs):
		ps := make(fiat.Problems, len(resolveErrs))
		for i, e := range resolveErrs {
			ps[i] = problemAt(e.Pos, e.Msg)
		}
		return ps
	}
	return fiat.Problems{{Message: err.Error()}}
}

// atLine locates msg at pos's file and line, as responses and the log show
// errors.
func atLine(pos syntax.Position, msg string) string {
	p := problemAt(pos, msg)
	p.Col = 0
	return p.String()
}
