package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/store"
)

// RolloutPlan is how a deploy rolls its changed services out instead of
// switching them: to Percent of users and to Users, advancing by itself
// if Auto is set.
type RolloutPlan struct {
	Percent float64        `json:"percent"`
	Users   []string       `json:"users,omitempty"`
	Auto    *fiat.AutoPlan `json:"auto,omitempty"`
}

func (p RolloutPlan) check() error {
	err := fiat.CheckPercent(p.Percent)
	if err == nil {
		err = fiat.CheckUsers(p.Users)
	}
	if err == nil && p.Auto != nil {
		err = p.Auto.Check()
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// DeployRollout validates the project in bundle as Deploy does and, if
// every service compiles, starts and passes its tests, rolls the services
// that changed out together as plan says, while env's users outside the
// rollout keep the versions they have. env must exist.
func (d *Deployer) DeployRollout(ctx context.Context, env string, bundle project.Bundle, plan RolloutPlan) (Result, error) {
	began := time.Now()
	res, err := d.startRollout(ctx, env, bundle, plan, began)
	d.metrics.Change("rollout", time.Since(began), err)
	return res, err
}

func (d *Deployer) startRollout(ctx context.Context, env string, bundle project.Bundle, plan RolloutPlan, began time.Time) (Result, error) {
	if err := plan.check(); err != nil {
		return Result{}, err
	}
	if _, ok := d.router.Env(env); !ok && fiat.CheckEnvName(env) == nil {
		return Result{}, fmt.Errorf("%w: env %q does not exist, and a rollout splits an env's users between what it serves and the candidates: deploy without --rollout first", ErrInvalid, env)
	}
	return d.deploy(ctx, env, bundle, &plan, began)
}

// commitRollout starts a rollout of the versions of versions that env,
// as seen, does not serve, expecting env to serve what seen has.
func (d *Deployer) commitRollout(ctx context.Context, env string, versions, fresh []*fiat.Version, seen map[string]fiat.Hash, ready map[fiat.Hash]fiat.Running, plan RolloutPlan) (store.Record, error) {
	candidates, expect := map[string]fiat.Hash{}, map[string]fiat.Hash{}
	for _, v := range versions {
		expect[v.Service] = seen[v.Service]
		if seen[v.Service] != v.ID {
			candidates[v.Service] = v.ID
		}
	}
	if len(candidates) == 0 {
		return store.Record{Env: env, Kind: "rollout", Switched: []store.Switch{}, After: fiat.Env{Name: env, Services: seen}}, nil
	}
	r := fiat.Rollout{ID: fiat.RolloutID(candidates), Candidates: candidates, Percent: plan.Percent, Users: plan.Users, Auto: plan.Auto}
	return d.commit(ctx, store.Change{Env: env, Kind: "rollout", Versions: fresh, Expect: expect,
		Rollout: &store.RolloutChange{Op: store.StartRollout, Rollout: r}}, ready)
}

// startedBy is the rollout in env that rolls out versions, if a deploy of
// them started one.
func startedBy(env fiat.Env, versions []*fiat.Version) *fiat.Rollout {
	for _, v := range versions {
		if r := env.RolloutOf(v.Service); r != nil && r.Candidates[v.Service] == v.ID {
			return r
		}
	}
	return nil
}

// RolloutChange is what `fiat rollout SERVICE` changes of the rollout of
// a service: its percentage and users, or its end.
type RolloutChange struct {
	Percent *float64  `json:"percent,omitempty"`
	Users   *[]string `json:"users,omitempty"`
	Finish  bool      `json:"finish,omitempty"`
	Abort   bool      `json:"abort,omitempty"`
}

func (c RolloutChange) check() error {
	ops := 0
	for _, given := range []bool{c.Percent != nil || c.Users != nil, c.Finish, c.Abort} {
		if given {
			ops++
		}
	}
	if ops != 1 {
		return fmt.Errorf("%w: give a new percent and/or users, or finish, or abort: one of them", ErrInvalid)
	}
	var err error
	if c.Percent != nil {
		err = fiat.CheckPercent(*c.Percent)
	}
	if err == nil && c.Users != nil {
		err = fiat.CheckUsers(*c.Users)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// ChangeRollout changes the rollout that service is in, in env, as c
// says: a finish points every service of the rollout at its candidate in
// one step; an abort leaves them where they are.
func (d *Deployer) ChangeRollout(ctx context.Context, env, service string, c RolloutChange) (RolloutStatus, error) {
	if err := checkEnvName(env); err != nil {
		return RolloutStatus{}, err
	}
	if err := c.check(); err != nil {
		return RolloutStatus{}, err
	}
	kind := "rollout"
	switch {
	case c.Finish:
		kind = "rollout-finish"
	case c.Abort:
		kind = "rollout-abort"
	}
	for attempt := 1; ; attempt++ {
		at, _ := d.router.Env(env)
		if attempt > 1 {
			var err error
			if at, err = d.store.Env(ctx, env); err != nil {
				return RolloutStatus{}, err
			}
		}
		r := at.RolloutOf(service)
		if r == nil {
			return RolloutStatus{}, notRollingOut(at, env, service)
		}
		ch := &store.RolloutChange{Op: store.UpdateRollout, Rollout: *r, Revision: new(r.Revision)}
		switch {
		case c.Finish:
			ch.Op, ch.Rollout.Verdict = store.FinishRollout, fmt.Sprintf("finished by hand at %g%%", r.Percent)
		case c.Abort:
			ch.Op, ch.Rollout.Verdict = store.AbortRollout, fmt.Sprintf("aborted by hand at %g%%", r.Percent)
		default:
			if c.Percent != nil {
				ch.Rollout.Percent = *c.Percent
			}
			if c.Users != nil {
				ch.Rollout.Users = *c.Users
			}
			ch.Rollout.Verdict = "changed by hand"
		}
		_, err := d.change(ctx, kind, env, func() (store.Change, error) {
			return store.Change{Env: env, Kind: kind, Rollout: ch}, nil
		})
		if errors.Is(err, store.ErrConflict) && attempt < maxConflicts {
			continue // an auto step came first: change what it left
		}
		if err != nil {
			return RolloutStatus{}, err
		}
		return d.RolloutStatus(env, service)
	}
}

func notRollingOut(at fiat.Env, env, service string) error {
	if at.Name == "" {
		return fmt.Errorf("env %q does not exist (`fiat env list` shows those that do): %w", env, store.ErrNotFound)
	}
	return fmt.Errorf("service %q is not rolling out in env %q: start a rollout with `fiat deploy --rollout PERCENT`: %w", service, env, store.ErrNotFound)
}

// RolloutStatus is a service's rollout as this node serves it: its
// services' current and candidate versions side by side, or, once it
// ended, how.
type RolloutStatus struct {
	Env     string `json:"env"`
	Service string `json:"service"`
	// Rollout is the rollout under way, nil if none.
	Rollout *fiat.Rollout `json:"rollout,omitempty"`
	// Since is when this node began counting the requests of Services:
	// when it first served the rollout's current step.
	Since    time.Time      `json:"since,omitzero"`
	Services []RolloutSplit `json:"services,omitempty"`
	// Judgement is what the auto rollout's rule says of the requests so
	// far, on this node.
	Judgement string `json:"judgement,omitempty"`
	// Ended is the service's last rollout that ended while this node ran,
	// with its verdict, and EndedAs "finished" or "aborted".
	Ended   *fiat.Rollout `json:"ended,omitempty"`
	EndedAs string        `json:"ended_as,omitempty"`
}

// RolloutSplit is one service of a rollout, its two versions side by side.
type RolloutSplit struct {
	Service   string       `json:"service"`
	Current   VersionTally `json:"current"`
	Candidate VersionTally `json:"candidate"`
}

// VersionTally is what a version served over a rollout's step, on this
// node.
type VersionTally struct {
	Version   fiat.Hash `json:"version,omitempty"`
	URL       string    `json:"url,omitempty"`
	ErrorRate float64   `json:"error_rate"`
	fiat.Window
}

// RolloutStatus says how the rollout of service in env goes.
func (d *Deployer) RolloutStatus(env, service string) (RolloutStatus, error) {
	if err := checkEnvName(env); err != nil {
		return RolloutStatus{}, err
	}
	at, _ := d.router.Env(env)
	st := RolloutStatus{Env: env, Service: service}
	if ended, ok := d.rollouts.endedOf(env, service); ok {
		st.Ended, st.EndedAs = &ended.rollout, ended.as
	}
	r := at.RolloutOf(service)
	if r == nil {
		if _, ok := at.Services[service]; !ok && st.Ended == nil {
			return RolloutStatus{}, notRollingOut(at, env, service)
		}
		return st, nil
	}
	st.Rollout = r
	var judgement fiat.Judgement
	st.Since, st.Services, judgement = d.rollouts.judge(d, at, *r)
	st.Judgement = judgement.Why
	return st, nil
}

// rollouts is what a node keeps of the rollouts it serves: where it began
// counting each step's requests, and how the rollouts it saw end ended.
type rollouts struct {
	mu sync.Mutex
	// steps holds, for each step of each rollout under way, what every
	// version of it had served when this node first saw the step.
	steps map[stepKey]baseline
	ended map[serviceKey]endedRollout
}

type stepKey struct {
	env, id  string
	revision int
}

type serviceKey struct{ env, service string }

type baseline struct {
	at    time.Time
	stats map[fiat.Hash]metrics.Stats
}

type endedRollout struct {
	rollout fiat.Rollout
	as      string
}

// sawEnd remembers the rollout rec ended.
func (rs *rollouts) sawEnd(rec store.Record) {
	if rec.Ended == nil {
		return
	}
	as := "aborted"
	if rec.Kind == "rollout-finish" {
		as = "finished"
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.ended == nil {
		rs.ended = map[serviceKey]endedRollout{}
	}
	for service := range rec.Ended.Candidates {
		rs.ended[serviceKey{rec.Env, service}] = endedRollout{*rec.Ended, as}
	}
}

func (rs *rollouts) endedOf(env, service string) (endedRollout, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	e, ok := rs.ended[serviceKey{env, service}]
	return e, ok
}

// baseline is what r's versions had served when this node first saw r's
// current step.
func (rs *rollouts) baseline(d *Deployer, env fiat.Env, r fiat.Rollout) baseline {
	key := stepKey{env.Name, r.ID, r.Revision}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if b, ok := rs.steps[key]; ok {
		return b
	}
	b := baseline{at: time.Now(), stats: map[fiat.Hash]metrics.Stats{}}
	for service, id := range r.Candidates {
		b.stats[id] = d.router.Stats(id)
		if current, ok := env.Services[service]; ok {
			b.stats[current] = d.router.Stats(current)
		}
	}
	if rs.steps == nil {
		rs.steps = map[stepKey]baseline{}
	}
	rs.steps[key] = b
	return b
}

// forgetSteps drops the baselines of steps that no env is at any more.
func (rs *rollouts) forgetSteps(envs []fiat.Env) {
	live := map[stepKey]bool{}
	for _, env := range envs {
		for _, r := range env.Rollouts {
			live[stepKey{env.Name, r.ID, r.Revision}] = true
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for key := range rs.steps {
		if !live[key] {
			delete(rs.steps, key)
		}
	}
}

// judge compares each candidate of r with the version it replaces over
// the current step, on this node, and says what the auto plan's rule
// makes of the worst of them (the rule of DefaultAutoPlan if r has none).
func (rs *rollouts) judge(d *Deployer, env fiat.Env, r fiat.Rollout) (time.Time, []RolloutSplit, fiat.Judgement) {
	b := rs.baseline(d, env, r)
	plan := fiat.DefaultAutoPlan
	if r.Auto != nil {
		plan = *r.Auto
	}
	tally := func(service string, id fiat.Hash) VersionTally {
		if id == "" {
			return VersionTally{}
		}
		w := d.router.Stats(id).Since(b.stats[id])
		return VersionTally{Version: id, URL: d.addresses.Version(service, id), ErrorRate: w.ErrorRate(), Window: w}
	}
	var splits []RolloutSplit
	var whys []string
	verdict := fiat.Judgement{Enough: true}
	for _, service := range slices.Sorted(maps.Keys(r.Candidates)) {
		s := RolloutSplit{Service: service, Current: tally(service, env.Services[service]), Candidate: tally(service, r.Candidates[service])}
		splits = append(splits, s)
		j := plan.Judge(s.Current.Window, s.Candidate.Window)
		whys = append(whys, service+": "+j.Why)
		switch {
		case j.Worse && !verdict.Worse:
			verdict = fiat.Judgement{Enough: true, Worse: true, Why: service + ": " + j.Why}
		case !j.Enough:
			verdict.Enough = false
		}
	}
	if !verdict.Worse {
		verdict.Why = strings.Join(whys, "; ")
	}
	return b.at, splits, verdict
}

// rolloutTick is how often a node judges the auto rollouts it serves:
// often enough that a failing candidate is aborted within moments.
const rolloutTick = 50 * time.Millisecond

// driveRollouts advances and aborts, until ctx ends, the auto rollouts
// this node serves, each on the requests this node served. Every node
// judges its own traffic; each step is a change decided on the rollout's
// revision, so of several nodes deciding the same step at once one makes
// it and the others' are refused.
func (d *Deployer) driveRollouts(ctx context.Context) {
	every(ctx, rolloutTick, func() {
		envs := d.router.Envs()
		d.rollouts.forgetSteps(envs)
		for _, env := range envs {
			for _, r := range env.Rollouts {
				if r.Auto != nil {
					d.step(ctx, env, r)
				}
			}
		}
	})
}

// step aborts r if a candidate is clearly worse, or takes it to its next
// step, or finishes it, once its step has lasted its interval with enough
// requests to tell.
func (d *Deployer) step(ctx context.Context, env fiat.Env, r fiat.Rollout) {
	_, _, j := d.rollouts.judge(d, env, r)
	ch := &store.RolloutChange{Rollout: r, Revision: new(r.Revision)}
	kind := "rollout"
	next, more := r.Auto.Next(r.Percent)
	switch {
	case j.Worse:
		ch.Op, kind = store.AbortRollout, "rollout-abort"
		ch.Rollout.Verdict = fmt.Sprintf("aborted at %g%%: %s", r.Percent, j.Why)
	case !j.Enough || time.Since(r.Changed) < r.Auto.Interval:
		return
	case more:
		ch.Op, ch.Rollout.Percent = store.UpdateRollout, next
		ch.Rollout.Verdict = fmt.Sprintf("advanced from %g%% to %g%%: %s", r.Percent, next, j.Why)
	default:
		ch.Op, kind = store.FinishRollout, "rollout-finish"
		ch.Rollout.Verdict = fmt.Sprintf("finished after %g%%: %s", r.Percent, j.Why)
	}
	_, err := d.change(ctx, kind, env.Name, func() (store.Change, error) {
		return store.Change{Env: env.Name, Kind: kind, Rollout: ch}, nil
	})
	if err != nil && !errors.Is(err, store.ErrConflict) && ctx.Err() == nil {
		d.logger.Error("cannot step an auto rollout: trying again", "env", env.Name, "rollout", r.ID, "err", err)
	}
}
