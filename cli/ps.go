package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/deploy"
)

func (c *cli) psCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ps",
		Short: "List the instances of the process services running on the server's node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			ps, err := client.Processes(cmd.Context())
			if err != nil {
				return err
			}
			c.print(ps, func(w io.Writer) { printProcesses(w, ps) })
			return nil
		},
	}
}

func printProcesses(w io.Writer, ps []deploy.Process) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENV\tSERVICE\tVERSION\tINSTANCE\tSTATE\tRESTARTS\tUP\tMEMORY")
	for _, p := range ps {
		for _, i := range p.Instances {
			up := "-"
			if !i.Started.IsZero() {
				up = time.Since(i.Started).Round(time.Second).String()
			}
			version := p.Version.Short()
			if p.Candidate {
				version += " (candidate)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Env, p.Service, version, i.ID, i.State, i.Restarts, up, humanize.IBytes(i.MemoryBytes))
		}
	}
	tw.Flush()
}

func (c *cli) restartCmd() *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "restart SERVICE",
		Short: "Restart the instances of a process service one after the other, each new one ready before the old one stops",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			p, err := client.Restart(cmd.Context(), env, args[0])
			if err != nil {
				return err
			}
			c.print(p, func(w io.Writer) { printProcesses(w, []deploy.Process{p}) })
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", fiat.Production, "env whose version of the service to restart")
	return cmd
}

func (c *cli) logsCmd() *cobra.Command {
	req := api.LogsRequest{Env: fiat.Production, N: 100}
	cmd := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Show what a process service's instances wrote, each line tagged with its instance and version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			printLine := func(w io.Writer, line fiat.LogLine) {
				fmt.Fprintf(w, "%s %s %s %s\n", line.Time.Local().Format("15:04:05.000"), line.Version.Short(), line.Instance, line.Text)
			}
			if !req.Follow {
				lines := []fiat.LogLine{}
				if err := client.Logs(cmd.Context(), args[0], req, func(line fiat.LogLine) error {
					lines = append(lines, line)
					return nil
				}); err != nil {
					return err
				}
				c.print(lines, func(w io.Writer) {
					for _, line := range lines {
						printLine(w, line)
					}
				})
				return nil
			}
			// Following prints as lines come: with --json, one JSON value
			// per line.
			enc := json.NewEncoder(c.stdout)
			return client.Logs(cmd.Context(), args[0], req, func(line fiat.LogLine) error {
				if c.json {
					return enc.Encode(line)
				}
				printLine(c.stdout, line)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Env, "env", req.Env, "env whose version of the service to show")
	f.StringVar(&req.Version, "version", "", "show this version's (a hash prefix of 8+ characters) instead of the env's")
	f.BoolVarP(&req.Follow, "follow", "f", false, "go on showing lines as they are written")
	f.IntVarP(&req.N, "lines", "n", req.N, "how many of the last lines to show")
	return cmd
}
