package deploy

import (
	"context"
	"fmt"
)

// A deploy can tell someone waiting for it how it goes: `git push` shows
// these lines as remote: lines while the deploy runs.

type progressKey struct{}

// WithProgress returns ctx with report, which is told each step of the
// deploys made with ctx, a line each, as they happen.
func WithProgress(ctx context.Context, report func(line string)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// progress tells ctx's report, if it has one, a step.
func progress(ctx context.Context, format string, args ...any) {
	if report, ok := ctx.Value(progressKey{}).(func(string)); ok {
		report(fmt.Sprintf(format, args...))
	}
}
