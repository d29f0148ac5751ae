package fiat

import (
	"fmt"
	"strings"
)

// A service's config may name the address of a service it uses, which is
// only known once the version runs: API_URL = "${api.version_url}". fiat
// fills it in when it starts the version; the hash holds the reference, so
// where the used version listens is no part of any version's identity.

// VersionURLField is the one field of a used service a reference names:
// the URL that reaches exactly the version in use.
const VersionURLField = "version_url"

// Reference is one ${service.field} in a config value.
type Reference struct {
	Service, Field string
}

// References returns the references in value, or an error that says what
// is wrong with one. "$${" is a literal "${".
func References(value string) ([]Reference, error) {
	var refs []Reference
	err := scanReferences(value, func(literal string) {}, func(ref Reference) { refs = append(refs, ref) })
	return refs, err
}

// Interpolate returns value with each reference replaced by what url gives
// for its service. value's references must be valid (References).
func Interpolate(value string, url func(service string) string) string {
	if !strings.Contains(value, "${") {
		return value
	}
	var b strings.Builder
	scanReferences(value, func(literal string) { b.WriteString(literal) }, func(ref Reference) { b.WriteString(url(ref.Service)) })
	return b.String()
}

func scanReferences(value string, literal func(string), reference func(Reference)) error {
	for {
		i := strings.Index(value, "${")
		if i < 0 {
			literal(value)
			return nil
		}
		if i > 0 && value[i-1] == '$' {
			literal(value[:i]) // "$${" is "$" + "{" once the first $ is dropped
			literal("{")
			value = value[i+2:]
			continue
		}
		literal(value[:i])
		end := strings.IndexByte(value[i:], '}')
		if end < 0 {
			return fmt.Errorf("%q has a ${ that does not end with }: write ${SERVICE.%s}, or $${ for a literal ${", value, VersionURLField)
		}
		inner := value[i+2 : i+end]
		service, field, ok := strings.Cut(inner, ".")
		switch {
		case !ok || CheckServiceName(service) != nil:
			return fmt.Errorf("${%s} names no service: write ${SERVICE.%s} with a service in uses, or $${ for a literal ${", inner, VersionURLField)
		case field != VersionURLField:
			return fmt.Errorf("${%s}: a used service has only ${%s.%s}", inner, service, VersionURLField)
		}
		reference(Reference{Service: service, Field: field})
		value = value[i+end+1:]
	}
}
