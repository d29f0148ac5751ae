package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/server"
)

// idleVersionMemory wakes every stored version of the bench service once,
// after a restart, and returns how many there are, how much heap each one
// keeps while idle, and how long each first request took.
func idleVersionMemory(ctx context.Context, srv *server.Server) (int, int64, Distribution, error) {
	client := &api.Client{Server: "http://" + srv.Admin.String(), Token: srv.Token}
	versions, err := client.Versions(ctx, "todos")
	if err != nil {
		return 0, 0, Distribution{}, err
	}
	httpClient := clientTo(srv.Public.String(), 1)
	defer httpClient.CloseIdleConnections()
	var wake []float64
	before := heap()
	for _, v := range versions {
		began := time.Now()
		resp, err := httpClient.Get(srv.Addresses.Version("todos", v.ID) + "/hello")
		if err != nil {
			return 0, 0, Distribution{}, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		wake = append(wake, millis(time.Since(began)))
		if resp.StatusCode != 200 || resp.Header.Get("Fiat-Version") != v.ID.Short() {
			return 0, 0, Distribution{}, fmt.Errorf("version %s answered %s from %q", v.ID.Short(), resp.Status, resp.Header.Get("Fiat-Version"))
		}
	}
	after := heap()
	return len(versions), (after - before) / int64(len(versions)), distribution(wake), nil
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
