package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/gitpush"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/server"
	"github.com/fiatdev/fiat/store"
)

func (c *cli) serveCmd() *cobra.Command {
	cfg := server.Defaults
	cfg.MaxConns, cfg.MaxAdminConns = server.DefaultConns()
	var deployDir, logLevel, memory string
	var gitBranches []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the fiat platform: the public router and the admin API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: give debug, info, warn or error", logLevel)
			}
			if cfg.MaxConns < 1 || cfg.MaxAdminConns < 1 {
				return fmt.Errorf("--max-conns and --max-admin-conns must be at least 1")
			}
			if cfg.StopIdle < time.Second {
				return fmt.Errorf("--stop-idle %s: give at least 1s, e.g. 5m", cfg.StopIdle)
			}
			limit, err := setMemoryLimit(memory, cmd.Flags().Changed("memory-limit"))
			if err != nil {
				return err
			}
			if len(gitBranches) > 0 {
				if cfg.GitBranches, err = gitpush.ParseBranches(gitBranches); err != nil {
					return err
				}
			}
			cfg.Logger = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
			ctx := cmd.Context()
			s, err := server.Start(ctx, cfg)
			if err != nil {
				return err
			}
			started := serving{
				Addresses:   "http://SERVICE." + cfg.Domain + ":" + s.Addresses.Port,
				Router:      s.Public.String(),
				Admin:       "http://" + s.Admin.String(),
				Store:       s.Store,
				TokenPath:   s.TokenPath,
				NewToken:    s.NewToken,
				MemoryLimit: limit,
			}
			if deployDir != "" {
				res, err := deployOnStart(ctx, s, deployDir)
				if err != nil {
					s.Shutdown(context.Background())
					return fmt.Errorf("--deploy %s: %w", deployDir, err)
				}
				started.Deploy = &res
			}
			c.print(started, started.print)
			var failed error
			select {
			case <-ctx.Done():
			case failed = <-waitErr(s):
			}
			shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(failed, s.Shutdown(shutdown))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address of the public router")
	f.StringVar(&cfg.Admin, "admin", cfg.Admin, "address of the admin API")
	f.StringVar(&cfg.Data, "data", cfg.Data, "this node's directory: the state (unless --store), the admin token's copy, compiled programs")
	f.StringVar(&cfg.Store, "store", os.Getenv("FIAT_STORE"), "PostgreSQL URL of the state several nodes share, postgres://user:password@host:port/database (default $FIAT_STORE, else SQLite in the data dir)")
	f.StringVar(&cfg.Domain, "domain", cfg.Domain, "domain of every public address")
	f.Int64Var(&cfg.MaxBundle, "max-bundle", cfg.MaxBundle, "largest project a deploy accepts, in bytes")
	f.Int64Var(&cfg.MaxBody, "max-body", cfg.MaxBody, "largest request body a service may read, in bytes")
	f.IntVar(&cfg.MaxHeader, "max-header", cfg.MaxHeader, "largest request header, in bytes")
	f.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most open connections to the public router, by default half the open-file limit; more wait to be accepted")
	f.IntVar(&cfg.MaxAdminConns, "max-admin-conns", cfg.MaxAdminConns, "most open connections to the admin API, by default a sixteenth of the open-file limit; more wait to be accepted")
	f.StringVar(&memory, "memory-limit", defaultMemoryLimit, "soft memory limit of the Go runtime: a size (2GiB), a share of the machine's or cgroup's memory (75%), or off; GOMEMLIMIT holds if set and this flag is not")
	f.DurationVar(&cfg.StopIdle, "stop-idle", deploy.DefaultStopIdle, "how long a version no env uses keeps running after its last request; its next request starts it again")
	f.StringVar(&deployDir, "deploy", "", "deploy the project in this directory to production once started")
	f.StringArrayVar(&gitBranches, "git-branch", nil, "BRANCH=ENV: a git push of BRANCH deploys to ENV; * is any other branch, =* the env of the branch's name (default main=production, master=production, *=*)")
	f.StringVar(&logLevel, "log-level", "info", "least level logged: debug (adds what tests log at each deploy), info, warn or error")
	return cmd
}

// serving is what fiat serve says once it serves.
type serving struct {
	Addresses string `json:"addresses"`
	Router    string `json:"router"`
	Admin     string `json:"admin"`
	// Store is where the state is: a file, or a PostgreSQL URL without
	// its password.
	Store     string `json:"store"`
	TokenPath string `json:"token_path"`
	// NewToken is true when this start created the admin token.
	NewToken    bool        `json:"new_token"`
	MemoryLimit memoryLimit `json:"memory_limit"`
	// Deploy is the outcome of --deploy.
	Deploy *deploy.Result `json:"deploy,omitempty"`
}

func (s serving) print(w io.Writer) {
	fmt.Fprintf(w, "fiat is serving %s (router on %s), admin API on %s\n", s.Addresses, s.Router, s.Admin)
	verb := "the admin token is in"
	if s.NewToken {
		verb = "created the admin token in"
	}
	fmt.Fprintf(w, "state in %s\n", s.Store)
	fmt.Fprintf(w, "%s %s (every node sharing the store takes the same token): give it to the CLI with `fiat login %s` (or FIAT_TOKEN_FILE=%s)\n", verb, s.TokenPath, s.Admin, s.TokenPath)
	fmt.Fprintf(w, "%s: --memory-limit or GOMEMLIMIT change it\n", s.MemoryLimit)
	if s.Deploy != nil {
		printResult(w, *s.Deploy)
	}
}

func deployOnStart(ctx context.Context, s *server.Server, dir string) (deploy.Result, error) {
	bundle, err := project.Load(dir)
	if err != nil {
		return deploy.Result{}, err
	}
	return s.Deployer.Deploy(ctx, fiat.Production, bundle)
}

func waitErr(s *server.Server) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Wait() }()
	return ch
}

func (c *cli) initCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a small working project into DIR (default .)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := argOr(args, ".")
			created, err := project.Init(dir, name)
			if err != nil {
				return err
			}
			c.print(created, func(w io.Writer) {
				if created.Note != "" {
					fmt.Fprintln(w, created.Note)
				}
				fmt.Fprintf(w, "wrote a project with the service %s to %s: deploy it with `fiat deploy %s`\n", created.Service, dir, shellWord(dir))
			})
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the service (default: derived from DIR's name)")
	return cmd
}

// shellWord quotes s for a POSIX shell when it is not a plain word, so
// that a command printed for the user to copy works as printed.
func shellWord(s string) string {
	plain := s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./", r))
	})
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func argOr(args []string, fallback string) string {
	if len(args) > 0 {
		return args[0]
	}
	return fallback
}

func (c *cli) deployCmd() *cobra.Command {
	var env string
	var rollout func() (*deploy.RolloutPlan, error)
	cmd := &cobra.Command{
		Use:   "deploy [DIR]",
		Short: "Deploy the project in DIR (default .): validated, tested, then live in one step (or rolled out with --rollout)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := rollout()
			if err != nil {
				return err
			}
			bundle, err := project.Load(argOr(args, "."))
			if err != nil {
				return err
			}
			return c.change(func(client *api.Client) (deploy.Result, error) {
				if plan != nil {
					return client.DeployRollout(cmd.Context(), env, bundle, *plan)
				}
				return client.Deploy(cmd.Context(), env, bundle)
			})
		},
	}
	cmd.Flags().StringVar(&env, "env", fiat.Production, "env to deploy to (created if new)")
	rollout = rolloutFlags(cmd)
	return cmd
}

// change runs a command that changes an env and prints its result.
func (c *cli) change(call func(*api.Client) (deploy.Result, error)) error {
	client, err := c.client()
	if err != nil {
		return err
	}
	res, err := call(client)
	if err != nil {
		return err
	}
	c.print(res, func(w io.Writer) { printResult(w, res) })
	return nil
}

func printResult(w io.Writer, res deploy.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	changed := 0
	for _, s := range res.Services {
		state := "unchanged"
		if s.Changed {
			state = "changed"
			if s.Why != "" {
				state += ": " + s.Why
			}
			changed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Version.Short(), state, s.URL, s.VersionURL)
	}
	tw.Flush()
	if res.Rollout != nil {
		printRolloutStarted(w, res)
		return
	}
	if changed == 0 && len(res.Services) > 0 {
		fmt.Fprintf(w, "nothing changed in %s (%.2f ms)\n", res.Env, res.DeployMS)
		return
	}
	fmt.Fprintf(w, "%s updated in %.2f ms\n", res.Env, res.DeployMS)
}

func (c *cli) versionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "versions SERVICE",
		Short: "List the versions of a service, newest first, and the envs that use them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			versions, err := client.Versions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			c.print(versions, func(w io.Writer) { printVersions(w, versions) })
			return nil
		},
	}
}

func printVersions(w io.Writer, versions []store.VersionInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCREATED\tENVS\tUSES")
	for _, v := range versions {
		var uses []string
		for _, service := range slices.Sorted(maps.Keys(v.Uses)) {
			uses = append(uses, service+" "+v.Uses[service].Short())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.ID.Short(), v.Created.Local().Format("2006-01-02 15:04:05"), strings.Join(v.Envs, ","), strings.Join(uses, ", "))
	}
	tw.Flush()
}

func (c *cli) rollbackCmd() *cobra.Command {
	var env, to string
	cmd := &cobra.Command{
		Use:   "rollback SERVICE",
		Short: "Point a service back at its previous version (again and again, like undo), or at --to HASH",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.change(func(client *api.Client) (deploy.Result, error) {
				return client.Rollback(cmd.Context(), env, args[0], to)
			})
		},
	}
	cmd.Flags().StringVar(&env, "env", fiat.Production, "env to roll back in")
	cmd.Flags().StringVar(&to, "to", "", "hash (or unique prefix of 8+ characters) of the version to go to")
	return cmd
}

func (c *cli) envCmd() *cobra.Command {
	env := &cobra.Command{Use: "env", Short: "List, fork and delete envs", RunE: c.needsCommand}
	var from string
	fork := &cobra.Command{
		Use:   "fork NEW",
		Short: "Create env NEW with the same versions as --from",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.change(func(client *api.Client) (deploy.Result, error) {
				return client.Fork(cmd.Context(), args[0], from)
			})
		},
	}
	fork.Flags().StringVar(&from, "from", fiat.Production, "env to copy")
	env.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List envs and the versions of their services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			envs, err := client.Envs(cmd.Context())
			if err != nil {
				return err
			}
			c.print(envs, func(w io.Writer) { printEnvs(w, envs) })
			return nil
		},
	}, fork, &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an env; its versions keep their addresses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			if err := client.DeleteEnv(cmd.Context(), args[0]); err != nil {
				return err
			}
			c.print(map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "deleted env %s\n", args[0]) })
			return nil
		},
	})
	return env
}

func printEnvs(w io.Writer, envs []fiat.Env) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENV\tSERVICE\tVERSION")
	for _, env := range envs {
		services := slices.Sorted(maps.Keys(env.Services))
		for _, s := range services {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", env.Name, s, env.Services[s].Short())
		}
		printCandidates(tw, env)
		if len(services) == 0 && len(env.Rollouts) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\n", env.Name)
		}
	}
	tw.Flush()
}

func (c *cli) promoteCmd() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "promote --from ENV --to ENV",
		Short: "Switch every service of --to to the versions --from has, in one step",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.change(func(client *api.Client) (deploy.Result, error) {
				return client.Promote(cmd.Context(), from, to)
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "env whose versions to take")
	cmd.Flags().StringVar(&to, "to", fiat.Production, "env to switch")
	cmd.MarkFlagRequired("from")
	return cmd
}
