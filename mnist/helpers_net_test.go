package mnist

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist/mnistdata"
)

// loadSubset loads the committed MNIST subset (testdata/mnist: the first
// 2,000 training and 1,000 test images of MNIST).
func loadSubset(t testing.TB) (train, test *Dataset) {
	t.Helper()
	train, test, err := LoadDataDir("../testdata/mnist")
	require.NoError(t, err)
	return train, test
}

// loadFull loads the full MNIST set that mnistdata.Dir locates, or skips the test
// when it is not available.
func loadFull(t testing.TB) (train, test *Dataset) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := mnistdata.Dir(ctx)
	if err != nil {
		t.Skipf("full MNIST data not available: %v", err)
	}
	train, test, err = LoadDataDir(dir)
	if err != nil {
		t.Skipf("full MNIST data not loadable: %v", err)
	}
	return train, test
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// skipSlowUnderRace skips tests that measure learning or accuracy (they
// train or score thousands of images, about ten times slower under the race
// detector) when built with -race; they run in every normal test run, and
// the concurrency tests run under -race.
func skipSlowUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("accuracy test: slow under -race; runs without it")
	}
}
