package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/project"
)

// ClusterOptions says what to measure of nodes sharing one PostgreSQL
// database.
type ClusterOptions struct {
	// Dir is scratch space for the project and each node's data dir.
	Dir string
	// Fiat is the fiat binary that runs the nodes.
	Fiat string
	// Store is the URL of the PostgreSQL database the nodes share: use an
	// empty one, the bench deploys to its production env.
	Store string
	// Nodes is how many `fiat serve` processes share it.
	Nodes int
	// Deploys is how many deploys to time, made on each node in turn.
	Deploys  int
	Progress io.Writer
}

// ClusterReport is what was measured. Times are in milliseconds.
type ClusterReport struct {
	Cores int `json:"cores"`
	Nodes int `json:"nodes"`
	// Deploy is the deploying node's own time for each deploy (deploy_ms).
	Deploy Distribution `json:"deploy_server_ms"`
	// A deploy's commit comes after its request is sent and before its
	// answer is received, so the time from its commit until every other
	// node serves it is between PropagationFromAnswer and
	// PropagationFromRequest.
	PropagationFromAnswer  Distribution `json:"propagation_from_answer_ms"`
	PropagationFromRequest Distribution `json:"propagation_from_request_ms"`
}

// pollEvery is how often the bench asks the other nodes which version
// they serve: often enough to time propagation to the millisecond, seldom
// enough to leave the nodes the CPU.
const pollEvery = 500 * time.Microsecond

// Cluster starts opts.Nodes `fiat serve` processes on opts.Store and deploys
// to each in turn, timing each deploy and how soon every other node serves
// it.
func Cluster(ctx context.Context, opts ClusterOptions) (ClusterReport, error) {
	rep := ClusterReport{Cores: runtime.NumCPU(), Nodes: opts.Nodes}
	if opts.Nodes < 2 {
		return rep, fmt.Errorf("a cluster of %d node: give at least 2", opts.Nodes)
	}
	dir := filepath.Join(opts.Dir, "project")
	if err := writeProject(dir); err != nil {
		return rep, err
	}
	fmt.Fprintf(opts.Progress, "starting %d nodes on one PostgreSQL database...\n", opts.Nodes)
	nodes := make([]*serveProcess, opts.Nodes)
	for i := range nodes {
		node, err := startServe(ctx, opts.Fiat, "--data", filepath.Join(opts.Dir, fmt.Sprint("node-", i)), "--store", opts.Store)
		if err != nil {
			return rep, fmt.Errorf("node %d: %w", i, err)
		}
		defer node.stop()
		nodes[i] = node
	}
	url := fiat.Addresses{Domain: "localhost"}.Service("todos", fiat.Production) + "/hello"
	fmt.Fprintf(opts.Progress, "deploying %d times, to each node in turn, and asking the others until they serve each deploy...\n", opts.Deploys)
	var deploys, fromAnswer, fromRequest []float64
	for i := range opts.Deploys {
		if err := change(dir, i); err != nil {
			return rep, err
		}
		bundle, err := project.Load(dir)
		if err != nil {
			return rep, err
		}
		at := nodes[i%len(nodes)]
		client := &api.Client{Server: at.Admin, Token: at.Token}
		sent := time.Now()
		res, err := client.Deploy(ctx, fiat.Production, bundle)
		answered := time.Now()
		if err != nil {
			return rep, fmt.Errorf("deploy %d to node %d: %w", i, i%len(nodes), err)
		}
		want := res.Services[0].Version.Short()
		var last time.Time
		var mu sync.Mutex
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for n, node := range nodes {
			if node == at {
				continue
			}
			wg.Go(func() {
				served, err := servedAt(ctx, node.Router, url, want)
				errs[n] = err
				mu.Lock()
				if served.After(last) {
					last = served
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		for n, err := range errs {
			if err != nil {
				return rep, fmt.Errorf("deploy %d, node %d: %w", i, n, err)
			}
		}
		deploys = append(deploys, res.DeployMS)
		fromAnswer = append(fromAnswer, max(0, millis(last.Sub(answered))))
		fromRequest = append(fromRequest, millis(last.Sub(sent)))
	}
	rep.Deploy, rep.PropagationFromAnswer, rep.PropagationFromRequest = distribution(deploys), distribution(fromAnswer), distribution(fromRequest)
	return rep, nil
}

// servedAt asks the router at addr for url until the version it answers
// with is want, and returns when it first did.
func servedAt(ctx context.Context, addr, url, want string) (time.Time, error) {
	client := clientTo(addr, 1)
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url)
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Fiat-Version") == want && resp.StatusCode == http.StatusOK {
			return now, nil
		}
		if now.After(deadline) {
			return time.Time{}, fmt.Errorf("still serving version %s (%s), not %s, 10s after the deploy", resp.Header.Get("Fiat-Version"), resp.Status, want)
		}
		select {
		case <-time.After(pollEvery):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}
