package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/internal/pgtest"
	"github.com/fiatdev/fiat/store"
	"github.com/fiatdev/fiat/store/postgres"
	"github.com/fiatdev/fiat/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.Database(t))
	})
}

func TestNodes(t *testing.T) {
	storetest.RunNodes(t, func(t *testing.T) []store.Store {
		url := pgtest.Database(t)
		return []store.Store{open(t, url), open(t, url), open(t, url)}
	})
}

// TestServerDown stops the server under open stores: changes and reads
// fail at once with store.ErrUnavailable, a new store says the server is
// unreachable, and once the server is back, the same stores work again and
// a waiting node hears of changes it missed.
func TestServerDown(t *testing.T) {
	server := pgtest.Start(t)
	url := pgtest.DatabaseOn(t, server.URL)
	a, b := open(t, url), open(t, url)
	if _, err := a.Apply(t.Context(), deployChange("1")); err != nil {
		t.Fatal(err)
	}
	if err := server.Kill(); err != nil {
		t.Fatal(err)
	}
	_, err := a.Apply(t.Context(), deployChange("2"))
	if !errors.Is(err, store.ErrUnavailable) || !strings.HasPrefix(err.Error(), "the store is unreachable: ") {
		t.Fatalf("Apply with the server down: %v, want the store is unreachable", err)
	}
	if _, err := b.State(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("State with the server down: %v, want ErrUnavailable", err)
	}
	if _, err := postgres.Open(t.Context(), url); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open with the server down: %v, want ErrUnavailable", err)
	}

	if err := server.StartAgain(); err != nil {
		t.Fatal(err)
	}
	// The first use of a pooled connection to the old server may fail.
	var rec store.Record
	for try := 0; ; try++ {
		if rec, err = a.Apply(t.Context(), deployChange("3")); err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || try == 3 {
			t.Fatalf("Apply once the server is back: %v", err)
		}
	}
	// b, waiting from before the change, hears of it: its listener is back.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		recs, err := b.Changes(ctx, rec.Follows, 10)
		if err == nil && len(recs) == 1 && recs[0].ID == rec.ID {
			break
		}
		if err := b.Wait(ctx, rec.Follows); err != nil {
			t.Fatalf("node b never read change %d after the server came back: %v", rec.ID, err)
		}
	}
}

func deployChange(content string) store.Change {
	v := &fiat.Version{Service: "api", Config: fiat.Config{Kind: fiat.Script}, Files: []fiat.File{{Path: "main.star", Data: []byte(content)}}}
	v.ID = fiat.HashVersion(v)
	return store.Change{Env: fiat.Production, Kind: "deploy", Versions: []*fiat.Version{v}, Set: map[string]fiat.Hash{"api": v.ID}}
}

// TestMigratesOnce has several nodes open one new database at once: each
// waits for the one migrating, and none fails.
func TestMigratesOnce(t *testing.T) {
	url := pgtest.Database(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			db, err := postgres.Open(t.Context(), url)
			if err != nil {
				t.Errorf("Open of a database others open at once: %v", err)
				return
			}
			db.Close()
		})
	}
	wg.Wait()
}

func TestBadURL(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://host:notaport/db")
	if err == nil || !strings.Contains(err.Error(), "the store's URL") {
		t.Fatalf("Open of a malformed URL: %v, want an error about the URL", err)
	}
}
