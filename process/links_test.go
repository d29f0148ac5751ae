package process

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// An instance that floods its link with connections holds at most
// linkMaxConns of them open; the others wait, and a link serves again once
// they close.
func TestLinkBoundsConnections(t *testing.T) {
	l, err := openLinks(map[string]http.Handler{"api": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api") })})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close(context.Background())
	addr := strings.TrimPrefix(l.url("api"), "http://")
	var conns []net.Conn
	for range linkMaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Accepted by the kernel, not served: the link has all it may hold.
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	extra.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _ := extra.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a connection over the link's limit was served")
	}
	for _, c := range conns {
		c.Close()
	}
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("once the others closed, the waiting connection got %v, %v", resp, err)
	}
}

// A request through a link has the flags its Fiat-Flags header lists, as
// the calling instance passes on its own request's.
func TestLinkPassesFlags(t *testing.T) {
	l, err := openLinks(map[string]http.Handler{"api": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flags := fiat.FlagsFrom(r.Context())
		fmt.Fprintf(w, "beta=%v new=%v", flags.Flag("beta"), flags.Flag("new"))
	})})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close(context.Background())
	req, _ := http.NewRequest("GET", l.url("api")+"/", nil)
	req.Header.Set("Fiat-Flags", "beta=on, new=off, Bad Name=on")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "beta=true new=false" {
		t.Errorf("through the link: %q", body)
	}
}
