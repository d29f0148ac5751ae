package fiat

import (
	"fmt"
	"strings"
)

// MaxNameLen keeps every address a valid DNS label (at most 63 characters):
// the longest is "<service>--<env>".
const MaxNameLen = 30

// CheckName says what is wrong with a service or env name, if anything.
// what is "service" or "env", for the message. Names are lowercase letters,
// digits and single dashes, starting with a letter: "--" is reserved because
// it separates service from env in addresses.
func CheckName(what, name string) error {
	fix := fmt.Sprintf("%s names use lowercase letters, digits and single dashes, start with a letter and are at most %d characters", what, MaxNameLen)
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty: %s", what, fix)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%s name %q is %d characters long: %s", what, name, len(name), fix)
	case name[0] < 'a' || name[0] > 'z':
		return fmt.Errorf("%s name %q must start with a lowercase letter: %s", what, name, fix)
	case strings.HasSuffix(name, "-"):
		return fmt.Errorf("%s name %q must not end with a dash: %s", what, name, fix)
	case strings.Contains(name, "--"):
		return fmt.Errorf("%s name %q must not contain \"--\", which addresses use to separate service and env: %s", what, name, fix)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%s name %q has %q: %s", what, name, c, fix)
		}
	}
	return nil
}
