package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// Apply writes c in one transaction and commits it.
func (s *Store) Apply(ctx context.Context, c store.Change) (_ store.Record, err error) {
	defer s.classify(&err)
	if err := check(c); err != nil {
		return store.Record{}, err
	}
	if s.cfg.Check != nil {
		if err := s.cfg.Check(); err != nil {
			return store.Record{}, err
		}
	}
	tx, err := s.cfg.Writer.BeginTx(ctx, nil)
	if err != nil {
		return store.Record{}, err
	}
	defer tx.Rollback()
	w := writeTx{tx, s.prepared}
	rec, err := apply(ctx, w, c, time.Now().UTC())
	if err != nil {
		return store.Record{}, err
	}
	if err := tx.Commit(); err != nil {
		return store.Record{}, err
	}
	if s.cfg.Committed != nil {
		s.cfg.Committed(rec.ID)
	}
	return rec, nil
}

// recordJSON is what a record keeps of a change besides its columns, so
// that Changes gives it back as Apply returned it.
type recordJSON struct {
	Switched []store.Switch `json:"switched"`
	After    fiat.Env       `json:"after"`
	Deleted  bool           `json:"deleted,omitempty"`
	Ended    *fiat.Rollout  `json:"ended,omitempty"`
}

func insertRecord(ctx context.Context, tx writeTx, rec store.Record) error {
	change, err := json.Marshal(recordJSON{Switched: rec.Switched, After: rec.After, Deleted: rec.Deleted, Ended: rec.Ended})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, insertRecordSQL, rec.ID, rec.Env, rec.Kind, rec.At.UnixNano(), string(change))
	return err
}

// check refuses a change that is malformed whatever the store holds.
func check(c store.Change) error {
	if err := fiat.CheckEnvName(c.Env); err != nil {
		return err
	}
	ops := 0
	for _, given := range []bool{len(c.Set) > 0 || len(c.Undo) > 0, c.CopyFrom != "", c.Delete, len(c.Scale) > 0, c.Rollout != nil, c.Flag != nil, c.UserKey != nil} {
		if given {
			ops++
		}
	}
	switch {
	case ops > 1:
		return fmt.Errorf("change to env %q: give one of Set/Undo, CopyFrom, Delete, Scale, Rollout, Flag and UserKey, not several", c.Env)
	case ops == 0 && len(c.Versions) == 0 && !c.Create:
		return fmt.Errorf("change to env %q changes nothing", c.Env)
	case c.Create && c.Delete:
		return fmt.Errorf("change to env %q both creates and deletes it", c.Env)
	case c.Existing && (c.Create || c.Delete):
		return fmt.Errorf("change to env %q requires it to exist and also creates or deletes it", c.Env)
	case (len(c.Scale) > 0 || c.Rollout != nil || c.Flag != nil || c.UserKey != nil) && c.Create:
		return fmt.Errorf("change to env %q changes services or flags of an env it creates", c.Env)
	}
	if err := checkFlagChange(c); err != nil {
		return err
	}
	if c.Rollout != nil {
		if err := checkRollout(c.Env, c.Rollout); err != nil {
			return err
		}
	}
	for service, n := range c.Scale {
		if n < 0 || n > fiat.MaxInstances {
			return fmt.Errorf("service %q: %d instances: give 0 to %d", service, n, fiat.MaxInstances)
		}
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
	// instances is how many instances the env runs, if scaled.
	instances sql.NullInt64
}

func apply(ctx context.Context, tx writeTx, c store.Change, now time.Time) (store.Record, error) {
	rec := store.Record{Env: c.Env, Kind: c.Kind, At: now, Switched: []store.Switch{}}
	// Taking the next position locks its row until commit: writers are
	// serialized, and positions are in commit order, with no gaps.
	if err := tx.QueryRowContext(ctx, nextPosition).Scan(&rec.ID); err != nil {
		return rec, err
	}
	rec.Follows = rec.ID - 1
	exists, heads, err := loadEnv(ctx, tx, c.Env)
	if err != nil {
		return rec, err
	}
	if err := expect(c, heads); err != nil {
		return rec, err
	}
	rollouts, err := loadRollouts(ctx, tx, c.Env)
	if err != nil {
		return rec, err
	}
	flags, err := loadFlags(ctx, tx, c.Env)
	if err != nil {
		return rec, err
	}
	var steps map[string]step
	switch {
	case c.Create && exists:
		return rec, fmt.Errorf("env %q: %w", c.Env, store.ErrEnvExists)
	case c.Existing && !exists:
		return rec, fmt.Errorf("env %q does not exist (`fiat env list` shows those that do): %w", c.Env, store.ErrNotFound)
	case c.Delete:
		if !exists {
			return rec, fmt.Errorf("env %q: %w", c.Env, store.ErrNotFound)
		}
		rec.After = fiat.Env{Name: c.Env, Services: map[string]fiat.Hash{}}
		rec.Deleted = true
	case (len(c.Scale) > 0 || c.Rollout != nil || c.Flag != nil || c.UserKey != nil) && !exists:
		return rec, fmt.Errorf("env %q does not exist (`fiat env list` shows those that do): %w", c.Env, store.ErrNotFound)
	case c.Rollout != nil:
		p, err := planRollout(ctx, tx, c, heads, rollouts, now)
		if err != nil {
			return rec, err
		}
		steps, rollouts, rec.Ended = p.steps, p.after, p.ended
		rec.After = switchTo(&rec, envOf(c.Env, heads), heads, steps)
	case c.Flag != nil || c.UserKey != nil:
		rec.After = envOf(c.Env, heads)
		if flags, err = flags.change(c); err != nil {
			return rec, err
		}
	case len(c.Scale) > 0:
		rec.After = envOf(c.Env, heads)
		for _, service := range slices.Sorted(maps.Keys(c.Scale)) {
			if _, ok := heads[service]; !ok {
				return rec, fmt.Errorf("service %q is not in env %q (`fiat env list` shows what is): %w", service, c.Env, store.ErrNotFound)
			}
			if rec.After.Instances == nil {
				rec.After.Instances = map[string]int{}
			}
			rec.After.Instances[service] = c.Scale[service]
		}
	default:
		if err := checkNotRollingOut(c.Env, c.Undo, rollouts); err != nil {
			return rec, err
		}
		if steps, err = plan(ctx, tx, c, heads); err != nil {
			return rec, err
		}
		if exists || c.Create || len(steps) > 0 {
			rec.After = switchTo(&rec, envOf(c.Env, heads), heads, steps)
		}
		if c.Create && c.CopyFrom != "" {
			if flags, err = loadFlags(ctx, tx, c.CopyFrom); err != nil {
				return rec, err
			}
		}
		moved := make([]string, len(rec.Switched))
		for i, sw := range rec.Switched {
			moved[i] = sw.Service
		}
		if err := checkNotRollingOut(c.Env, moved, rollouts); err != nil {
			return rec, err
		}
	}
	if rec.After.Name != "" && !rec.Deleted {
		rec.After.Rollouts = rollouts
		rec.After.Flags, rec.After.UserKey = flags.flags, flags.userKey
	}
	if err := insertRecord(ctx, tx, rec); err != nil {
		return rec, err
	}
	stored, err := storeVersions(ctx, tx, c.Versions, rec.ID, now)
	if err != nil {
		return rec, err
	}
	for _, v := range stored {
		rec.Versions = append(rec.Versions, store.VersionInfo{ID: v.ID, Service: v.Service, Config: v.Config, Uses: v.Uses, Created: now, Envs: []string{}})
	}
	switch {
	case rec.Deleted:
		if err := logFlags(ctx, tx, rec.ID, c.Env, flags.flags); err != nil {
			return rec, err
		}
		return rec, deleteEnv(ctx, tx, c.Env)
	case rec.After.Name == "":
		return rec, nil // it only stored versions
	case c.Flag != nil || c.UserKey != nil:
		return rec, writeFlags(ctx, tx, rec.ID, c, flags)
	case c.Rollout != nil:
		if err := writeRollout(ctx, tx, c, rollouts); err != nil {
			return rec, err
		}
	case len(c.Scale) > 0:
		for _, service := range slices.Sorted(maps.Keys(c.Scale)) {
			if _, err := tx.ExecContext(ctx, `UPDATE env_services SET instances = $1 WHERE env = $2 AND service = $3`, c.Scale[service], c.Env, service); err != nil {
				return rec, err
			}
		}
		return rec, nil
	case !exists:
		if _, err := tx.ExecContext(ctx, `INSERT INTO envs (name, user_key) VALUES ($1, $2)`, c.Env, flags.userKeyColumn()); err != nil {
			return rec, err
		}
		if err := copyFlags(ctx, tx, rec.ID, c.Env, flags.flags); err != nil {
			return rec, err
		}
	}
	for _, sw := range rec.Switched {
		var historyID int64
		if err := tx.QueryRowContext(ctx, insertHistory, rec.ID, sw.Service, sw.To, steps[sw.Service].backTo).Scan(&historyID); err != nil {
			return rec, err
		}
		if _, err := tx.ExecContext(ctx, setHead, c.Env, sw.Service, historyID); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// switchTo is env, whose heads are given, with its services moved to
// steps, each move added to rec's Switched.
func switchTo(rec *store.Record, env fiat.Env, heads map[string]head, steps map[string]step) fiat.Env {
	for _, service := range slices.Sorted(maps.Keys(steps)) {
		if from, to := heads[service].version, steps[service].version; from != to {
			rec.Switched = append(rec.Switched, store.Switch{Service: service, From: from, To: to})
			env.Services[service] = to
		}
	}
	return env
}

// expect checks that the env, whose heads are given, still holds what c
// was decided on.
func expect(c store.Change, heads map[string]head) error {
	for _, service := range slices.Sorted(maps.Keys(c.Expect)) {
		if now, want := heads[service].version, c.Expect[service]; now != want {
			return fmt.Errorf("service %q in env %q is now at %s, not at %s as it was when this change was decided: %w",
				service, c.Env, describe(now), describe(want), store.ErrConflict)
		}
	}
	return nil
}

func describe(id fiat.Hash) string {
	if id == "" {
		return "no version"
	}
	return "version " + id.Short()
}

// storeVersions stores the versions of vs not stored yet, as stored by
// the record at position, and returns those. A version whose id is stored
// already is the same version (the id is the hash of its content), files
// and all. Files are stored as content-addressed blobs, which versions
// that share a file share.
func storeVersions(ctx context.Context, tx writeTx, vs []*fiat.Version, position int64, now time.Time) ([]*fiat.Version, error) {
	var stored []*fiat.Version
	var blobs, files []any
	for _, v := range vs {
		config, err := json.Marshal(v.Config)
		if err != nil {
			return nil, err
		}
		uses, err := json.Marshal(v.Uses)
		if err != nil {
			return nil, err
		}
		res, err := tx.ExecContext(ctx, insertVersion, v.ID, v.Service, string(config), string(uses), now.UnixNano(), position)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue
		}
		stored = append(stored, v)
		for _, f := range v.Files {
			sum := sha256.Sum256(f.Data)
			hash := hex.EncodeToString(sum[:])
			data := f.Data
			if data == nil {
				data = []byte{} // an empty file, which drivers would bind as NULL
			}
			blobs = append(blobs, hash, data)
			executable := 0
			if f.Executable {
				executable = 1
			}
			files = append(files, v.ID, f.Path, hash, executable)
		}
	}
	if err := insertRows(ctx, tx, insertBlobs, blobs, 2); err != nil {
		return nil, err
	}
	return stored, insertRows(ctx, tx, insertFiles, files, 4)
}

// insertRows runs the INSERT that starts with into, with one row of
// width values of args each, a few hundred rows per statement: one round
// trip to the database for most versions, however many files they have.
func insertRows(ctx context.Context, tx writeTx, into string, args []any, width int) error {
	const perStatement = 256
	for len(args) > 0 {
		rows := min(len(args)/width, perStatement)
		if _, err := tx.ExecContext(ctx, into+valuesList(rows, width)+onConflict[into], args[:rows*width]...); err != nil {
			return err
		}
		args = args[rows*width:]
	}
	return nil
}

// valuesList is "($1, $2), ($3, $4)" for rows 2 and width 2.
func valuesList(rows, width int) string {
	var b strings.Builder
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range width {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", n)
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// querier is what both writeTx and *sql.Tx offer, so Apply and the read
// methods share reads.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadEnv reports whether env exists and, if so, the head of each of its
// services.
func loadEnv(ctx context.Context, q querier, env string) (bool, map[string]head, error) {
	rows, err := q.QueryContext(ctx, selectEnv, env)
	if err != nil {
		return false, nil, err
	}
	defer rows.Close()
	exists := false
	heads := map[string]head{}
	for rows.Next() {
		exists = true
		var service sql.NullString
		var h head
		var version sql.NullString
		var historyID sql.NullInt64
		if err := rows.Scan(&service, &historyID, &version, &h.backTo, &h.instances); err != nil {
			return false, nil, err
		}
		if service.Valid { // an env with no service has one row of NULLs
			h.historyID, h.version = historyID.Int64, fiat.Hash(version.String)
			heads[service.String] = h
		}
	}
	return exists, heads, rows.Err()
}

// envOf is env, whose heads are given.
func envOf(name string, heads map[string]head) fiat.Env {
	env := fiat.Env{Name: name, Services: versionsOf(heads)}
	for service, h := range heads {
		if h.instances.Valid {
			if env.Instances == nil {
				env.Instances = map[string]int{}
			}
			env.Instances[service] = int(h.instances.Int64)
		}
	}
	return env
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
	given := map[fiat.Hash]string{}
	for _, v := range c.Versions {
		given[v.ID] = v.Service
	}
	steps := map[string]step{}
	for service, id := range set {
		of, ok := given[id]
		if !ok {
			err := tx.QueryRowContext(ctx, selectService, id).Scan(&of)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("version %s of service %q: %w", id, service, store.ErrNotFound)
			}
			if err != nil {
				return nil, err
			}
		}
		if of != service {
			return nil, fmt.Errorf("version %s is a version of service %q, not of %q", id, of, service)
		}
		s := step{version: id}
		h, ok := heads[service]
		switch {
		case ok:
			s.backTo = sql.NullInt64{Int64: h.historyID, Valid: true}
		case c.Existing && c.CopyFrom == "":
			return nil, fmt.Errorf("service %q is not in env %q (`fiat env list` shows what is): %w", service, c.Env, store.ErrNotFound)
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

func deleteEnv(ctx context.Context, tx writeTx, env string) error {
	for _, table := range []string{"rollouts", "flags"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE env = $1`, env); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM env_services WHERE env = $1`, env); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM envs WHERE name = $1`, env)
	return err
}
