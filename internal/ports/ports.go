// Package ports finds free TCP ports on the loopback interface.
package ports

import "net"

// Free returns a port of 127.0.0.1 that nothing listens on now. Another
// process may take it before the caller does: callers that can, retry.
func Free() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
