// Package store defines where fiat keeps its state: versions, envs and the
// history of every change to them. Implementations live in subpackages
// (store/sqlite now, store/postgres when several nodes share state) and
// must accept the same portable SQL semantics: every change is one
// transaction, durable once its commit returns.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/fiatdev/fiat"
)

// Errors an implementation returns, wrapped with detail; match with errors.Is.
var (
	ErrNotFound   = errors.New("not found")
	ErrAmbiguous  = errors.New("ambiguous hash prefix")
	ErrNoPrevious = errors.New("no previous version")
	ErrEnvExists  = errors.New("env already exists")
	// ErrConflict is a change whose Expect no longer holds: another
	// change came first.
	ErrConflict = errors.New("conflicting change")
	// ErrStoreGone is every change once the store's file was deleted or
	// replaced under the running server: a change written there would be
	// lost.
	ErrStoreGone = errors.New("the store's file was deleted or replaced")
	// ErrRollingOut is a change to a service that is rolling out, which
	// waits for its rollout to finish or abort.
	ErrRollingOut = errors.New("rolling out")
	// ErrUnavailable is a change or read that could not reach the store's
	// database server; it may work once the server is back.
	ErrUnavailable = errors.New("the store is unreachable")
)

// Store is fiat's durable state.
type Store interface {
	// Apply carries out c in one short transaction, and returns what it
	// did once that is durable: it survives a crash or power loss. A
	// change that fails changes nothing. Changes are serialized, so
	// validate versions before, never inside, Apply.
	Apply(ctx context.Context, c Change) (Record, error)
	// State is everything the router needs to serve: every env's mapping
	// and every version's metadata, without files.
	State(ctx context.Context) (State, error)
	// Version returns one version with its files.
	Version(ctx context.Context, id fiat.Hash) (*fiat.Version, error)
	// Resolve finds the version of service whose hash starts with prefix.
	Resolve(ctx context.Context, service, prefix string) (fiat.Hash, error)
	// Versions lists the versions of service, newest first.
	Versions(ctx context.Context, service string) ([]VersionInfo, error)
	// Env returns one env's mapping.
	Env(ctx context.Context, name string) (fiat.Env, error)
	// Changes returns the records of up to limit changes committed after
	// the one at position after (0 for all), oldest first. A change's
	// position is its record's ID, and every change commits after those
	// with lower positions: a reader that has seen a position has seen
	// every change before it.
	Changes(ctx context.Context, after int64, limit int) ([]Record, error)
	// AdminToken returns the admin token every node sharing the store
	// accepts, storing create() as the token if there is none yet.
	AdminToken(ctx context.Context, create func() string) (string, error)
	// PutBuild keeps what a build made, an archive, under key, the hash
	// of what was built, for the other nodes; keeping it again does
	// nothing. Build returns it, or ErrNotFound.
	PutBuild(ctx context.Context, key fiat.Hash, archive []byte) error
	Build(ctx context.Context, key fiat.Hash) ([]byte, error)
	// FlagLog returns every change of the flag name of env, oldest first,
	// ErrNotFound if it never had one.
	FlagLog(ctx context.Context, env, name string) ([]FlagEntry, error)
	// Wait returns once a change after position may have committed, or
	// with ctx's error when ctx ends. It may return early: read Changes
	// to know.
	Wait(ctx context.Context, after int64) error
	Close() error
}

// Change is one transaction against the store. Exactly one of its
// operations (Set and Undo together count as one) is given.
type Change struct {
	// Env is the env the change applies to.
	Env string
	// Kind records why, in the history: "deploy", "rollback", "promote",
	// "fork", "delete", "scale", "config", "rollout", "rollout-finish",
	// "rollout-abort", "flag", "flag-delete", "user-key".
	Kind string
	// Versions are stored if not already there (content-addressed, so
	// storing an existing version again is a no-op).
	Versions []*fiat.Version
	// Set points services of Env at versions, creating Env if it is new
	// (unless Existing).
	Set map[string]fiat.Hash
	// Undo points each named service of Env back at the version it had
	// before its current one was set, stepping further back each time it is
	// repeated, like an undo stack. ErrNoPrevious if there is none.
	Undo []string
	// CopyFrom points every service of the env named here at the version
	// it has there, in Env. With Create, Env must not exist yet (fork),
	// and gets the flags and user key source of the env too.
	CopyFrom string
	// Create requires Env to be new (ErrEnvExists otherwise).
	Create bool
	// Existing requires Env to exist, and every service that Set names to
	// be in it already (ErrNotFound otherwise): a rollback or a promote
	// never makes an env or a service.
	Existing bool
	// Delete removes Env, its mapping and its flags; history is kept.
	Delete bool
	// Scale sets how many instances of each named service Env runs, each
	// service already in Env (ErrNotFound otherwise), 0 to fiat.MaxInstances.
	Scale map[string]int
	// Rollout starts, changes or ends one of Env's rollouts. Set, Undo and
	// CopyFrom never move a service that is rolling out: they are refused
	// (ErrRollingOut) until its rollout finishes or aborts.
	Rollout *RolloutChange
	// Flag sets or deletes one of Env's flags, which must exist.
	Flag *FlagChange
	// UserKey sets where requests to Env, which must exist, carry the user
	// key.
	UserKey *fiat.UserKeySource
	// Expect, when not nil, is what the change was decided on: for each
	// service named, the version Env must still point it at ("" for none).
	// If any differs, nothing changes and the error wraps ErrConflict.
	Expect map[string]fiat.Hash
}

// FlagChange sets or deletes one flag of an env.
type FlagChange struct {
	Name string
	// Set changes the flag as it says, making it if the env has no flag
	// Name (at most fiat.MaxFlags); nil deletes the flag (ErrNotFound if
	// there is none).
	Set *fiat.FlagPatch
}

// FlagEntry is one change of a flag of an env, in the flag's log.
type FlagEntry struct {
	// Position is the change's, in the store's history.
	Position int64     `json:"position"`
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	// Flag is the flag once changed; nil if the change deleted it (or
	// its env).
	Flag *fiat.Flag `json:"flag"`
}

// RolloutChange is one change to an env's rollouts.
type RolloutChange struct {
	Op RolloutOp
	// Rollout is, to start, the whole rollout, each of its candidates a
	// stored version (or one of Versions) of a service that is in no other
	// rollout, Expect giving the versions it replaces. For the other ops,
	// it names the rollout by ID; Percent, Users and Auto are what an
	// update sets, and Verdict, which any op sets, says why.
	Rollout fiat.Rollout
	// Revision, if not nil, is the revision of the rollout the change was
	// decided on: if the rollout changed since, nothing changes and the
	// error wraps ErrConflict.
	Revision *int
}

// RolloutOp is what a RolloutChange does.
type RolloutOp int

const (
	// StartRollout starts a rollout of candidates.
	StartRollout RolloutOp = iota + 1
	// UpdateRollout changes a rollout's percent, users, plan and verdict.
	UpdateRollout
	// FinishRollout points each service at its candidate, in one step, and
	// ends the rollout.
	FinishRollout
	// AbortRollout ends the rollout; its services stay where they are.
	AbortRollout
)

// Record is what one change did: enough for a router to serve it.
type Record struct {
	// ID is the change's position in the store's history.
	ID   int64     `json:"id"`
	Env  string    `json:"env"`
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	// Switched lists each service whose version changed.
	Switched []Switch `json:"switched"`
	// After is Env's mapping once the change is applied: empty if it
	// deleted Env, the zero Env if Env does not exist.
	After fiat.Env `json:"after"`
	// Deleted says the change deleted Env.
	Deleted bool `json:"deleted,omitempty"`
	// Ended is the rollout a finish or abort ended, as it was then.
	Ended *fiat.Rollout `json:"ended,omitempty"`
	// Versions are those the change stored, which no change stored before.
	Versions []VersionInfo `json:"versions,omitempty"`
	// Follows is the position of the change committed just before this
	// one, as Apply returns it: a reader at that position may take this
	// record as the next, without reading the history. 0 from Changes.
	Follows int64 `json:"-"`
}

// Switch is one service moving from one version to another in an env.
// From is empty when the service is new to the env.
type Switch struct {
	Service string    `json:"service"`
	From    fiat.Hash `json:"from,omitempty"`
	To      fiat.Hash `json:"to"`
}

// State is the routable state.
type State struct {
	Envs     []fiat.Env
	Versions []VersionInfo
	// Position is that of the last change the state includes.
	Position int64
}

// VersionInfo is a version's metadata.
type VersionInfo struct {
	ID      fiat.Hash   `json:"id"`
	Service string      `json:"service"`
	Config  fiat.Config `json:"config"`
	// Uses maps each service the version calls to the version it calls.
	Uses    map[string]fiat.Hash `json:"uses,omitempty"`
	Created time.Time            `json:"created"`
	// Envs lists the envs now pointing at this version (Versions only).
	Envs []string `json:"envs"`
}
