package sqlite

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
	"github.com/fiatdev/fiat/store/sqlstore"
	"github.com/fiatdev/fiat/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "fiat.db"))
	})
}

// open opens the store at path, to be closed by the caller.
func open(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func version(service, content string) *fiat.Version {
	v := &fiat.Version{
		Service: service,
		Config:  fiat.Config{Kind: fiat.Script, MaxSteps: 1000, Timeout: time.Second},
		Files:   []fiat.File{{Path: "main.star", Data: []byte(content)}},
	}
	v.ID = fiat.HashVersion(v)
	return v
}

func deploy(t testing.TB, db *DB, env string, v *fiat.Version) store.Record {
	t.Helper()
	rec, err := db.Apply(t.Context(), store.Change{Env: env, Kind: "deploy", Versions: []*fiat.Version{v}, Set: map[string]fiat.Hash{v.Service: v.ID}})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestDurable checks the settings that make a commit durable when it
// returns, which killing a process cannot test: the OS would still write
// what the process left in its cache.
func TestDurable(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "fiat.db"))
	defer db.Close()
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "fullfsync": "1"} {
		var got string
		if err := db.writer.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
}

// TestKeepsWAL checks that closing leaves the WAL file at its size, empty,
// so that commits after a restart overwrite it in place instead of growing
// a new file.
func TestKeepsWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fiat.db")
	db := open(t, path)
	for i := range 20 {
		deploy(t, db, fiat.Production, version("api", fmt.Sprint(i)))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wal, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatalf("WAL file after Close: %v", err)
	}
	if wal.Size() == 0 {
		t.Errorf("WAL file is empty after Close; want it kept at its size")
	}
	db = open(t, path)
	defer db.Close()
	if got, err := db.Versions(t.Context(), "api"); err != nil || len(got) != 20 {
		t.Fatalf("after reopening: %d versions, %v; want 20", len(got), err)
	}
}

// TestCheckpointsWhenIdle checks that commits reach the database file soon
// after deploys stop, without a commit paying for it.
func TestCheckpointsWhenIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fiat.db")
	db := open(t, path)
	defer db.Close()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1<<20)
	deploy(t, db, fiat.Production, version("api", big))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		after, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if after.Size() >= before.Size()+int64(len(big)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 10s after a 1 MB deploy, was %d: not checkpointed", after.Size(), before.Size())
		}
	}
}

// TestReopen checks that everything survives Close and Open, in a
// directory Open has to create, whose name needs escaping in a URI.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data dir?#%", "fiat.db")
	db := open(t, path)
	v1, v2, v3 := version("api", "1"), version("api", "2"), version("api", "3")
	for _, v := range []*fiat.Version{v1, v2, v3} {
		deploy(t, db, fiat.Production, v)
	}
	for _, c := range []store.Change{
		{Env: fiat.Production, Kind: "flag", Flag: &store.FlagChange{Name: "beta", Set: &fiat.FlagPatch{Percent: new(10.0), Users: &[]string{"ada"}}}},
		{Env: fiat.Production, Kind: "user-key", UserKey: &fiat.UserKeySource{From: "query", Name: "user"}},
		{Env: "staging", Kind: "fork", CopyFrom: fiat.Production, Create: true},
	} {
		if _, err := db.Apply(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	before, err := db.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path)
	defer db.Close()
	after, err := db.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) || len(after.Envs[0].Flags) != 1 || after.Envs[0].UserKey == nil {
		t.Fatalf("state after reopening:\n%+v\nwant:\n%+v, with a flag and a user key source", after, before)
	}
	got, err := db.Version(t.Context(), v2.ID)
	if err != nil || string(got.Files[0].Data) != "2" {
		t.Fatalf("Version after reopening = %+v, %v", got, err)
	}
	// The undo stack survives too.
	rec, err := db.Apply(t.Context(), store.Change{Env: fiat.Production, Kind: "rollback", Undo: []string{"api"}})
	if err != nil || rec.After.Services["api"] != v2.ID {
		t.Fatalf("undo after reopening = %+v, %v; want api at %s", rec, err, v2.ID)
	}
}

// TestOpenTwice checks that two DBs on one file in one process see each
// other's writes.
func TestOpenTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fiat.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	v1, v2 := version("api", "1"), version("api", "2")
	deploy(t, a, fiat.Production, v1)
	deploy(t, b, fiat.Production, v2)
	env, err := a.Env(t.Context(), fiat.Production)
	if err != nil || env.Services["api"] != v2.ID {
		t.Fatalf("Env = %+v, %v; want api at %s", env, err, v2.ID)
	}
	infos, err := b.Versions(t.Context(), "api")
	if err != nil || len(infos) != 2 {
		t.Fatalf("Versions = %+v, %v; want both", infos, err)
	}
}

// crashEnv names the database a child process of TestCrash deploys to
// until it is killed.
const crashEnv = "FIAT_SQLITE_CRASH_DB"

// TestCrash kills a process that is deploying in a loop with SIGKILL, a few
// times, and checks that every deploy it reported done is in the database.
func TestCrash(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		deployUntilKilled(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "fiat.db")
	acked := map[int64]fiat.Hash{} // record id -> version deployed
	var lastID int64
	for range 3 {
		for id, v := range deployAndKill(t, path, 1+rand.IntN(30)) {
			acked[id] = v
			lastID = max(lastID, id)
		}
	}

	db := open(t, path)
	defer db.Close()
	var check string
	if err := db.reader.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check: %q, %v", check, err)
	}
	for id, v := range acked {
		var n int
		if err := db.reader.QueryRow(`SELECT COUNT(*) FROM records WHERE id = $1`, id).Scan(&n); err != nil || n != 1 {
			t.Errorf("record %d: %d rows, %v", id, n, err)
		}
		if _, err := db.Version(t.Context(), v); err != nil {
			t.Errorf("record %d: %v", id, err)
		}
	}
	// Production is at the last acknowledged deploy, or at one the child
	// committed after it but was killed before reporting.
	infos, err := db.Versions(t.Context(), "api")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) < len(acked) || len(infos) > len(acked)+3 {
		t.Fatalf("%d versions for %d acknowledged deploys", len(infos), len(acked))
	}
	env, err := db.Env(t.Context(), fiat.Production)
	if err != nil || env.Services["api"] != infos[0].ID {
		t.Fatalf("Env = %+v, %v; want api at the newest version %s", env, err, infos[0].ID)
	}
	if last := acked[lastID]; infos[0].ID != last && infos[1].ID != last {
		t.Errorf("newest versions are %s and %s, want the last acknowledged, %s, to be one of them", infos[0].ID, infos[1].ID, last)
	}
}

// deployAndKill runs a child that deploys to path, kills it once it has
// reported n deploys, and returns every deploy it reported.
func deployAndKill(t *testing.T, path string, n int) map[int64]fiat.Hash {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]fiat.Hash{}
	r := bufio.NewReader(stdout)
	for {
		// Only a whole line is an acknowledgement.
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		var v fiat.Hash
		if _, err := fmt.Sscanf(line, "%d %s\n", &id, &v); err != nil {
			t.Fatalf("child said %q: %v", line, err)
		}
		acked[id] = v
		if len(acked) == n {
			cmd.Process.Kill() // SIGKILL
		}
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); len(acked) < n || !errors.As(err, &exit) || exit.Exited() {
		t.Fatalf("child ended with %v after %d deploys, want it killed after %d\n%s", err, len(acked), n, stderr.String())
	}
	return acked
}

// deployUntilKilled is the child: it reports each deploy on stdout once
// Apply has returned.
func deployUntilKilled(t *testing.T, path string) {
	db := open(t, path)
	for i := 0; ; i++ {
		rec := deploy(t, db, fiat.Production, version("api", fmt.Sprintf("%d-%d", os.Getpid(), i)))
		fmt.Printf("%d %s\n", rec.ID, rec.After.Services["api"])
	}
}

// TestRefusesChangesOnceFileIsGone checks that a store whose file was
// deleted or replaced under it refuses changes instead of acknowledging
// changes that would vanish at the next restart.
func TestRefusesChangesOnceFileIsGone(t *testing.T) {
	for name, swap := range map[string]func(path string) error{
		"deleted": os.Remove,
		"replaced": func(path string) error {
			other := filepath.Join(filepath.Dir(path), "other.db")
			o := open(t, other)
			deploy(t, o, fiat.Production, version("api", "other"))
			o.Close()
			return os.Rename(other, path)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fiat.db")
			db := open(t, path)
			defer db.Close()
			deploy(t, db, fiat.Production, version("api", "1"))
			if err := swap(path); err != nil {
				t.Fatal(err)
			}
			v2 := version("api", "2")
			_, err := db.Apply(t.Context(), store.Change{Env: fiat.Production, Kind: "deploy", Versions: []*fiat.Version{v2}, Set: map[string]fiat.Hash{"api": v2.ID}})
			if !errors.Is(err, store.ErrStoreGone) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "restart") {
				t.Fatalf("Apply after the file was %s: %v, want ErrStoreGone naming %s and what to do", name, err, path)
			}
		})
	}
}

// TestMigratesStoresOfSchemaOne opens a store written by the fiat before
// records kept their changes and files became blobs: its versions, files
// and envs read as before, and changes go on from there.
func TestMigratesStoresOfSchemaOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fiat.db")
	old, err := openDB(path, "_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(t.Context(), old, nil, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	v := version("api", "1")
	v.Files = append(v.Files, fiat.File{Path: "shared.txt", Data: []byte("in both")})
	w := version("web", "other")
	w.Files = append(w.Files, fiat.File{Path: "shared.txt", Data: []byte("in both")})
	_, err = old.Exec(`
INSERT INTO versions (id, service, config, uses, created_at) VALUES ($1, 'api', '{"kind":"script","max_steps":1000,"timeout":1000000000}', 'null', 1), ($2, 'web', '{}', 'null', 2);
INSERT INTO version_files (version_id, path, data) VALUES ($1, 'main.star', $3), ($1, 'shared.txt', $5), ($2, 'main.star', $4), ($2, 'shared.txt', $5);
INSERT INTO envs (name) VALUES ('production');
INSERT INTO records (id, env, kind, at) VALUES (1, 'production', 'deploy', 1);
INSERT INTO history (id, record_id, service, version) VALUES (1, 1, 'api', $1);
INSERT INTO env_services (env, service, history_id) VALUES ('production', 'api', 1);`,
		v.ID, w.ID, v.Files[0].Data, w.Files[0].Data, []byte("in both"))
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	db := open(t, path)
	defer db.Close()
	got, err := db.Version(t.Context(), v.ID)
	if err != nil || len(got.Files) != 2 || string(got.Files[1].Data) != "in both" || got.Config.Timeout != time.Second {
		t.Fatalf("Version after migrating = %+v, %v", got, err)
	}
	var blobs int
	if err := db.reader.QueryRow(`SELECT COUNT(*) FROM blobs`).Scan(&blobs); err != nil || blobs != 3 {
		t.Errorf("%d blobs for two versions sharing one of their files, want 3 (%v)", blobs, err)
	}
	st, err := db.State(t.Context())
	if err != nil || st.Position != 1 || len(st.Envs) != 1 || st.Envs[0].Services["api"] != v.ID {
		t.Fatalf("State after migrating = %+v, %v", st, err)
	}
	rec := deploy(t, db, fiat.Production, version("api", "2"))
	if rec.Follows != 1 {
		t.Errorf("the first change after migrating follows %d, want 1", rec.Follows)
	}
	if recs, err := db.Changes(t.Context(), 0, 10); err != nil || len(recs) != 1 || recs[0].ID != rec.ID {
		t.Errorf("Changes after migrating = %+v, %v; want only the new change", recs, err)
	}
}

// TestVersionsShareBlobs checks that a file several versions have is
// stored once.
func TestVersionsShareBlobs(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "fiat.db"))
	defer db.Close()
	big := strings.Repeat("a large asset ", 1<<16)
	for i := range 5 {
		v := version("api", fmt.Sprint(i))
		v.Files = append(v.Files, fiat.File{Path: "asset", Data: []byte(big)})
		v.ID = fiat.HashVersion(v)
		deploy(t, db, fiat.Production, v)
	}
	var blobs, bytes int
	if err := db.reader.QueryRow(`SELECT COUNT(*), SUM(LENGTH(data)) FROM blobs`).Scan(&blobs, &bytes); err != nil {
		t.Fatal(err)
	}
	if blobs != 6 || bytes > len(big)+1000 {
		t.Errorf("five versions sharing a %d-byte file take %d blobs of %d bytes, want the file stored once", len(big), blobs, bytes)
	}
}
