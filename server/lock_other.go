//go:build !unix

package server

// lockDataDir does not lock on systems without flock: there, keep to one
// fiat serve per data dir yourself.
func lockDataDir(dir string) (unlock func() error, err error) {
	return func() error { return nil }, nil
}
