package project

import (
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// ignoreName is the file, at the project's root, whose gitignore patterns
// say which files belong to no service.
const ignoreName = ".fiatignore"

// maxIgnorePatterns bounds .fiatignore, which a deploy parses.
const maxIgnorePatterns = 1000

// parseIgnore reads .fiatignore, patterns relative to the project root.
func parseIgnore(data []byte) gitignore.Matcher {
	var patterns []gitignore.Pattern
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(patterns) == maxIgnorePatterns {
			break
		}
		patterns = append(patterns, gitignore.ParsePattern(line, nil))
	}
	return gitignore.NewMatcher(patterns)
}

// ignored reports whether .fiatignore leaves out path, a slash-separated
// path relative to the project root.
func (m *manifest) ignored(path string, isDir bool) bool {
	return m.ignore != nil && path != "." && m.ignore.Match(strings.Split(path, "/"), isDir)
}
