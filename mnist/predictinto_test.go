package mnist

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/advspace/advspace/dadc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPredictPixelsInto(t *testing.T) {
	_, test := loadSubset(t)
	m, err := NewModel(InitWeights(1), nil)
	require.NoError(t, err)
	ctx := context.Background()
	var p dadc.Prediction
	for i := range 20 {
		want, err := m.PredictPixels(ctx, test.Pixels(i))
		require.NoError(t, err)
		require.NoError(t, m.PredictPixelsInto(ctx, test.Pixels(i), &p))
		assert.Equal(t, want, p, "image %d", i)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if err := m.PredictPixelsInto(ctx, test.Pixels(3), &p); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per prediction with a reused Prediction")

	for _, tc := range []struct {
		name   string
		ctx    func() context.Context
		pixels []uint8
		want   error
	}{
		{"short input", context.Background, make([]uint8, InputSize-1), ErrBadInput},
		{"cancelled", func() context.Context {
			c, cancel := context.WithCancel(context.Background())
			cancel()
			return c
		}, test.Pixels(0), context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dadc.Prediction{Label: 7, Probabilities: []float64{1}, ModelVersion: "x"}
			got := before
			err := m.PredictPixelsInto(tc.ctx(), tc.pixels, &got)
			assert.True(t, errors.Is(err, tc.want), "error %v, want %v", err, tc.want)
			assert.Equal(t, fmt.Sprint(before), fmt.Sprint(got), "an error changes nothing")
		})
	}
}
