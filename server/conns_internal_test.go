package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveHandler serves h as both of fiat's ports do, under t.
func serveHandler(tb testing.TB, h http.Handler, t Timeouts) string {
	tb.Helper()
	ln, err := listen("127.0.0.1:0", 16)
	if err != nil {
		tb.Fatal(err)
	}
	srv := newHTTPServer(h, t, 4<<10, nil)
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestSlowHandlerIsNotCut runs a handler for longer than the body and
// write timeouts after it read its body: its response arrives whole and
// its request is not cancelled, as a script's may run up to 5 minutes.
func TestSlowHandlerIsNotCut(t *testing.T) {
	timeouts := Timeouts{Header: time.Second, Body: 50 * time.Millisecond, Write: 50 * time.Millisecond, Idle: time.Second}
	addr := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<10))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "request cancelled while the handler ran", 500)
			return
		case <-time.After(6 * timeouts.Write):
		}
		w.Write(body)
	}), timeouts)
	// Twice on one connection: the first response's write deadline must not
	// cut the second.
	for range 2 {
		resp, err := http.Post("http://"+addr, "text/plain", strings.NewReader("the body"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "the body" {
			t.Fatalf("slow handler answered %d %q (%v), want 200 and the body it read", resp.StatusCode, body, err)
		}
	}
}

// TestSlowReaderIsCut asks for a response far larger than the kernel's
// buffers and does not read it: the server must give up once the write
// timeout passes rather than hold the connection for as long as the client
// likes.
func TestSlowReaderIsCut(t *testing.T) {
	const size = 64 << 20
	addr := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, size))
	}), Timeouts{Header: time.Second, Body: time.Second, Write: 10 * time.Millisecond, Idle: time.Second})
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
	}}
	conn, err := dialer.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// Fifty times the write timeout: the server has long given up.
	time.Sleep(500 * time.Millisecond)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n == size {
		t.Fatalf("a client that read nothing for 500ms got all %d bytes: the server waited for it", n)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection is still open after 10s, %d bytes read", n)
	}
}

// TestDeadlinesAllocateNothing keeps per-request deadlines off the
// allocations of the hot path.
func TestDeadlinesAllocateNothing(t *testing.T) {
	h := withDeadlines(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(200)
	}), Defaults.Timeouts)
	w := &connWriter{header: http.Header{}}
	body := &readCloser{strings.NewReader("body")}
	r := httptest.NewRequest("POST", "/", nil)
	serve := func() {
		body.Reset("body")
		r.Body = body
		h.ServeHTTP(w, r)
	}
	if allocs := testing.AllocsPerRun(100, serve); allocs != 0 {
		t.Errorf("a request with a body allocates %.0f times for its deadlines", allocs)
	}
	w.deadlines = 0
	serve()
	if w.deadlines != 4 {
		t.Errorf("%d deadlines set for a request, want 4: none to write, one to read the body, none once it is read, one to write", w.deadlines)
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// connWriter is a ResponseWriter that takes deadlines, as net/http's does.
type connWriter struct {
	header    http.Header
	deadlines int
}

func (w *connWriter) Header() http.Header         { return w.header }
func (w *connWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *connWriter) WriteHeader(int)             {}

func (w *connWriter) SetReadDeadline(time.Time) error {
	w.deadlines++
	return nil
}

func (w *connWriter) SetWriteDeadline(time.Time) error {
	w.deadlines++
	return nil
}
