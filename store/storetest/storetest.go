// Package storetest checks that a store.Store does what store.go says it
// does. Every implementation runs it from its tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// Some versions here have made-up ids, to make hash prefixes collide: a
// store trusts the ids it is given (the deploy pipeline computes them), and
// only requires that they look like hashes.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// Run runs the suite. open returns a new, empty store for one subtest; Run
// closes it when the subtest ends. The subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s store.Store)
	}{
		{"Set", testSet},
		{"StoreOnly", testStoreOnly},
		{"CreateOnly", testCreateOnly},
		{"State", testState},
		{"Version", testVersion},
		{"Resolve", testResolve},
		{"Versions", testVersions},
		{"Undo", testUndo},
		{"UndoAfterSetToOlder", testUndoAfterSetToOlder},
		{"Promote", testPromote},
		{"Fork", testFork},
		{"Delete", testDelete},
		{"SetUnknownVersion", testSetUnknownVersion},
		{"FailedApplyChangesNothing", testFailedApplyChangesNothing},
		{"Expect", testExpect},
		{"Existing", testExisting},
		{"Concurrent", testConcurrent},
		{"Changes", testChanges},
		{"Wait", testWait},
		{"FollowConcurrentWriters", testFollowConcurrentWriters},
		{"AdminToken", testAdminToken},
		{"Scale", testScale},
		{"ProcessVersion", testProcessVersion},
		{"Builds", testBuilds},
		{"Rollout", testRollout},
		{"RolloutAbort", testRolloutAbort},
		{"RolloutRefused", testRolloutRefused},
		{"Flags", testFlags},
		{"FlagsForkAndDelete", testFlagsForkAndDelete},
		{"FlagsLimit", testFlagsLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.test(t, s)
		})
	}
}

// RunNodes runs the part of the suite about several nodes sharing one
// store. open returns, for one subtest, several handles on one new, empty
// store, as separate nodes would open it; RunNodes closes them.
func RunNodes(t *testing.T, open func(t *testing.T) []store.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, nodes []store.Store)
	}{
		{"FollowConcurrentWriters", followConcurrentWriters},
		{"WaitHearsOtherNodes", testWaitHearsOtherNodes},
		{"ConflictAcrossNodes", testConflictAcrossNodes},
		{"ConcurrentRolloutSteps", followConcurrentSteps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nodes := open(t)
			t.Cleanup(func() {
				for _, s := range nodes {
					if err := s.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			})
			tt.test(t, nodes)
		})
	}
}

// testWaitHearsOtherNodes checks that a node waiting for changes hears of
// one another node commits, soon enough not to be polling for it.
func testWaitHearsOtherNodes(t *testing.T, nodes []store.Store) {
	a, b := nodes[0], nodes[1]
	first := deploy(t, a, production, newVersion("api", "1", nil))
	for i := range 3 {
		woke := make(chan error, 1)
		go func() { woke <- b.Wait(t.Context(), first.ID+int64(i)) }()
		time.Sleep(20 * time.Millisecond)
		rec := deploy(t, a, production, newVersion("api", fmt.Sprint(i+2), nil))
		select {
		case err := <-woke:
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
		case <-time.After(time.Second):
			t.Fatalf("Wait on one node did not return within a second of change %d on another", rec.ID)
		}
		recs, err := b.Changes(t.Context(), rec.ID-1, 10)
		if err != nil || len(recs) != 1 || recs[0].ID != rec.ID {
			t.Fatalf("after Wait, Changes(%d) = %+v, %v; want change %d", rec.ID-1, recs, err, rec.ID)
		}
	}
}

// testConflictAcrossNodes has two nodes change one env at once, each
// decided on what it held before: exactly one wins, the other is refused
// saying what changed under it, and the env holds the winner's version.
func testConflictAcrossNodes(t *testing.T, nodes []store.Store) {
	base := newVersion("api", "base", nil)
	deploy(t, nodes[0], production, base)
	for round := range 10 {
		current := state(t, nodes[0]).Envs[0].Services["api"]
		results := make([]error, 2)
		versions := make([]*fiat.Version, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			versions[i] = newVersion("api", fmt.Sprint(round, "-", i), nil)
			wg.Go(func() {
				_, results[i] = nodes[i].Apply(t.Context(), store.Change{Env: production, Kind: "deploy",
					Versions: []*fiat.Version{versions[i]}, Set: map[string]fiat.Hash{"api": versions[i].ID},
					Expect: map[string]fiat.Hash{"api": current}})
			})
		}
		wg.Wait()
		won := -1
		for i, err := range results {
			switch {
			case err == nil && won == -1:
				won = i
			case err == nil:
				t.Fatalf("round %d: both changes decided on version %s were applied", round, current.Short())
			case !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "is now at"):
				t.Fatalf("round %d: the losing change failed with %v, want a conflict saying what the env holds now", round, err)
			}
		}
		if won == -1 {
			t.Fatalf("round %d: both changes were refused: %v", round, results)
		}
		wantEnv(t, nodes[1], production, map[string]fiat.Hash{"api": versions[won].ID})
	}
}

const (
	production = fiat.Production
	staging    = "staging"
)

// newVersion makes a version of service whose one file holds content.
func newVersion(service, content string, uses map[string]fiat.Hash) *fiat.Version {
	v := &fiat.Version{
		Service: service,
		Config:  fiat.Config{Kind: fiat.Script, MaxSteps: 1000, Timeout: time.Second},
		Files:   []fiat.File{{Path: "main.star", Data: []byte(content)}},
		Uses:    uses,
	}
	v.ID = fiat.HashVersion(v)
	return v
}

// withID is v under a made-up id of 52 hash characters starting with
// prefix, the rest filled with fill.
func withID(v *fiat.Version, prefix string, fill byte) *fiat.Version {
	v.ID = fiat.Hash(prefix + strings.Repeat(string(fill), fiat.HashLen-len(prefix)))
	return v
}

func apply(t *testing.T, s store.Store, c store.Change) store.Record {
	t.Helper()
	rec, err := s.Apply(t.Context(), c)
	if err != nil {
		t.Fatalf("Apply(%+v): %v", c, err)
	}
	return rec
}

// deploy stores vs and points their services at them in env.
func deploy(t *testing.T, s store.Store, env string, vs ...*fiat.Version) store.Record {
	t.Helper()
	set := map[string]fiat.Hash{}
	for _, v := range vs {
		set[v.Service] = v.ID
	}
	return apply(t, s, store.Change{Env: env, Kind: "deploy", Versions: vs, Set: set})
}

func undo(t *testing.T, s store.Store, env string, services ...string) store.Record {
	t.Helper()
	return apply(t, s, store.Change{Env: env, Kind: "rollback", Undo: services})
}

// refused checks that c fails, with an error matching want unless want is
// nil, and that the store's whole state is as it was before.
func refused(t *testing.T, s store.Store, c store.Change, want error) {
	t.Helper()
	before := state(t, s)
	_, err := s.Apply(t.Context(), c)
	switch {
	case err == nil:
		t.Fatalf("Apply(%+v) succeeded, want an error", c)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("Apply(%+v): %v, want %v", c, err, want)
	}
	if after := state(t, s); !reflect.DeepEqual(after, before) {
		t.Fatalf("refused Apply(%+v) changed the state\nbefore: %+v\nafter:  %+v", c, before, after)
	}
}

func state(t *testing.T, s store.Store) store.State {
	t.Helper()
	st, err := s.State(t.Context())
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return st
}

func wantEnv(t *testing.T, s store.Store, name string, want map[string]fiat.Hash) {
	t.Helper()
	env, err := s.Env(t.Context(), name)
	if err != nil {
		t.Fatalf("Env(%q): %v", name, err)
	}
	if env.Name != name || !maps.Equal(env.Services, want) {
		t.Fatalf("Env(%q) = %+v, want services %v", name, env, want)
	}
}

func wantNoEnv(t *testing.T, s store.Store, name string) {
	t.Helper()
	if env, err := s.Env(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Env(%q) = %+v, %v; want ErrNotFound", name, env, err)
	}
}

// wantSwitched checks what rec says was switched, in any order.
func wantSwitched(t *testing.T, rec store.Record, want ...store.Switch) {
	t.Helper()
	got := slices.Clone(rec.Switched)
	byService := func(a, b store.Switch) int { return strings.Compare(a.Service, b.Service) }
	slices.SortFunc(got, byService)
	slices.SortFunc(want, byService)
	if !slices.Equal(got, want) {
		t.Fatalf("record %d switched %+v, want %+v", rec.ID, got, want)
	}
}

func testSet(t *testing.T, s store.Store) {
	api1, web1 := newVersion("api", "1", nil), newVersion("web", "1", nil)
	start := time.Now()
	rec := deploy(t, s, production, api1, web1)
	end := time.Now()
	if rec.Env != production || rec.Kind != "deploy" {
		t.Errorf("record is of env %q, kind %q; want %q, %q", rec.Env, rec.Kind, production, "deploy")
	}
	if rec.At.Location() != time.UTC || rec.At.Before(start.Add(-time.Minute)) || rec.At.After(end.Add(time.Minute)) {
		t.Errorf("record at %v, want about %v in UTC", rec.At, start)
	}
	wantSwitched(t, rec, store.Switch{Service: "api", To: api1.ID}, store.Switch{Service: "web", To: web1.ID})
	both := map[string]fiat.Hash{"api": api1.ID, "web": web1.ID}
	if rec.After.Name != production || !maps.Equal(rec.After.Services, both) {
		t.Fatalf("record after = %+v, want %v", rec.After, both)
	}
	wantEnv(t, s, production, both)

	// Storing api1 again is a no-op; only web switches.
	web2 := newVersion("web", "2", nil)
	rec2 := deploy(t, s, production, api1, web2)
	if rec2.ID == rec.ID {
		t.Errorf("two records have id %d", rec.ID)
	}
	wantSwitched(t, rec2, store.Switch{Service: "web", From: web1.ID, To: web2.ID})
	both["web"] = web2.ID
	if !maps.Equal(rec2.After.Services, both) {
		t.Fatalf("record after = %+v, want %v", rec2.After, both)
	}
	wantEnv(t, s, production, both)

	// Setting one service leaves the others alone.
	api2 := newVersion("api", "2", nil)
	rec3 := deploy(t, s, production, api2)
	wantSwitched(t, rec3, store.Switch{Service: "api", From: api1.ID, To: api2.ID})
	both["api"] = api2.ID
	if !maps.Equal(rec3.After.Services, both) {
		t.Fatalf("record after = %+v, want %v", rec3.After, both)
	}
	wantEnv(t, s, production, both)

	// Deploying what is there switches nothing.
	if rec := deploy(t, s, production, api2, web2); len(rec.Switched) != 0 {
		t.Fatalf("redeploying the same versions switched %+v", rec.Switched)
	}
	wantEnv(t, s, production, both)
}

// testStoreOnly stores a version without switching to it, as a rollout
// does with its candidate.
func testStoreOnly(t *testing.T, s store.Store) {
	v1, v2 := newVersion("api", "1", nil), newVersion("api", "2", nil)
	deploy(t, s, production, v1)
	rec := apply(t, s, store.Change{Env: production, Kind: "candidate", Versions: []*fiat.Version{v2}})
	wantSwitched(t, rec)
	current := map[string]fiat.Hash{"api": v1.ID}
	if !maps.Equal(rec.After.Services, current) {
		t.Errorf("record after = %+v, want %v", rec.After, current)
	}
	wantEnv(t, s, production, current)
	wantVersion(t, s, v2)
	wantVersions(t, s, "api", []string{string(v2.ID), "", string(v1.ID), production})

	// Storing for an env that does not exist does not make it.
	rec = apply(t, s, store.Change{Env: staging, Kind: "candidate", Versions: []*fiat.Version{newVersion("api", "3", nil)}})
	wantNoEnv(t, s, staging)
	if rec.After.Name != "" {
		t.Errorf("record after = %+v, want no env", rec.After)
	}
}

// testCreateOnly makes an empty env.
func testCreateOnly(t *testing.T, s store.Store) {
	rec := apply(t, s, store.Change{Env: staging, Kind: "create", Create: true})
	wantSwitched(t, rec)
	wantEnv(t, s, staging, map[string]fiat.Hash{})
	if st := state(t, s); len(st.Envs) != 1 || st.Envs[0].Name != staging || len(st.Envs[0].Services) != 0 {
		t.Errorf("State envs = %+v, want %q alone, empty", st.Envs, staging)
	}
	refused(t, s, store.Change{Env: staging, Kind: "create", Create: true}, store.ErrEnvExists)
}

func testState(t *testing.T, s store.Store) {
	if st := state(t, s); len(st.Envs) != 0 || len(st.Versions) != 0 {
		t.Fatalf("new store has state %+v", st)
	}
	api1, api2, web1 := newVersion("api", "1", nil), newVersion("api", "2", nil), newVersion("web", "1", nil)
	api1.Config = fiat.Config{Kind: fiat.Process, Timeout: time.Minute}
	api1.ID = fiat.HashVersion(api1)
	rec1 := deploy(t, s, production, api1, web1)
	rec2 := deploy(t, s, production, api2)
	deploy(t, s, staging, api1)

	st := state(t, s)
	slices.SortFunc(st.Envs, func(a, b fiat.Env) int { return strings.Compare(a.Name, b.Name) })
	wantEnvs := []fiat.Env{
		{Name: production, Services: map[string]fiat.Hash{"api": api2.ID, "web": web1.ID}},
		{Name: staging, Services: map[string]fiat.Hash{"api": api1.ID}},
	}
	if !reflect.DeepEqual(st.Envs, wantEnvs) {
		t.Errorf("State envs = %+v, want %+v", st.Envs, wantEnvs)
	}
	// api1 is no longer in production but still in the state.
	want := map[fiat.Hash]store.VersionInfo{
		api1.ID: {ID: api1.ID, Service: "api", Config: api1.Config, Created: rec1.At},
		web1.ID: {ID: web1.ID, Service: "web", Config: web1.Config, Created: rec1.At},
		api2.ID: {ID: api2.ID, Service: "api", Config: api2.Config, Created: rec2.At},
	}
	if len(st.Versions) != len(want) {
		t.Fatalf("State has %d versions, want %d: %+v", len(st.Versions), len(want), st.Versions)
	}
	for _, got := range st.Versions {
		w := want[got.ID]
		if got.ID != w.ID || got.Service != w.Service || !reflect.DeepEqual(got.Config, w.Config) || !got.Created.Equal(w.Created) {
			t.Errorf("State version %+v, want %+v", got, w)
		}
	}
}

func testVersion(t *testing.T, s store.Store) {
	db := newVersion("db", "1", nil)
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(rand.Uint32())
	}
	v := &fiat.Version{
		Service: "api",
		Config:  fiat.Config{Kind: fiat.Process, MaxSteps: 7, Timeout: 3 * time.Second},
		Files: []fiat.File{
			{Path: "Procfile", Data: []byte("web: ./run\n")},
			{Path: "big", Data: big},
			{Path: "bin/run", Data: []byte{0, 1, 2, 0xff, 0xfe, 0}},
			{Path: "empty"},
		},
		Uses: map[string]fiat.Hash{"db": db.ID},
	}
	v.ID = fiat.HashVersion(v)
	deploy(t, s, production, db)
	rec := deploy(t, s, production, v)

	got := wantVersion(t, s, v)
	if !got.Created.Equal(rec.At) {
		t.Errorf("version created %v, want %v, when it was stored", got.Created, rec.At)
	}
	wantVersion(t, s, db)

	// Storing it again keeps the first copy.
	deploy(t, s, staging, v)
	if again := wantVersion(t, s, v); !again.Created.Equal(got.Created) {
		t.Errorf("storing version again changed its created time from %v to %v", got.Created, again.Created)
	}

	unknown := newVersion("api", "never stored", nil)
	if got, err := s.Version(t.Context(), unknown.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Version(unknown) = %+v, %v; want ErrNotFound", got, err)
	}
}

// wantVersion checks that the store has v, files byte for byte.
func wantVersion(t *testing.T, s store.Store, v *fiat.Version) *fiat.Version {
	t.Helper()
	got, err := s.Version(t.Context(), v.ID)
	if err != nil {
		t.Fatalf("Version(%s): %v", v.ID, err)
	}
	if got.ID != v.ID || got.Service != v.Service || !reflect.DeepEqual(got.Config, v.Config) || !maps.Equal(got.Uses, v.Uses) {
		t.Errorf("Version(%s) = %+v, want %+v", v.ID, got, v)
	}
	if len(got.Files) != len(v.Files) {
		t.Fatalf("Version(%s) has %d files, want %d", v.ID, len(got.Files), len(v.Files))
	}
	for i, f := range got.Files {
		if f.Path != v.Files[i].Path || !bytes.Equal(f.Data, v.Files[i].Data) {
			t.Errorf("Version(%s) file %d is %q (%d bytes), want %q (%d bytes)", v.ID, i, f.Path, len(f.Data), v.Files[i].Path, len(v.Files[i].Data))
		}
	}
	if got.Created.IsZero() || got.Created.Location() != time.UTC {
		t.Errorf("Version(%s) created %v, want a time in UTC", v.ID, got.Created)
	}
	return got
}

func testResolve(t *testing.T, s store.Store) {
	plain := newVersion("api", "plain", nil)
	twinA := withID(newVersion("api", "a", nil), "twinsxyz", 'a')
	twinB := withID(newVersion("api", "b", nil), "twinsxyz", 'b')
	// Same prefix, different services: not ambiguous.
	apiOne := withID(newVersion("api", "one", nil), "loneprefix", 'a')
	webOne := withID(newVersion("web", "one", nil), "loneprefix", 'b')
	for _, v := range []*fiat.Version{plain, twinA, twinB, apiOne, webOne} {
		deploy(t, s, production, v)
	}

	for _, tt := range []struct {
		service, prefix string
		want            fiat.Hash
		err             error
	}{
		{"api", string(plain.ID), plain.ID, nil},
		{"api", string(plain.ID[:fiat.MinPrefixLen]), plain.ID, nil},
		{"api", string(plain.ID[:fiat.ShortLen]), plain.ID, nil},
		{"api", "twinsxyza", twinA.ID, nil},
		{"api", "twinsxyzb", twinB.ID, nil},
		{"api", "twinsxyz", "", store.ErrAmbiguous},
		{"api", "loneprefix", apiOne.ID, nil},
		{"web", "loneprefix", webOne.ID, nil},
		{"web", string(plain.ID[:fiat.ShortLen]), "", store.ErrNotFound},
		{"db", "loneprefix", "", store.ErrNotFound},
		{"api", "zzzzzzzzzz", "", store.ErrNotFound},
	} {
		got, err := s.Resolve(t.Context(), tt.service, tt.prefix)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q, %v", tt.service, tt.prefix, got, err, tt.want, tt.err)
		}
	}
	// Too short to resolve, even though only one version starts with it.
	short := string(plain.ID[:fiat.MinPrefixLen-1])
	if got, err := s.Resolve(t.Context(), "api", short); err == nil {
		t.Errorf("Resolve(%q, %q) = %q, want an error", "api", short, got)
	}
}

func testVersions(t *testing.T, s store.Store) {
	a, b, c := newVersion("api", "a", nil), newVersion("api", "b", nil), newVersion("api", "c", nil)
	web := newVersion("web", "1", nil)
	// One Apply stores a, b and c at the same instant: newest first still
	// means the order they were given in, reversed.
	apply(t, s, store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{a, b, c, web},
		Set: map[string]fiat.Hash{"api": b.ID, "web": web.ID}})
	deploy(t, s, staging, b)
	deploy(t, s, "dev", c)
	wantVersions(t, s, "api", []string{string(c.ID), "dev", string(b.ID), "production staging", string(a.ID), ""})

	d := newVersion("api", "d", nil)
	deploy(t, s, "dev", d)
	wantVersions(t, s, "api", []string{string(d.ID), "dev", string(c.ID), "", string(b.ID), "production staging", string(a.ID), ""})
	wantVersions(t, s, "web", []string{string(web.ID), "production"})
	wantVersions(t, s, "db", nil)
}

// wantVersions checks Versions(service) against want: each id, then its
// envs joined by spaces.
func wantVersions(t *testing.T, s store.Store, service string, want []string) {
	t.Helper()
	infos, err := s.Versions(t.Context(), service)
	if err != nil {
		t.Fatalf("Versions(%q): %v", service, err)
	}
	var got []string
	for _, v := range infos {
		if v.Service != service || v.Created.IsZero() {
			t.Errorf("Versions(%q) lists %+v", service, v)
		}
		envs := slices.Sorted(slices.Values(v.Envs))
		got = append(got, string(v.ID), strings.Join(envs, " "))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Versions(%q) = %q, want %q", service, got, want)
	}
}

func testUndo(t *testing.T, s store.Store) {
	v1, v2, v3, v4 := newVersion("api", "1", nil), newVersion("api", "2", nil), newVersion("api", "3", nil), newVersion("api", "4", nil)
	web := newVersion("web", "1", nil)
	deploy(t, s, production, v1, web)
	deploy(t, s, production, v2)
	deploy(t, s, production, v3)
	deploy(t, s, staging, v2)
	deploy(t, s, staging, v3)

	wantUndo := func(from, to *fiat.Version) {
		t.Helper()
		rec := undo(t, s, production, "api")
		wantSwitched(t, rec, store.Switch{Service: "api", From: from.ID, To: to.ID})
		want := map[string]fiat.Hash{"api": to.ID, "web": web.ID}
		if !maps.Equal(rec.After.Services, want) {
			t.Fatalf("undo: record after = %+v, want %v", rec.After, want)
		}
		wantEnv(t, s, production, want)
	}
	wantUndo(v3, v2)
	wantUndo(v2, v1)
	refused(t, s, store.Change{Env: production, Kind: "rollback", Undo: []string{"api"}}, store.ErrNoPrevious)
	deploy(t, s, production, v4)
	wantUndo(v4, v1)
	refused(t, s, store.Change{Env: production, Kind: "rollback", Undo: []string{"api"}}, store.ErrNoPrevious)

	// Each env has its own stack.
	wantEnv(t, s, staging, map[string]fiat.Hash{"api": v3.ID})
	undo(t, s, staging, "api")
	wantEnv(t, s, staging, map[string]fiat.Hash{"api": v2.ID})

	refused(t, s, store.Change{Env: production, Kind: "rollback", Undo: []string{"db"}}, store.ErrNotFound)
	refused(t, s, store.Change{Env: "dev", Kind: "rollback", Undo: []string{"api"}}, store.ErrNotFound)
}

func testUndoAfterSetToOlder(t *testing.T, s store.Store) {
	v1, v2 := newVersion("api", "1", nil), newVersion("api", "2", nil)
	deploy(t, s, production, v1)
	deploy(t, s, production, v2)
	// Setting v1 by its hash is a new set, not an undo: undoing it returns to v2.
	deploy(t, s, production, v1)
	undo(t, s, production, "api")
	wantEnv(t, s, production, map[string]fiat.Hash{"api": v2.ID})
	undo(t, s, production, "api")
	wantEnv(t, s, production, map[string]fiat.Hash{"api": v1.ID})
	refused(t, s, store.Change{Env: production, Kind: "rollback", Undo: []string{"api"}}, store.ErrNoPrevious)
}

func testPromote(t *testing.T, s store.Store) {
	api1, api2 := newVersion("api", "1", nil), newVersion("api", "2", nil)
	web2 := newVersion("web", "2", nil)
	db1 := newVersion("db", "1", nil)
	deploy(t, s, production, api1, db1)
	deploy(t, s, staging, api2, web2)

	rec := apply(t, s, store.Change{Env: production, Kind: "promote", CopyFrom: staging})
	wantSwitched(t, rec,
		store.Switch{Service: "api", From: api1.ID, To: api2.ID},
		store.Switch{Service: "web", To: web2.ID})
	want := map[string]fiat.Hash{"api": api2.ID, "web": web2.ID, "db": db1.ID}
	if !maps.Equal(rec.After.Services, want) {
		t.Fatalf("promote: record after = %+v, want %v", rec.After, want)
	}
	wantEnv(t, s, production, want)
	wantEnv(t, s, staging, map[string]fiat.Hash{"api": api2.ID, "web": web2.ID})

	// A promote is undone like a deploy.
	undo(t, s, production, "api")
	wantEnv(t, s, production, map[string]fiat.Hash{"api": api1.ID, "web": web2.ID, "db": db1.ID})
	refused(t, s, store.Change{Env: production, Kind: "rollback", Undo: []string{"web"}}, store.ErrNoPrevious)

	refused(t, s, store.Change{Env: production, Kind: "promote", CopyFrom: "dev"}, store.ErrNotFound)
}

func testFork(t *testing.T, s store.Store) {
	api1, web1 := newVersion("api", "1", nil), newVersion("web", "1", nil)
	deploy(t, s, staging, api1, web1)

	rec := apply(t, s, store.Change{Env: "pr-1", Kind: "fork", CopyFrom: staging, Create: true})
	wantSwitched(t, rec, store.Switch{Service: "api", To: api1.ID}, store.Switch{Service: "web", To: web1.ID})
	want := map[string]fiat.Hash{"api": api1.ID, "web": web1.ID}
	wantEnv(t, s, "pr-1", want)

	// The fork is an env of its own.
	api2 := newVersion("api", "2", nil)
	deploy(t, s, "pr-1", api2)
	wantEnv(t, s, staging, want)

	refused(t, s, store.Change{Env: "pr-1", Kind: "fork", CopyFrom: staging, Create: true}, store.ErrEnvExists)
	refused(t, s, store.Change{Env: "pr-2", Kind: "fork", CopyFrom: "dev", Create: true}, store.ErrNotFound)
	wantNoEnv(t, s, "pr-2")
	// Create goes with Set too.
	refused(t, s, store.Change{Env: staging, Kind: "deploy", Set: map[string]fiat.Hash{"api": api2.ID}, Create: true}, store.ErrEnvExists)
}

func testDelete(t *testing.T, s store.Store) {
	v1, v2 := newVersion("api", "1", nil), newVersion("api", "2", nil)
	deploy(t, s, production, v1)
	deploy(t, s, staging, v1)
	deploy(t, s, staging, v2)

	rec := apply(t, s, store.Change{Env: staging, Kind: "delete", Delete: true})
	if len(rec.After.Services) != 0 {
		t.Errorf("delete: record after = %+v, want no services", rec.After)
	}
	wantNoEnv(t, s, staging)
	st := state(t, s)
	if len(st.Envs) != 1 || st.Envs[0].Name != production {
		t.Errorf("State envs after deleting %q = %+v", staging, st.Envs)
	}
	if len(st.Versions) != 2 {
		t.Errorf("State has %d versions after delete, want both", len(st.Versions))
	}
	wantVersion(t, s, v2)
	wantVersions(t, s, "api", []string{string(v2.ID), "", string(v1.ID), "production"})

	refused(t, s, store.Change{Env: staging, Kind: "delete", Delete: true}, store.ErrNotFound)

	// An env made again under the same name starts a new history.
	deploy(t, s, staging, v1)
	wantEnv(t, s, staging, map[string]fiat.Hash{"api": v1.ID})
	refused(t, s, store.Change{Env: staging, Kind: "rollback", Undo: []string{"api"}}, store.ErrNoPrevious)
}

func testSetUnknownVersion(t *testing.T, s store.Store) {
	api1, web1 := newVersion("api", "1", nil), newVersion("web", "1", nil)
	deploy(t, s, production, api1, web1)
	never := newVersion("api", "never stored", nil)
	refused(t, s, store.Change{Env: production, Kind: "deploy", Set: map[string]fiat.Hash{"api": never.ID}}, store.ErrNotFound)
	refused(t, s, store.Change{Env: staging, Kind: "deploy", Set: map[string]fiat.Hash{"api": never.ID}}, store.ErrNotFound)
	// A version of another service.
	refused(t, s, store.Change{Env: production, Kind: "deploy", Set: map[string]fiat.Hash{"api": web1.ID}}, nil)
}

func testFailedApplyChangesNothing(t *testing.T, s store.Store) {
	api1, web1 := newVersion("api", "1", nil), newVersion("web", "1", nil)
	api2, web2 := newVersion("api", "2", nil), newVersion("web", "2", nil)
	deploy(t, s, production, api1, web1)
	deploy(t, s, production, api2)

	// The new versions are not stored when the switch fails.
	api3 := newVersion("api", "3", nil)
	refused(t, s, store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{api3, web2},
		Set: map[string]fiat.Hash{"api": api3.ID, "web": newVersion("web", "never stored", nil).ID}}, store.ErrNotFound)
	if got, err := s.Resolve(t.Context(), "api", string(api3.ID)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused Apply stored a version: Resolve = %q, %v", got, err)
	}
	// api could be undone, web cannot: neither is.
	refused(t, s, store.Change{Env: production, Kind: "rollback", Undo: []string{"api", "web"}}, store.ErrNoPrevious)
	// Two operations in one change.
	refused(t, s, store.Change{Env: production, Kind: "deploy", Set: map[string]fiat.Hash{"api": api1.ID}, Delete: true}, nil)
	refused(t, s, store.Change{Env: production, Kind: "deploy", Set: map[string]fiat.Hash{"api": api1.ID}, CopyFrom: staging}, nil)
	// One service both set and undone, or undone twice.
	refused(t, s, store.Change{Env: production, Kind: "deploy", Set: map[string]fiat.Hash{"api": api1.ID}, Undo: []string{"api"}}, nil)
	refused(t, s, store.Change{Env: production, Kind: "rollback", Undo: []string{"api", "api"}}, nil)
	// Nothing at all.
	refused(t, s, store.Change{Env: production, Kind: "deploy"}, nil)
	// A version that is not a hash.
	bad := newVersion("api", "bad", nil)
	bad.ID = "v1"
	refused(t, s, store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{bad}, Set: map[string]fiat.Hash{"api": bad.ID}}, nil)
	wantEnv(t, s, production, map[string]fiat.Hash{"api": api2.ID, "web": web1.ID})
}

// testExpect checks that a change decided on what an env held is refused,
// changing nothing, once the env holds something else.
func testExpect(t *testing.T, s store.Store) {
	api1, api2, api3 := newVersion("api", "1", nil), newVersion("api", "2", nil), newVersion("api", "3", nil)
	web1 := newVersion("web", "1", nil)
	deploy(t, s, production, api1, web1)
	// Decided when api was at api1; a rollout of api2 came first.
	deploy(t, s, production, api2)
	refused(t, s, store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{api3},
		Set: map[string]fiat.Hash{"api": api3.ID}, Expect: map[string]fiat.Hash{"api": api1.ID}}, store.ErrConflict)
	// A service expected absent that is there.
	refused(t, s, store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{api3},
		Set: map[string]fiat.Hash{"api": api3.ID}, Expect: map[string]fiat.Hash{"api": ""}}, store.ErrConflict)
	// An expectation about a service the change does not set counts too.
	refused(t, s, store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{api3},
		Set: map[string]fiat.Hash{"api": api3.ID}, Expect: map[string]fiat.Hash{"api": api2.ID, "web": ""}}, store.ErrConflict)
	// An env expected empty that another change made.
	deploy(t, s, staging, api1)
	refused(t, s, store.Change{Env: staging, Kind: "deploy", Versions: []*fiat.Version{api3},
		Set: map[string]fiat.Hash{"api": api3.ID}, Expect: map[string]fiat.Hash{"api": ""}}, store.ErrConflict)

	rec := apply(t, s, store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{api3},
		Set: map[string]fiat.Hash{"api": api3.ID}, Expect: map[string]fiat.Hash{"api": api2.ID, "web": web1.ID, "db": ""}})
	wantSwitched(t, rec, store.Switch{Service: "api", From: api2.ID, To: api3.ID})
	wantEnv(t, s, production, map[string]fiat.Hash{"api": api3.ID, "web": web1.ID})
}

// testExisting checks that a change requiring its env and services to
// exist makes neither.
func testExisting(t *testing.T, s store.Store) {
	api1, api2 := newVersion("api", "1", nil), newVersion("api", "2", nil)
	web1 := newVersion("web", "1", nil)
	deploy(t, s, production, api1, api2)
	deploy(t, s, staging, web1)
	refused(t, s, store.Change{Env: "nowhere", Kind: "rollback", Existing: true, Set: map[string]fiat.Hash{"api": api1.ID}}, store.ErrNotFound)
	wantNoEnv(t, s, "nowhere")
	refused(t, s, store.Change{Env: staging, Kind: "rollback", Existing: true, Set: map[string]fiat.Hash{"api": api1.ID}}, store.ErrNotFound)
	refused(t, s, store.Change{Env: "nowhere", Kind: "promote", Existing: true, CopyFrom: production}, store.ErrNotFound)
	wantNoEnv(t, s, "nowhere")
	rec := apply(t, s, store.Change{Env: production, Kind: "rollback", Existing: true, Set: map[string]fiat.Hash{"api": api1.ID}})
	wantSwitched(t, rec, store.Switch{Service: "api", From: api2.ID, To: api1.ID})
	// A promote may bring services new to the env: only the env must exist.
	rec = apply(t, s, store.Change{Env: staging, Kind: "promote", Existing: true, CopyFrom: production})
	wantSwitched(t, rec, store.Switch{Service: "api", To: api1.ID})
	refused(t, s, store.Change{Env: staging, Kind: "fork", Existing: true, Create: true, CopyFrom: production}, nil)
}

// testConcurrent deploys from several goroutines while others read, and
// checks every read sees one consistent state.
func testConcurrent(t *testing.T, s store.Store) {
	const writers, deploys, readers = 4, 10, 4
	last := make([]*fiat.Version, writers)
	var ids sync.Map // record id -> true
	var writing, reading sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		writing.Go(func() {
			service, env := fmt.Sprintf("svc%d", w), fmt.Sprintf("env%d", w)
			for i := range deploys {
				v := newVersion(service, fmt.Sprint(i), nil)
				for _, env := range []string{production, env} {
					rec, err := s.Apply(t.Context(), store.Change{Env: env, Kind: "deploy", Versions: []*fiat.Version{v}, Set: map[string]fiat.Hash{service: v.ID}})
					if err != nil {
						t.Errorf("Apply: %v", err)
						return
					}
					if _, dup := ids.LoadOrStore(rec.ID, true); dup {
						t.Errorf("two records have id %d", rec.ID)
					}
				}
				last[w] = v
			}
		})
	}
	for r := range readers {
		reading.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				st, err := s.State(t.Context())
				if err != nil {
					t.Errorf("State: %v", err)
					return
				}
				stored := map[fiat.Hash]bool{}
				for _, v := range st.Versions {
					stored[v.ID] = true
				}
				for _, env := range st.Envs {
					for service, id := range env.Services {
						if !stored[id] {
							t.Errorf("State: env %q has %s of %q, which the state does not have", env.Name, id, service)
						}
					}
				}
				service := fmt.Sprintf("svc%d", r%writers)
				if _, err := s.Versions(t.Context(), service); err != nil {
					t.Errorf("Versions: %v", err)
				}
				if _, err := s.Env(t.Context(), production); err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Env: %v", err)
				}
			}
		})
	}
	writing.Wait()
	close(done)
	reading.Wait()
	if t.Failed() {
		return
	}

	all := map[string]fiat.Hash{}
	for w, v := range last {
		all[v.Service] = v.ID
		wantEnv(t, s, fmt.Sprintf("env%d", w), map[string]fiat.Hash{v.Service: v.ID})
		infos, err := s.Versions(t.Context(), v.Service)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != deploys || infos[0].ID != v.ID {
			t.Errorf("Versions(%q) = %+v, want %d versions, newest %s", v.Service, infos, deploys, v.ID)
		}
	}
	wantEnv(t, s, production, all)
}

// testChanges checks that the history gives back every change as Apply
// returned it, in order, from any position.
func testChanges(t *testing.T, s store.Store) {
	if recs, err := s.Changes(t.Context(), 0, 10); err != nil || len(recs) != 0 {
		t.Fatalf("Changes of a new store = %+v, %v", recs, err)
	}
	api1, api2, web1 := newVersion("api", "1", nil), newVersion("api", "2", nil), newVersion("web", "1", nil)
	var applied []store.Record
	for _, c := range []store.Change{
		{Env: production, Kind: "deploy", Versions: []*fiat.Version{api1, web1}, Set: map[string]fiat.Hash{"api": api1.ID, "web": web1.ID}},
		{Env: staging, Kind: "fork", CopyFrom: production, Create: true},
		{Env: production, Kind: "deploy", Versions: []*fiat.Version{api2, api1}, Set: map[string]fiat.Hash{"api": api2.ID}},
		{Env: production, Kind: "rollback", Undo: []string{"api"}},
		{Env: staging, Kind: "delete", Delete: true},
		{Env: production, Kind: "candidate", Versions: []*fiat.Version{newVersion("api", "3", nil)}},
	} {
		rec := apply(t, s, c)
		want := int64(0)
		if len(applied) > 0 {
			want = applied[len(applied)-1].ID
		}
		if rec.Follows != want || rec.ID <= want {
			t.Errorf("record %d follows %d, want %d", rec.ID, rec.Follows, want)
		}
		rec.Follows = 0
		applied = append(applied, rec)
	}
	if !applied[4].Deleted || applied[3].Deleted {
		t.Errorf("deleted: %v, %v; want only the delete marked", applied[3].Deleted, applied[4].Deleted)
	}
	if got := applied[2].Versions; len(got) != 1 || got[0].ID != api2.ID {
		t.Errorf("a deploy of api2 and the stored api1 says it stored %+v, want api2 alone", got)
	}
	all, err := s.Changes(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, all, applied)
	for from := range applied {
		got, err := s.Changes(t.Context(), applied[from].ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		wantRecords(t, got, applied[from+1:min(from+3, len(applied))])
	}
	if st := state(t, s); st.Position != applied[len(applied)-1].ID {
		t.Errorf("State position %d, want %d, the last change's", st.Position, applied[len(applied)-1].ID)
	}
}

func wantRecords(t *testing.T, got, want []store.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Changes gave %d records, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Env != w.Env || g.Kind != w.Kind || !g.At.Equal(w.At) || g.Deleted != w.Deleted ||
			!reflect.DeepEqual(g.Switched, w.Switched) || g.After.Name != w.After.Name || !maps.Equal(g.After.Services, w.After.Services) {
			t.Errorf("Changes record %d = %+v, want %+v as Apply returned it", i, g, w)
		}
		if len(g.Versions) != len(w.Versions) {
			t.Errorf("record %d has %d versions, want %d", g.ID, len(g.Versions), len(w.Versions))
			continue
		}
		for j := range g.Versions {
			gv, wv := g.Versions[j], w.Versions[j]
			if gv.ID != wv.ID || gv.Service != wv.Service || !reflect.DeepEqual(gv.Config, wv.Config) || !gv.Created.Equal(wv.Created) {
				t.Errorf("record %d version %d = %+v, want %+v", g.ID, j, gv, wv)
			}
		}
	}
}

// testWait checks that Wait returns for a change after its position, at
// once if there is one, and not before otherwise.
func testWait(t *testing.T, s store.Store) {
	rec := deploy(t, s, production, newVersion("api", "1", nil))
	if err := s.Wait(t.Context(), 0); err != nil {
		t.Fatalf("Wait for a change committed already: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx, rec.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with no change after %d = %v, want the context's deadline", rec.ID, err)
	}
	woke := make(chan error, 1)
	go func() { woke <- s.Wait(t.Context(), rec.ID) }()
	time.Sleep(20 * time.Millisecond)
	deploy(t, s, production, newVersion("api", "2", nil))
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after a change")
	}
}

// testFollowConcurrentWriters follows the history while several writers
// apply changes: positions are in commit order, so a follower that reads
// after its last position sees every change exactly once.
func testFollowConcurrentWriters(t *testing.T, s store.Store) {
	followConcurrentWriters(t, []store.Store{s})
}

// followConcurrentWriters has writers apply changes through every node at
// once while a follower reads the history from the first.
func followConcurrentWriters(t *testing.T, nodes []store.Store) {
	s := nodes[0]
	const writers, changes = 4, 25
	var written sync.Map // position -> true
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range changes {
				v := newVersion(fmt.Sprintf("svc%d", w), fmt.Sprint(i), nil)
				node := nodes[(w+i)%len(nodes)]
				rec, err := node.Apply(t.Context(), store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{v}, Set: map[string]fiat.Hash{v.Service: v.ID}})
				if err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
				written.Store(rec.ID, true)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var seen []int64
	position := int64(0)
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true // one more read, after the last commit
		default:
		}
		recs, err := s.Changes(t.Context(), position, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			seen = append(seen, rec.ID)
			position = rec.ID
		}
		switch len(recs) {
		case 7:
			finished = false
		case 0:
			time.Sleep(time.Millisecond)
		}
	}
	if t.Failed() {
		return
	}
	count := 0
	written.Range(func(id, _ any) bool {
		count++
		if !slices.Contains(seen, id.(int64)) {
			t.Errorf("the follower never saw change %d", id)
		}
		return true
	})
	if len(seen) != count || len(seen) != writers*changes {
		t.Errorf("the follower saw %d changes, %d were written", len(seen), count)
	}
}

// testAdminToken checks that the first token stored is the one every
// caller gets, however many store one at once.
func testAdminToken(t *testing.T, s store.Store) {
	tokens := make([]string, 8)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			token, err := s.AdminToken(t.Context(), func() string { return fmt.Sprint("token-", i) })
			if err != nil {
				t.Errorf("AdminToken: %v", err)
			}
			tokens[i] = token
		})
	}
	wg.Wait()
	for _, token := range tokens {
		if token != tokens[0] || !strings.HasPrefix(token, "token-") {
			t.Fatalf("AdminToken gave %q, want one token for all", tokens)
		}
	}
	again, err := s.AdminToken(t.Context(), func() string { return "another" })
	if err != nil || again != tokens[0] {
		t.Errorf("AdminToken later = %q, %v; want %q", again, err, tokens[0])
	}
}

// BenchmarkApply measures a typical deploy's transaction on s: one new
// version of about 2 KB in two files, and a Set of its service.
func BenchmarkApply(b *testing.B, s store.Store) {
	code := bytes.Repeat([]byte("def handler(req):\n    return 'hello'\n"), 40)
	var i int
	for b.Loop() {
		v := &fiat.Version{
			Service: "api",
			Config:  fiat.Config{Kind: fiat.Script, MaxSteps: 1000, Timeout: time.Second},
			Files: []fiat.File{
				{Path: "fiat.toml", Data: []byte(`[services.api]` + "\n" + `kind = "script"` + "\n")},
				{Path: "main.star", Data: fmt.Appendf(code, "# %d\n", i)},
			},
		}
		v.ID = fiat.HashVersion(v)
		if _, err := s.Apply(b.Context(), store.Change{Env: production, Kind: "deploy", Versions: []*fiat.Version{v}, Set: map[string]fiat.Hash{"api": v.ID}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// testScale checks that an env keeps how many instances of a service it
// runs, across deploys of the service, and in its history; that only
// services in an env are scaled; and that a bad count changes nothing.
func testScale(t *testing.T, s store.Store) {
	api1, api2, web1 := newVersion("api", "1", nil), newVersion("api", "2", nil), newVersion("web", "1", nil)
	deploy(t, s, production, api1, web1)
	rec := apply(t, s, store.Change{Env: production, Kind: "scale", Scale: map[string]int{"api": 3}})
	if len(rec.Switched) != 0 || rec.After.Instances["api"] != 3 || rec.After.Services["api"] != api1.ID {
		t.Errorf("scale record: %+v", rec)
	}
	deploy(t, s, production, api2)
	env, err := s.Env(t.Context(), production)
	if err != nil || env.Instances["api"] != 3 || len(env.Instances) != 1 || env.Services["api"] != api2.ID {
		t.Errorf("after scaling api and deploying it again: %+v, %v; want api at 3 instances, web as its version says", env, err)
	}
	if got := state(t, s).Envs[0].Instances; got["api"] != 3 {
		t.Errorf("State: instances %v", got)
	}
	recs, err := s.Changes(t.Context(), rec.ID-1, 10)
	if err != nil || len(recs) != 2 || recs[0].After.Instances["api"] != 3 || recs[1].After.Instances["api"] != 3 {
		t.Errorf("the history of the scale and the deploy after it: %+v, %v", recs, err)
	}
	apply(t, s, store.Change{Env: production, Kind: "scale", Scale: map[string]int{"api": 0}})
	if env, _ := s.Env(t.Context(), production); env.Instances["api"] != 0 || len(env.Instances) != 1 {
		t.Errorf("scaled to 0: %+v", env)
	}
	refused(t, s, store.Change{Env: production, Kind: "scale", Scale: map[string]int{"db": 2}}, store.ErrNotFound)
	refused(t, s, store.Change{Env: "nowhere", Kind: "scale", Scale: map[string]int{"api": 2}}, store.ErrNotFound)
	refused(t, s, store.Change{Env: production, Kind: "scale", Scale: map[string]int{"api": -1}}, nil)
	refused(t, s, store.Change{Env: production, Kind: "scale", Scale: map[string]int{"api": fiat.MaxInstances + 1}}, nil)
	refused(t, s, store.Change{Env: production, Kind: "scale", Scale: map[string]int{"api": 2}, Set: map[string]fiat.Hash{"api": api1.ID}}, nil)
}

// testProcessVersion stores a process service's version, with its config
// and an executable file, and reads it back as it was.
func testProcessVersion(t *testing.T, s store.Store) {
	v := &fiat.Version{
		Service: "web",
		Config: fiat.Config{Kind: fiat.Process, Memory: 512 << 20, Env: map[string]string{"GREETING": "hi", "TOKEN": "x"}, Secrets: []string{"TOKEN"},
			Process: &fiat.ProcessConfig{Run: "./server", Build: "make", Health: "/up", Instances: 2, StartTimeout: time.Minute, StopTimeout: 30 * time.Second}},
		Files: []fiat.File{{Path: "README", Data: []byte("hi")}, {Path: "server", Data: []byte("\x7fELF"), Executable: true}},
	}
	v.ID = fiat.HashVersion(v)
	deploy(t, s, production, v)
	got, err := s.Version(t.Context(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Created = v.Created
	if !reflect.DeepEqual(got, v) {
		t.Errorf("stored %+v %+v\nread  %+v %+v", v, v.Config.Process, got, got.Config.Process)
	}
	if fiat.HashVersion(got) != v.ID {
		t.Error("the version read back hashes to another id")
	}
}

// testBuilds keeps a build for other nodes, under a key that is no
// version's id (it names files and a build command): the first kept
// stays, and what was never built has none.
func testBuilds(t *testing.T, s store.Store) {
	key := fiat.Hash(strings.Repeat("b", fiat.HashLen))
	if _, err := s.Build(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Build of what was never built: %v, want ErrNotFound", err)
	}
	for _, archive := range []string{"first", "second"} {
		if err := s.PutBuild(t.Context(), key, []byte(archive)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Build(t.Context(), key); err != nil || string(got) != "first" {
		t.Errorf("Build: %q, %v; want the first kept", got, err)
	}
}
