package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"

	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/server"
)

// idleVersionMemory wakes every stored version of the bench service once,
// after a restart, and returns how much heap each one keeps while idle.
func idleVersionMemory(ctx context.Context, srv *server.Server) (int, int64, error) {
	client := &api.Client{Server: "http://" + srv.Admin.String(), Token: srv.Token}
	versions, err := client.Versions(ctx, "todos")
	if err != nil {
		return 0, 0, err
	}
	public := srv.Public.String()
	httpClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, public)
	}}}
	defer httpClient.CloseIdleConnections()
	before := heap()
	for _, v := range versions {
		resp, err := httpClient.Get(srv.Addresses.Version("todos", v.ID) + "/hello")
		if err != nil {
			return 0, 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Fiat-Version") != v.ID.Short() {
			return 0, 0, fmt.Errorf("version %s answered %s from %q", v.ID.Short(), resp.Status, resp.Header.Get("Fiat-Version"))
		}
	}
	after := heap()
	return len(versions), (after - before) / int64(len(versions)), nil
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
