package dadc_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

// TestRetrain_TrainableFiltersTrainingAndHeldOut: Options.Trainable is asked
// at each retrain, for the samples to train on and for the current round's
// held-out samples; samples it refuses never reach the trainer or the gate,
// and a retrain with nothing trainable does not start.
func TestRetrain_TrainableFiltersTrainingAndHeldOut(t *testing.T) {
	var mu sync.Mutex
	var got []dadc.TrainRequest[int]
	poisoned := map[string]bool{}
	var next func(name string) *dadctest.FakeModel[int]
	next = func(name string) *dadctest.FakeModel[int] {
		return trainable(name, 0, func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
			mu.Lock()
			got = append(got, req)
			mu.Unlock()
			return next(req.Version), nil
		})
	}
	opts := baseOpts(dadctest.NewClock(t0))
	opts.HoldoutEvery = 3
	opts.Trainable = func(m dadc.SampleMeta) bool {
		mu.Lock()
		defer mu.Unlock()
		return !poisoned[m.Session]
	}
	l := newLoop(t, next("m0"), dadctest.NewFlagger[int](nil), dadc.Manual(), opts)
	for n := range 6 {
		session := "honest"
		if n%2 == 1 {
			session = "poisoner"
		}
		_, err := l.Flag(t.Context(), n, wrongLabel(n), session)
		require.NoError(t, err)
	}

	mu.Lock()
	poisoned["poisoner"], poisoned["honest"] = true, true
	mu.Unlock()
	require.ErrorIs(t, l.Retrain(t.Context()), dadc.ErrNothingToTrain, "nothing trainable: no retrain starts")

	mu.Lock()
	poisoned["honest"] = false
	mu.Unlock()
	require.NoError(t, l.Retrain(t.Context()))
	waitIdle(t, l)
	require.Len(t, got, 1)
	var inputs []int
	for _, s := range got[0].Samples {
		inputs = append(inputs, s.Input)
		assert.Equal(t, "honest", s.Session)
	}
	assert.Equal(t, []int{0, 4}, inputs, "samples 2 and 5 are held out; 1 and 3 are the poisoner's")
	assert.Equal(t, 1, l.Stats().Rounds[0].Retrains[0].HeldOutSamples, "only the honest held-out sample (2) scores the candidate")
}
