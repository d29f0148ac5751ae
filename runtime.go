package fiat

import (
	"context"
	"net/http"
	"time"
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
	// files. uses serves the requests the version sends to each service
	// it uses, by name: to exactly the version of it that the version's
	// Uses names, and to nothing else.
	Start(ctx context.Context, id Hash, version func(context.Context) (*Version, error), uses map[string]http.Handler) (Running, error)
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

// Supervised is a Running version whose instances fiat supervises: a
// process service's. `fiat ps`, `fiat logs` and `fiat restart` reach it.
type Supervised interface {
	// Instances describes each instance, web and workers.
	Instances() []Instance
	// Logs returns the last n lines the instances wrote, oldest first.
	Logs(n int) []LogLine
	// Follow sends each line written from now on, until ctx ends.
	Follow(ctx context.Context) <-chan LogLine
	// Restart replaces every instance with a new one, one after the
	// other, each new one ready before the old one stops.
	Restart(ctx context.Context) error
}

// Instance is one instance of a running version.
type Instance struct {
	// ID names the instance within its version: web.1, web.2, jobs.1.
	ID string `json:"id"`
	// Type is web, or the name of a worker.
	Type string `json:"type"`
	PID  int    `json:"pid,omitempty"`
	// State is starting, ready, running (a worker), crashed, restarting
	// or stopped.
	State    string    `json:"state"`
	Restarts int       `json:"restarts"`
	Started  time.Time `json:"started"`
	// MemoryBytes is the instance's resident memory.
	MemoryBytes uint64 `json:"memory_bytes"`
}

// LogLine is one line an instance wrote to its output.
type LogLine struct {
	Time     time.Time `json:"time"`
	Version  Hash      `json:"version"`
	Instance string    `json:"instance"`
	Text     string    `json:"text"`
}
