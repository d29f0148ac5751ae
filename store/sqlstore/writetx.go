package sqlstore

import (
	"context"
	"database/sql"
)

// The queries every deploy runs. Preparing them took a third of a deploy's
// CPU, so Open prepares them once, on the writer's one connection.
const (
	// nextPosition takes the next position and locks its row until the
	// change commits.
	nextPosition    = `UPDATE positions SET last = last + 1 RETURNING last`
	insertRecordSQL = `INSERT INTO records (id, env, kind, at, change) VALUES ($1, $2, $3, $4, $5)`
	insertVersion   = `INSERT INTO versions (id, service, config, uses, created_at, record_id) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`
	// insertBlobs and insertFiles are completed by a VALUES list.
	insertBlobs = `INSERT INTO blobs (hash, data) VALUES `
	insertFiles = `INSERT INTO version_files (version_id, path, blob, executable) VALUES `
	// selectEnv has one row per service of the env, one row of NULLs for
	// an env without services, and none for an env that does not exist.
	selectEnv = `SELECT v.service, v.history_id, v.version, v.back_to, v.instances
		FROM envs e LEFT JOIN env_versions v ON v.env = e.name WHERE e.name = $1`
	selectService  = `SELECT service FROM versions WHERE id = $1`
	selectRollouts = `SELECT env, rollout FROM rollouts WHERE env = $1 ORDER BY started, id`
	// selectFlags has one row per flag of the env, one row with NULL flags
	// for an env without flags, and none for an env that does not exist.
	selectFlags   = `SELECT e.user_key, f.name, f.flag FROM envs e LEFT JOIN flags f ON f.env = e.name WHERE e.name = $1 ORDER BY f.name`
	insertHistory = `INSERT INTO history (record_id, service, version, back_to) VALUES ($1, $2, $3, $4) RETURNING id`
	setHead       = `INSERT INTO env_services (env, service, history_id) VALUES ($1, $2, $3)
		ON CONFLICT (env, service) DO UPDATE SET history_id = excluded.history_id`
	lastPosition = `SELECT last FROM positions`
)

// onConflict ends the statements insertRows completes.
var onConflict = map[string]string{
	insertBlobs: ` ON CONFLICT (hash) DO NOTHING`,
	insertFiles: ``,
}

func prepare(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	prepared := map[string]*sql.Stmt{}
	for _, query := range []string{nextPosition, insertRecordSQL, insertVersion, selectEnv, selectService, selectRollouts, selectFlags, insertHistory, setHead} {
		stmt, err := db.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		prepared[query] = stmt
	}
	return prepared, nil
}

// writeTx is the transaction of Apply. It runs a query through its prepared
// statement if there is one, and prepares it afresh otherwise.
type writeTx struct {
	tx       *sql.Tx
	prepared map[string]*sql.Stmt
}

func (w writeTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if stmt, ok := w.prepared[query]; ok {
		return w.tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	}
	return w.tx.ExecContext(ctx, query, args...)
}

func (w writeTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if stmt, ok := w.prepared[query]; ok {
		return w.tx.StmtContext(ctx, stmt).QueryContext(ctx, args...)
	}
	return w.tx.QueryContext(ctx, query, args...)
}

func (w writeTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if stmt, ok := w.prepared[query]; ok {
		return w.tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...)
	}
	return w.tx.QueryRowContext(ctx, query, args...)
}
