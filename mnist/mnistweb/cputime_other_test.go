//go:build !unix

package mnistweb_test

import (
	"testing"
	"time"
)

// cpuTime is not measured on this system: the load test then reports no
// CPU time per request.
func cpuTime(*testing.T) time.Duration { return 0 }
