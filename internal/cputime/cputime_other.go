//go:build !unix

package cputime

import (
	"errors"
	"fmt"
	"time"
)

// Process returns an error wrapping errors.ErrUnsupported: the process's
// CPU time is not read on this system.
func Process() (time.Duration, error) {
	return 0, fmt.Errorf("cputime: %w on this system", errors.ErrUnsupported)
}
