//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir makes sure no other fiat serves from dir: two servers would
// both append to its cache of compiled programs, and each would route by a
// state the other changes behind its back. The lock is the kernel's, so a
// server killed with -9 leaves none behind.
func lockDataDir(dir string) (unlock func() error, err error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another fiat serve: stop that one, or give this one another --data", dir)
		}
		return nil, fmt.Errorf("cannot lock data dir: %w", err)
	}
	return f.Close, nil
}
