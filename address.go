package fiat

import (
	"strings"
)

// Addresses formats the public addresses of services and reads them back:
//
//	<service>.<domain>          the service in production
//	<service>--<env>.<domain>   the service in another env
//	<service>-<hash12>.<domain> one version, forever
type Addresses struct {
	// Domain is the domain every address ends in, e.g. "localhost".
	Domain string
	// Port is the router's port as it appears in URLs; empty for the
	// scheme's default.
	Port string
}

// Address is what a host names: a service in an env, or one version of a
// service. Exactly one of Env and Version is set.
type Address struct {
	Service string
	Env     string
	// Version is the first ShortLen characters of the version's hash.
	Version string
}

// ServiceLabel is the host label of service in env.
func ServiceLabel(service, env string) string {
	if env == Production {
		return service
	}
	return service + "--" + env
}

// VersionLabel is the host label of one version of service.
func VersionLabel(service string, id Hash) string {
	return service + "-" + id.Short()
}

// Service is the URL of service in env.
func (a Addresses) Service(service, env string) string {
	return a.url(ServiceLabel(service, env))
}

// Version is the URL of one version of service, which never changes.
func (a Addresses) Version(service string, id Hash) string {
	return a.url(VersionLabel(service, id))
}

func (a Addresses) url(label string) string {
	u := "http://" + label + "." + a.Domain
	if a.Port != "" {
		u += ":" + a.Port
	}
	return u
}

// Parse reads the address a request's Host names (with or without port, in
// any case). It reports false for a host outside the domain or with more
// labels. The shapes cannot be confused: names never contain "--", and
// service names never end in what a version label ends in
// (CheckServiceName).
func (a Addresses) Parse(host string) (Address, bool) {
	label, ok := a.label(host)
	if !ok {
		return Address{}, false
	}
	if service, env, ok := strings.Cut(label, "--"); ok {
		return Address{Service: service, Env: env}, true
	}
	if service, short, ok := cutVersionLabel(label); ok {
		return Address{Service: service, Version: short}, true
	}
	return Address{Service: label, Env: Production}, true
}

// label returns the first label of host, lowercased, or false for a host
// outside the domain or with more labels.
func (a Addresses) label(host string) (string, bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	label, found := strings.CutSuffix(host, a.Domain)
	label, dotted := strings.CutSuffix(label, ".")
	if !found || !dotted || label == "" || strings.IndexByte(label, '.') >= 0 {
		return "", false
	}
	return label, true
}

// cutVersionLabel splits a label shaped like a version address,
// "<service>-<hash12>", into its service and short hash.
func cutVersionLabel(label string) (service, short string, ok bool) {
	i := len(label) - ShortLen - 1
	if i < 1 || label[i] != '-' || !isBase32(label[i+1:]) {
		return "", "", false
	}
	return label[:i], label[i+1:], true
}

func isBase32(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
