package idx

import (
	"errors"
	"fmt"
)

// ErrFormat is wrapped by every error about malformed IDX data (bad magic
// number, truncated header or data, absurd sizes, corrupt gzip). Match it
// with errors.Is; *Error carries the details.
var ErrFormat = errors.New("idx: malformed IDX data")

// Error describes malformed IDX data. It wraps ErrFormat and, when there is
// one, the underlying cause (for instance io.ErrUnexpectedEOF or a gzip
// error).
type Error struct {
	// Path is the file, when known (empty for readers).
	Path string
	// Msg says what is wrong, for a person.
	Msg string
	// Err is the underlying cause, or nil.
	Err error
}

func (e *Error) Error() string {
	s := "idx: "
	if e.Path != "" {
		s += "file " + e.Path + ": "
	}
	s += e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrFormat and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrFormat}
	}
	return []error{ErrFormat, e.Err}
}

func formatErr(err error, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Err: err}
}
