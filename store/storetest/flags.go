package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

func setFlag(name string, p fiat.FlagPatch) store.Change {
	return store.Change{Env: production, Kind: "flag", Flag: &store.FlagChange{Name: name, Set: &p}}
}

func deleteFlag(env, name string) store.Change {
	return store.Change{Env: env, Kind: "flag-delete", Flag: &store.FlagChange{Name: name}}
}

// wantFlags checks env's flags in the record, in Env, in State and in the
// history a follower reads, which must all agree.
func wantFlags(t *testing.T, s store.Store, rec store.Record, want ...fiat.Flag) {
	t.Helper()
	if want == nil {
		want = []fiat.Flag(nil)
	}
	env, err := s.Env(t.Context(), rec.Env)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Changes(t.Context(), rec.ID-1, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Changes(%d) = %+v, %v", rec.ID-1, recs, err)
	}
	var inState []fiat.Flag
	for _, e := range state(t, s).Envs {
		if e.Name == rec.Env {
			inState = e.Flags
		}
	}
	for where, got := range map[string][]fiat.Flag{"record": rec.After.Flags, "Env": env.Flags, "State": inState, "Changes": recs[0].After.Flags} {
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("flags of %s in %s = %+v, want %+v", rec.Env, where, got, want)
		}
	}
}

func testFlags(t *testing.T, s store.Store) {
	deploy(t, s, production, newVersion("api", "1", nil))
	rec := apply(t, s, setFlag("new_checkout", fiat.FlagPatch{Percent: new(10.0)}))
	checkout := fiat.Flag{Name: "new_checkout", On: true, Percent: 10}
	wantFlags(t, s, rec, checkout)

	rec = apply(t, s, setFlag("beta", fiat.FlagPatch{Users: &[]string{"grace", "ada"}, Match: &[]fiat.HeaderMatch{{Header: "X-Beta", Value: "1"}}}))
	beta := fiat.Flag{Name: "beta", On: true, Users: []string{"ada", "grace"}, Match: []fiat.HeaderMatch{{Header: "X-Beta", Value: "1"}}}
	wantFlags(t, s, rec, beta, checkout)

	// A change keeps what it does not give.
	rec = apply(t, s, setFlag("new_checkout", fiat.FlagPatch{Percent: new(20.0)}))
	checkout.Percent = 20
	wantFlags(t, s, rec, beta, checkout)
	rec = apply(t, s, setFlag("new_checkout", fiat.FlagPatch{On: new(false)}))
	checkout.On = false
	wantFlags(t, s, rec, beta, checkout)

	// Deploys carry the env's flags to the routers that follow them.
	rec = deploy(t, s, production, newVersion("api", "2", nil))
	wantFlags(t, s, rec, beta, checkout)

	rec = apply(t, s, deleteFlag(production, "beta"))
	wantFlags(t, s, rec, checkout)
	refused(t, s, deleteFlag(production, "beta"), store.ErrNotFound)
	refused(t, s, store.Change{Env: staging, Kind: "flag", Flag: &store.FlagChange{Name: "x", Set: &fiat.FlagPatch{}}}, store.ErrNotFound)
	for _, bad := range []store.Change{
		setFlag("Bad Name", fiat.FlagPatch{}),
		setFlag("new_checkout", fiat.FlagPatch{Percent: new(120.0)}),
		setFlag("other", fiat.FlagPatch{Users: &[]string{"a", "a"}}),
		{Env: production, Kind: "flag", Flag: &store.FlagChange{Name: "x", Set: &fiat.FlagPatch{}}, Scale: map[string]int{"api": 1}},
		{Env: "pr-9", Kind: "flag", Flag: &store.FlagChange{Name: "x", Set: &fiat.FlagPatch{}}, Create: true},
	} {
		refused(t, s, bad, nil)
	}

	// The log has every change of the flag, with its value then.
	log, err := s.FlagLog(t.Context(), production, "beta")
	if err != nil || len(log) != 2 || log[0].Flag == nil || !reflect.DeepEqual(*log[0].Flag, beta) || log[1].Flag != nil || log[1].Kind != "flag-delete" || log[1].At.IsZero() {
		t.Fatalf("FlagLog(beta) = %+v, %v", log, err)
	}
	log, err = s.FlagLog(t.Context(), production, "new_checkout")
	if err != nil || len(log) != 3 || log[0].Flag.Percent != 10 || log[1].Flag.Percent != 20 || log[2].Flag.On || log[0].Position >= log[1].Position {
		t.Fatalf("FlagLog(new_checkout) = %+v, %v", log, err)
	}
	if _, err := s.FlagLog(t.Context(), production, "never"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FlagLog of a flag never set = %v, want ErrNotFound", err)
	}
}

// testFlagsForkAndDelete checks that a fork copies an env's flags and user
// key source, as an env of its own, and that deleting an env deletes
// them, logged, so that an env made again under its name has none.
func testFlagsForkAndDelete(t *testing.T, s store.Store) {
	deploy(t, s, production, newVersion("api", "1", nil))
	apply(t, s, setFlag("beta", fiat.FlagPatch{}))
	src := fiat.UserKeySource{From: "cookie", Name: "uid"}
	rec := apply(t, s, store.Change{Env: production, Kind: "user-key", UserKey: &src})
	if rec.After.UserKey == nil || *rec.After.UserKey != src {
		t.Fatalf("user key source in the record = %v", rec.After.UserKey)
	}
	rec = apply(t, s, store.Change{Env: "pr-1", Kind: "fork", CopyFrom: production, Create: true})
	wantFlags(t, s, rec, fiat.Flag{Name: "beta", On: true, Percent: 100})
	if env, err := s.Env(t.Context(), "pr-1"); err != nil || env.UserKey == nil || *env.UserKey != src || *rec.After.UserKey != src {
		t.Fatalf("fork's user key source = %+v, %v", env, err)
	}
	rec = apply(t, s, setFlag("beta", fiat.FlagPatch{On: new(false)}))
	wantFlags(t, s, rec, fiat.Flag{Name: "beta", Percent: 100})
	if env, _ := s.Env(t.Context(), "pr-1"); !env.Flags[0].On {
		t.Fatal("a flag changed in production changed in its fork")
	}
	// A promote copies versions, not flags.
	rec = apply(t, s, store.Change{Env: "pr-1", Kind: "promote", CopyFrom: production, Existing: true})
	wantFlags(t, s, rec, fiat.Flag{Name: "beta", On: true, Percent: 100})

	apply(t, s, store.Change{Env: "pr-1", Kind: "delete", Delete: true})
	log, err := s.FlagLog(t.Context(), "pr-1", "beta")
	if err != nil || len(log) != 2 || log[0].Kind != "fork" || log[1].Kind != "delete" || log[1].Flag != nil {
		t.Fatalf("FlagLog after the env's delete = %+v, %v", log, err)
	}
	rec = deploy(t, s, "pr-1", newVersion("api", "1", nil))
	wantFlags(t, s, rec)
	if rec.After.UserKey != nil {
		t.Fatalf("an env made again has the user key source of the one deleted: %v", rec.After.UserKey)
	}
	refused(t, s, store.Change{Env: staging, Kind: "user-key", UserKey: &src}, store.ErrNotFound)
	refused(t, s, store.Change{Env: production, Kind: "user-key", UserKey: &fiat.UserKeySource{From: "body", Name: "x"}}, nil)
}

// testFlagsLimit checks that an env has at most fiat.MaxFlags flags, and
// may still change those it has.
func testFlagsLimit(t *testing.T, s store.Store) {
	deploy(t, s, production, newVersion("api", "1", nil))
	for i := range fiat.MaxFlags {
		apply(t, s, setFlag(fmt.Sprintf("f%02d", i), fiat.FlagPatch{}))
	}
	refused(t, s, setFlag("one_more", fiat.FlagPatch{}), store.ErrConflict)
	apply(t, s, setFlag("f00", fiat.FlagPatch{On: new(false)}))
}
