//go:build !unix

package server

// dataLock does not lock on systems without flock: there, keep to one
// fiat serve per data dir yourself.
type dataLock struct{}

func lockDataDir(dir string) (*dataLock, error) { return &dataLock{}, nil }

func (*dataLock) check() (retaken bool, err error) { return false, nil }

func (*dataLock) Close() error { return nil }
