package postgres_test

import (
	"testing"

	"github.com/fiatdev/fiat/internal/pgtest"
	"github.com/fiatdev/fiat/store/storetest"
)

// BenchmarkApply measures a typical deploy's transaction on a server
// started for the benchmark (or FIAT_TEST_POSTGRES's).
func BenchmarkApply(b *testing.B) {
	storetest.BenchmarkApply(b, open(b, pgtest.Database(b)))
}
