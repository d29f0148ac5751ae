package metrics

import (
	"testing"
	"time"
)

// TestStatsSince checks that what a version served between two readings
// is read back from its metrics: requests, 5xx errors, and the p99 of the
// latencies within a bucket's width.
func TestStatsSince(t *testing.T) {
	v := New().Version("api", "abc")
	v.Observe(500, time.Second) // before the window
	before := v.Stats()
	for range 98 {
		v.Observe(200, 2*time.Millisecond)
	}
	v.Observe(503, 2*time.Millisecond)
	v.Observe(200, 400*time.Millisecond)
	w := v.Stats().Since(before)
	if w.Requests != 100 || w.Errors != 1 {
		t.Errorf("window: %+v, want 100 requests and 1 error", w)
	}
	// The 99th of 100 latencies is 2ms, in the bucket (1ms, 2.5ms].
	if w.P99 <= time.Millisecond || w.P99 > 2500*time.Microsecond {
		t.Errorf("p99 %s, want within (1ms, 2.5ms]", w.P99)
	}
	if empty := v.Stats().Since(v.Stats()); empty.Requests != 0 || empty.P99 != 0 {
		t.Errorf("an empty window: %+v", empty)
	}
}
