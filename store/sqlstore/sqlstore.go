// Package sqlstore is the part of fiat's stores that SQL databases share:
// every change, every read and the history of changes, written once in SQL
// that SQLite and PostgreSQL both accept ($n placeholders, ON CONFLICT,
// RETURNING, no functions of one database only). store/sqlite and
// store/postgres open their database, give it its schema, and add what
// only they do through Config.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/fiatdev/fiat/store"
)

// Config is what a database adds to the shared store.
type Config struct {
	// Writer runs changes; Reader runs reads. They may be the same pool.
	Writer, Reader *sql.DB
	// ReadTx are the options of the transactions of reads that take
	// several queries, which must see one snapshot.
	ReadTx *sql.TxOptions
	// Check, if set, runs before every change: an error refuses it.
	Check func() error
	// Committed, if set, runs once a change has committed.
	Committed func(position int64)
	// Unreachable, if set, tells the errors of a database server that
	// could not be reached, which are returned as store.ErrUnavailable.
	Unreachable func(error) bool
}

// Store is a store.Store but for Wait and Close, which each database
// provides.
type Store struct {
	cfg Config
	// prepared holds the writer's prepared statements, by query.
	prepared map[string]*sql.Stmt
}

// New returns a Store over a database whose schema is up to date.
func New(ctx context.Context, cfg Config) (*Store, error) {
	prepared, err := prepare(ctx, cfg.Writer)
	if err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, prepared: prepared}, nil
}

// Close closes the prepared statements; the database is its owner's.
func (s *Store) Close() error {
	var errs []error
	for _, stmt := range s.prepared {
		errs = append(errs, stmt.Close())
	}
	return errors.Join(errs...)
}

// classify marks *err as store.ErrUnavailable if it is one.
func (s *Store) classify(err *error) {
	if *err != nil && s.cfg.Unreachable != nil && s.cfg.Unreachable(*err) {
		*err = fmt.Errorf("%w: %w", store.ErrUnavailable, *err)
	}
}

// A Migration takes the schema one version further, in the transaction it
// is given.
type Migration func(ctx context.Context, tx *sql.Tx) error

// SQL is a migration that runs statements.
func SQL(statements string) Migration {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, statements)
		return err
	}
}

// Migrate brings the schema of db up to date in one transaction. lock, if
// set, runs first in it, so that several processes opening one database at
// once migrate it one after the other.
func Migrate(ctx context.Context, db *sql.DB, lock func(ctx context.Context, tx *sql.Tx) error, migrations []Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if lock != nil {
		if err := lock(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)`); err != nil {
		return err
	}
	var version int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this fiat knows (%d): upgrade fiat", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if err := migrations[i](ctx, tx); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}
