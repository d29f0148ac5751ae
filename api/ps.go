package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
)

func (s *server) processes(r *http.Request) (any, error) {
	return s.cfg.Deployer.Processes(), nil
}

// RestartRequest restarts the instances of a service in Env (production
// if nil), one after the other.
type RestartRequest struct {
	Env *string `json:"env,omitempty"`
}

func (s *server) restart(r *http.Request) (any, error) {
	var req RestartRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	env, err := envField("env", req.Env)
	if err != nil {
		return nil, err
	}
	service := r.PathValue("service")
	supervised, id, err := s.cfg.Deployer.Supervised(r.Context(), env, service, "")
	if err != nil {
		return nil, err
	}
	if err := supervised.Restart(r.Context()); err != nil {
		return nil, err
	}
	return deploy.Process{Env: env, Service: service, Version: id, Instances: supervised.Instances()}, nil
}

// LogsRequest asks for the last N lines (1 to maxLogLines) the instances
// of a service wrote: of the version whose hash starts with Version, or
// else of the one Env serves; and, if Follow, every line after them.
type LogsRequest struct {
	Env     string
	Version string
	N       int
	Follow  bool
}

const maxLogLines = 10000

// logs streams log lines as JSON, one per line.
func (s *server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := LogsRequest{Env: fiat.Production, Version: q.Get("version"), N: 100, Follow: q.Get("follow") == "true"}
	if q.Has("env") {
		req.Env = q.Get("env")
	}
	if q.Has("n") {
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil || n < 1 || n > maxLogLines {
			s.reply(w, r, nil, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("n=%q: give a number of lines from 1 to %d", q.Get("n"), maxLogLines)})
			return
		}
		req.N = n
	}
	supervised, _, err := s.cfg.Deployer.Supervised(r.Context(), req.Env, r.PathValue("service"), req.Version)
	if err != nil {
		s.reply(w, r, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	// Following is followed as long as the client reads: no deadline.
	rc := http.NewResponseController(w)
	var follow <-chan fiat.LogLine
	if req.Follow {
		rc.SetWriteDeadline(time.Time{})
		follow = supervised.Follow(r.Context())
	}
	for _, line := range supervised.Logs(req.N) {
		enc.Encode(line)
	}
	if !req.Follow {
		return
	}
	rc.Flush()
	for line := range follow {
		if enc.Encode(line) != nil || rc.Flush() != nil {
			return
		}
	}
}
