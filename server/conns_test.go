package server_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/server"
)

// TestFloodOfOnePortSparesTheOther floods each port of a `fiat serve` that
// may open 256 files with more idle, slowloris and slow-body connections
// than that, and then calls the other port: it must answer at once, with
// the connection caps' defaults.
func TestFloodOfOnePortSparesTheOther(t *testing.T) {
	for _, flooded := range []string{"admin", "public"} {
		t.Run(flooded, func(t *testing.T) {
			s := serveProcess(t, []string{"FIAT_TEST_RLIMIT_NOFILE=256"}, "--data", t.TempDir(), "--deploy", "../examples/hello")
			target := s.Router
			if flooded == "admin" {
				target = strings.TrimPrefix(s.Admin, "http://")
			}
			flood(t, target, 600)
			client := &http.Client{Timeout: 5 * time.Second}
			if flooded == "admin" {
				if code, body := getHello(t, client, s.Router); code != 200 || !strings.Contains(body, "Bonjour") {
					t.Errorf("public port while the admin port is flooded: %d %q", code, body)
				}
				return
			}
			admin := &api.Client{Server: s.Admin, Token: readToken(t, s.TokenPath), HTTP: client}
			if envs, err := admin.Envs(t.Context()); err != nil || len(envs) != 1 {
				t.Errorf("admin port while the public port is flooded: %v, %v", envs, err)
			}
		})
	}
}

// flood opens n connections to addr that hold on: idle ones, ones that
// send half a header, and ones that send a header and a bit of the body
// it announces.
func flood(t *testing.T, addr string, n int) {
	t.Helper()
	starts := []string{
		"",
		"GET / HTTP/1.1\r\nHost: hello.localhost\r\n",
		"POST /v1/deploy HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 1000\r\n\r\nxx",
	}
	for i := range n {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, starts[i%len(starts)]); err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
	}
}

// TestIdleAndSlowConnectionsAreClosed holds connections open on each port
// in the ways that once kept them open forever: the server must close
// every one.
func TestIdleAndSlowConnectionsAreClosed(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Timeouts = server.Timeouts{Header: 100 * time.Millisecond, Body: 100 * time.Millisecond, Write: 100 * time.Millisecond, Idle: 100 * time.Millisecond}
	n := startConfig(t, cfg)
	holds := map[string]string{
		"idle before a request":     "",
		"idle after a request":      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"sending its header slowly": "GET /healthz HTTP/1.1\r\nHost: x\r\n",
		"sending its body slowly":   "POST /v1/deploy HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nxx",
	}
	for port, addr := range map[string]net.Addr{"public": n.srv.Public, "admin": n.srv.Admin} {
		for hold, start := range holds {
			conn, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, start)
			// The server's timeouts are 100 ms: ten seconds leave room for a slow machine.
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, conn)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("%s port: a connection %s is still open after 10s", port, hold)
			} else if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
				t.Errorf("%s port: a connection %s: %v", port, hold, err)
			}
		}
	}
}
