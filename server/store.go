package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/fiatdev/fiat/store"
	"github.com/fiatdev/fiat/store/postgres"
	"github.com/fiatdev/fiat/store/sqlite"
)

// StoreFile is the SQLite store's file name in the data dir.
const StoreFile = "fiat.db"

// openStore opens the PostgreSQL database cfg.Store names, waiting for its
// server while it cannot be reached, or else the SQLite file in the data
// dir.
func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.Store == "" {
		path := filepath.Join(cfg.Data, StoreFile)
		if err := createPrivate(path); err != nil {
			return nil, err
		}
		return sqlite.Open(path)
	}
	if !strings.HasPrefix(cfg.Store, "postgres://") && !strings.HasPrefix(cfg.Store, "postgresql://") {
		return nil, fmt.Errorf("--store %s: give a PostgreSQL URL, postgres://user:password@host:port/database, or leave it out to keep the state in the data dir (SQLite)", Redact(cfg.Store))
	}
	backoff := 250 * time.Millisecond
	for {
		db, err := postgres.Open(ctx, cfg.Store)
		if !errors.Is(err, store.ErrUnavailable) {
			return db, err
		}
		cfg.Logger.Warn("the store is unreachable: trying again", "store", Redact(cfg.Store), "in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("gave up waiting for the store: %w", err)
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// Redact is a store URL with its password hidden, to show.
func Redact(storeURL string) string {
	u, err := url.Parse(storeURL)
	if err != nil {
		return "(a store URL that does not parse)"
	}
	return u.Redacted()
}
