package fiat

import (
	"slices"
	"strings"
	"testing"
)

func TestInterpolate(t *testing.T) {
	url := func(service string) string { return "http://127.0.0.1:9/" + service }
	for value, want := range map[string]string{
		"${api.version_url}":                          "http://127.0.0.1:9/api",
		"a=${api.version_url}/v1,b=${db.version_url}": "a=http://127.0.0.1:9/api/v1,b=http://127.0.0.1:9/db",
		"$${api.version_url}":                         "${api.version_url}",
		"cost: $5 {x}":                                "cost: $5 {x}",
	} {
		if got := Interpolate(value, url); got != want {
			t.Errorf("Interpolate(%q) = %q, want %q", value, got, want)
		}
	}
	refs, err := References("${api.version_url}/${db.version_url}$${x}")
	if err != nil || !slices.Equal(refs, []Reference{{"api", VersionURLField}, {"db", VersionURLField}}) {
		t.Errorf("References = %v, %v", refs, err)
	}
}

func TestReferencesRefuseWhatFiatCannotFill(t *testing.T) {
	for value, says := range map[string]string{
		"${api.version_url":       "does not end",
		"${HOME}":                 "names no service",
		"${api.url}":              "only ${api.version_url}",
		"${Bad_Name.version_url}": "names no service",
	} {
		_, err := References(value)
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("References(%q) = %v, want an error saying %q", value, err, says)
		}
	}
}
