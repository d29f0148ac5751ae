package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// An env's flags are rows of the flags table, each a fiat.Flag as JSON;
// its user key source is a column of envs, NULL for the default. Every
// change of a flag is a row of flag_changes, its value then (NULL once
// deleted), which is the flag's log.

// envFlags are an env's flags, sorted by name, and its user key source.
type envFlags struct {
	userKey *fiat.UserKeySource
	flags   []fiat.Flag
}

// loadFlags returns env's flags and user key source: none if env does
// not exist.
func loadFlags(ctx context.Context, q querier, env string) (envFlags, error) {
	rows, err := q.QueryContext(ctx, selectFlags, env)
	if err != nil {
		return envFlags{}, err
	}
	defer rows.Close()
	var f envFlags
	for rows.Next() {
		var userKey, name sql.NullString
		var data []byte
		if err := rows.Scan(&userKey, &name, &data); err != nil {
			return envFlags{}, err
		}
		if f.userKey, err = userKeyOf(env, userKey); err != nil {
			return envFlags{}, err
		}
		if name.Valid { // an env with no flag has one row of NULLs
			flag, err := flagOf(env, data)
			if err != nil {
				return envFlags{}, err
			}
			f.flags = append(f.flags, flag)
		}
	}
	return f, rows.Err()
}

func userKeyOf(env string, column sql.NullString) (*fiat.UserKeySource, error) {
	if !column.Valid {
		return nil, nil
	}
	src, err := fiat.ParseUserKeySource(column.String)
	if err != nil {
		return nil, fmt.Errorf("env %q: %w", env, err)
	}
	return &src, nil
}

func flagOf(env string, data []byte) (fiat.Flag, error) {
	var f fiat.Flag
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("flag in env %q: %w", env, err)
	}
	return f, nil
}

func (f envFlags) userKeyColumn() sql.NullString {
	if f.userKey == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: f.userKey.String(), Valid: true}
}

// find returns the index of flag name, or where it would be.
func (f envFlags) find(name string) (int, bool) {
	return slices.BinarySearchFunc(f.flags, name, func(f fiat.Flag, name string) int { return strings.Compare(f.Name, name) })
}

// checkFlagChange refuses a flag or user key change that is malformed
// whatever the store holds.
func checkFlagChange(c store.Change) error {
	if c.Flag != nil {
		if err := fiat.CheckFlagName(c.Flag.Name); err != nil {
			return err
		}
	}
	if c.UserKey != nil {
		if src, err := fiat.ParseUserKeySource(c.UserKey.String()); err != nil || src != *c.UserKey {
			return fmt.Errorf("env %q: user key source %q: give a parsed one (fiat.ParseUserKeySource)", c.Env, c.UserKey)
		}
	}
	return nil
}

// change returns f as c, a flag or user key change of env c.Env, leaves
// it.
func (f envFlags) change(c store.Change) (envFlags, error) {
	if c.UserKey != nil {
		f.userKey = new(*c.UserKey)
		return f, nil
	}
	name := c.Flag.Name
	i, found := f.find(name)
	f.flags = slices.Clone(f.flags)
	switch {
	case c.Flag.Set == nil && !found:
		return f, fmt.Errorf("env %q has no flag %q (`fiat flag list` shows those it has): %w", c.Env, name, store.ErrNotFound)
	case c.Flag.Set == nil:
		f.flags = slices.Delete(f.flags, i, i+1)
	case found:
		flag, err := c.Flag.Set.Apply(name, &f.flags[i])
		if err != nil {
			return f, err
		}
		f.flags[i] = flag
	case len(f.flags) >= fiat.MaxFlags:
		return f, fmt.Errorf("env %q has %d flags, as many as an env may have: delete one it no longer needs first: %w", c.Env, len(f.flags), store.ErrConflict)
	default:
		flag, err := c.Flag.Set.Apply(name, nil)
		if err != nil {
			return f, err
		}
		f.flags = slices.Insert(f.flags, i, flag)
	}
	return f, nil
}

// writeFlags stores what the flag or user key change c, made at
// position, left: f.
func writeFlags(ctx context.Context, tx writeTx, position int64, c store.Change, f envFlags) error {
	if c.UserKey != nil {
		_, err := tx.ExecContext(ctx, `UPDATE envs SET user_key = $1 WHERE name = $2`, f.userKeyColumn(), c.Env)
		return err
	}
	i, found := f.find(c.Flag.Name)
	if !found {
		if _, err := tx.ExecContext(ctx, `DELETE FROM flags WHERE env = $1 AND name = $2`, c.Env, c.Flag.Name); err != nil {
			return err
		}
		return logFlag(ctx, tx, position, c.Env, c.Flag.Name, nil)
	}
	return putFlag(ctx, tx, position, c.Env, f.flags[i])
}

// copyFlags gives env, made at position, flags.
func copyFlags(ctx context.Context, tx writeTx, position int64, env string, flags []fiat.Flag) error {
	for _, f := range flags {
		if err := putFlag(ctx, tx, position, env, f); err != nil {
			return err
		}
	}
	return nil
}

func putFlag(ctx context.Context, tx writeTx, position int64, env string, f fiat.Flag) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO flags (env, name, flag) VALUES ($1, $2, $3) ON CONFLICT (env, name) DO UPDATE SET flag = excluded.flag`,
		env, f.Name, string(data)); err != nil {
		return err
	}
	return logFlag(ctx, tx, position, env, f.Name, data)
}

// logFlags logs flags of env as deleted at position.
func logFlags(ctx context.Context, tx writeTx, position int64, env string, flags []fiat.Flag) error {
	for _, f := range flags {
		if err := logFlag(ctx, tx, position, env, f.Name, nil); err != nil {
			return err
		}
	}
	return nil
}

// logFlag adds the flag name of env, as the change at position left it
// (nil: deleted), to its log.
func logFlag(ctx context.Context, tx writeTx, position int64, env, name string, data []byte) error {
	value := sql.NullString{String: string(data), Valid: data != nil}
	_, err := tx.ExecContext(ctx, `INSERT INTO flag_changes (record_id, env, name, flag) VALUES ($1, $2, $3, $4)`, position, env, name, value)
	return err
}

// allFlags adds every env's flags and user key source to envs, which
// index finds by name.
func allFlags(ctx context.Context, tx *sql.Tx, envs []fiat.Env, index map[string]int) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, user_key FROM envs WHERE user_key IS NOT NULL`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var env string
		var userKey sql.NullString
		if err := rows.Scan(&env, &userKey); err != nil {
			return err
		}
		if envs[index[env]].UserKey, err = userKeyOf(env, userKey); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, `SELECT env, flag FROM flags ORDER BY env, name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var env string
		var data []byte
		if err := rows.Scan(&env, &data); err != nil {
			return err
		}
		f, err := flagOf(env, data)
		if err != nil {
			return err
		}
		e := &envs[index[env]]
		e.Flags = append(e.Flags, f)
	}
	return rows.Err()
}

// FlagLog returns every change of the flag name of env, oldest first.
func (s *Store) FlagLog(ctx context.Context, env, name string) (_ []store.FlagEntry, err error) {
	defer s.classify(&err)
	rows, err := s.cfg.Reader.QueryContext(ctx, `SELECT c.record_id, r.at, r.kind, c.flag FROM flag_changes c JOIN records r ON r.id = c.record_id
		WHERE c.env = $1 AND c.name = $2 ORDER BY c.record_id`, env, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var log []store.FlagEntry
	for rows.Next() {
		var e store.FlagEntry
		var at int64
		var data sql.NullString
		if err := rows.Scan(&e.Position, &at, &e.Kind, &data); err != nil {
			return nil, err
		}
		e.At = fromNanos(at)
		if data.Valid {
			f, err := flagOf(env, []byte(data.String))
			if err != nil {
				return nil, err
			}
			e.Flag = &f
		}
		log = append(log, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(log) == 0 {
		return nil, fmt.Errorf("env %q never had a flag %q (`fiat flag list` shows those it has): %w", env, name, store.ErrNotFound)
	}
	return log, nil
}
