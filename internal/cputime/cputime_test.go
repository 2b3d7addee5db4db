package cputime_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/internal/cputime"
)

func TestProcessGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		_, err := cputime.Process()
		require.Error(t, err)
		return
	}
	before, err := cputime.Process()
	require.NoError(t, err)
	x := 0
	for i := range 50_000_000 { // some CPU work
		x ^= i * i
	}
	after, err := cputime.Process()
	require.NoError(t, err)
	assert.Greater(t, after, before, "%d", x)
}

func ExampleProcess() {
	before, err := cputime.Process()
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... the work to measure ...
	after, _ := cputime.Process()
	fmt.Println(after >= before)
	// Output: true
}
