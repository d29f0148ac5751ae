package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fiatdev/fiat"
)

func (c *cli) flagCmd() *cobra.Command {
	flag := &cobra.Command{
		Use:   "flag",
		Short: "Set, list, delete, log and evaluate an env's feature flags",
		Long: "A flag is a rule evaluated per request: off; on for listed users; on for requests with a header; " +
			"on for a sticky percentage of users (raising it only adds users). Scripts read it with flag(\"name\"), " +
			"processes in the Fiat-Flags header. A change takes effect on the next request, on every node.",
		RunE: c.needsCommand,
	}
	var env string
	var on, off bool
	var percent float64
	var users, match []string
	set := &cobra.Command{
		Use:   "set NAME [--on | --off] [--percent N] [--users a,b] [--match header:X-Beta=1]",
		Short: "Change a flag, or make it (on for everyone unless given users, matches or a percent)",
		Long: "Each option given replaces that part of the flag; the others stay as they are. " +
			"A new flag is on, for 100% of users unless --users, --match or --percent say who gets it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			var p fiat.FlagPatch
			switch {
			case on && off:
				return fmt.Errorf("--on and --off are both given: give one")
			case on || off:
				p.On = new(on)
			}
			if f.Changed("percent") {
				p.Percent = &percent
			}
			if f.Changed("users") {
				p.Users = &users
			}
			if f.Changed("match") {
				matches := []fiat.HeaderMatch{}
				for _, m := range match {
					if m == "" {
						continue // --match '' empties the list
					}
					hm, err := fiat.ParseHeaderMatch(m)
					if err != nil {
						return err
					}
					matches = append(matches, hm)
				}
				p.Match = &matches
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			flag, err := client.SetFlag(cmd.Context(), env, args[0], p)
			if err != nil {
				return err
			}
			c.print(flag, func(w io.Writer) { fmt.Fprintf(w, "flag %s in %s: %s\n", flag.Name, env, describeFlag(flag)) })
			return nil
		},
	}
	set.Flags().BoolVar(&on, "on", false, "turn the flag on, for whom its rules say")
	set.Flags().BoolVar(&off, "off", false, "turn the flag off, for everyone, keeping its rules")
	set.Flags().Float64Var(&percent, "percent", 0, "give the flag to this sticky percentage of the other users (0 to 100, in steps of 0.01)")
	set.Flags().StringSliceVar(&users, "users", nil, "user keys who always get the flag (replaces the list; --users '' empties it)")
	set.Flags().StringArrayVar(&match, "match", nil, "give the flag to requests with this header, as header:NAME=VALUE; repeat for several (replaces the list; --match '' empties it)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List an env's flags and where its requests carry the user key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			flags, err := client.Flags(cmd.Context(), env)
			if err != nil {
				return err
			}
			c.print(flags, func(w io.Writer) {
				fmt.Fprintf(w, "%s: user key from %s\n", flags.Env, flags.UserKey)
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "FLAG\tWHO GETS IT")
				for _, f := range flags.Flags {
					fmt.Fprintf(tw, "%s\t%s\n", f.Name, describeFlag(f))
				}
				tw.Flush()
			})
			return nil
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a flag: requests read it as off",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			if err := client.DeleteFlag(cmd.Context(), env, args[0]); err != nil {
				return err
			}
			c.print(map[string]string{"deleted": args[0], "env": env}, func(w io.Writer) { fmt.Fprintf(w, "deleted flag %s in %s\n", args[0], env) })
			return nil
		},
	}
	log := &cobra.Command{
		Use:   "log NAME",
		Short: "Show every change of a flag, with its time and value",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			log, err := client.FlagLog(cmd.Context(), env, args[0])
			if err != nil {
				return err
			}
			c.print(log, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tCHANGE\tVALUE")
				for _, e := range log {
					value := "(deleted)"
					if e.Flag != nil {
						value = describeFlag(*e.Flag)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", e.At.Local().Format(time.DateTime), e.Kind, value)
				}
				tw.Flush()
			})
			return nil
		},
	}
	var user string
	var headers []string
	eval := &cobra.Command{
		Use:   "eval NAME [--user U] [--header NAME=VALUE]",
		Short: "Evaluate a flag for a user's request, and say why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			header := map[string]string{}
			for _, h := range headers {
				name, value, ok := strings.Cut(h, "=")
				if !ok || name == "" {
					return fmt.Errorf("--header %q is not NAME=VALUE: give the header's name and value joined by =, e.g. X-Beta=1", h)
				}
				header[name] = value
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			eval, err := client.EvalFlag(cmd.Context(), env, args[0], user, header)
			if err != nil {
				return err
			}
			c.print(eval, func(w io.Writer) {
				state, who := "off", "a request without a user key"
				if eval.On {
					state = "on"
				}
				if eval.User != "" {
					who = "user " + eval.User
				}
				fmt.Fprintf(w, "%s is %s for %s in %s: %s\n", eval.Flag.Name, state, who, eval.Env, eval.Why)
			})
			return nil
		},
	}
	eval.Flags().StringVar(&user, "user", "", "the user key of the request (leave out for a request without one)")
	eval.Flags().StringArrayVar(&headers, "header", nil, "a header of the request, as NAME=VALUE; repeat for several")
	userKey := &cobra.Command{
		Use:   "user-key SOURCE",
		Short: "Set where requests carry the user key: header:NAME, cookie:NAME or query:NAME",
		Long: "Sticky percentages of flags and rollouts bucket users by the user key their requests carry; " +
			"by default the header " + fiat.DefaultUserKey.Name + ".",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := fiat.ParseUserKeySource(args[0]); err != nil {
				return err
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			flags, err := client.SetUserKey(cmd.Context(), env, args[0])
			if err != nil {
				return err
			}
			c.print(flags, func(w io.Writer) {
				fmt.Fprintf(w, "requests to %s carry the user key in %s\n", flags.Env, flags.UserKey)
			})
			return nil
		},
	}
	for _, cmd := range []*cobra.Command{set, list, del, log, eval, userKey} {
		cmd.Flags().StringVar(&env, "env", fiat.Production, "env of the flags")
	}
	flag.AddCommand(set, list, del, log, eval, userKey)
	return flag
}

// describeFlag says who gets f.
func describeFlag(f fiat.Flag) string {
	var who []string
	if len(f.Users) > 0 {
		who = append(who, strings.Join(f.Users, ", "))
	}
	for _, m := range f.Match {
		who = append(who, m.String())
	}
	switch {
	case f.Percent >= 100 && len(who) == 0:
		who = append(who, "everyone")
	case f.Percent >= 100:
		who = append(who, "everyone else")
	case f.Percent > 0 || len(who) == 0:
		who = append(who, fmt.Sprintf("%g%% of users", f.Percent))
	}
	if !f.On {
		return "off (when on: " + strings.Join(who, "; ") + ")"
	}
	return "on for " + strings.Join(who, "; ")
}
