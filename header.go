package fiat

import "strings"

// VersionHeader is the response header naming the version that answered.
// Only fiat sets it.
const VersionHeader = "Fiat-Version"

// reservedHeaders are the response headers a service may not set: the
// version header, which says who answered, and the hop-by-hop headers of
// RFC 9110, which describe the connection fiat keeps with its client.
var reservedHeaders = []string{
	VersionHeader,
	"Connection",
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"TE",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// IsReservedHeader reports whether name, in any case, is a response header
// that only fiat sets.
func IsReservedHeader(name string) bool {
	for _, r := range reservedHeaders {
		if len(name) == len(r) && strings.EqualFold(name, r) {
			return true
		}
	}
	return false
}
