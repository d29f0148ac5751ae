package metrics

import (
	"math"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Stats is what a version's metrics have counted so far, read back from
// the counters requests add to anyway: judging a rollout costs the hot
// path nothing.
type Stats struct {
	Requests, Errors uint64
	// buckets are the latency histogram's counts, not cumulative, one per
	// bound of bounds and one above them.
	buckets []uint64
	bounds  []float64
}

// Stats reads what v has counted.
func (v *Version) Stats() Stats {
	var s Stats
	var m dto.Metric
	for i, c := range v.byClass {
		if c.Write(&m) == nil {
			n := uint64(m.GetCounter().GetValue())
			s.Requests += n
			if i == 4 {
				s.Errors = n
			}
		}
		m.Reset()
	}
	if h, ok := v.latency.(prometheus.Metric); ok && h.Write(&m) == nil {
		below := uint64(0)
		for _, b := range m.GetHistogram().GetBucket() {
			s.bounds = append(s.bounds, b.GetUpperBound())
			s.buckets = append(s.buckets, b.GetCumulativeCount()-below)
			below = b.GetCumulativeCount()
		}
		s.buckets = append(s.buckets, m.GetHistogram().GetSampleCount()-below)
	}
	return s
}

// Since is what was counted after earlier, a reading of the same version.
func (s Stats) Since(earlier Stats) fiat.Window {
	w := fiat.Window{Requests: s.Requests - earlier.Requests, Errors: s.Errors - earlier.Errors}
	if len(s.buckets) == 0 {
		return w
	}
	counts := make([]uint64, len(s.buckets))
	total := uint64(0)
	for i, n := range s.buckets {
		counts[i] = n
		if i < len(earlier.buckets) {
			counts[i] -= earlier.buckets[i]
		}
		total += counts[i]
	}
	w.P99 = quantile(0.99, counts, total, s.bounds)
	return w
}

// quantile estimates the q-quantile of a histogram as Prometheus's
// histogram_quantile does: linearly within the bucket it falls in, and the
// highest bound if it falls above them all.
func quantile(q float64, counts []uint64, total uint64, bounds []float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	seen, lower := 0.0, 0.0
	for i, n := range counts {
		if i == len(bounds) {
			break
		}
		if seen+float64(n) >= rank {
			upper := bounds[i]
			return seconds(lower + (upper-lower)*(rank-seen)/float64(n))
		}
		seen += float64(n)
		lower = bounds[i]
	}
	return seconds(bounds[len(bounds)-1])
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}
