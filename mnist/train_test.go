package mnist

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTrainSubsetLearns trains from scratch on the 2,000-image subset and
// checks accuracy on the 1,000 held-out test images.
func TestTrainSubsetLearns(t *testing.T) {
	skipSlowUnderRace(t)
	train, test := loadSubset(t)
	start := time.Now()
	w, err := Train(context.Background(), nil, train, &TrainConfig{Epochs: 3, BatchSize: 32, LearnRate: 3e-3, Seed: 1})
	require.NoError(t, err)
	ev, err := Evaluate(context.Background(), w, test)
	require.NoError(t, err)
	t.Logf("3 epochs on 2,000 images: %.1f%% on 1,000 test images in %v", 100*ev.Accuracy, time.Since(start).Round(time.Millisecond))
	assert.Greater(t, ev.Accuracy, 0.90)
	assert.Equal(t, 1000, ev.N)
}

func TestTrainReproducible(t *testing.T) {
	train, _ := loadSubset(t)
	cfg := &TrainConfig{Limit: 320, BatchSize: 32, Seed: 42, Augment: true}
	a, err := Train(context.Background(), nil, train, cfg)
	require.NoError(t, err)
	b, err := Train(context.Background(), nil, train, cfg)
	require.NoError(t, err)
	assert.Equal(t, a.Tensors, b.Tensors, "same seed, same data: same weights")

	cfg.Seed = 43
	c, err := Train(context.Background(), nil, train, cfg)
	require.NoError(t, err)
	assert.NotEqual(t, a.Tensors, c.Tensors, "another seed: other weights")
}

func TestTrainDoesNotModifyInit(t *testing.T) {
	train, _ := loadSubset(t)
	init := InitWeights(9)
	before := init.Clone()
	_, err := Train(context.Background(), init, train, &TrainConfig{Steps: 3, BatchSize: 16})
	require.NoError(t, err)
	assert.Equal(t, before.Tensors, init.Tensors)
}

func TestTrainHonoursCancel(t *testing.T) {
	train, _ := loadSubset(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	w, err := Train(ctx, nil, train, &TrainConfig{Epochs: 50, BatchSize: 16, Progress: func(p TrainProgress) {
		calls++
		if p.Step == 3 {
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, w)
	assert.Equal(t, 3, calls, "training stops at the next batch after cancellation")
}

func TestTrainStepsAndProgress(t *testing.T) {
	train, _ := loadSubset(t)
	var last TrainProgress
	epochs := 0
	called := 0
	_, err := Train(context.Background(), nil, train, &TrainConfig{Steps: 7, BatchSize: 32, Limit: 100,
		Progress: func(p TrainProgress) {
			last = p
			if p.EpochDone {
				epochs++
			}
		},
		OnEpoch: func(ctx context.Context, epoch int, w *Weights) error {
			called++
			return w.Validate()
		}})
	require.NoError(t, err)
	assert.Equal(t, 7, last.Step)
	assert.Equal(t, 7, last.Steps)
	assert.Equal(t, 3, epochs, "100/32 = 3 batches per epoch, so 7 steps span 3 epochs")
	assert.Equal(t, 3, called)
	assert.InDelta(t, DefaultMinLearnRate, last.LearnRate, 1e-12)
	assert.Greater(t, last.SamplesPerSec, 0.0)
}

func TestTrainOnEpochErrorStops(t *testing.T) {
	train, _ := loadSubset(t)
	boom := errors.New("boom")
	_, err := Train(context.Background(), nil, train, &TrainConfig{Epochs: 3, Limit: 64, BatchSize: 32,
		OnEpoch: func(context.Context, int, *Weights) error { return boom }})
	require.ErrorIs(t, err, boom)
}

func TestTrainRejectsBadInput(t *testing.T) {
	train, _ := loadSubset(t)
	bad := train.Subset(seq(100))
	bad.Labels[5] = 12
	tests := []struct {
		name string
		init *Weights
		data *Dataset
		cfg  *TrainConfig
		want error
	}{
		{"nil data", nil, nil, nil, ErrNoData},
		{"empty data", nil, &Dataset{Rows: 28, Cols: 28}, nil, ErrNoData},
		{"fewer images than a batch", nil, train.Subset(seq(10)), nil, ErrNoData},
		{"wrong image size", nil, &Dataset{Rows: 14, Cols: 14, Images: make([]uint8, 196), Labels: []uint8{1}}, nil, ErrBadInput},
		{"label out of range", nil, bad, nil, nil},
		{"weights missing a tensor", &Weights{Tensors: map[string][]float32{}}, train, nil, ErrInvalidWeights},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Train(context.Background(), tt.init, tt.data, tt.cfg)
			require.Error(t, err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			t.Log(err)
		})
	}
}

// TestOverfitTinyBatch checks that the network can drive the loss on one
// small batch close to zero (dropout off), which a wiring mistake between
// the layers, the loss or the optimiser would prevent.
func TestOverfitTinyBatch(t *testing.T) {
	skipSlowUnderRace(t)
	train, _ := loadSubset(t)
	const batch = 16
	s, err := newTrainSession(InitWeights(1), batch, rand.New(rand.NewSource(1)))
	require.NoError(t, err)
	defer s.close()
	s.noDropout = true
	imgs := make([][]uint8, batch)
	labels := make([]int, batch)
	for i := range imgs {
		imgs[i], labels[i] = train.Pixels(i), int(train.Labels[i])
	}
	var first, loss float64
	for i := 0; i < 150; i++ {
		loss, err = s.step(imgs, labels, 3e-3, false)
		require.NoError(t, err)
		if i == 0 {
			first = loss
		}
	}
	t.Logf("loss %.4f -> %.5f", first, loss)
	assert.Greater(t, first, 1.5)
	assert.Less(t, loss, 0.01)
}

func TestLearnRateSchedule(t *testing.T) {
	c := (&TrainConfig{}).withDefaults()
	assert.InDelta(t, DefaultLearnRate, c.learnRate(0, 100), 1e-15)
	assert.InDelta(t, DefaultMinLearnRate, c.learnRate(99, 100), 1e-15)
	mid := c.learnRate(50, 101)
	assert.InDelta(t, (DefaultLearnRate+DefaultMinLearnRate)/2, mid, 1e-12)
	prev := math.Inf(1)
	for i := 0; i < 100; i++ {
		lr := c.learnRate(i, 100)
		assert.LessOrEqual(t, lr, prev)
		prev = lr
	}
}

func TestAffineInto(t *testing.T) {
	src := make([]uint8, InputSize)
	src[10*Side+12] = 200 // one bright pixel at (x=12, y=10)
	want := make([]float32, InputSize)
	normalizeInto(want, src)

	got := make([]float32, InputSize)
	affineInto(got, src, 0, 0, 0)
	assert.InDeltaSlice(t, want, got, 1e-5, "identity transform")

	affineInto(got, src, 0, 2, -1) // shift right 2, up 1
	assert.InDelta(t, pixelLUT[200], got[9*Side+14], 1e-5)
	assert.InDelta(t, pixelLUT[0], got[10*Side+12], 1e-5)

	// A 90° rotation about the centre (13.5, 13.5) maps (x, y) to (27-y, x).
	affineInto(got, src, math.Pi/2, 0, 0)
	assert.InDelta(t, pixelLUT[200], got[12*Side+(27-10)], 1e-4)
}

// TestTrainEMA checks the moving average against its definition: after one
// step (t = 1, so the decay is min(EMADecay, 2/11)) the average is
// d·init + (1−d)·w1, where w1 is what the same training returns without
// averaging; OnEpoch sees the average; training itself is unchanged.
func TestTrainEMA(t *testing.T) {
	train, _ := loadSubset(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		decay float64
		d     float32
	}{
		{"decay above the warm-up cap", 0.999, float32(2.0 / 11)},
		{"decay below the warm-up cap", 0.1, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := TrainConfig{Steps: 1, BatchSize: 16, Seed: 5, Augment: true}
			raw, err := Train(ctx, nil, train, &cfg)
			require.NoError(t, err)
			init := InitWeights(5)
			cfg.EMADecay = tc.decay
			var seen *Weights
			cfg.OnEpoch = func(_ context.Context, _ int, w *Weights) error { seen = w; return nil }
			avg, err := Train(ctx, nil, train, &cfg)
			require.NoError(t, err)
			require.Equal(t, avg.Tensors, seen.Tensors, "OnEpoch receives the average")
			for name, a := range avg.Tensors {
				for j := range a {
					want := tc.d*init.Tensors[name][j] + (1-tc.d)*raw.Tensors[name][j]
					require.InDelta(t, want, a[j], 1e-6, "%s[%d]", name, j)
				}
			}
			assert.NotEqual(t, raw.Tensors, avg.Tensors)
		})
	}
}

func TestTrainEMARejectsBadDecay(t *testing.T) {
	train, _ := loadSubset(t)
	for _, d := range []float64{-0.1, 1, 1.5, math.NaN()} {
		w, err := Train(context.Background(), nil, train, &TrainConfig{Steps: 1, BatchSize: 16, EMADecay: d})
		require.Error(t, err, "%v", d)
		assert.Contains(t, err.Error(), "EMADecay")
		assert.Nil(t, w)
	}
}

// TestTrainDropout: the masks drop about Dropout of the values and scale
// the rest by 1/(1−Dropout); zero means the default 0.5 and a negative
// value no dropout; 1 or more is refused.
func TestTrainDropout(t *testing.T) {
	train, _ := loadSubset(t)
	ctx := context.Background()
	for _, tc := range []struct {
		dropout, wantP float64
	}{{0, 0.5}, {0.5, 0.5}, {0.3, 0.3}, {-1, 0}} {
		c := (&TrainConfig{Dropout: tc.dropout}).withDefaults()
		require.InDelta(t, tc.wantP, c.Dropout, 0, "Dropout %v", tc.dropout)
		s, err := newTrainSession(InitWeights(1), 64, rand.New(rand.NewSource(1)))
		require.NoError(t, err)
		s.dropP = c.Dropout
		s.fillMasks()
		for _, m := range [][]float32{s.m1b, s.m2b} {
			zeros := 0
			for _, v := range m {
				if v == 0 {
					zeros++
				} else {
					require.InDelta(t, 1/(1-tc.wantP), v, 1e-6)
				}
			}
			assert.InDelta(t, tc.wantP, float64(zeros)/float64(len(m)), 0.06, "Dropout %v", tc.dropout)
		}
		s.close()
	}

	cfg := TrainConfig{Steps: 2, BatchSize: 16, Seed: 7}
	def, err := Train(ctx, nil, train, &cfg)
	require.NoError(t, err)
	cfg.Dropout = 0.5
	half, err := Train(ctx, nil, train, &cfg)
	require.NoError(t, err)
	assert.Equal(t, def.Tensors, half.Tensors, "0 is the default 0.5")
	cfg.Dropout = 0.3
	other, err := Train(ctx, nil, train, &cfg)
	require.NoError(t, err)
	assert.NotEqual(t, def.Tensors, other.Tensors)

	for _, d := range []float64{1, 2, math.NaN()} {
		w, err := Train(ctx, nil, train, &TrainConfig{Steps: 1, BatchSize: 16, Dropout: d})
		require.Error(t, err, "%v", d)
		assert.Contains(t, err.Error(), "Dropout")
		assert.Nil(t, w)
	}
}
