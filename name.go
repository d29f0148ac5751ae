package fiat

import (
	"fmt"
	"strings"
)

// MaxNameLen keeps every address a valid DNS label (at most 63 characters):
// the longest is "<service>--<env>".
const MaxNameLen = 30

// CheckServiceName says what is wrong with a service name, if anything.
// Besides the rules of every name, a service name must not end in what a
// version address ends in ("-" and ShortLen base32 characters): a service
// called "pay-nkd6hs5f6kay" would take the address of a version of "pay".
func CheckServiceName(name string) error {
	if err := checkName("service", name); err != nil {
		return err
	}
	if service, short, ok := cutVersionLabel(name); ok {
		return fmt.Errorf("service name %q ends in \"-%s\", which reads as version %s of service %q (the address of one version is SERVICE-HASH12): rename it, e.g. %q",
			name, short, short, service, name+"s")
	}
	return nil
}

// CheckEnvName says what is wrong with an env name, if anything.
func CheckEnvName(name string) error {
	return checkName("env", name)
}

// checkName says what is wrong with a name, if anything. what is "service"
// or "env", for the message. Names are lowercase letters, digits and single
// dashes, starting with a letter: "--" is reserved because it separates
// service from env in addresses.
func checkName(what, name string) error {
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
