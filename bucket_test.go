package fiat

import (
	"fmt"
	"testing"
)

// A user in a percentage stays in it as the percentage rises, and the share
// of users in it is the percentage, within a tolerance.
func TestInPercentIsStickyAndFair(t *testing.T) {
	const users = 20000
	in := map[string]bool{}
	for _, percent := range []float64{1, 5, 25, 50, 99.5, 100} {
		n := 0
		for i := range users {
			key := fmt.Sprintf("user-%d", i)
			if InPercent("checkout", key, percent) {
				n++
				in[key] = true
			} else if in[key] {
				t.Fatalf("%s was in at a lower percentage and is out at %v%%", key, percent)
			}
		}
		if share := float64(n) * 100 / users; share < percent*0.85-0.2 || share > percent*1.15+0.2 {
			t.Errorf("%v%%: %.2f%% of users are in", percent, share)
		}
	}
	for i := range users {
		if InPercent("checkout", fmt.Sprintf("user-%d", i), 0) {
			t.Fatal("a user is in 0%")
		}
	}
}

// Two seeds do not pick the same users: one flag's 10% is not another's.
func TestBucketDependsOnSeed(t *testing.T) {
	both := 0
	for i := range 10000 {
		key := fmt.Sprintf("u%d", i)
		if InPercent("a", key, 10) && InPercent("b", key, 10) {
			both++
		}
	}
	if both > 200 { // independent: about 1% are in both
		t.Errorf("%d of 10000 users are in both 10%%s", both)
	}
}

func TestUserKeySource(t *testing.T) {
	for _, bad := range []string{"", "header", "header:", "body:x", ":x"} {
		if _, err := ParseUserKeySource(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
	src, err := ParseUserKeySource("header:x-user")
	if err != nil || src.Name != "X-User" {
		t.Fatalf("header:x-user = %v, %v", src, err)
	}
}
