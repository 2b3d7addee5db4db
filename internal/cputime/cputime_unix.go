//go:build unix

package cputime

import (
	"fmt"
	"syscall"
	"time"
)

// Process returns the CPU time, user and system, that the process has used
// so far (getrusage(2) of RUSAGE_SELF).
func Process() (time.Duration, error) {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0, fmt.Errorf("cputime: getrusage: %w", err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()), nil
}
