package safetensors

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error about malformed safetensors data;
// *Error carries the details.
var ErrMalformed = errors.New("safetensors: malformed data")

// Error describes malformed safetensors data; it wraps ErrMalformed.
type Error struct {
	// Tensor names the tensor concerned, or is empty when the fault is in the
	// file as a whole.
	Tensor string
	// Msg says what is wrong, for a person.
	Msg string
}

func (e *Error) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("safetensors: tensor %q: %s", e.Tensor, e.Msg)
	}
	return "safetensors: " + e.Msg
}

// Unwrap returns ErrMalformed.
func (e *Error) Unwrap() error { return ErrMalformed }

func stErr(tensor, format string, args ...any) error {
	return &Error{Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
}
