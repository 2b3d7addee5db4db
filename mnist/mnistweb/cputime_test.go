package mnistweb_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/internal/cputime"
)

// cpuTime returns the CPU time (user + system) this process has used, 0 on
// a system where it is not measured: the load test then reports no CPU time
// per request.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	d, err := cputime.Process()
	if errors.Is(err, errors.ErrUnsupported) {
		return 0
	}
	require.NoError(t, err)
	return d
}
