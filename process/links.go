package process

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/fiatdev/fiat"
)

// links are the addresses an instance reaches the versions its version
// uses at: a loopback port per used version, which any HTTP client in any
// language reaches with no DNS set up (Go's and Python's do not resolve
// *.localhost on Linux), and which routes to exactly that version. The
// port is no part of any hash: ${api.version_url} is filled in at start.
type links struct {
	urls    map[string]string // by service
	servers []*http.Server
}

// Limits of a request through a link, as of one through the router's
// public port.
const (
	linkHeaderTimeout = 10 * time.Second
	linkIdleTimeout   = 2 * time.Minute
	linkMaxHeader     = 64 << 10
	// linkMaxConns bounds the connections open through one link: an
	// instance that opens more waits, and cannot take the file
	// descriptors other requests need.
	linkMaxConns = 256
)

// openLinks listens on a loopback port for each of uses.
func openLinks(uses map[string]http.Handler) (*links, error) {
	l := &links{urls: make(map[string]string, len(uses))}
	for service, handler := range uses {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			l.close(context.Background())
			return nil, err
		}
		srv := &http.Server{Handler: passFlags(handler), ReadHeaderTimeout: linkHeaderTimeout, IdleTimeout: linkIdleTimeout, MaxHeaderBytes: linkMaxHeader}
		go srv.Serve(netutil.LimitListener(ln, linkMaxConns))
		l.servers = append(l.servers, srv)
		l.urls[service] = "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	return l, nil
}

// passFlags gives a request through a link the flags its Fiat-Flags
// header lists: an instance that passes on the header it was given calls
// the services it uses with its own request's flags.
func passFlags(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if header, ok := r.Header[fiat.FlagsHeader]; ok {
			r = r.WithContext(fiat.WithFlags(r.Context(), fiat.ParseFlagsHeader(strings.Join(header, ","))))
		}
		h.ServeHTTP(w, r)
	})
}

// url is where service is reached, for fiat.Interpolate.
func (l *links) url(service string) string { return l.urls[service] }

// close stops listening and waits, until ctx ends, for the requests in
// flight through the links.
func (l *links) close(ctx context.Context) {
	for _, srv := range l.servers {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}
}
