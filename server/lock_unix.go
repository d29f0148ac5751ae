//go:build unix

package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// dataLock makes sure no other fiat serves from a data dir: two servers
// would both append to its cache of compiled programs, and each would route
// by a state the other changes behind its back. The lock is the kernel's, so
// a server killed with -9 leaves none behind.
type dataLock struct {
	dir, path string
	mu        sync.Mutex
	held      *os.File
}

func lockDataDir(dir string) (*dataLock, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot lock data dir: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another fiat serve: stop that one, or give this one another --data", dir)
		}
		return nil, fmt.Errorf("cannot lock data dir: %w", err)
	}
	return &dataLock{dir: dir, path: path, held: f}, nil
}

func flock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// check makes sure the lock file in the data dir is still the one this
// server holds. A lock on a deleted file keeps out no one: if the file is
// gone, check puts a new one in its place, locked before anyone can see
// it, and reports retaken. If another server holds the file now there,
// check fails: this one must stop.
func (l *dataLock) check() (retaken bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	held, err := l.held.Stat()
	if err != nil {
		return false, err
	}
	onDisk, err := os.Stat(l.path)
	if err == nil && os.SameFile(held, onDisk) {
		return false, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := l.recreate(); !errors.Is(err, fs.ErrExist) {
			return err == nil, err
		}
		// Another file appeared meanwhile: take it if no one holds it.
	}
	f, err := os.OpenFile(l.path, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("cannot lock data dir: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, fmt.Errorf("data dir %s was taken by another fiat serve after its lock file was replaced: this one stops", l.dir)
		}
		return false, fmt.Errorf("cannot lock data dir: %w", err)
	}
	l.swap(f)
	return true, nil
}

// recreate locks a new file and links it into place, which fails with
// fs.ErrExist rather than replace a file that appeared meanwhile.
func (l *dataLock) recreate() error {
	f, err := os.CreateTemp(l.dir, "lock.new*")
	if err != nil {
		return fmt.Errorf("cannot lock data dir: %w", err)
	}
	defer os.Remove(f.Name())
	if err := flock(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot lock data dir: %w", err)
	}
	if err := os.Link(f.Name(), l.path); err != nil {
		f.Close()
		return err
	}
	l.swap(f)
	return nil
}

func (l *dataLock) swap(f *os.File) {
	l.held.Close()
	l.held = f
}

func (l *dataLock) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held.Close()
}
