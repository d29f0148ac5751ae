package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiatdev/fiat"
)

// proxy hands requests to a version's ready instances, each to the one
// with the fewest requests outstanding.
type proxy struct {
	service, version string
	transport        *http.Transport
	backends         atomic.Pointer[[]*backend]
	inFlight         atomic.Int64
	// turn rotates the instance a search for the least busy starts at, so
	// that ties spread.
	turn atomic.Uint32
}

type backend struct {
	addr        string
	outstanding atomic.Int64
	// rp hands requests to this backend: one per backend, so that a
	// request needs no context value to say where it goes.
	rp *httputil.ReverseProxy
}

// buffers are the buffers ReverseProxy copies bodies through, shared by
// every proxy: without them it allocates 32 KiB per request.
var buffers = &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// Timeouts of the connections to instances.
const (
	dialTimeout = 5 * time.Second
	// answerTimeout bounds how long an instance may take to start its
	// answer; streaming the answer is not bounded.
	answerTimeout = time.Minute
)

func newProxy(service, version string) *proxy {
	p := &proxy{service: service, version: version}
	p.transport = &http.Transport{
		DialContext: (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		// A proxy keeps many connections to few hosts: the default of two
		// idle connections per host would open one per request under load.
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: answerTimeout,
	}
	empty := []*backend{}
	p.backends.Store(&empty)
	return p
}

// setBackends makes addrs the instances requests go to, from now on.
func (p *proxy) setBackends(addrs []string) {
	old := map[string]*backend{}
	for _, b := range *p.backends.Load() {
		old[b.addr] = b
	}
	next := make([]*backend, 0, len(addrs))
	for _, addr := range addrs {
		b, ok := old[addr]
		if !ok {
			b = p.newBackend(addr)
		}
		next = append(next, b)
	}
	p.backends.Store(&next)
}

func (p *proxy) newBackend(addr string) *backend {
	target := &url.URL{Scheme: "http", Host: addr}
	versionHeader := []string{p.version}
	return &backend{addr: addr, rp: &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
			r.Out.Header["Fiat-Version"] = versionHeader
			// The flags evaluated for the request, whatever the request
			// itself said.
			if flags := fiat.FlagsFrom(r.In.Context()).Header(); flags != "" {
				r.Out.Header[fiat.FlagsHeader] = []string{flags}
			} else {
				delete(r.Out.Header, fiat.FlagsHeader)
			}
		},
		Transport:    p.transport,
		ErrorHandler: p.failed,
		BufferPool:   buffers,
	}}
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	b := p.pick()
	if b == nil {
		http.Error(w, fmt.Sprintf("fiat: service %s, version %s, has no instance ready to serve: try again shortly", p.service, p.version), http.StatusServiceUnavailable)
		return
	}
	b.outstanding.Add(1)
	defer b.outstanding.Add(-1)
	b.rp.ServeHTTP(w, r)
}

// pick returns the ready instance with the fewest requests outstanding.
func (p *proxy) pick() *backend {
	backends := *p.backends.Load()
	if len(backends) == 0 {
		return nil
	}
	start := int(p.turn.Add(1) % uint32(len(backends)))
	best := backends[start]
	for i := 1; i < len(backends); i++ {
		if b := backends[(start+i)%len(backends)]; b.outstanding.Load() < best.outstanding.Load() {
			best = b
		}
	}
	return best
}

// failed answers a request its instance did not: 504 if it took too long,
// 502 otherwise. The body names the service and version, never the
// instance's address.
func (p *proxy) failed(w http.ResponseWriter, r *http.Request, err error) {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		http.Error(w, fmt.Sprintf("fiat: service %s, version %s, did not answer within %s", p.service, p.version, p.transport.ResponseHeaderTimeout), http.StatusGatewayTimeout)
		return
	}
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	http.Error(w, fmt.Sprintf("fiat: service %s, version %s, could not be reached: its instance may have crashed (see fiat logs %s)", p.service, p.version, p.service), http.StatusBadGateway)
}

// drain returns once no request is in flight, or when ctx ends.
func (p *proxy) drain(ctx context.Context) {
	for p.inFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (p *proxy) close() { p.transport.CloseIdleConnections() }
