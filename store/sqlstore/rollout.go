package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// An env's rollouts are rows of the rollouts table, each a fiat.Rollout
// as JSON: the router reads them whole, and no query looks inside.

// loadRollouts returns env's rollouts, oldest first.
func loadRollouts(ctx context.Context, q querier, env string) ([]fiat.Rollout, error) {
	rows, err := q.QueryContext(ctx, selectRollouts, env)
	if err != nil {
		return nil, err
	}
	byEnv, err := scanRollouts(rows)
	return byEnv[env], err
}

// scanRollouts reads rows of env and rollout, by env.
func scanRollouts(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) (map[string][]fiat.Rollout, error) {
	defer rows.Close()
	byEnv := map[string][]fiat.Rollout{}
	for rows.Next() {
		var env string
		var data []byte
		if err := rows.Scan(&env, &data); err != nil {
			return nil, err
		}
		var r fiat.Rollout
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("rollout in env %q: %w", env, err)
		}
		byEnv[env] = append(byEnv[env], r)
	}
	return byEnv, rows.Err()
}

// checkRollout refuses a rollout change that is malformed whatever the
// store holds.
func checkRollout(env string, rc *store.RolloutChange) error {
	r := rc.Rollout
	switch rc.Op {
	case store.StartRollout:
		if err := r.Check(); err != nil {
			return fmt.Errorf("rollout in env %q: %w", env, err)
		}
	case store.UpdateRollout:
		if err := fiat.CheckPercent(r.Percent); err != nil {
			return err
		}
		if err := fiat.CheckUsers(r.Users); err != nil {
			return err
		}
		if r.Auto != nil {
			return r.Auto.Check()
		}
	case store.FinishRollout, store.AbortRollout:
	default:
		return fmt.Errorf("rollout in env %q: unknown operation %d", env, rc.Op)
	}
	if r.ID == "" {
		return fmt.Errorf("rollout change to env %q names no rollout", env)
	}
	return nil
}

// rolloutPlan is what a rollout change does.
type rolloutPlan struct {
	// after are the env's rollouts once it is done.
	after []fiat.Rollout
	// steps are where a finish moves services.
	steps map[string]step
	// ended is the rollout a finish or abort ended.
	ended *fiat.Rollout
}

// planRollout works out what c.Rollout does to env c.Env, whose heads and
// rollouts are given.
func planRollout(ctx context.Context, tx writeTx, c store.Change, heads map[string]head, rollouts []fiat.Rollout, now time.Time) (rolloutPlan, error) {
	rc := c.Rollout
	i := slices.IndexFunc(rollouts, func(r fiat.Rollout) bool { return r.ID == rc.Rollout.ID })
	if rc.Op == store.StartRollout {
		return startRollout(ctx, tx, c, heads, rollouts, i, now)
	}
	if i < 0 {
		return rolloutPlan{}, fmt.Errorf("env %q has no rollout %s (`fiat rollout SERVICE` shows a service's): %w", c.Env, rc.Rollout.ID, store.ErrNotFound)
	}
	r := rollouts[i]
	if rc.Revision != nil && *rc.Revision != r.Revision {
		return rolloutPlan{}, fmt.Errorf("rollout %s in env %q changed since this change was decided (revision %d, not %d): %w", r.ID, c.Env, r.Revision, *rc.Revision, store.ErrConflict)
	}
	p := rolloutPlan{after: slices.Clone(rollouts)}
	r.Verdict = rc.Rollout.Verdict
	if rc.Op == store.UpdateRollout {
		r.Percent, r.Users, r.Auto = rc.Rollout.Percent, rc.Rollout.Users, rc.Rollout.Auto
		r.Changed = now
		r.Revision++
		p.after[i] = r
		return p, nil
	}
	p.after = slices.Delete(p.after, i, i+1)
	p.ended = &r
	if rc.Op == store.FinishRollout {
		var err error
		if p.steps, err = plan(ctx, tx, store.Change{Env: c.Env, Set: r.Candidates}, heads); err != nil {
			return rolloutPlan{}, err
		}
	}
	return p, nil
}

func startRollout(ctx context.Context, tx writeTx, c store.Change, heads map[string]head, rollouts []fiat.Rollout, existing int, now time.Time) (rolloutPlan, error) {
	r := c.Rollout.Rollout
	if existing >= 0 {
		return rolloutPlan{}, fmt.Errorf("rollout %s of these candidates is under way in env %q already: %w", r.ID, c.Env, store.ErrConflict)
	}
	for _, service := range slices.Sorted(maps.Keys(r.Candidates)) {
		if other := (fiat.Env{Rollouts: rollouts}).RolloutOf(service); other != nil {
			return rolloutPlan{}, rollingOut(c.Env, service, other)
		}
		if heads[service].version == r.Candidates[service] {
			return rolloutPlan{}, fmt.Errorf("candidate %s of service %q is the version env %q serves already, with nothing to roll out: %w", r.Candidates[service].Short(), service, c.Env, store.ErrConflict)
		}
	}
	// The candidates must be versions of their services, as a deploy's.
	if _, err := plan(ctx, tx, store.Change{Env: c.Env, Set: r.Candidates, Versions: c.Versions}, heads); err != nil {
		return rolloutPlan{}, err
	}
	r.Started, r.Changed, r.Revision = now, now, 0
	return rolloutPlan{after: append(slices.Clone(rollouts), r)}, nil
}

// rollingOut is the error of a change to service while r rolls it out.
func rollingOut(env, service string, r *fiat.Rollout) error {
	return fmt.Errorf("service %q in env %q is rolling out version %s (rollout %s, %g%%): finish it with `fiat rollout %s --finish` or abort it with `fiat rollout %s --abort` first: %w",
		service, env, r.Candidates[service].Short(), r.ID, r.Percent, service, service, store.ErrRollingOut)
}

// checkNotRollingOut refuses a change to env that moves or undoes one of
// services while it is rolling out.
func checkNotRollingOut(env string, services []string, rollouts []fiat.Rollout) error {
	for _, service := range services {
		if r := (fiat.Env{Rollouts: rollouts}).RolloutOf(service); r != nil {
			return rollingOut(env, service, r)
		}
	}
	return nil
}

// writeRollout stores what the rollout change c did.
func writeRollout(ctx context.Context, tx writeTx, c store.Change, after []fiat.Rollout) error {
	id := c.Rollout.Rollout.ID
	if c.Rollout.Op == store.FinishRollout || c.Rollout.Op == store.AbortRollout {
		_, err := tx.ExecContext(ctx, `DELETE FROM rollouts WHERE env = $1 AND id = $2`, c.Env, id)
		return err
	}
	r := after[slices.IndexFunc(after, func(r fiat.Rollout) bool { return r.ID == id })]
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if c.Rollout.Op == store.StartRollout {
		_, err = tx.ExecContext(ctx, `INSERT INTO rollouts (env, id, started, rollout) VALUES ($1, $2, $3, $4)`, c.Env, id, r.Started.UnixNano(), string(data))
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE rollouts SET rollout = $1 WHERE env = $2 AND id = $3`, string(data), c.Env, id)
	return err
}
