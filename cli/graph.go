package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
)

func (c *cli) graphCmd() *cobra.Command {
	var env string
	var dot bool
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Show who uses whom in an env, with versions (--dot for Graphviz)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			g, err := client.Graph(cmd.Context(), env)
			if err != nil {
				return err
			}
			if dot && !c.json {
				printDot(c.stdout, g)
				return nil
			}
			c.print(g, func(w io.Writer) { printGraph(w, g) })
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", fiat.Production, "env to show")
	cmd.Flags().BoolVar(&dot, "dot", false, "print the graph in Graphviz's dot language (fiat graph --dot | dot -Tsvg > graph.svg)")
	return cmd
}

func printGraph(w io.Writer, g deploy.Graph) {
	fmt.Fprintln(w, g.Env)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range g.Services {
		var uses []string
		for _, u := range s.Uses {
			use := u.Service + " " + u.Version.Short()
			if !u.Served {
				use += " (not the one " + g.Env + " serves)"
			}
			uses = append(uses, use)
		}
		line := "uses nothing"
		if len(uses) > 0 {
			line = "uses " + strings.Join(uses, ", ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Service, s.Version.Short(), line)
	}
	tw.Flush()
}

// printDot writes g in Graphviz's dot language: a node per version, an
// edge from each caller to what it uses.
func printDot(w io.Writer, g deploy.Graph) {
	node := func(service string, id fiat.Hash) string { return fmt.Sprintf("%q", service+"\n"+id.Short()) }
	fmt.Fprintf(w, "digraph %q {\n", g.Env)
	for _, s := range g.Services {
		fmt.Fprintf(w, "  %s;\n", node(s.Service, s.Version))
		for _, u := range s.Uses {
			fmt.Fprintf(w, "  %s -> %s;\n", node(s.Service, s.Version), node(u.Service, u.Version))
		}
	}
	fmt.Fprintln(w, "}")
}
