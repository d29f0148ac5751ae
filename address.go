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

// Label returns the first label of a request's Host (with or without port,
// any case), or false for a host outside the domain or with more labels.
func (a Addresses) Label(host string) (string, bool) {
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
