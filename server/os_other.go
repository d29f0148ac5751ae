//go:build !unix

package server

// openFileLimit is a guess where there is no RLIMIT_NOFILE to read.
func openFileLimit() int { return 1 << 13 }

// syncDir does nothing where directories cannot be synced.
func syncDir(dir string) error { return nil }
