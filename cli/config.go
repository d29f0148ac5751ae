package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/deploy"
)

func (c *cli) configCmd() *cobra.Command {
	config := &cobra.Command{
		Use:   "config",
		Short: "Set, unset and list a service's config; each change deploys a new version",
		Long: "A service's config is part of its version: setting or unsetting keys makes a new version of the service " +
			"the env serves, deployed like any other (validated, tested, switched) and one `fiat rollback` away from the " +
			"one before. Processes see it as environment variables; scripts read it with config(\"KEY\").",
		RunE: c.needsCommand,
	}
	var env string
	var secret bool
	set := &cobra.Command{
		Use:   "set SERVICE KEY=VALUE...",
		Short: "Set config keys of a service (--secret: never shown or logged again)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			values := map[string]string{}
			for _, pair := range args[1:] {
				key, value, ok := strings.Cut(pair, "=")
				if !ok {
					return fmt.Errorf("%q is not KEY=VALUE: give each key and its value joined by =", pair)
				}
				values[key] = value
			}
			return c.change(func(client *api.Client) (deploy.Result, error) {
				return client.Configure(cmd.Context(), env, args[0], deploy.ConfigChange{Set: values, Secret: secret})
			})
		},
	}
	set.Flags().BoolVar(&secret, "secret", false, "the values are secrets: never shown by fiat config list or the API, never logged")
	unset := &cobra.Command{
		Use:   "unset SERVICE KEY...",
		Short: "Unset config keys of a service",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.change(func(client *api.Client) (deploy.Result, error) {
				return client.Configure(cmd.Context(), env, args[0], deploy.ConfigChange{Unset: args[1:]})
			})
		},
	}
	list := &cobra.Command{
		Use:   "list SERVICE",
		Short: "List the config of a service, secrets hidden",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			config, err := client.Config(cmd.Context(), env, args[0])
			if err != nil {
				return err
			}
			c.print(config, func(w io.Writer) { printConfig(w, config) })
			return nil
		},
	}
	for _, cmd := range []*cobra.Command{set, unset, list} {
		cmd.Flags().StringVar(&env, "env", fiat.Production, "env whose version of the service to change or show")
	}
	config.AddCommand(set, unset, list)
	return config
}

func printConfig(w io.Writer, config api.Config) {
	fmt.Fprintf(w, "%s in %s, version %s\n", config.Service, config.Env, config.Version.Short())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, key := range slices.Sorted(maps.Keys(config.Config)) {
		fmt.Fprintf(tw, "%s\t%s\n", key, config.Config[key])
	}
	tw.Flush()
}

func (c *cli) scaleCmd() *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "scale SERVICE=N...",
		Short: "Run N instances of a process service in an env, without a new version",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			instances := map[string]int{}
			for _, arg := range args {
				service, count, ok := strings.Cut(arg, "=")
				n, err := strconv.Atoi(count)
				if !ok || err != nil {
					return fmt.Errorf("%q is not SERVICE=N: give each service and its number of instances joined by =, e.g. web=3", arg)
				}
				instances[service] = n
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			res, err := client.Scale(cmd.Context(), env, instances)
			if err != nil {
				return err
			}
			c.print(res, func(w io.Writer) {
				for _, s := range res.Services {
					if _, asked := instances[s.Name]; asked && s.Instances != nil {
						fmt.Fprintf(w, "%s runs %d instances of version %s in %s (fiat ps shows them)\n", s.Name, *s.Instances, s.Version.Short(), res.Env)
					}
				}
			})
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", fiat.Production, "env to scale the services in")
	return cmd
}
