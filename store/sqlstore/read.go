package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// Reads that take several queries run them in one transaction, so they see
// one snapshot: never an env pointing at a version they have not read.

// State returns every env and every version, newest first.
func (s *Store) State(ctx context.Context) (_ store.State, err error) {
	defer s.classify(&err)
	tx, err := s.cfg.Reader.BeginTx(ctx, s.cfg.ReadTx)
	if err != nil {
		return store.State{}, err
	}
	defer tx.Rollback()
	envs, err := allEnvs(ctx, tx)
	if err != nil {
		return store.State{}, err
	}
	versions, err := versionInfos(ctx, tx, selectVersions+newestFirst)
	if err != nil {
		return store.State{}, err
	}
	st := store.State{Envs: envs, Versions: versions}
	if err := tx.QueryRowContext(ctx, lastPosition).Scan(&st.Position); err != nil {
		return store.State{}, err
	}
	return st, nil
}

// Changes returns the records of the changes after position after. Records
// written before records kept what their change did (schema version 1) are
// left out: no reader starts before them, since State's position is after
// them.
func (s *Store) Changes(ctx context.Context, after int64, limit int) (_ []store.Record, err error) {
	defer s.classify(&err)
	tx, err := s.cfg.Reader.BeginTx(ctx, s.cfg.ReadTx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, env, kind, at, change FROM records WHERE id > $1 AND change IS NOT NULL ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var recs []store.Record
	index := map[int64]int{}
	for rows.Next() {
		var rec store.Record
		var at int64
		var change []byte
		if err := rows.Scan(&rec.ID, &rec.Env, &rec.Kind, &at, &change); err != nil {
			return nil, err
		}
		var saved recordJSON
		if err := json.Unmarshal(change, &saved); err != nil {
			return nil, fmt.Errorf("record %d: %w", rec.ID, err)
		}
		rec.At, rec.Switched, rec.After, rec.Deleted, rec.Ended = fromNanos(at), saved.Switched, saved.After, saved.Deleted, saved.Ended
		index[rec.ID] = len(recs)
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil || len(recs) == 0 {
		return recs, err
	}
	stored, err := tx.QueryContext(ctx, `SELECT record_id, id, service, config, uses, created_at FROM versions WHERE record_id > $1 AND record_id <= $2 ORDER BY seq`,
		after, recs[len(recs)-1].ID)
	if err != nil {
		return nil, err
	}
	defer stored.Close()
	for stored.Next() {
		var position int64
		v, err := scanVersionInfo(stored, &position)
		if err != nil {
			return nil, err
		}
		if i, ok := index[position]; ok {
			recs[i].Versions = append(recs[i].Versions, v)
		}
	}
	return recs, stored.Err()
}

func allEnvs(ctx context.Context, tx *sql.Tx) ([]fiat.Env, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM envs ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var envs []fiat.Env
	index := map[string]int{}
	for rows.Next() {
		env := fiat.Env{Services: map[string]fiat.Hash{}}
		if err := rows.Scan(&env.Name); err != nil {
			return nil, err
		}
		index[env.Name] = len(envs)
		envs = append(envs, env)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT env, service, version, instances FROM env_versions`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var env, service string
		var version fiat.Hash
		var instances sql.NullInt64
		if err := rows.Scan(&env, &service, &version, &instances); err != nil {
			return nil, err
		}
		e := &envs[index[env]]
		e.Services[service] = version
		if instances.Valid {
			if e.Instances == nil {
				e.Instances = map[string]int{}
			}
			e.Instances[service] = int(instances.Int64)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT env, rollout FROM rollouts ORDER BY env, started, id`)
	if err != nil {
		return nil, err
	}
	rollouts, err := scanRollouts(rows)
	if err != nil {
		return nil, err
	}
	for env, rs := range rollouts {
		envs[index[env]].Rollouts = rs
	}
	return envs, allFlags(ctx, tx, envs, index)
}

const (
	selectVersions = `SELECT id, service, config, uses, created_at FROM versions`
	// Versions stored by one change share created_at; seq, their insertion
	// order, makes the order of those deterministic too.
	newestFirst = ` ORDER BY created_at DESC, seq DESC`
)

func versionInfos(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]store.VersionInfo, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var infos []store.VersionInfo
	for rows.Next() {
		v, err := scanVersionInfo(rows)
		if err != nil {
			return nil, err
		}
		infos = append(infos, v)
	}
	return infos, rows.Err()
}

// scanVersionInfo reads the columns of selectVersions, after those given
// in first.
func scanVersionInfo(rows *sql.Rows, first ...any) (store.VersionInfo, error) {
	v := store.VersionInfo{Envs: []string{}}
	var config, uses []byte
	var created int64
	if err := rows.Scan(append(first, &v.ID, &v.Service, &config, &uses, &created)...); err != nil {
		return v, err
	}
	if err := json.Unmarshal(config, &v.Config); err != nil {
		return v, fmt.Errorf("version %s: config: %w", v.ID, err)
	}
	if err := json.Unmarshal(uses, &v.Uses); err != nil {
		return v, fmt.Errorf("version %s: uses: %w", v.ID, err)
	}
	v.Created = fromNanos(created)
	return v, nil
}

func fromNanos(n int64) time.Time {
	return time.Unix(0, n).UTC()
}

// Version returns one version with its files. It needs no transaction:
// versions never change, and their files are committed with them.
func (s *Store) Version(ctx context.Context, id fiat.Hash) (_ *fiat.Version, err error) {
	defer s.classify(&err)
	v := &fiat.Version{ID: id}
	var config, uses []byte
	var created int64
	err = s.cfg.Reader.QueryRowContext(ctx, `SELECT service, config, uses, created_at FROM versions WHERE id = $1`, id).
		Scan(&v.Service, &config, &uses, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("version %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(config, &v.Config); err != nil {
		return nil, fmt.Errorf("version %s: config: %w", id, err)
	}
	if err := json.Unmarshal(uses, &v.Uses); err != nil {
		return nil, fmt.Errorf("version %s: uses: %w", id, err)
	}
	v.Created = fromNanos(created)
	rows, err := s.cfg.Reader.QueryContext(ctx, `SELECT f.path, b.data, f.executable FROM version_files f JOIN blobs b ON b.hash = f.blob WHERE f.version_id = $1 ORDER BY f.path`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var f fiat.File
		var executable int
		if err := rows.Scan(&f.Path, &f.Data, &executable); err != nil {
			return nil, err
		}
		f.Executable = executable != 0
		v.Files = append(v.Files, f)
	}
	return v, rows.Err()
}

// Resolve finds the one version of service whose id starts with prefix.
func (s *Store) Resolve(ctx context.Context, service, prefix string) (_ fiat.Hash, err error) {
	defer s.classify(&err)
	if err := fiat.CheckHashPrefix(prefix); err != nil {
		return "", err
	}
	// The ids starting with prefix are those in [prefix, prefix+"~"), as
	// "~" sorts after every character of a hash. Unlike LIKE, the range
	// uses the index on id, in PostgreSQL too if id has a bytewise
	// collation ("C").
	rows, err := s.cfg.Reader.QueryContext(ctx, `SELECT id FROM versions WHERE id >= $1 AND id < $2 AND service = $3 LIMIT 2`,
		prefix, prefix+"~", service)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var ids []fiat.Hash
	for rows.Next() {
		var id fiat.Hash
		if err := rows.Scan(&id); err != nil {
			return "", err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no version of service %q starts with %q: %w", service, prefix, store.ErrNotFound)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("several versions of service %q start with %q, give more of the hash: %w", service, prefix, store.ErrAmbiguous)
}

// Versions lists the versions of service, newest first, each with the envs
// it is in now.
func (s *Store) Versions(ctx context.Context, service string) (_ []store.VersionInfo, err error) {
	defer s.classify(&err)
	tx, err := s.cfg.Reader.BeginTx(ctx, s.cfg.ReadTx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	infos, err := versionInfos(ctx, tx, selectVersions+` WHERE service = $1`+newestFirst, service)
	if err != nil {
		return nil, err
	}
	index := map[fiat.Hash]int{}
	for i, v := range infos {
		index[v.ID] = i
	}
	rows, err := tx.QueryContext(ctx, `SELECT version, env FROM env_versions WHERE service = $1 ORDER BY env`, service)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var version fiat.Hash
		var env string
		if err := rows.Scan(&version, &env); err != nil {
			return nil, err
		}
		i := index[version]
		infos[i].Envs = append(infos[i].Envs, env)
	}
	return infos, rows.Err()
}

// Env returns one env's mapping.
func (s *Store) Env(ctx context.Context, name string) (_ fiat.Env, err error) {
	defer s.classify(&err)
	tx, err := s.cfg.Reader.BeginTx(ctx, s.cfg.ReadTx)
	if err != nil {
		return fiat.Env{}, err
	}
	defer tx.Rollback()
	exists, heads, err := loadEnv(ctx, tx, name)
	if err != nil {
		return fiat.Env{}, err
	}
	if !exists {
		return fiat.Env{}, fmt.Errorf("env %q: %w", name, store.ErrNotFound)
	}
	env := envOf(name, heads)
	if env.Rollouts, err = loadRollouts(ctx, tx, name); err != nil {
		return fiat.Env{}, err
	}
	flags, err := loadFlags(ctx, tx, name)
	env.Flags, env.UserKey = flags.flags, flags.userKey
	return env, err
}

// AdminToken returns the stored admin token, storing create() first if
// there is none. Of several nodes storing one at once, the first wins and
// every node returns its token.
func (s *Store) AdminToken(ctx context.Context, create func() string) (_ string, err error) {
	defer s.classify(&err)
	var token string
	err = s.cfg.Reader.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'admin_token'`).Scan(&token)
	if !errors.Is(err, sql.ErrNoRows) {
		return token, err
	}
	if _, err := s.cfg.Writer.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('admin_token', $1) ON CONFLICT (name) DO NOTHING`, create()); err != nil {
		return "", err
	}
	err = s.cfg.Writer.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'admin_token'`).Scan(&token)
	return token, err
}

// PutBuild keeps the archive of the build named key, as a blob.
func (s *Store) PutBuild(ctx context.Context, key fiat.Hash, archive []byte) (err error) {
	defer s.classify(&err)
	tx, err := s.cfg.Writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	sum := sha256.Sum256(archive)
	hash := hex.EncodeToString(sum[:])
	if _, err := tx.ExecContext(ctx, insertBlobs+`($1, $2)`+onConflict[insertBlobs], hash, archive); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO builds (key, blob) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, hash); err != nil {
		return err
	}
	return tx.Commit()
}

// Build returns the archive of the build named key.
func (s *Store) Build(ctx context.Context, key fiat.Hash) (_ []byte, err error) {
	defer s.classify(&err)
	var archive []byte
	err = s.cfg.Reader.QueryRowContext(ctx, `SELECT b.data FROM builds d JOIN blobs b ON b.hash = d.blob WHERE d.key = $1`, key).Scan(&archive)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("build %s: %w", key.Short(), store.ErrNotFound)
	}
	return archive, err
}
