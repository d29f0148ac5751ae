package server_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/cli"
	"github.com/fiatdev/fiat/internal/pgtest"
)

// TestMain lets the test binary act as the fiat command, run with the
// arguments in FIAT_TEST_ARGS, so that tests can run `fiat serve` as a
// process of its own. FIAT_TEST_RLIMIT_NOFILE and FIAT_TEST_RLIMIT_FSIZE
// set its limits on open files and file size, as a machine might.
func TestMain(m *testing.M) {
	if args := os.Getenv("FIAT_TEST_ARGS"); args != "" {
		for name, resource := range map[string]int{"FIAT_TEST_RLIMIT_NOFILE": syscall.RLIMIT_NOFILE, "FIAT_TEST_RLIMIT_FSIZE": syscall.RLIMIT_FSIZE} {
			if limit, err := strconv.ParseUint(os.Getenv(name), 10, 64); err == nil {
				if err := syscall.Setrlimit(resource, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
					panic(err)
				}
			}
		}
		os.Exit(cli.Main(strings.Fields(args), os.Stdout, os.Stderr))
	}
	pgtest.Main(m)
}

// fiatProcess starts the test binary as `fiat args...`.
func fiatProcess(t *testing.T, args ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	return fiatProcessEnv(t, nil, args...)
}

// fiatProcessEnv starts it with env added to its environment.
func fiatProcessEnv(t *testing.T, env []string, args ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "FIAT_TEST_ARGS="+strings.Join(args, " ")), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdout
}

// TestKill9KeepsAcknowledgedDeploys kills `fiat serve` with SIGKILL while
// deploys are streaming in: after a restart every deploy it acknowledged
// is there, versions and env alike.
func TestKill9KeepsAcknowledgedDeploys(t *testing.T) {
	data := t.TempDir()
	cmd, stdout := fiatProcess(t, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data", data)
	adminURL := regexp.MustCompile(`admin API on (http://\S+)`)
	lines := bufio.NewScanner(stdout)
	var admin string
	for admin == "" && lines.Scan() {
		if m := adminURL.FindStringSubmatch(lines.Text()); m != nil {
			admin = m[1]
		}
	}
	token, err := os.ReadFile(data + "/admin-token")
	if admin == "" || err != nil {
		t.Fatalf("fiat serve did not start: admin %q, token %v", admin, err)
	}
	client := &api.Client{Server: admin, Token: string(token[:len(token)-1])}
	dir := t.TempDir()
	var acked []fiat.Hash
	killAt := time.Now().Add(300 * time.Millisecond)
	killed := false
	for i := 0; ; i++ {
		if !killed && time.Now().After(killAt) {
			// Kill while the next deploy is in flight, not between deploys.
			go func() {
				time.Sleep(200 * time.Microsecond)
				cmd.Process.Signal(syscall.SIGKILL)
			}()
			killed = true
		}
		res, err := client.Deploy(t.Context(), fiat.Production, mustLoad(t, writeProject(t, dir, "app", fmt.Sprint("v", i))))
		if err != nil {
			if !killed {
				t.Fatalf("deploy %d before the kill: %v", i, err)
			}
			break
		}
		acked = append(acked, res.Services[0].Version)
	}
	cmd.Wait()
	if len(acked) < 5 {
		t.Fatalf("only %d deploys acknowledged before the kill", len(acked))
	}

	n := start(t, data)
	versions, err := n.admin.Versions(t.Context(), "app")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[fiat.Hash]bool{}
	for _, v := range versions {
		stored[v.ID] = true
	}
	for i, id := range acked {
		if !stored[id] {
			t.Errorf("acknowledged deploy %d (%s) lost after kill -9", i, id.Short())
		}
	}
	last := acked[len(acked)-1]
	_, body, header := n.get(n.srv.Addresses.Service("app", fiat.Production))
	if current := header.Get("Fiat-Version"); current != last.Short() && len(versions) == len(acked) {
		t.Errorf("production serves %s (%q), want the last acknowledged %s", current, body, last.Short())
	}
	t.Logf("%d deploys acknowledged before kill -9, all kept", len(acked))
}
