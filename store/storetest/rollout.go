package storetest

import (
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// startRollout starts a rollout of vs in env at percent, each replacing
// what env serves now.
func startRollout(t *testing.T, s store.Store, env string, percent float64, vs ...*fiat.Version) store.Record {
	t.Helper()
	return apply(t, s, rolloutStart(t, s, env, percent, vs...))
}

func rolloutStart(t *testing.T, s store.Store, env string, percent float64, vs ...*fiat.Version) store.Change {
	t.Helper()
	at, _ := s.Env(t.Context(), env)
	candidates, expect := map[string]fiat.Hash{}, map[string]fiat.Hash{}
	for _, v := range vs {
		candidates[v.Service], expect[v.Service] = v.ID, at.Services[v.Service]
	}
	r := fiat.Rollout{ID: fiat.RolloutID(candidates), Candidates: candidates, Percent: percent}
	return store.Change{Env: env, Kind: "rollout", Versions: vs, Expect: expect, Rollout: &store.RolloutChange{Op: store.StartRollout, Rollout: r}}
}

func rolloutOp(env string, op store.RolloutOp, r fiat.Rollout, revision *int) store.Change {
	kind := map[store.RolloutOp]string{store.UpdateRollout: "rollout", store.FinishRollout: "rollout-finish", store.AbortRollout: "rollout-abort"}[op]
	return store.Change{Env: env, Kind: kind, Rollout: &store.RolloutChange{Op: op, Rollout: r, Revision: revision}}
}

// wantRollouts checks that env holds exactly the rollouts want, as Env,
// State and the last record of the history each say.
func wantRollouts(t *testing.T, s store.Store, env string, want ...fiat.Rollout) {
	t.Helper()
	same := func(got []fiat.Rollout) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.ID != w.ID || !maps.Equal(g.Candidates, w.Candidates) || g.Percent != w.Percent || len(g.Users) != len(w.Users) || g.Revision != w.Revision {
				return false
			}
		}
		return true
	}
	e, err := s.Env(t.Context(), env)
	if err != nil || !same(e.Rollouts) {
		t.Fatalf("Env(%q) rollouts = %+v, %v; want %+v", env, e.Rollouts, err, want)
	}
	st := state(t, s)
	for _, e := range st.Envs {
		if e.Name == env && !same(e.Rollouts) {
			t.Fatalf("State: env %q rollouts = %+v; want %+v", env, e.Rollouts, want)
		}
	}
	recs, err := s.Changes(t.Context(), st.Position-1, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Changes: %+v, %v", recs, err)
	}
	if recs[0].Env == env && !same(recs[0].After.Rollouts) {
		t.Fatalf("the last record's env %q has rollouts %+v; want %+v", env, recs[0].After.Rollouts, want)
	}
}

// testRollout starts a rollout of two services, one of them new to the
// env, changes it, and finishes it: the env keeps serving its versions
// until the finish points both services at their candidates in one step,
// one undo away from the versions before.
func testRollout(t *testing.T, s store.Store) {
	api1, api2, db := newVersion("api", "1", nil), newVersion("api", "2", nil), newVersion("db", "1", nil)
	web1 := newVersion("web", "1", nil)
	deploy(t, s, production, api1, web1)
	rec := startRollout(t, s, production, 5, api2, db)
	if len(rec.Switched) != 0 || rec.After.Services["api"] != api1.ID || len(rec.Versions) != 2 || len(rec.After.Rollouts) != 1 {
		t.Fatalf("start record: %+v", rec)
	}
	r := rec.After.Rollouts[0]
	if r.Started.IsZero() || r.Revision != 0 || r.Candidates["db"] != db.ID {
		t.Fatalf("started rollout: %+v", r)
	}
	wantEnv(t, s, production, map[string]fiat.Hash{"api": api1.ID, "web": web1.ID})
	wantRollouts(t, s, production, r)

	r.Percent, r.Users, r.Verdict = 25, []string{"ada"}, "advanced"
	rec = apply(t, s, rolloutOp(production, store.UpdateRollout, r, new(0)))
	r.Revision = 1
	wantRollouts(t, s, production, r)
	if got := rec.After.Rollouts[0]; got.Verdict != "advanced" || !got.Changed.After(got.Started) && !got.Changed.Equal(got.Started) {
		t.Errorf("updated rollout: %+v", got)
	}

	rec = apply(t, s, rolloutOp(production, store.FinishRollout, fiat.Rollout{ID: r.ID, Verdict: "done"}, nil))
	wantSwitched(t, rec, store.Switch{Service: "api", From: api1.ID, To: api2.ID}, store.Switch{Service: "db", To: db.ID})
	if rec.Ended == nil || rec.Ended.ID != r.ID || rec.Ended.Verdict != "done" || rec.Ended.Percent != 25 {
		t.Errorf("finish record ended %+v", rec.Ended)
	}
	wantEnv(t, s, production, map[string]fiat.Hash{"api": api2.ID, "db": db.ID, "web": web1.ID})
	wantRollouts(t, s, production)
	recs, err := s.Changes(t.Context(), rec.ID-1, 1)
	if err != nil || len(recs) != 1 || recs[0].Ended == nil || recs[0].Ended.ID != r.ID {
		t.Errorf("the finish as the history has it: %+v, %v", recs, err)
	}
	undo(t, s, production, "api")
	wantEnv(t, s, production, map[string]fiat.Hash{"api": api1.ID, "db": db.ID, "web": web1.ID})
}

// testRolloutAbort aborts a rollout: the env serves what it served, the
// record keeps the rollout as it ended, and the same candidates can roll
// out again.
func testRolloutAbort(t *testing.T, s store.Store) {
	api1, api2 := newVersion("api", "1", nil), newVersion("api", "2", nil)
	deploy(t, s, production, api1)
	r := startRollout(t, s, production, 50, api2).After.Rollouts[0]
	rec := apply(t, s, rolloutOp(production, store.AbortRollout, fiat.Rollout{ID: r.ID, Verdict: "too many errors"}, new(0)))
	if len(rec.Switched) != 0 || rec.Ended == nil || rec.Ended.Verdict != "too many errors" {
		t.Errorf("abort record: %+v", rec)
	}
	wantEnv(t, s, production, map[string]fiat.Hash{"api": api1.ID})
	wantRollouts(t, s, production)
	deploy(t, s, production, api2) // no longer rolling out: a plain deploy goes
	startRollout(t, s, production, 1, api1)
}

// testRolloutRefused tries every change a rollout must refuse, each of
// which leaves the store as it was.
func testRolloutRefused(t *testing.T, s store.Store) {
	api1, api2, api3 := newVersion("api", "1", nil), newVersion("api", "2", nil), newVersion("api", "3", nil)
	web1, web2 := newVersion("web", "1", nil), newVersion("web", "2", nil)
	deploy(t, s, production, api1, web1)
	deploy(t, s, staging, api3)
	r := startRollout(t, s, production, 10, api2).After.Rollouts[0]

	// A service rolling out moves only by its rollout's finish.
	refused(t, s, store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{api3}, Set: map[string]fiat.Hash{"api": api3.ID}}, store.ErrRollingOut)
	refused(t, s, store.Change{Env: production, Kind: "deploy", Set: map[string]fiat.Hash{"api": api2.ID}}, store.ErrRollingOut)
	refused(t, s, store.Change{Env: production, Kind: "rollback", Undo: []string{"api"}}, store.ErrRollingOut)
	refused(t, s, store.Change{Env: production, Kind: "promote", CopyFrom: staging, Existing: true}, store.ErrRollingOut)
	refused(t, s, rolloutStart(t, s, production, 10, api3, web2), store.ErrRollingOut)
	// The others are free.
	deploy(t, s, production, web2)

	refused(t, s, rolloutStart(t, s, production, 10, api2), store.ErrConflict) // under way already
	refused(t, s, rolloutStart(t, s, production, 10, web2), store.ErrConflict) // what it serves
	refused(t, s, rolloutStart(t, s, "nowhere", 10, web1), store.ErrNotFound)
	unknown := rolloutStart(t, s, staging, 10, newVersion("api", "4", nil))
	unknown.Versions = nil // a version never stored
	refused(t, s, unknown, store.ErrNotFound)
	stale := rolloutStart(t, s, staging, 10, api1)
	stale.Expect["api"] = api2.ID // not what staging serves
	refused(t, s, stale, store.ErrConflict)
	wrongService := rolloutStart(t, s, staging, 10, api1)
	wrongService.Rollout.Rollout.Candidates = map[string]fiat.Hash{"api": web1.ID}
	refused(t, s, wrongService, nil)
	for _, percent := range []float64{-1, 100.5, 0.001} {
		refused(t, s, rolloutStart(t, s, staging, percent, api1), nil)
	}
	tooMany := rolloutStart(t, s, staging, 10, api1)
	for i := range fiat.MaxRolloutUsers + 1 {
		tooMany.Rollout.Rollout.Users = append(tooMany.Rollout.Rollout.Users, string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))
	}
	refused(t, s, tooMany, nil)
	badPlan := rolloutStart(t, s, staging, 10, api1)
	badPlan.Rollout.Rollout.Auto = &fiat.AutoPlan{Steps: []float64{50, 10}, Interval: fiat.MinRolloutStep, MinRequests: 1, LatencyFactor: 2}
	refused(t, s, badPlan, nil)

	refused(t, s, rolloutOp(production, store.UpdateRollout, fiat.Rollout{ID: r.ID, Percent: 101}, nil), nil)
	refused(t, s, rolloutOp(production, store.UpdateRollout, fiat.Rollout{ID: "nosuch", Percent: 1}, nil), store.ErrNotFound)
	refused(t, s, rolloutOp(production, store.FinishRollout, fiat.Rollout{ID: r.ID}, new(3)), store.ErrConflict)
	refused(t, s, rolloutOp(staging, store.AbortRollout, fiat.Rollout{ID: r.ID}, nil), store.ErrNotFound)
	refused(t, s, store.Change{Env: production, Kind: "rollout", Set: map[string]fiat.Hash{"web": web1.ID}, Rollout: &store.RolloutChange{Op: store.AbortRollout, Rollout: fiat.Rollout{ID: r.ID}}}, nil)
	wantRollouts(t, s, production, r)

	// Deleting the env ends its rollouts with it.
	apply(t, s, store.Change{Env: production, Kind: "delete", Delete: true})
	deploy(t, s, production, api1)
	wantRollouts(t, s, production)
}

// followConcurrentSteps has two nodes advance one rollout at once, each
// decided on the revision it saw: exactly one step is made.
func followConcurrentSteps(t *testing.T, nodes []store.Store) {
	api1, api2 := newVersion("api", "1", nil), newVersion("api", "2", nil)
	deploy(t, nodes[0], production, api1)
	r := startRollout(t, nodes[0], production, 1, api2).After.Rollouts[0]
	for round := range 5 {
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, node := range nodes {
			wg.Go(func() {
				next := r
				next.Percent = float64(10*round + i + 2)
				_, errs[i] = node.Apply(t.Context(), rolloutOp(production, store.UpdateRollout, next, new(r.Revision)))
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: %v, want a conflict", round, err)
			}
		}
		e, err := nodes[1].Env(t.Context(), production)
		if err != nil || won != 1 || len(e.Rollouts) != 1 || e.Rollouts[0].Revision != r.Revision+1 {
			t.Fatalf("round %d: %d steps made, rollouts %+v, %v; want one step", round, won, e.Rollouts, err)
		}
		r = e.Rollouts[0]
	}
}
