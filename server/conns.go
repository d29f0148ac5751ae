package server

import (
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// Timeouts bound how long a connection may hold the server's resources
// without doing its part. Both ports use them.
type Timeouts struct {
	// Header bounds reading a request's header, Body reading its body.
	Header, Body time.Duration
	// Write bounds sending a response, from its first byte on: a handler
	// may compute for as long as its own limit allows (a script's timeout
	// goes up to 5m), but then the client must take the response.
	Write time.Duration
	// Idle is how long a keep-alive connection may wait for its next
	// request before the server closes it.
	Idle time.Duration
}

// DefaultConns are the connection caps `fiat serve` starts with: half the
// open-file limit for the public port, since a request to a process
// service holds a second connection to its instance, and a sixteenth for
// the admin port. The rest stays free for the store, the cache and the
// instances, so a flood of either port cannot starve the other.
func DefaultConns() (public, admin int) {
	limit := openFileLimit()
	return max(limit/2, 1), max(limit/16, 1)
}

// listen binds addr and caps its open connections at maxConns: past it,
// new connections wait in the kernel's accept queue, holding none of the
// server's file descriptors, until one closes.
func listen(addr string, maxConns int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netutil.LimitListener(ln, maxConns), nil
}

// newHTTPServer serves h under t. It sets no server-wide read or write
// timeout: those would run from the start of each request, and expiring
// while a handler still computes they would cancel its request or cut its
// response. withDeadlines sets them per request instead.
func newHTTPServer(h http.Handler, t Timeouts, maxHeader int, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           withDeadlines(h, t),
		MaxHeaderBytes:    maxHeader,
		ReadHeaderTimeout: t.Header,
		IdleTimeout:       t.Idle,
		ErrorLog:          errorLog,
	}
}

// withDeadlines gives a request t.Body to send its body, and its response
// t.Write from its first byte to reach the client. In between, while the
// handler computes, the connection has no deadline: a read deadline
// expiring then would cancel the request's context.
func withDeadlines(h http.Handler, t Timeouts) http.Handler {
	return &deadlineHandler{next: h, timeouts: t}
}

type deadlineHandler struct {
	next     http.Handler
	timeouts Timeouts
}

func (h *deadlineHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The previous response on this connection left its deadline.
	rc.SetWriteDeadline(time.Time{})
	d := requestDeadlines.Get().(*deadlines)
	d.writer = deadlineWriter{ResponseWriter: w, timeout: h.timeouts.Write}
	if r.Body != nil && r.Body != http.NoBody {
		rc.SetReadDeadline(time.Now().Add(h.timeouts.Body))
		d.body = deadlineBody{ReadCloser: r.Body, w: w}
		r.Body = &d.body
	}
	h.next.ServeHTTP(&d.writer, r)
	*d = deadlines{}
	requestDeadlines.Put(d)
}

// deadlines is what withDeadlines wraps a request in, pooled so that
// wrapping allocates nothing.
type deadlines struct {
	writer deadlineWriter
	body   deadlineBody
}

var requestDeadlines = sync.Pool{New: func() any { return new(deadlines) }}

// deadlineWriter sets the write deadline when the response begins.
type deadlineWriter struct {
	http.ResponseWriter
	timeout time.Duration
	begun   bool
}

func (w *deadlineWriter) begin() {
	if !w.begun {
		w.begun = true
		http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.timeout))
	}
}

func (w *deadlineWriter) WriteHeader(code int) {
	w.begin()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.begin()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// deadlineBody lifts the read deadline once the whole body is read: from
// then on net/http reads the connection in the background to notice the
// client leaving, and that read must not time out while the handler runs.
type deadlineBody struct {
	io.ReadCloser
	w http.ResponseWriter
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		http.NewResponseController(b.w).SetReadDeadline(time.Time{})
	}
	return n, err
}
