// Package postgres is the store several fiat nodes share: one PostgreSQL
// database, through pgx.
//
// Changes and reads are store/sqlstore's, shared with SQLite. What is
// PostgreSQL's own: the history is followed with LISTEN/NOTIFY, and read
// by position, so a lost notification or a lost connection costs a read,
// never a change; migrations take an advisory lock, so nodes starting at
// once migrate one after the other; errors of a server that cannot be
// reached are store.ErrUnavailable.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/fiatdev/fiat/store"
	"github.com/fiatdev/fiat/store/sqlstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// DB is a store.Store in one PostgreSQL database.
type DB struct {
	*sqlstore.Store
	writer, reader *sql.DB
	// listen is the configuration of the connection that listens for
	// commits.
	listenConfig *pgx.ConnConfig
	changes      *sqlstore.Signal
	// stop ends the listener, which closes listened when it returns.
	stop      context.CancelFunc
	listened  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*DB)(nil)

const (
	// channel is where every change's commit is announced, with its
	// position.
	channel = "fiat_changes"
	// migrationLock is the advisory lock every migration holds.
	migrationLock int64 = 0x6669617400000002
	// connectTimeout bounds a connection attempt when the URL does not
	// say (connect_timeout), so that a change to an unreachable server
	// fails in seconds rather than hangs.
	connectTimeout = 5 * time.Second
	// poll is how long Wait waits for a notification before it returns
	// anyway, so that a reader checks the history now and then even if a
	// notification were lost.
	poll = 2 * time.Second
)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as libpq takes) and brings its schema up to date.
// Several nodes may open one database at once. An error wrapping
// store.ErrUnavailable means the server could not be reached: try again.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("the store's URL: %w (want postgres://user:password@host:port/database)", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	writer := stdlib.OpenDB(*cfg)
	// Changes queue for one lock in the server: more connections would
	// only wait there.
	writer.SetMaxOpenConns(4)
	if err := sqlstore.Migrate(ctx, writer, lock(migrationLock), migrations); err != nil {
		writer.Close()
		if unreachable(err) {
			err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("open store %s@%s:%d/%s: %w", cfg.User, cfg.Host, cfg.Port, cfg.Database, err)
	}
	reader := stdlib.OpenDB(*cfg)
	readers := max(4, runtime.NumCPU())
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	listening, stop := context.WithCancel(context.Background())
	db := &DB{
		writer:       writer,
		reader:       reader,
		listenConfig: cfg.Copy(),
		changes:      sqlstore.NewSignal(),
		stop:         stop,
		listened:     make(chan struct{}),
	}
	db.Store, err = sqlstore.New(ctx, sqlstore.Config{
		Writer: writer,
		Reader: reader,
		// Reads that take several queries see one snapshot.
		ReadTx:      &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		Committed:   db.changes.Committed,
		Unreachable: unreachable,
	})
	if err != nil {
		stop()
		close(db.listened)
		writer.Close()
		reader.Close()
		return nil, err
	}
	conn, err := db.listen(ctx)
	if err != nil {
		close(db.listened) // nobody listens yet
		db.Close()
		if unreachable(err) {
			err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("listen for changes: %w", err)
	}
	go db.follow(listening, conn)
	return db, nil
}

// lock returns a function that takes the advisory lock key until its
// transaction ends.
func lock(key int64) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key)
		return err
	}
}

// Wait returns once a change after position has been announced, or a
// connection that listens has been made again, or after poll.
func (db *DB) Wait(ctx context.Context, after int64) error {
	polled, cancel := context.WithTimeout(ctx, poll)
	defer cancel()
	if err := db.changes.Wait(polled, after); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// listen connects and listens for commits.
func (db *DB) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, db.listenConfig)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// follow hears commits on conn until ctx ends, connecting again, with
// backoff, whenever its connection is lost.
func (db *DB) follow(ctx context.Context, conn *pgx.Conn) {
	defer close(db.listened)
	backoff := time.Duration(0)
	for {
		if conn != nil {
			backoff = 0
			db.hear(ctx, conn)
			conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		conn, _ = db.listen(ctx)
		// Changes may have committed while nobody listened: readers read.
		db.changes.Wake()
	}
}

// hear passes on the commits announced on conn until it fails or ctx ends.
func (db *DB) hear(ctx context.Context, conn *pgx.Conn) {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return
		}
		if position, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			db.changes.Committed(position)
		}
	}
}

// unreachable reports whether err is that of a server that could not be
// reached, or went away, rather than one that refused a statement.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // shutting down, crashed, starting up
			return true
		}
		return pgErr.Code[:2] == "08" || pgErr.Code[:2] == "53" // connection exceptions, out of connections or memory
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	// SafeToRetry: nothing was sent, the connection being closed.
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn)
}

// Close stops listening and closes the connections; closing again does
// nothing.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.stop()
		<-db.listened
		db.closeErr = errors.Join(db.Store.Close(), db.reader.Close(), db.writer.Close())
	})
	return db.closeErr
}

// migrations[i] takes the schema from version i to i+1. Append to it; never
// edit a migration that has shipped. Text that is compared or ordered
// (names, hashes, paths) collates bytewise, as in SQLite.
var migrations = []sqlstore.Migration{
	sqlstore.SQL(`
-- The last position taken. A change takes the next by updating the one
-- row, which it then holds locked until it commits: changes are
-- serialized, and positions are in commit order, with no gaps, which a
-- sequence alone would not give (a reader that saw 12 could miss 11
-- committing later).
CREATE TABLE positions (
	last BIGINT NOT NULL
);
INSERT INTO positions (last) VALUES (0);

-- One row per change; its id is the change's position in the history.
CREATE TABLE records (
	id     BIGINT PRIMARY KEY,
	env    TEXT COLLATE "C" NOT NULL,
	kind   TEXT NOT NULL,
	at     BIGINT NOT NULL, -- unix nanoseconds, as every time here
	change TEXT -- what the change did, as JSON
);

CREATE TABLE versions (
	-- seq orders versions stored in the same instant by insertion.
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id         TEXT COLLATE "C" NOT NULL UNIQUE,
	service    TEXT COLLATE "C" NOT NULL,
	config     TEXT NOT NULL, -- fiat.Config as JSON
	uses       TEXT NOT NULL, -- service -> version, as JSON
	created_at BIGINT NOT NULL,
	record_id  BIGINT REFERENCES records (id)
);
CREATE INDEX versions_by_service ON versions (service, created_at, seq);
CREATE INDEX versions_by_record ON versions (record_id);

CREATE TABLE blobs (
	hash TEXT COLLATE "C" PRIMARY KEY, -- SHA-256 of data, in hex
	data BYTEA NOT NULL
);

CREATE TABLE version_files (
	version_id TEXT COLLATE "C" NOT NULL REFERENCES versions (id),
	path       TEXT COLLATE "C" NOT NULL,
	blob       TEXT COLLATE "C" NOT NULL REFERENCES blobs (hash),
	PRIMARY KEY (version_id, path)
);

CREATE TABLE envs (
	name TEXT COLLATE "C" PRIMARY KEY
);

-- Every version a service has been pointed at in an env, each row linked
-- to the one an undo returns to: together, one undo stack per env and
-- service.
CREATE TABLE history (
	id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	record_id BIGINT NOT NULL REFERENCES records (id),
	service   TEXT COLLATE "C" NOT NULL,
	version   TEXT COLLATE "C" NOT NULL REFERENCES versions (id),
	back_to   BIGINT REFERENCES history (id)
);

-- The top of each undo stack: which history row each service of each env
-- is at now.
CREATE TABLE env_services (
	env        TEXT COLLATE "C" NOT NULL REFERENCES envs (name),
	service    TEXT COLLATE "C" NOT NULL,
	history_id BIGINT NOT NULL REFERENCES history (id),
	PRIMARY KEY (env, service)
);
CREATE INDEX env_services_by_service ON env_services (service);

CREATE VIEW env_versions AS
	SELECT e.env, e.service, e.history_id, h.version, h.back_to
	FROM env_services e JOIN history h ON h.id = e.history_id;

CREATE TABLE settings (
	name  TEXT COLLATE "C" PRIMARY KEY,
	value TEXT NOT NULL
);

-- Every change is announced to the nodes that listen when it commits,
-- with its position, and not if it does not.
CREATE FUNCTION announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('` + channel + `', NEW.id::text);
	RETURN NULL;
END
$$;
CREATE TRIGGER announce_change AFTER INSERT ON records
	FOR EACH ROW EXECUTE FUNCTION announce_change();
`),
	// An env may run more or fewer instances of a process service than
	// its version says.
	sqlstore.SQL(`
ALTER TABLE env_services ADD COLUMN instances INTEGER;
CREATE OR REPLACE VIEW env_versions AS
	SELECT e.env, e.service, e.history_id, h.version, h.back_to, e.instances
	FROM env_services e JOIN history h ON h.id = e.history_id;
`),
	// A process service's programs are executable files.
	sqlstore.SQL(`ALTER TABLE version_files ADD COLUMN executable INTEGER NOT NULL DEFAULT 0;`),
	// What building a process service's version made, for other nodes.
	sqlstore.SQL(`
CREATE TABLE builds (
	key  TEXT COLLATE "C" PRIMARY KEY, -- what was built, as a hash
	blob TEXT COLLATE "C" NOT NULL REFERENCES blobs (hash)
);
`),
	// An env's rollouts, each a fiat.Rollout as JSON.
	sqlstore.SQL(`
CREATE TABLE rollouts (
	env     TEXT COLLATE "C" NOT NULL REFERENCES envs (name),
	id      TEXT COLLATE "C" NOT NULL,
	started BIGINT NOT NULL,
	rollout TEXT NOT NULL,
	PRIMARY KEY (env, id)
);
`),
	// An env's flags, each a fiat.Flag as JSON, every change of one, and
	// where the env's requests carry the user key.
	sqlstore.SQL(`
ALTER TABLE envs ADD COLUMN user_key TEXT; -- "header:X-User-Id"; NULL for the default
CREATE TABLE flags (
	env  TEXT COLLATE "C" NOT NULL REFERENCES envs (name),
	name TEXT COLLATE "C" NOT NULL,
	flag TEXT NOT NULL,
	PRIMARY KEY (env, name)
);
CREATE TABLE flag_changes (
	record_id BIGINT NOT NULL REFERENCES records (id),
	env       TEXT COLLATE "C" NOT NULL,
	name      TEXT COLLATE "C" NOT NULL,
	flag      TEXT, -- NULL once deleted
	PRIMARY KEY (env, name, record_id)
);
`),
}
