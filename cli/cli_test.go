package cli

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestJSONErrorsAreOneValue gets every kind of error cobra itself reports,
// with --json anywhere on the line: each must print exactly one JSON value
// and nothing else.
func TestJSONErrorsAreOneValue(t *testing.T) {
	for _, args := range [][]string{
		{"deploy", "--bogus", "--json"},
		{"--json", "deploy", "--bogus"},
		{"deploy", "--json", "--env"},
		{"deploy", "a", "b", "--json"},
		{"versions", "--json"},
		{"nope", "--json"},
		{"env", "--json"},
		{"env", "nope", "--json"},
		{"--json"},
		{"promote", "--json"},
		{"serve", "--max-conns", "many", "--json=true"},
		{"deploy", "--json", "--env", ""},
	} {
		code, out, errOut := run(args...)
		dec := json.NewDecoder(strings.NewReader(out))
		var refusal struct{ Error string }
		err := dec.Decode(&refusal)
		if code == 0 || err != nil || refusal.Error == "" || strings.TrimSpace(out[dec.InputOffset():]) != "" || errOut != "" {
			t.Errorf("fiat %q: exit %d, stdout %q, stderr %q; want exit 1 and one JSON value with the error", args, code, out, errOut)
		}
	}
	if code, out, _ := run("deploy", "--bogus", "--json=false"); code == 0 || out != "" {
		t.Errorf("--json=false still printed JSON: %q", out)
	}
}

// TestFlagsHelpNamesTheirType looks for what cobra reads as a flag's value
// name in its help, a `quoted` word, which garbles `--help`.
func TestFlagsHelpNamesTheirType(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, flags := range []*pflag.FlagSet{cmd.LocalFlags(), cmd.PersistentFlags()} {
			flags.VisitAll(func(f *pflag.Flag) {
				if strings.Contains(f.Usage, "`") {
					name, _ := pflag.UnquoteUsage(f)
					t.Errorf("%s --help shows --%s %s", cmd.CommandPath(), f.Name, name)
				}
			})
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk((&cli{}).root())
	if _, out, _ := run("bench", "--help"); !strings.Contains(out, "--deploys int") {
		t.Errorf("fiat bench --help:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code, out, errOut := run(args...); code != 0 || !strings.HasPrefix(out, "fiat ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("fiat %s: exit %d, %q %q", args[0], code, out, errOut)
		}
		code, out, _ := run(append(args, "--json")...)
		var v version
		if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Version == "" || v.Go != runtime.Version() {
			t.Errorf("fiat %s --json: exit %d, %q", args[0], code, out)
		}
	}
}
