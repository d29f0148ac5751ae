package fiat

import (
	"context"
	"net/http"
)

// A Runtime runs the versions of one kind of service. Deploy and the
// router know versions only through it: they never see what a script or a
// process is.
type Runtime interface {
	// Start readies the version id and starts it: compiles a script and
	// runs its top level; builds a process (once per version) and starts
	// its instances until they are ready. version gives the version with
	// its files, from the store, if the runtime kept nothing of an earlier
	// start that lets it start without (a compiled program, a build). An
	// error that is the version's own fault is Problems, located in its
	// files.
	Start(ctx context.Context, id Hash, version func(context.Context) (*Version, error)) (Running, error)
}

// Running is a started version.
type Running interface {
	// ServeHTTP serves a request to the version.
	http.Handler
	// Test runs the version's tests against it, before it serves
	// anything, and fails with Problems if one fails.
	Test(ctx context.Context) error
	// Stop stops the version once the requests in flight are answered,
	// or when ctx ends.
	Stop(ctx context.Context) error
}

// Scaler is a Running version whose number of instances can change: a
// process service's.
type Scaler interface {
	Scale(ctx context.Context, n int) error
}
