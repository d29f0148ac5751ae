// Package cli is the fiat command line: `fiat serve` and the commands that
// call the admin API. Every command prints for people by default and exactly
// one JSON value with --json.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/server"
)

// Main runs the fiat command with args and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{stdout: stdout, stderr: stderr}
	root := c.root()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		c.fail(err)
		return 1
	}
	return 0
}

type cli struct {
	stdout, stderr io.Writer
	server         string
	json           bool
}

func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "fiat",
		Short:         "fiat deploys services in a millisecond and keeps every version at its own address",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&c.server, "server", envOr("FIAT_SERVER", "http://"+server.Defaults.Admin), "admin API of the fiat server (env FIAT_SERVER)")
	root.PersistentFlags().BoolVar(&c.json, "json", false, "print one JSON value instead of text")
	root.AddCommand(c.serveCmd(), c.initCmd(), c.deployCmd(), c.versionsCmd(), c.rollbackCmd(), c.envCmd(), c.promoteCmd(), c.benchCmd())
	return root
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// client finds the admin token: FIAT_TOKEN, else the token file of a server
// started in this directory with the default data dir.
func (c *cli) client() (*api.Client, error) {
	token := os.Getenv("FIAT_TOKEN")
	if token == "" {
		path := filepath.Join(server.Defaults.Data, server.TokenFile)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("no admin token: set FIAT_TOKEN to the contents of the server's <data>/%s, or run this in the directory where `fiat serve` keeps %s (%v)", server.TokenFile, server.Defaults.Data, err)
		}
		token = strings.TrimSpace(string(data))
	}
	return &api.Client{Server: strings.TrimSuffix(c.server, "/"), Token: token}, nil
}

// print writes v as JSON with --json, else calls human.
func (c *cli) print(v any, human func(w io.Writer)) {
	if c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		return
	}
	human(c.stdout)
}

// fail reports err: as {"error": ..., "problems": [...]} on stdout with
// --json, so scripts always get one JSON value, else as text on stderr.
func (c *cli) fail(err error) {
	apiErr := api.ErrorOf(err)
	if c.json {
		c.print(apiErr, nil)
		return
	}
	fmt.Fprintln(c.stderr, "fiat: "+apiErr.Error())
}
