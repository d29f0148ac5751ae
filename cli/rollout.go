package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
)

// rolloutFlags adds to `fiat deploy` the flags that roll a deploy out,
// and returns the plan they give, nil for a plain deploy.
func rolloutFlags(cmd *cobra.Command) func() (*deploy.RolloutPlan, error) {
	var plan deploy.RolloutPlan
	var auto bool
	var users []string
	a := fiat.DefaultAutoPlan
	f := cmd.Flags()
	f.Float64Var(&plan.Percent, "rollout", 0, "roll the changed services out together to this percentage of users (sticky by user key), as candidates, instead of switching; fiat rollout SERVICE goes on")
	f.StringSliceVar(&users, "users", nil, "with --rollout: user keys who get the candidates whatever the percentage, e.g. ada,grace")
	f.BoolVar(&auto, "auto", false, "advance the rollout in --steps by itself, every --interval, and abort it as soon as a candidate is clearly worse than the version it replaces")
	f.Float64SliceVar(&a.Steps, "steps", a.Steps, "with --auto: the percentages to go through; after the last the rollout finishes")
	f.DurationVar(&a.Interval, "interval", a.Interval, "with --auto: how long each step lasts at least")
	f.IntVar(&a.MinRequests, "min-requests", a.MinRequests, "with --auto: requests a candidate serves in a step, on a node, before it is judged")
	f.Float64Var(&a.ErrorMargin, "error-margin", a.ErrorMargin, "with --auto: percentage points by which a candidate's error rate may exceed the current version's")
	f.Float64Var(&a.LatencyFactor, "latency-factor", a.LatencyFactor, "with --auto: how many times the current version's p99 latency a candidate's may be")
	return func() (*deploy.RolloutPlan, error) {
		rollout := f.Changed("rollout")
		for _, name := range []string{"users", "steps", "interval", "min-requests", "error-margin", "latency-factor"} {
			if f.Changed(name) && !rollout && !auto {
				return nil, fmt.Errorf("--%s is for rollouts: give --rollout PERCENT or --auto with it", name)
			}
		}
		if !rollout && !auto {
			return nil, nil
		}
		plan.Users = users
		if auto {
			if err := a.Check(); err != nil {
				return nil, err
			}
			if !rollout {
				plan.Percent, a.Steps = a.Steps[0], a.Steps[1:]
				if len(a.Steps) == 0 {
					return nil, fmt.Errorf("--steps %g: give at least two percentages, the first to start at", plan.Percent)
				}
			}
			a.Steps = slices.DeleteFunc(a.Steps, func(s float64) bool { return s <= plan.Percent && !f.Changed("steps") })
			plan.Auto = &a
		}
		return &plan, nil
	}
}

func (c *cli) rolloutCmd() *cobra.Command {
	var env string
	var change deploy.RolloutChange
	var percent float64
	var users []string
	cmd := &cobra.Command{
		Use:   "rollout SERVICE [--percent N | --users a,b | --finish | --abort]",
		Short: "Show a service's rollout, its versions side by side, or change, finish or abort it",
		Long: "A rollout, started by `fiat deploy --rollout PERCENT`, gives the candidate versions of the services deployed together " +
			"to a sticky share of users, all or none. Alone, this shows the current and candidate versions side by side " +
			"(requests, error rate and p99 on this node since the step began) and, for an auto rollout, why it advanced or would abort. " +
			"--finish points every service of the rollout at its candidate in one step; --abort takes the candidates back.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client()
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("percent") {
				change.Percent = &percent
			}
			if f.Changed("users") {
				change.Users = &users
			}
			var st deploy.RolloutStatus
			if change == (deploy.RolloutChange{}) {
				st, err = client.Rollout(cmd.Context(), env, args[0])
			} else {
				st, err = client.ChangeRollout(cmd.Context(), env, args[0], change)
			}
			if err != nil {
				return err
			}
			c.print(st, func(w io.Writer) { printRollout(w, st) })
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&env, "env", fiat.Production, "env of the rollout")
	f.Float64Var(&percent, "percent", 0, "give the candidates to this percentage of users; raising it only adds users")
	f.StringSliceVar(&users, "users", nil, "user keys who get the candidates whatever the percentage (replaces the list; --users '' empties it)")
	f.BoolVar(&change.Finish, "finish", false, "point every service of the rollout at its candidate, in one step")
	f.BoolVar(&change.Abort, "abort", false, "end the rollout: everyone gets the current versions again")
	return cmd
}

func printRollout(w io.Writer, st deploy.RolloutStatus) {
	r := st.Rollout
	if r == nil {
		fmt.Fprintf(w, "%s is not rolling out in %s\n", st.Service, st.Env)
		if e := st.Ended; e != nil {
			fmt.Fprintf(w, "its last rollout (%s) %s: %s\n", e.ID, st.EndedAs, e.Verdict)
		}
		return
	}
	fmt.Fprintf(w, "rollout %s in %s: %g%% of users", r.ID, st.Env, r.Percent)
	if len(r.Users) > 0 {
		fmt.Fprintf(w, " and %s", strings.Join(r.Users, ", "))
	}
	fmt.Fprintf(w, ", started %s\n", r.Started.Local().Format(time.DateTime))
	if r.Auto != nil {
		fmt.Fprintf(w, "auto: steps %v every %s\n", r.Auto.Steps, r.Auto.Interval)
	}
	if r.Verdict != "" {
		fmt.Fprintf(w, "last change: %s\n", r.Verdict)
	}
	fmt.Fprintf(w, "on this node since %s:\n", st.Since.Local().Format(time.TimeOnly))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\t\tVERSION\tREQUESTS\tERRORS\tP99")
	for _, s := range st.Services {
		for _, v := range []struct {
			role  string
			tally deploy.VersionTally
		}{{"current", s.Current}, {"candidate", s.Candidate}} {
			if v.tally.Version == "" {
				fmt.Fprintf(tw, "%s\t%s\t-\t\t\t\n", s.Service, v.role)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.2f%%\t%s\n", s.Service, v.role, v.tally.Version.Short(), v.tally.Requests, 100*v.tally.ErrorRate, v.tally.P99.Round(time.Microsecond))
		}
	}
	tw.Flush()
	if st.Judgement != "" {
		fmt.Fprintf(w, "judged now: %s\n", st.Judgement)
	}
}

// printCandidates lists the rollouts of an env, under `fiat env list`.
func printCandidates(tw io.Writer, env fiat.Env) {
	for _, r := range env.Rollouts {
		for _, service := range slices.Sorted(maps.Keys(r.Candidates)) {
			fmt.Fprintf(tw, "%s\t%s\t%s (candidate for %g%% of users, rollout %s)\n", env.Name, service, r.Candidates[service].Short(), r.Percent, r.ID)
		}
	}
}

func printRolloutStarted(w io.Writer, res deploy.Result) {
	r := res.Rollout
	if r == nil {
		return
	}
	for _, service := range slices.Sorted(maps.Keys(r.Candidates)) {
		fmt.Fprintf(w, "%s %s is rolling out in %s to %g%% of users", service, r.Candidates[service].Short(), res.Env, r.Percent)
		if len(r.Users) > 0 {
			fmt.Fprintf(w, " and %s", strings.Join(r.Users, ", "))
		}
		fmt.Fprintln(w)
	}
	how := "`fiat rollout SERVICE --percent N`, then --finish or --abort"
	if r.Auto != nil {
		how = fmt.Sprintf("it advances through %v every %s by itself", r.Auto.Steps, r.Auto.Interval)
	}
	fmt.Fprintf(w, "rollout %s: %s; `fiat rollout SERVICE` shows how it goes\n", r.ID, how)
}
