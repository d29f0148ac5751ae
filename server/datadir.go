package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2/maybe"
)

// makePrivate makes the data dir and everything in it readable by this
// user only, whatever created them and with what modes: it holds the admin
// token, and the store and the cache hold the code of every service.
func makePrivate(dir string) error {
	if err := os.Chmod(dir, 0o700); err != nil {
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

// adminToken reads the admin token, creating it (readable only by its
// owner) on first start. It is written to a temporary file and renamed into
// place, so that a crash or a full disk leaves either no token or a whole
// one, never a torn one that the CLI would then send (where renames are
// atomic: not on Windows).
func adminToken(path string) (token string, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if token = strings.TrimSpace(string(data)); token == "" {
			return "", false, fmt.Errorf("admin token file %s is empty: delete it and restart to create a new one", path)
		}
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("cannot read admin token: %w", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token = hex.EncodeToString(raw)
	err = maybe.WriteFile(path, []byte(token+"\n"), 0o600)
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return "", false, fmt.Errorf("cannot create admin token: %w", err)
	}
	return token, true, nil
}
