package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2/maybe"

	"github.com/fiatdev/fiat/store"
)

// makePrivate makes the data dir and everything in it readable by this
// user only, whatever created them and with what modes: it holds the admin
// token, and the store and the cache hold the code of every service.
func makePrivate(dir string) error {
	// Others may pass through, to the builds of process services, which
	// run as users of their own, but list nothing and read nothing else.
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("cannot make data dir %s private: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		mode := fs.FileMode(0o600)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			// Chmod would change what the link points at, outside the data dir.
			continue
		case e.IsDir() && e.Name() == ProcessesDir:
			mode = 0o711
		case e.IsDir():
			mode = 0o700
		}
		if err := os.Chmod(filepath.Join(dir, e.Name()), mode); err != nil {
			return fmt.Errorf("cannot make %s private: %w", e.Name(), err)
		}
	}
	return nil
}

// createPrivate creates the file at path, if it does not exist, readable
// by this user only, before a library that would create it 0644 opens it.
// SQLite gives its -wal and -shm files the mode of the database file.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// adminToken returns the admin token that every node sharing st accepts,
// and keeps it in the file at path for the CLI. The first node to start
// stores a token: the one its file held, if it had one (a data dir from
// before tokens lived in the store), else a new one. The file is rewritten
// when it does not hold the store's token (written says so): to a
// temporary file renamed into place, so that a crash or a full disk leaves
// either the old file or a whole new one, never a torn one that the CLI
// would then send (where renames are atomic: not on Windows).
func adminToken(ctx context.Context, st store.Store, path string) (token string, written bool, err error) {
	kept := ""
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		kept = strings.TrimSpace(string(data))
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("cannot read admin token: %w", err)
	}
	token, err = st.AdminToken(ctx, func() string {
		if kept != "" {
			return kept
		}
		raw := make([]byte, 32)
		rand.Read(raw)
		return hex.EncodeToString(raw)
	})
	if err != nil {
		return "", false, fmt.Errorf("cannot read the admin token from the store: %w", err)
	}
	if token == kept {
		return token, false, nil
	}
	err = maybe.WriteFile(path, []byte(token+"\n"), 0o600)
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return "", false, fmt.Errorf("cannot write the admin token to %s: %w", path, err)
	}
	return token, true, nil
}
