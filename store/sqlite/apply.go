package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// Begin writes c in a transaction on the writer's one connection, which
// it holds until the Pending ends.
func (db *DB) Begin(ctx context.Context, c store.Change) (store.Pending, error) {
	if err := check(c); err != nil {
		return nil, err
	}
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	rec, err := apply(ctx, writeTx{tx, db.prepared}, c, time.Now().UTC())
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return &pending{db: db, tx: tx, rec: rec}, nil
}

type pending struct {
	db  *DB
	tx  *sql.Tx
	rec store.Record
}

func (p *pending) Record() store.Record { return p.rec }

func (p *pending) Commit() error {
	if err := p.tx.Commit(); err != nil {
		return err
	}
	select {
	case p.db.committed <- struct{}{}:
	default: // checkpointWhenIdle has a wake-up pending already
	}
	return nil
}

func (p *pending) Abort() { p.tx.Rollback() }

// check refuses a change that is malformed whatever the store holds.
func check(c store.Change) error {
	if err := fiat.CheckEnvName(c.Env); err != nil {
		return err
	}
	ops := 0
	for _, given := range []bool{len(c.Set) > 0 || len(c.Undo) > 0, c.CopyFrom != "", c.Delete} {
		if given {
			ops++
		}
	}
	switch {
	case ops > 1:
		return fmt.Errorf("change to env %q: give one of Set/Undo, CopyFrom and Delete, not several", c.Env)
	case ops == 0 && len(c.Versions) == 0 && !c.Create:
		return fmt.Errorf("change to env %q changes nothing", c.Env)
	case c.Create && c.Delete:
		return fmt.Errorf("change to env %q both creates and deletes it", c.Env)
	}
	for _, v := range c.Versions {
		if len(v.ID) != fiat.HashLen || !fiat.IsHashPrefix(string(v.ID)) {
			return fmt.Errorf("version of service %q: id %q is not a version hash", v.Service, v.ID)
		}
		if err := fiat.CheckServiceName(v.Service); err != nil {
			return fmt.Errorf("version %s: %w", v.ID, err)
		}
	}
	return nil
}

// A step is one entry of the undo stack of a service in an env.
type step struct {
	version fiat.Hash
	// backTo is the history id of the step an undo returns to.
	backTo sql.NullInt64
}

// A head is the step a service of an env is at now.
type head struct {
	historyID int64
	step
}

func apply(ctx context.Context, tx writeTx, c store.Change, now time.Time) (store.Record, error) {
	rec := store.Record{Env: c.Env, Kind: c.Kind, At: now}
	if err := tx.QueryRowContext(ctx, insertRecord, c.Env, c.Kind, now.UnixNano()).Scan(&rec.ID); err != nil {
		return rec, err
	}
	for _, v := range c.Versions {
		if err := storeVersion(ctx, tx, v, now); err != nil {
			return rec, err
		}
	}
	exists, heads, err := loadEnv(ctx, tx, c.Env)
	if err != nil {
		return rec, err
	}
	switch {
	case c.Create && exists:
		return rec, fmt.Errorf("env %q: %w", c.Env, store.ErrEnvExists)
	case c.Delete:
		rec.After = fiat.Env{Name: c.Env, Services: map[string]fiat.Hash{}}
		return rec, deleteEnv(ctx, tx, c.Env, exists)
	}
	steps, err := plan(ctx, tx, c, heads)
	if err != nil {
		return rec, err
	}
	if !exists && (c.Create || len(steps) > 0) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO envs (name) VALUES ($1)`, c.Env); err != nil {
			return rec, err
		}
	}
	rec.After = fiat.Env{Name: c.Env, Services: versionsOf(heads)}
	for _, service := range slices.Sorted(maps.Keys(steps)) {
		s := steps[service]
		from := heads[service].version
		if s.version == from {
			continue
		}
		var historyID int64
		if err := tx.QueryRowContext(ctx, insertHistory, rec.ID, service, s.version, s.backTo).Scan(&historyID); err != nil {
			return rec, err
		}
		if _, err := tx.ExecContext(ctx, setHead, c.Env, service, historyID); err != nil {
			return rec, err
		}
		rec.Switched = append(rec.Switched, store.Switch{Service: service, From: from, To: s.version})
		rec.After.Services[service] = s.version
	}
	return rec, nil
}

// storeVersion stores v unless a version with its id is stored already:
// the id is the hash of the content, so that one is the same.
func storeVersion(ctx context.Context, tx writeTx, v *fiat.Version, now time.Time) error {
	config, err := json.Marshal(v.Config)
	if err != nil {
		return err
	}
	uses, err := json.Marshal(v.Uses)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, insertVersion, v.ID, v.Service, string(config), string(uses), now.UnixNano())
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 { // n == 0: stored already, files and all
		return err
	}
	for _, f := range v.Files {
		data := f.Data
		if data == nil {
			data = []byte{} // an empty file, which drivers would bind as NULL
		}
		if _, err := tx.ExecContext(ctx, insertFile, v.ID, f.Path, data); err != nil {
			return fmt.Errorf("version %s, file %q: %w", v.ID, f.Path, err)
		}
	}
	return nil
}

// querier is what both writeTx and *sql.Tx offer, so Begin and the read
// methods share reads.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadEnv reports whether env exists and, if so, the head of each of its
// services.
func loadEnv(ctx context.Context, q querier, env string) (bool, map[string]head, error) {
	var name string
	err := q.QueryRowContext(ctx, selectEnv, env).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	rows, err := q.QueryContext(ctx, selectHeads, env)
	if err != nil {
		return false, nil, err
	}
	defer rows.Close()
	heads := map[string]head{}
	for rows.Next() {
		var service string
		var h head
		if err := rows.Scan(&service, &h.historyID, &h.version, &h.backTo); err != nil {
			return false, nil, err
		}
		heads[service] = h
	}
	return true, heads, rows.Err()
}

func versionsOf(heads map[string]head) map[string]fiat.Hash {
	versions := make(map[string]fiat.Hash, len(heads))
	for service, h := range heads {
		versions[service] = h.version
	}
	return versions
}

// plan works out the step each service that c sets, copies or undoes
// moves to.
func plan(ctx context.Context, tx writeTx, c store.Change, heads map[string]head) (map[string]step, error) {
	set := c.Set
	if c.CopyFrom != "" {
		exists, from, err := loadEnv(ctx, tx, c.CopyFrom)
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, fmt.Errorf("env %q to copy from: %w", c.CopyFrom, store.ErrNotFound)
		}
		set = versionsOf(from)
	}
	steps := map[string]step{}
	for service, id := range set {
		var of string
		err := tx.QueryRowContext(ctx, selectService, id).Scan(&of)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("version %s of service %q: %w", id, service, store.ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		if of != service {
			return nil, fmt.Errorf("version %s is a version of service %q, not of %q", id, of, service)
		}
		s := step{version: id}
		if h, ok := heads[service]; ok {
			s.backTo = sql.NullInt64{Int64: h.historyID, Valid: true}
		}
		steps[service] = s
	}
	for _, service := range c.Undo {
		h, ok := heads[service]
		switch {
		case !ok:
			return nil, fmt.Errorf("service %q is not in env %q (`fiat env list` shows what is): %w", service, c.Env, store.ErrNotFound)
		case !h.backTo.Valid:
			return nil, fmt.Errorf("service %q in env %q is at the first version it had there, with nothing before it to go back to: %w", service, c.Env, store.ErrNoPrevious)
		}
		if _, dup := steps[service]; dup {
			return nil, fmt.Errorf("service %q in env %q is changed twice in one change", service, c.Env)
		}
		// Undo returns to the step before and takes over its way back, so
		// repeating it steps further down the stack.
		var back step
		err := tx.QueryRowContext(ctx, `SELECT version, back_to FROM history WHERE id = $1`, h.backTo).Scan(&back.version, &back.backTo)
		if err != nil {
			return nil, err
		}
		steps[service] = back
	}
	return steps, nil
}

func deleteEnv(ctx context.Context, tx writeTx, env string, exists bool) error {
	if !exists {
		return fmt.Errorf("env %q: %w", env, store.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM env_services WHERE env = $1`, env); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM envs WHERE name = $1`, env)
	return err
}
