package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is what the Go toolchain recorded about this binary.
type version struct {
	// Version is the module's version, "(devel)" when built from a checkout.
	Version string `json:"version"`
	// Revision and Modified name the commit it was built from, if known.
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func buildVersion() version {
	v := version{Version: "(devel)", Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v version) print(w io.Writer) {
	fmt.Fprintf(w, "fiat %s", v.Version)
	if v.Revision != "" {
		fmt.Fprintf(w, " (commit %s", v.Revision)
		if v.Modified {
			fmt.Fprint(w, ", with uncommitted changes")
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, " %s\n", v.Go)
}

func (c *cli) printVersion() error {
	v := buildVersion()
	c.print(v, v.print)
	return nil
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fiat's version, the commit it was built from and its Go version",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return c.printVersion() },
	}
}
