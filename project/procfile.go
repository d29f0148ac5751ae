package project

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/fiatdev/fiat"
)

// procfileName is the file, in a service's dir, that declares its
// processes as Heroku's Procfile does.
const procfileName = "Procfile"

// A Procfile is at most maxProcfileBytes and maxProcfileTypes types, so
// that a hostile one costs a few problems, not millions, and no more
// workers than a team would run.
const (
	maxProcfileBytes = 64 << 10
	maxProcfileTypes = 100
)

var procfileLine = regexp.MustCompile(`^([A-Za-z0-9_-]+):\s*(.*)$`)

// applyProcfile fills p from the Procfile at path (relative to the
// project root): web is the process that serves HTTP, release runs once
// before the switch, every other type is a worker.
func applyProcfile(p *fiat.ProcessConfig, path string, data []byte) fiat.Problems {
	if len(data) > maxProcfileBytes {
		return fiat.Problems{{Path: path, Message: fmt.Sprintf("is %d bytes: a Procfile is at most %d", len(data), maxProcfileBytes)}}
	}
	var problems fiat.Problems
	report := func(line int, format string, args ...any) {
		problems = append(problems, fiat.Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := procfileLine.FindStringSubmatch(line)
		switch {
		case m == nil:
			report(i+1, "%q is not TYPE: COMMAND, like web: ./server", line)
			continue
		case strings.TrimSpace(m[2]) == "":
			report(i+1, "%s has no command: write it after %s:", m[1], m[1])
			continue
		case seen[m[1]]:
			report(i+1, "%s is declared twice: keep one", m[1])
			continue
		}
		if len(seen) == maxProcfileTypes {
			report(i+1, "more than %d process types: a Procfile declares at most %d", maxProcfileTypes, maxProcfileTypes)
			break
		}
		seen[m[1]] = true
		switch kind, command := m[1], strings.TrimSpace(m[2]); kind {
		case "web":
			p.Run = command
		case "release":
			p.Release = command
		default:
			if p.Workers == nil {
				p.Workers = map[string]string{}
			}
			p.Workers[kind] = command
		}
	}
	if p.Run == "" && len(problems) == 0 {
		report(0, "declares no web process: add web: with the command that serves HTTP on $PORT")
	}
	return problems
}
