package mnist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"math"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// subsetModel trains a small model on the subset once per test binary.
var subsetModel = sync.OnceValues(func() (*Weights, error) {
	train, _, err := LoadDataDir("../testdata/mnist")
	if err != nil {
		return nil, err
	}
	return Train(context.Background(), nil, train, &TrainConfig{Epochs: 2, BatchSize: 32, LearnRate: 2e-3, Seed: 1})
})

func pretrainedWeights(t testing.TB) *Weights {
	t.Helper()
	w, err := Pretrained()
	require.NoError(t, err)
	return w
}

func trainedWeights(t testing.TB) *Weights {
	t.Helper()
	w, err := subsetModel()
	require.NoError(t, err)
	return w
}

func TestNewModelDefaults(t *testing.T) {
	w := InitWeights(1)
	m, err := NewModel(w, nil)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, w.Encode(&buf))
	sum := sha256.Sum256(buf.Bytes())
	assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:])[:12], m.Version())

	m2, err := NewModel(w, &ModelOptions{Version: "v7"})
	require.NoError(t, err)
	assert.Equal(t, "v7", m2.Version())

	_, err = NewModel(&Weights{}, nil)
	assert.ErrorIs(t, err, ErrInvalidWeights)
}

func TestModelCopiesWeights(t *testing.T) {
	w := InitWeights(1)
	m, err := NewModel(w, nil)
	require.NoError(t, err)
	in := image.NewGray(image.Rect(0, 0, 28, 28))
	in.Pix[300] = 255
	before, err := m.Predict(context.Background(), in)
	require.NoError(t, err)

	w.Tensors["fc2.bias"][0] += 100 // the caller's copy changes; the model must not
	got := m.Weights()
	got.Tensors["fc2.bias"][1] += 100 // so does the copy Weights returned
	after, err := m.Predict(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestPredictRejectsBadInput(t *testing.T) {
	m, err := NewModel(InitWeights(1), nil)
	require.NoError(t, err)
	ctx := context.Background()
	for name, in := range map[string]*image.Gray{
		"nil":   nil,
		"small": image.NewGray(image.Rect(0, 0, 27, 28)),
		"large": image.NewGray(image.Rect(0, 0, 280, 280)),
	} {
		_, err := m.Predict(ctx, in)
		assert.ErrorIs(t, err, ErrBadInput, name)
		_, err = m.PredictBatch(ctx, []*image.Gray{image.NewGray(image.Rect(0, 0, 28, 28)), in})
		assert.ErrorIs(t, err, ErrBadInput, name)
	}
	_, err = m.PredictPixels(ctx, make([]uint8, 100))
	assert.ErrorIs(t, err, ErrBadInput)
	_, err = m.Evaluate(ctx, []dadc.Example[*image.Gray]{{Input: image.NewGray(image.Rect(0, 0, 28, 28)), Label: 10}})
	assert.ErrorIs(t, err, dadc.ErrInvalidLabel)
}

func TestPredictSubImage(t *testing.T) {
	m, err := NewModel(pretrainedWeights(t), nil)
	require.NoError(t, err)
	_, test := loadSubset(t)
	// A 28x28 window of a larger image (Stride != 28) gives the same answer.
	big := image.NewGray(image.Rect(0, 0, 40, 40))
	for y := 0; y < 28; y++ {
		copy(big.Pix[(y+5)*40+7:], test.Pixels(0)[y*28:(y+1)*28])
	}
	sub := big.SubImage(image.Rect(7, 5, 35, 33)).(*image.Gray)
	a, err := m.Predict(context.Background(), sub)
	require.NoError(t, err)
	b, err := m.Predict(context.Background(), test.Gray(0))
	require.NoError(t, err)
	assert.Equal(t, b, a)
}

// TestPredictPathsAgree checks that single predictions, batch predictions
// and evaluation give the same answers.
func TestPredictPathsAgree(t *testing.T) {
	m, err := NewModel(pretrainedWeights(t), nil)
	require.NoError(t, err)
	_, test := loadSubset(t)
	ctx := context.Background()
	const n = 150
	ins := make([]*image.Gray, n)
	for i := range ins {
		ins[i] = test.Gray(i)
	}
	batch, err := m.PredictBatch(ctx, ins)
	require.NoError(t, err)
	require.Len(t, batch, n)
	correct := 0
	for i, in := range ins {
		p, err := m.Predict(ctx, in)
		require.NoError(t, err)
		assert.Equal(t, p.Label, batch[i].Label, i)
		assert.InDeltaSlice(t, p.Probabilities, batch[i].Probabilities, 1e-5, i)
		var sum float64
		for _, q := range p.Probabilities {
			sum += q
		}
		assert.InDelta(t, 1, sum, 1e-4)
		assert.Equal(t, m.Version(), p.ModelVersion)
		if p.Label == int(test.Labels[i]) {
			correct++
		}
	}
	ev, err := m.EvaluateDataset(ctx, test.Subset(seq(n)))
	require.NoError(t, err)
	assert.Equal(t, n, ev.N)
	assert.InDelta(t, float64(correct)/n, ev.Accuracy, 1e-12)
	total := 0
	for label, row := range ev.Confusion {
		for pred, c := range row {
			total += c
			if label == pred {
				correct -= c
			}
		}
	}
	assert.Equal(t, n, total)
	assert.Zero(t, correct, "the confusion diagonal counts the correct answers")

	ev2, err := m.Evaluate(ctx, test.Subset(seq(n)).Examples())
	require.NoError(t, err)
	assert.Equal(t, ev, ev2)

	empty, err := m.PredictBatch(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestPredictConcurrent(t *testing.T) {
	m, err := NewModel(pretrainedWeights(t), nil)
	require.NoError(t, err)
	_, test := loadSubset(t)
	ctx := context.Background()
	want := make([]dadc.Prediction, 16)
	for i := range want {
		want[i], err = m.Predict(ctx, test.Gray(i))
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for g := 0; g < 6; g++ {
		wg.Go(func() {
			for r := 0; r < 2; r++ {
				for i := range want {
					idx := (i + g) % len(want)
					var p dadc.Prediction
					var err error
					if g%3 != 0 {
						p, err = m.Predict(ctx, test.Gray(idx))
					} else {
						var ps []dadc.Prediction
						ps, err = m.PredictBatch(ctx, []*image.Gray{test.Gray(idx)})
						if err == nil {
							p = ps[0]
						}
					}
					if err != nil {
						errs <- err
						return
					}
					if p.Label != want[idx].Label || math.Abs(p.Probabilities[p.Label]-want[idx].Probabilities[p.Label]) > 1e-5 {
						t.Errorf("goroutine %d image %d: got %v want %v", g, idx, p, want[idx])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestPredictHonoursContext(t *testing.T) {
	m, err := NewModel(InitWeights(1), nil)
	require.NoError(t, err)
	in := image.NewGray(image.Rect(0, 0, 28, 28))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = m.Predict(ctx, in)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = m.PredictBatch(ctx, []*image.Gray{in})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = m.Evaluate(ctx, []dadc.Example[*image.Gray]{{Input: in, Label: 3}})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = m.Predict(context.Background(), in)
	assert.NoError(t, err)
}

// TestPredictNoMemoryGrowth runs many predictions and checks that the live
// heap does not grow: 5,000 predictions (about 1.5 s on 2 cores), 2,000
// with -short (500 with -race), 100,000 with ADVSPACE_LONG_TESTS=1.
func TestPredictNoMemoryGrowth(t *testing.T) {
	n := 5_000
	switch {
	case os.Getenv("ADVSPACE_LONG_TESTS") == "1":
		n = 100_000
	case raceEnabled:
		n = 500
	case testing.Short():
		n = 2_000
	}
	m, err := NewModel(InitWeights(1), nil)
	require.NoError(t, err)
	in := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range in.Pix {
		in.Pix[i] = uint8(i)
	}
	ctx := context.Background()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for i := 0; i < 1000; i++ { // warm up pools and caches
		_, err := m.Predict(ctx, in)
		require.NoError(t, err)
	}
	before := heap()
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := m.Predict(ctx, in); err != nil {
			require.NoError(t, err)
		}
	}
	elapsed := time.Since(start)
	after := heap()
	growth := int64(after) - int64(before)
	t.Logf("%d predictions in %v (%v each); live heap %d -> %d bytes (%+d)", n, elapsed.Round(time.Millisecond), elapsed/time.Duration(n), before, after, growth)
	assert.Less(t, growth, int64(1<<20), "live heap grew by more than 1 MiB")
}

func TestExportRoundTrip(t *testing.T) {
	w := InitWeights(3)
	m, err := NewModel(w, nil)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, m.Export(context.Background(), &buf))
	back, err := DecodeWeights(buf.Bytes())
	require.NoError(t, err)
	assert.Equal(t, w.Tensors, back.Tensors)
	m2, err := NewModel(back, nil)
	require.NoError(t, err)
	assert.Equal(t, m.Version(), m2.Version(), "the version names the weights file")
}
