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
// Changes and reads are store/sqlstore's, shared with PostgreSQL; the
// schema (migrations), the file and the in-process Wait are SQLite's own.
package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
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
	"github.com/fiatdev/fiat/store/sqlstore"
	"modernc.org/sqlite"
)

// DB is a store.Store in one SQLite file.
type DB struct {
	*sqlstore.Store
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
	// reader's connections read snapshots concurrently with the writer.
	reader *sql.DB
	// checkpointer has its own connection, so a checkpoint never holds up
	// the writer.
	checkpointer *sql.DB
	// committed wakes checkpointWhenIdle after each commit.
	committed chan struct{}
	// changes tells Wait of commits in this process, the only one that
	// writes to the file while it serves (a data dir has one server).
	changes *sqlstore.Signal
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
	// IMMEDIATE transactions serialize the processes that migrate.
	if err := sqlstore.Migrate(context.Background(), writer, nil, migrations); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
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
		reader:           reader,
		checkpointer:     checkpointer,
		committed:        make(chan struct{}, 1),
		changes:          sqlstore.NewSignal(),
		closing:          make(chan struct{}),
		checkpointerDone: make(chan struct{}),
	}
	db.Store, err = sqlstore.New(context.Background(), sqlstore.Config{
		Writer:    writer,
		Reader:    reader,
		Check:     db.checkFile,
		Committed: db.afterCommit,
	})
	if err != nil {
		writer.Close()
		reader.Close()
		checkpointer.Close()
		return nil, err
	}
	go db.checkpointWhenIdle()
	return db, nil
}

// afterCommit wakes the checkpointer and Wait.
func (db *DB) afterCommit(position int64) {
	select {
	case db.committed <- struct{}{}:
	default: // checkpointWhenIdle has a wake-up pending already
	}
	db.changes.Committed(position)
}

// Wait returns once this process commits a change after position.
func (db *DB) Wait(ctx context.Context, after int64) error {
	return db.changes.Wait(ctx, after)
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
		db.closeErr = errors.Join(db.Store.Close(), db.reader.Close(), db.checkpointer.Close(), db.writer.Close())
	})
	return db.closeErr
}

// migrations[i] takes the schema from version i to i+1. Append to it; never
// edit a migration that has shipped.
var migrations = []sqlstore.Migration{
	sqlstore.SQL(`
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
`),
	// Records keep what their change did, and which versions it stored, so
	// that every node serves the store's history; files move to
	// content-addressed blobs, which versions that share a file share; the
	// admin token is a setting every node sharing the store reads.
	func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
ALTER TABLE records ADD COLUMN change TEXT; -- what the change did, as JSON
ALTER TABLE versions ADD COLUMN record_id INTEGER REFERENCES records (id);
CREATE INDEX versions_by_record ON versions (record_id);
CREATE TABLE blobs (
	hash TEXT PRIMARY KEY, -- SHA-256 of data, in hex
	data BLOB NOT NULL
) STRICT;
CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
CREATE TABLE files (
	version_id TEXT NOT NULL REFERENCES versions (id),
	path       TEXT NOT NULL,
	blob       TEXT NOT NULL REFERENCES blobs (hash),
	PRIMARY KEY (version_id, path)
) STRICT;
`)
		if err != nil {
			return err
		}
		// SQLite has no SHA-256 of its own: the files move through Go.
		rows, err := tx.QueryContext(ctx, `SELECT version_id, path, data FROM version_files`)
		if err != nil {
			return err
		}
		type file struct {
			version, path string
			data          []byte
		}
		var files []file
		for rows.Next() {
			var f file
			if err := rows.Scan(&f.version, &f.path, &f.data); err != nil {
				rows.Close()
				return err
			}
			files = append(files, f)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, f := range files {
			sum := sha256.Sum256(f.data)
			hash := hex.EncodeToString(sum[:])
			if _, err := tx.ExecContext(ctx, `INSERT INTO blobs (hash, data) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING`, hash, f.data); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO files (version_id, path, blob) VALUES ($1, $2, $3)`, f.version, f.path, hash); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `DROP TABLE version_files; ALTER TABLE files RENAME TO version_files;`)
		return err
	},
	// A change takes its position from this one row, which serializes
	// changes in PostgreSQL; records' ids are given, not chosen by SQLite.
	sqlstore.SQL(`
CREATE TABLE positions (
	last INTEGER NOT NULL
) STRICT;
INSERT INTO positions (last) SELECT COALESCE(MAX(id), 0) FROM records;
`),
	// An env may run more or fewer instances of a process service than
	// its version says.
	sqlstore.SQL(`
ALTER TABLE env_services ADD COLUMN instances INTEGER;
DROP VIEW env_versions;
CREATE VIEW env_versions AS
	SELECT e.env, e.service, e.history_id, h.version, h.back_to, e.instances
	FROM env_services e JOIN history h ON h.id = e.history_id;
`),
	// A process service's programs are executable files.
	sqlstore.SQL(`ALTER TABLE version_files ADD COLUMN executable INTEGER NOT NULL DEFAULT 0;`),
	// What building a process service's version made, for other nodes.
	sqlstore.SQL(`
CREATE TABLE builds (
	key  TEXT PRIMARY KEY, -- what was built, as a hash
	blob TEXT NOT NULL REFERENCES blobs (hash)
) STRICT;
`),
	// An env's rollouts, each a fiat.Rollout as JSON.
	sqlstore.SQL(`
CREATE TABLE rollouts (
	env     TEXT NOT NULL REFERENCES envs (name),
	id      TEXT NOT NULL,
	started INTEGER NOT NULL,
	rollout TEXT NOT NULL,
	PRIMARY KEY (env, id)
) STRICT;
`),
	// An env's flags, each a fiat.Flag as JSON, every change of one, and
	// where the env's requests carry the user key.
	sqlstore.SQL(`
ALTER TABLE envs ADD COLUMN user_key TEXT; -- "header:X-User-Id"; NULL for the default
CREATE TABLE flags (
	env  TEXT NOT NULL REFERENCES envs (name),
	name TEXT NOT NULL,
	flag TEXT NOT NULL,
	PRIMARY KEY (env, name)
) STRICT;
CREATE TABLE flag_changes (
	record_id INTEGER NOT NULL REFERENCES records (id),
	env       TEXT NOT NULL,
	name      TEXT NOT NULL,
	flag      TEXT, -- NULL once deleted
	PRIMARY KEY (env, name, record_id)
) STRICT;
`),
}
