// Package pgtest gives tests a PostgreSQL server: the one the environment
// variable FIAT_TEST_POSTGRES names, or else one it starts in a temporary
// directory from the PostgreSQL installed on this machine, which it
// installs first (apt-get, as root) where there is none. Tests never skip
// for want of a server: they start one or fail saying why.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat/internal/ports"
	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable that points the tests at a server
// of one's own, as a URL of a role that may create databases, e.g.
// postgres://postgres:secret@db.example:5432/postgres.
const EnvURL = "FIAT_TEST_POSTGRES"

// Server is a PostgreSQL server this package started, in a temporary
// directory, on a port of 127.0.0.1, trusting every local connection.
type Server struct {
	// URL is that of the server's postgres database, as its superuser.
	URL  string
	port int
	bin  string
	dir  string
	// runAs is the user the server runs as: PostgreSQL refuses root.
	runAs string
}

// Start starts a server of its own for tb, stopped when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		tb.Fatalf("start PostgreSQL for the test: %v", err)
	}
	tb.Cleanup(func() { s.remove() })
	return s
}

func start() (*Server, error) {
	bin, err := binaries()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		s.runAs = "postgres"
	}
	s.dir, err = os.MkdirTemp("", "fiat-pgtest-")
	if err != nil {
		return nil, err
	}
	if s.runAs != "" {
		u, err := user.Lookup(s.runAs)
		if err != nil {
			s.remove()
			return nil, fmt.Errorf("PostgreSQL will not run as root, and there is no user %q to run it as: %w", s.runAs, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			s.remove()
			return nil, err
		}
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"); err != nil {
		s.remove()
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := s.StartAgain(); err != nil {
		s.remove()
		return nil, err
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// run runs one of PostgreSQL's programs, as the server's user.
func (s *Server) run(program string, args ...string) ([]byte, error) {
	name, args := filepath.Join(s.bin, program), args
	if s.runAs != "" {
		args = append([]string{"-u", s.runAs, "--", name}, args...)
		name = "runuser"
	}
	return exec.Command(name, args...).CombinedOutput()
}

// StartAgain starts the server after Stop or Kill, on the port it had.
func (s *Server) StartAgain() error {
	if s.port != 0 {
		return s.startOn(s.port)
	}
	for try := 1; ; try++ {
		port, err := ports.Free()
		if err != nil {
			return err
		}
		// Another process may take the port before the server does.
		if err = s.startOn(port); err == nil || try == 5 {
			return err
		}
	}
}

func (s *Server) startOn(port int) error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c max_connections=300 -c shared_buffers=32MB", port, s.dir)
	out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-o", opts)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	s.port = port
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return nil
}

// Stop shuts the server down, as an administrator would: connections end.
func (s *Server) Stop() error { return s.stop("fast") }

// Kill stops the server as a crash would, with no shutdown checkpoint.
func (s *Server) Kill() error { return s.stop("immediate") }

func (s *Server) stop(mode string) error {
	if out, err := s.run("pg_ctl", "stop", "-w", "-m", mode, "-D", s.data()); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

func (s *Server) remove() {
	if _, err := os.Stat(filepath.Join(s.data(), "postmaster.pid")); err == nil {
		s.stop("immediate")
	}
	os.RemoveAll(s.dir)
}

// binaries returns the directory of PostgreSQL's programs, the newest
// installed, installing PostgreSQL if there is none and this is root.
func binaries() (string, error) {
	if dir, ok := installed(); ok {
		return dir, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("PostgreSQL is not installed (no initdb under /usr/lib/postgresql): install it (apt-get install postgresql) or set %s to a server's URL", EnvURL)
	}
	// Another test process may be installing it too: apt-get waits for
	// its lock. A machine that never fetched package lists needs them.
	install := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", "postgresql")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err != nil {
		if out, err := exec.Command("apt-get", "update", "-o", "DPkg::Lock::Timeout=600").CombinedOutput(); err != nil {
			return "", fmt.Errorf("install PostgreSQL: apt-get update: %w\n%s", err, out)
		}
		if out, err := install(); err != nil {
			return "", fmt.Errorf("install PostgreSQL: apt-get install postgresql: %w\n%s", err, out)
		}
	}
	if dir, ok := installed(); ok {
		return dir, nil
	}
	return "", errors.New("apt-get installed postgresql, but there is still no initdb under /usr/lib/postgresql")
}

func installed() (string, bool) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int {
		return version(a) - version(b)
	})
	if len(found) == 0 {
		return "", false
	}
	return filepath.Dir(found[len(found)-1]), true
}

// version is the major version in a path /usr/lib/postgresql/<v>/bin/initdb.
func version(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// shared is the server the tests of one process share.
var shared struct {
	sync.Mutex
	server *Server
	url    string
}

// URL returns the URL of the server the tests of this process share:
// FIAT_TEST_POSTGRES's, or one started for them on first use (Main stops
// it).
func URL(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.url == "" {
		s, err := start()
		if err != nil {
			tb.Fatalf("start PostgreSQL for the tests (or set %s to a server's URL): %v", EnvURL, err)
		}
		shared.server, shared.url = s, s.URL
	}
	return shared.url
}

// Main runs the tests of a package that uses URL or Database, and then
// stops the server they shared. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.server != nil {
		shared.server.remove()
	}
	shared.Unlock()
	os.Exit(code)
}

// Database creates an empty database on the shared server for tb, dropped
// when tb ends, and returns its URL.
func Database(tb testing.TB) string {
	tb.Helper()
	return DatabaseOn(tb, URL(tb))
}

// DatabaseOn creates an empty database for tb on the server at serverURL,
// dropped when tb ends, and returns its URL.
func DatabaseOn(tb testing.TB, serverURL string) string {
	tb.Helper()
	random := make([]byte, 6)
	rand.Read(random)
	name := "fiat_test_" + hex.EncodeToString(random)
	admin := func(statement string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, statement)
		return err
	}
	if err := admin("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("create a database for the test on %s: %v", redact(serverURL), err)
	}
	tb.Cleanup(func() {
		if err := admin("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			tb.Logf("drop the test's database %s: %v", name, err)
		}
	})
	u, err := url.Parse(serverURL)
	if err != nil {
		tb.Fatalf("%s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the server"
	}
	return u.Redacted()
}
