//go:build tools

// Temporary: pins the libraries fiat builds on until the packages that use them land.
package fiat

import (
	_ "github.com/pelletier/go-toml/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "go.starlark.net/starlark"
	_ "modernc.org/sqlite"
)
