package server_test

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fiatdev/fiat/server"
)

// TestDataDirIsPrivate starts a server on a data dir that already exists
// with the modes a umask of 022 gives, holding a token someone copied in
// 0644, and deploys: the dir must end 0711 (others pass through to the
// builds of process services, and list nothing), every file in it 0600,
// the store's -wal and -shm files included.
func TestDataDirIsPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755)
	os.WriteFile(filepath.Join(data, server.TokenFile), []byte("copied-token\n"), 0o644)
	os.Chmod(filepath.Join(data, server.TokenFile), 0o644)
	n := start(t, data)
	n.deployJSON(writeProject(t, t.TempDir(), "app", "private"))
	if info, err := os.Stat(data); err != nil || info.Mode().Perm() != 0o711 {
		t.Errorf("data dir: %v (%v), want 0711", info.Mode(), err)
	}
	entries, _ := os.ReadDir(data)
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
		info, err := e.Info()
		want := os.FileMode(0o600)
		if e.Name() == server.ProcessesDir {
			want = 0o711
		}
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: %v (%v), want %v", e.Name(), info.Mode(), err, want)
		}
	}
	for _, want := range []string{"fiat.db", "fiat.db-wal", "fiat.db-shm", "programs.pack", server.TokenFile, "lock"} {
		if !names[want] {
			t.Errorf("the data dir lacks %s, so its mode went unchecked: %v", want, names)
		}
	}
}

// TestNoTornToken starts `fiat serve` on a disk that fills up while it
// writes the admin token (a file size limit of 32 bytes stands in for the
// full disk): the start fails, and the next one must not take the half
// token left behind for the whole one.
func TestNoTornToken(t *testing.T) {
	data := t.TempDir()
	cmd, _ := fiatProcessEnv(t, []string{"FIAT_TEST_RLIMIT_FSIZE=32"}, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data", data)
	if err := cmd.Wait(); err == nil {
		t.Fatal("fiat serve started with no room to write its token")
	}
	s := serveProcess(t, nil, "--data", data)
	token := readToken(t, s.TokenPath)
	if raw, err := hex.DecodeString(token); err != nil || len(raw) != 32 {
		t.Fatalf("after a start that could not write the token, the token is %q, not 32 random bytes", token)
	}
}

// TestLockFileDeletedUnderTheServer deletes the data dir's lock file under
// a running server, as a clean-up script might: the server must lock a
// new one before a second server can take the data dir, and say so.
func TestLockFileDeletedUnderTheServer(t *testing.T) {
	data := t.TempDir()
	var log logBuffer
	cfg := testConfig(data)
	cfg.LockCheck = 10 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	startConfig(t, cfg)
	lock := filepath.Join(data, "lock")
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lock file to come back", func() bool {
		_, err := os.Stat(lock)
		return err == nil
	})
	second := testConfig(data)
	if s, err := server.Start(t.Context(), second); err == nil {
		s.Shutdown(t.Context())
		t.Fatal("a second server started on the data dir after its lock file was deleted")
	} else if !strings.Contains(err.Error(), "in use by another fiat serve") {
		t.Errorf("second server: %v, want it to say the data dir is in use", err)
	}
	if !strings.Contains(log.String(), "LOCK FILE WAS DELETED") {
		t.Errorf("the server did not say its lock file was deleted:\n%s", log.String())
	}
}

// TestLockTakenByAnotherServerStopsThisOne replaces the lock file under a
// running server with one that another process holds: the server must
// stop rather than share the data dir.
func TestLockTakenByAnotherServerStopsThisOne(t *testing.T) {
	data := t.TempDir()
	cfg := testConfig(data)
	cfg.LockCheck = 10 * time.Millisecond
	n := startConfig(t, cfg)
	other, err := os.CreateTemp(data, "other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other.Name(), filepath.Join(data, "lock")); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- n.srv.Wait() }()
	select {
	case err := <-stopped:
		if err == nil || !strings.Contains(err.Error(), "another fiat serve") {
			t.Errorf("the server stopped with %v, want it to say another server took the data dir", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept serving 10s after another process took its data dir's lock")
	}
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

// logBuffer is a log that tests read while the server writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTokenLivesInTheStore checks that the token a data dir's file held
// before tokens lived in the store stays valid, and that the store's token
// wins over a file that says otherwise.
func TestTokenLivesInTheStore(t *testing.T) {
	data := t.TempDir()
	path := filepath.Join(data, server.TokenFile)
	if err := os.WriteFile(path, []byte("kept-from-before\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := start(t, data)
	if n.srv.Token != "kept-from-before" || n.srv.NewToken {
		t.Fatalf("token %q (new: %v), want the one the file held", n.srv.Token, n.srv.NewToken)
	}
	n.stop()
	if err := os.WriteFile(path, []byte("edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n = start(t, data)
	if n.srv.Token != "kept-from-before" || !n.srv.NewToken {
		t.Fatalf("token %q (new: %v), want the store's, written again", n.srv.Token, n.srv.NewToken)
	}
	if data, _ := os.ReadFile(path); string(data) != "kept-from-before\n" {
		t.Errorf("the token file holds %q, want the store's token", data)
	}
}
