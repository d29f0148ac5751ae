// Command fiat is the fiat platform: `fiat serve` runs it, and every other
// command is a client of its admin API.
package main

import (
	"os"

	"github.com/fiatdev/fiat/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
