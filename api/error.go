package api

import (
	"strings"

	"github.com/fiatdev/fiat"
)

// Error is how the admin API reports a failed call, as JSON:
// {"error": "...", "problems": [...]}. Problems lists every reason a deploy
// was refused.
type Error struct {
	Status   int           `json:"-"`
	Message  string        `json:"error"`
	Problems fiat.Problems `json:"problems,omitempty"`
}

func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return e.Message
	}
	var b strings.Builder
	b.WriteString(e.Message)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}
