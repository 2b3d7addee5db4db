package dadchttp

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrConfig is wrapped by the errors of New and NewLimiter for a value
	// that cannot work (a missing loop or codec, a negative limit).
	ErrConfig = errors.New("dadchttp: invalid configuration")
)

// Error is an answer for a person: an HTTP status code and a message that
// says what is wrong and what to do. A Codec returns an *Error for input it
// cannot take; the Handler sends it as {"error": Message} with Status.
// Any other error a Codec returns becomes a 400.
type Error struct {
	// Status is the HTTP status code, 4xx for what the client can fix.
	Status int
	// Message is shown to the person as is.
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the status and a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, format, args...)
}
