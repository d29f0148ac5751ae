// Package cli is the fiat command line: `fiat serve` and the commands that
// call the admin API. Every command prints for people by default and exactly
// one JSON value with --json, errors included.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
		// A flag error can stop parsing before --json is reached.
		c.json = c.json || jsonRequested(args)
		c.fail(err)
		return 1
	}
	return 0
}

type cli struct {
	stdout, stderr io.Writer
	server         string
	json           bool
	// tokenFrom says where the admin token was read from, for the error a
	// refused token gets.
	tokenFrom string
}

func (c *cli) root() *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:               "fiat",
		Short:             "fiat deploys services in a millisecond and keeps every version at its own address",
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: refuseEmptyFlags,
		RunE: func(cmd *cobra.Command, args []string) error {
			if showVersion {
				return c.printVersion()
			}
			return c.needsCommand(cmd, args)
		},
	}
	root.Flags().BoolVar(&showVersion, "version", false, "print fiat's version")
	root.PersistentFlags().StringVar(&c.server, "server", "", "admin API of the fiat server, as host:port or a URL (default: FIAT_SERVER, else the server saved by fiat login, else http://"+server.Defaults.Admin+")")
	root.PersistentFlags().BoolVar(&c.json, "json", false, "print one JSON value instead of text")
	root.AddCommand(c.serveCmd(), c.initCmd(), c.deployCmd(), c.versionsCmd(), c.rollbackCmd(), c.envCmd(), c.graphCmd(), c.promoteCmd(), c.configCmd(), c.scaleCmd(), c.rolloutCmd(), c.flagCmd(), c.psCmd(), c.logsCmd(), c.restartCmd(), c.loginCmd(), c.versionCmd(), c.benchCmd())
	root.SetFlagErrorFunc(usageError)
	withUsageErrors(root)
	return root
}

// usageError says where to read how cmd is used.
func usageError(cmd *cobra.Command, err error) error {
	return fmt.Errorf("%w: see `%s --help`", err, cmd.CommandPath())
}

// withUsageErrors makes every wrong count of arguments say where to read
// how the command is used.
func withUsageErrors(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError(cmd, err)
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		withUsageErrors(sub)
	}
}

// needsCommand runs a command that only groups others: alone it shows its
// help, which is no JSON value.
func (c *cli) needsCommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(cmd, fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
	}
	if c.json {
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		return usageError(cmd, fmt.Errorf("%s needs a command: %s", cmd.CommandPath(), strings.Join(names, ", ")))
	}
	return cmd.Help()
}

// refuseEmptyFlags refuses a flag given with an empty value. `--env
// "$ENV"` with ENV unset must not deploy to production, the default.
func refuseEmptyFlags(cmd *cobra.Command, _ []string) error {
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if err != nil || f.Value.Type() != "string" || f.Value.String() != "" {
			return
		}
		fix := "give a value"
		if f.DefValue != "" {
			fix += ", or leave the flag out for its default, " + f.DefValue
		}
		err = fmt.Errorf("--%s is empty (an unset shell variable expands to nothing): %s", f.Name, fix)
	})
	return err
}

// jsonRequested reports whether args ask for --json, before any "--".
func jsonRequested(args []string) bool {
	for _, arg := range args {
		switch {
		case arg == "--":
			return false
		case arg == "--json":
			return true
		case strings.HasPrefix(arg, "--json="):
			on, _ := strconv.ParseBool(strings.TrimPrefix(arg, "--json="))
			return on
		}
	}
	return false
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
	var refused *api.Error
	if errors.As(err, &refused) && refused.Status == http.StatusUnauthorized {
		apiErr = &api.Error{Status: refused.Status, Message: fmt.Sprintf("the server at %s refused the admin token read from %s: %s", c.server, c.tokenFrom, tokenHelp(c.server))}
	}
	if c.json {
		c.print(apiErr, nil)
		return
	}
	fmt.Fprintln(c.stderr, "fiat: "+apiErr.Error())
}
