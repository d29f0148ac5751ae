// Package sqlite is the embedded store: one SQLite file in the data dir,
// through the pure-Go driver modernc.org/sqlite.
//
// The file is in WAL mode with synchronous=FULL, so a commit is on disk
// (the WAL fsynced) before Apply returns, and readers run concurrently with
// the one writer. Its DML is written to run unchanged on PostgreSQL: $n
// placeholders, ON CONFLICT instead of INSERT OR REPLACE, RETURNING, no
// SQLite-only functions. Only the schema (migrations) is SQLite's own.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/fiatdev/fiat/store"
	_ "modernc.org/sqlite"
)

// DB is a store.Store in one SQLite file.
type DB struct {
	// writer has a single connection, so Applies in this process queue for
	// it in Go rather than polling SQLite's write lock; its transactions
	// begin IMMEDIATE, taking the write lock up front, so a transaction
	// that reads before it writes cannot fail to upgrade its lock when
	// another process writes.
	writer *sql.DB
	// prepared holds the writer's prepared statements, by query.
	prepared map[string]*sql.Stmt
	// reader's connections read snapshots concurrently with the writer.
	reader *sql.DB
}

var _ store.Store = (*DB)(nil)

// busyTimeout is how long, in milliseconds, a connection waits for a lock
// another process holds (another fiat on the same file, a backup).
const busyTimeout = "5000"

// Open opens the store at path, creating the file, its directory and its
// schema if they do not exist yet. The same file may be open several times,
// in one process or many: SQLite's locks serialize the writers.
func Open(path string) (*DB, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	writer, err := sql.Open("sqlite", dsn(path,
		"_txlock=immediate",
		"_busy_timeout="+busyTimeout,
		"_journal_mode=WAL",
		"_synchronous=FULL",
		// On macOS, fsync leaves the data in the drive's cache; a power
		// cut could lose it. Elsewhere this is a no-op.
		"_pragma=fullfsync(1)",
		"_foreign_keys=1"))
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	if err := migrate(context.Background(), writer); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	prepared, err := prepare(context.Background(), writer)
	if err != nil {
		writer.Close()
		return nil, err
	}
	// The writer has put the file in WAL mode, which persists, so readers
	// need not.
	reader, err := sql.Open("sqlite", dsn(path,
		"_busy_timeout="+busyTimeout,
		"_query_only=1"))
	if err != nil {
		writer.Close()
		return nil, err
	}
	readers := max(4, runtime.NumCPU())
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	return &DB{writer: writer, prepared: prepared, reader: reader}, nil
}

// dsn is a file: URI, so that any path, even one with '?' or '#' in it,
// reaches SQLite intact, followed by the driver's parameters.
func dsn(path string, params ...string) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: strings.Join(params, "&")}
	return u.String()
}

// Close closes the store. The writer closes last: closing the file's last
// connection checkpoints the WAL into the database and removes it.
func (db *DB) Close() error {
	return errors.Join(db.reader.Close(), db.writer.Close())
}

// migrations[i] takes the schema from version i to i+1. Append to it; never
// edit a migration that has shipped.
var migrations = []string{
	`
CREATE TABLE versions (
	-- seq orders versions stored in the same instant by insertion.
	seq        INTEGER PRIMARY KEY,
	id         TEXT NOT NULL UNIQUE,
	service    TEXT NOT NULL,
	config     TEXT NOT NULL, -- fiat.Config as JSON
	uses       TEXT NOT NULL, -- service -> version, as JSON
	created_at INTEGER NOT NULL -- unix nanoseconds, as every time here
) STRICT;
CREATE INDEX versions_by_service ON versions (service, created_at, seq);

CREATE TABLE version_files (
	version_id TEXT NOT NULL REFERENCES versions (id),
	path       TEXT NOT NULL,
	data       BLOB NOT NULL,
	PRIMARY KEY (version_id, path)
) STRICT;

CREATE TABLE envs (
	name TEXT PRIMARY KEY
) STRICT;

-- One row per Apply.
CREATE TABLE records (
	id   INTEGER PRIMARY KEY,
	env  TEXT NOT NULL,
	kind TEXT NOT NULL,
	at   INTEGER NOT NULL
) STRICT;

-- Every version a service has been pointed at in an env, each row linked
-- to the one an undo returns to: together, one undo stack per env and
-- service.
CREATE TABLE history (
	id        INTEGER PRIMARY KEY,
	record_id INTEGER NOT NULL REFERENCES records (id),
	service   TEXT NOT NULL,
	version   TEXT NOT NULL REFERENCES versions (id),
	back_to   INTEGER REFERENCES history (id)
) STRICT;

-- The top of each undo stack: which history row each service of each env
-- is at now.
CREATE TABLE env_services (
	env        TEXT NOT NULL REFERENCES envs (name),
	service    TEXT NOT NULL,
	history_id INTEGER NOT NULL REFERENCES history (id),
	PRIMARY KEY (env, service)
) STRICT;
CREATE INDEX env_services_by_service ON env_services (service);

CREATE VIEW env_versions AS
	SELECT e.env, e.service, e.history_id, h.version, h.back_to
	FROM env_services e JOIN history h ON h.id = e.history_id;
`,
}

// migrate brings the schema up to date. Its transaction is IMMEDIATE, so
// two processes opening a new file at once migrate it one after the other.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
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
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}
