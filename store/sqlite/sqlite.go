// Package sqlite is the embedded store: one SQLite file in the data dir,
// through the pure-Go driver modernc.org/sqlite.
//
// The file is in WAL mode with synchronous=FULL, so a change is on disk
// (the WAL fsynced) before its commit returns, and readers run
// concurrently with the one writer. Checkpoints, which copy the WAL into
// the database file and fsync it, run when the store is idle rather than
// inside a commit, and the WAL file is kept across restarts: appending to a
// file that keeps its size is what makes a commit's fsync cheap.
//
// Its DML is written to run unchanged on PostgreSQL: $n placeholders, ON
// CONFLICT instead of INSERT OR REPLACE, RETURNING, no SQLite-only
// functions. Only the schema (migrations) is SQLite's own.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fiatdev/fiat/store"
	"modernc.org/sqlite"
)

// DB is a store.Store in one SQLite file.
type DB struct {
	// path is the file, and file what it was when the store opened it: a
	// file deleted or replaced under the store takes its writes with it.
	path string
	file os.FileInfo
	// writer has a single connection, so changes in this process queue for
	// it in Go rather than polling SQLite's write lock; its transactions
	// begin IMMEDIATE, taking the write lock up front, so a transaction
	// that reads before it writes cannot fail to upgrade its lock when
	// another process writes.
	writer *sql.DB
	// prepared holds the writer's prepared statements, by query.
	prepared map[string]*sql.Stmt
	// reader's connections read snapshots concurrently with the writer.
	reader *sql.DB
	// checkpointer has its own connection, so a checkpoint never holds up
	// the writer.
	checkpointer *sql.DB
	// committed wakes checkpointWhenIdle after each commit.
	committed chan struct{}
	// closing stops checkpointWhenIdle, which closes checkpointerDone
	// when it returns.
	closing          chan struct{}
	checkpointerDone chan struct{}
	closeOnce        sync.Once
	closeErr         error
}

var _ store.Store = (*DB)(nil)

// busyTimeout is how long, in milliseconds, a connection waits for a lock
// another process holds (another fiat on the same file, a backup).
const busyTimeout = "5000"

// idleCheckpoint is how long the store waits after a commit, with no other
// commit, before it checkpoints.
const idleCheckpoint = 200 * time.Millisecond

// maxWALPages bounds the WAL when commits never pause for idleCheckpoint:
// the commit that takes it past this many pages checkpoints, as SQLite
// does by default at 1000. At a deploy's ten pages or so, that is one
// deploy in four hundred of a long burst.
const maxWALPages = "4000"

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
	writer, err := openDB(path,
		"_txlock=immediate",
		"_busy_timeout="+busyTimeout,
		"_journal_mode=WAL",
		"_synchronous=FULL",
		// On macOS, fsync leaves the data in the drive's cache; a power
		// cut could lose it. Elsewhere this is a no-op.
		"_pragma=fullfsync(1)",
		"_pragma=wal_autocheckpoint("+maxWALPages+")",
		"_foreign_keys=1")
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
	reader, err := openDB(path,
		"_busy_timeout="+busyTimeout,
		"_query_only=1")
	if err != nil {
		writer.Close()
		return nil, err
	}
	file, err := os.Stat(path)
	if err != nil {
		writer.Close()
		return nil, err
	}
	readers := max(4, runtime.NumCPU())
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	checkpointer, err := openDB(path, "_busy_timeout="+busyTimeout)
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, err
	}
	checkpointer.SetMaxOpenConns(1)
	db := &DB{
		path:             path,
		file:             file,
		writer:           writer,
		prepared:         prepared,
		reader:           reader,
		checkpointer:     checkpointer,
		committed:        make(chan struct{}, 1),
		closing:          make(chan struct{}),
		checkpointerDone: make(chan struct{}),
	}
	go db.checkpointWhenIdle()
	return db, nil
}

// openDB opens a pool of connections to the file at path, each keeping the
// WAL file when it closes.
func openDB(path string, params ...string) (*sql.DB, error) {
	// A file: URI, so that any path, even one with '?' or '#' in it,
	// reaches SQLite intact.
	u := url.URL{Scheme: "file", Path: path, RawQuery: strings.Join(params, "&")}
	c, err := sqlite.NewConnector(u.String())
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(persistWAL{c}), nil
}

// persistWAL sets SQLITE_FCNTL_PERSIST_WAL on every connection: the last
// one to close then leaves the WAL file at its size, empty, instead of
// removing it, so that after a restart commits again overwrite it in place
// rather than grow a new file, which costs the filesystem a journal entry
// on every fsync.
type persistWAL struct{ driver.Connector }

func (p persistWAL) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := p.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	fc, ok := conn.(sqlite.FileControl)
	if !ok {
		conn.Close()
		return nil, errors.New("the sqlite driver no longer offers file controls")
	}
	if _, err := fc.FileControlPersistWAL("main", 1); err != nil {
		conn.Close()
		return nil, fmt.Errorf("keep the WAL file: %w", err)
	}
	return conn, nil
}

// checkFile refuses changes once the store's file is not the one the store
// opened: SQLite would go on writing to the open, deleted file, and every
// change acknowledged from then on would be lost at the next restart.
func (db *DB) checkFile() error {
	now, err := os.Stat(db.path)
	if err == nil && os.SameFile(now, db.file) {
		return nil
	}
	return fmt.Errorf("%w: %s is no longer the file fiat opened, so changes are refused to keep them from being lost: restore the file and restart fiat serve", store.ErrStoreGone, db.path)
}

// checkpointWhenIdle checkpoints once no commit has come for
// idleCheckpoint. PASSIVE never waits for readers or the writer; a
// checkpoint that copies every frame lets the next commit start the WAL
// over from its beginning.
func (db *DB) checkpointWhenIdle() {
	defer close(db.checkpointerDone)
	idle := time.NewTimer(idleCheckpoint)
	idle.Stop()
	for {
		select {
		case <-db.closing:
			return
		case <-db.committed:
			idle.Reset(idleCheckpoint)
		case <-idle.C:
			// A failed checkpoint is retried after the next commit, and
			// the writer's own checkpoint bounds the WAL meanwhile.
			db.checkpointer.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// Close closes the store; closing it again does nothing. Closing the
// file's last connection checkpoints the WAL into the database.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closing)
		<-db.checkpointerDone
		db.closeErr = errors.Join(db.reader.Close(), db.checkpointer.Close(), db.writer.Close())
	})
	return db.closeErr
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
