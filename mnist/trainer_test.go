package mnist

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"testing"

	"github.com/advspace/advspace/dadc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// misclassified returns up to n test images the model gets wrong, as samples.
func misclassified(t *testing.T, m *Model, test *Dataset, n int) []dadc.Sample[*image.Gray] {
	t.Helper()
	var out []dadc.Sample[*image.Gray]
	for i := 0; i < test.Len() && len(out) < n; i++ {
		p, err := m.Predict(context.Background(), test.Gray(i))
		require.NoError(t, err)
		if p.Label != int(test.Labels[i]) {
			out = append(out, dadc.Sample[*image.Gray]{SampleMeta: dadc.SampleMeta{ID: fmt.Sprint("s", i), Label: int(test.Labels[i]),
				ModelLabel: p.Label, ModelProbabilities: p.Probabilities, ModelVersion: m.Version()}, Input: test.Gray(i)})
		}
	}
	require.Len(t, out, n, "the subset model should get at least %d test images wrong", n)
	return out
}

func TestFineTuneLearnsSamplesKeepsClean(t *testing.T) {
	skipSlowUnderRace(t)
	train, test := loadSubset(t)
	m, err := NewModel(trainedWeights(t), &ModelOptions{Replay: train,
		FineTune: &FineTuneConfig{Steps: 60, Seed: 1, LearnRate: 5e-4}})
	require.NoError(t, err)
	samples := misclassified(t, m, test, 8)
	examples := make([]dadc.Example[*image.Gray], len(samples))
	for i, s := range samples {
		examples[i] = dadc.Example[*image.Gray]{Input: s.Input, Label: s.Label}
	}
	// Clean accuracy is measured on test images other than the samples.
	clean := test.Subset(seq(1000)[500:])
	before, err := m.EvaluateDataset(context.Background(), clean)
	require.NoError(t, err)

	var progress []float64
	got, err := m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Round: 1, Version: "round-2", Samples: samples,
		Progress: func(f float64) { progress = append(progress, f) }})
	require.NoError(t, err)
	tuned := got.(*Model)
	assert.Equal(t, "round-2", tuned.Version())

	advBefore, err := m.Evaluate(context.Background(), examples)
	require.NoError(t, err)
	advAfter, err := tuned.Evaluate(context.Background(), examples)
	require.NoError(t, err)
	after, err := tuned.EvaluateDataset(context.Background(), clean)
	require.NoError(t, err)
	t.Logf("adversarial accuracy %.2f -> %.2f; clean %.3f -> %.3f", advBefore.Accuracy, advAfter.Accuracy, before.Accuracy, after.Accuracy)
	assert.Zero(t, advBefore.Accuracy)
	assert.GreaterOrEqual(t, advAfter.Accuracy, 0.75)
	assert.Greater(t, after.Accuracy, before.Accuracy-0.03)

	require.NotEmpty(t, progress)
	assert.Equal(t, 1.0, progress[len(progress)-1])
	for i := 1; i < len(progress); i++ {
		assert.GreaterOrEqual(t, progress[i], progress[i-1])
	}

	// The receiver is unchanged.
	again, err := m.Evaluate(context.Background(), examples)
	require.NoError(t, err)
	assert.Equal(t, advBefore, again)
	assert.NotEqual(t, m.Version(), tuned.Version())
}

func TestFineTuneWithoutReplay(t *testing.T) {
	_, test := loadSubset(t)
	m, err := NewModel(pretrainedWeights(t), &ModelOptions{FineTune: &FineTuneConfig{Steps: 30, BatchSize: 16, LearnRate: 1e-3, NoAugment: true}})
	require.NoError(t, err)
	samples := misclassified(t, m, test, 3)
	got, err := m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: samples})
	require.NoError(t, err)
	assert.Regexp(t, `^sha256:[0-9a-f]{12}$`, got.Version(), "no version asked: named after the weights")
	for _, s := range samples {
		p, err := got.Predict(context.Background(), s.Input)
		require.NoError(t, err)
		assert.Equal(t, s.Label, p.Label)
	}
}

func TestFineTuneErrors(t *testing.T) {
	m, err := NewModel(InitWeights(1), &ModelOptions{FineTune: &FineTuneConfig{Steps: 1000, BatchSize: 8}})
	require.NoError(t, err)
	good := dadc.Sample[*image.Gray]{SampleMeta: dadc.SampleMeta{ID: "a", Label: 3}, Input: image.NewGray(image.Rect(0, 0, 28, 28))}
	badSize := good
	badSize.Input = image.NewGray(image.Rect(0, 0, 10, 10))
	badLabel := good
	badLabel.Label = -1

	_, err = m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{})
	assert.ErrorIs(t, err, dadc.ErrNothingToTrain)
	_, err = m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: []dadc.Sample[*image.Gray]{good, badSize}})
	assert.ErrorIs(t, err, ErrBadInput)
	_, err = m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: []dadc.Sample[*image.Gray]{badLabel}})
	assert.ErrorIs(t, err, dadc.ErrInvalidLabel)
	allDropped, err := NewModel(InitWeights(1), &ModelOptions{FineTune: &FineTuneConfig{Dropout: 1}})
	require.NoError(t, err)
	_, err = allDropped.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: []dadc.Sample[*image.Gray]{good}})
	assert.ErrorContains(t, err, "Dropout 1 is not below 1")

	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	_, err = m.Train(ctx, dadc.TrainRequest[*image.Gray]{Samples: []dadc.Sample[*image.Gray]{good}, Progress: func(float64) {
		steps++
		if steps == 2 {
			cancel()
		}
	}})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 2, steps)
}

// TestTrainWhileServing fine-tunes (which builds graphs and VMs) while other
// goroutines predict on the same model; run with -race.
func TestTrainWhileServing(t *testing.T) {
	_, test := loadSubset(t)
	m, err := NewModel(InitWeights(1), &ModelOptions{FineTune: &FineTuneConfig{Steps: 5, BatchSize: 16}})
	require.NoError(t, err)
	want, err := m.Predict(context.Background(), test.Gray(1))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for g := 0; g < 2; g++ {
		go func() {
			for ctx.Err() == nil {
				p, err := m.Predict(ctx, test.Gray(1))
				if err != nil && ctx.Err() == nil {
					done <- err
					return
				}
				if err == nil && p.Label != want.Label {
					done <- fmt.Errorf("prediction changed while training: %v", p)
					return
				}
			}
			done <- nil
		}()
	}
	samples := []dadc.Sample[*image.Gray]{{SampleMeta: dadc.SampleMeta{ID: "x", Label: int(test.Labels[2])}, Input: test.Gray(2)}}
	for i := 0; i < 2; i++ {
		_, err := m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: samples})
		require.NoError(t, err)
	}
	cancel()
	for g := 0; g < 2; g++ {
		require.NoError(t, <-done)
	}
}

// tuneOnce fine-tunes pretrained weights on a few misclassified test images
// with cfg (Seed 7, 10 steps, subset replay) and returns the tuned weights.
func tuneOnce(t *testing.T, cfg FineTuneConfig) (old, tuned *Weights) {
	t.Helper()
	train, test := loadSubset(t)
	cfg.Seed, cfg.Steps, cfg.BatchSize = 7, 10, 16
	m, err := NewModel(pretrainedWeights(t), &ModelOptions{Replay: train, FineTune: &cfg})
	require.NoError(t, err)
	got, err := m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: misclassified(t, m, test, 3)})
	require.NoError(t, err)
	return m.Weights(), got.(*Model).Weights()
}

func TestFineTuneDeterministicForASeed(t *testing.T) {
	_, a := tuneOnce(t, FineTuneConfig{})
	_, b := tuneOnce(t, FineTuneConfig{})
	assert.Equal(t, a.Tensors, b.Tensors, "same seed, weights and samples: same model")
	_, c := tuneOnce(t, FineTuneConfig{Seed: 8}) // tuneOnce overrides the seed: same again
	assert.Equal(t, a.Tensors, c.Tensors)
}

// TestFineTuneInterpolates: the returned weights are (1−α)·old + α·tuned.
func TestFineTuneInterpolates(t *testing.T) {
	old, full := tuneOnce(t, FineTuneConfig{Interpolate: -1})
	_, half := tuneOnce(t, FineTuneConfig{Interpolate: 0.5})
	for name, h := range half.Tensors {
		for i := range h {
			want := 0.5*old.Tensors[name][i] + 0.5*full.Tensors[name][i]
			require.InDelta(t, want, h[i], 1e-6, "%s[%d]", name, i)
		}
	}
	assert.NotEqual(t, old.Tensors, full.Tensors, "fine-tuning changed the weights")
}

// TestFineTuneSoup: with Soup 2 the returned weights are the mean of the
// fine-tunes with seeds Seed and Seed+1 (before the interpolation).
func TestFineTuneSoup(t *testing.T) {
	old, a := tuneOnce(t, FineTuneConfig{Interpolate: -1})
	train, test := loadSubset(t)
	cfg := FineTuneConfig{Seed: 8, Steps: 10, BatchSize: 16, Interpolate: -1}
	m, err := NewModel(old, &ModelOptions{Replay: train, FineTune: &cfg})
	require.NoError(t, err)
	got, err := m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: misclassified(t, m, test, 3)})
	require.NoError(t, err)
	b := got.(*Model).Weights()
	_, soup := tuneOnce(t, FineTuneConfig{Interpolate: -1, Soup: 2})
	assert.NotEqual(t, a.Tensors, b.Tensors, "the two seeds give two models")
	for name, s := range soup.Tensors {
		for i := range s {
			want := 0.5*a.Tensors[name][i] + 0.5*b.Tensors[name][i]
			require.InDelta(t, want, s[i], 1e-6, "%s[%d]", name, i)
		}
	}
}

func TestFineTuneConfigDefaults(t *testing.T) {
	def := DefaultFineTune()
	assert.Equal(t, def, (*FineTuneConfig)(nil).withDefaults())
	off := (&FineTuneConfig{Distill: -1, Anchor: -1, Interpolate: -1}).withDefaults()
	assert.Zero(t, off.Distill)
	assert.Zero(t, off.Anchor)
	assert.Equal(t, 1.0, off.Interpolate)
	assert.Equal(t, 1.0, (&FineTuneConfig{Distill: 3, Interpolate: 2}).withDefaults().Distill)
	assert.Equal(t, 1.0, (&FineTuneConfig{Interpolate: 2}).withDefaults().Interpolate)
	assert.Equal(t, 0.2, def.Dropout, "the embedded model's training rate")
	assert.Zero(t, (&FineTuneConfig{Dropout: -1}).withDefaults().Dropout)
}

func TestLoaderRoundTrip(t *testing.T) {
	m, err := NewModel(pretrainedWeights(t), &ModelOptions{Version: "v7"})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, m.Export(context.Background(), &buf))
	got, err := Loader(nil).Load(context.Background(), dadc.ModelCard{Version: "v7"}, &buf)
	require.NoError(t, err)
	assert.Equal(t, "v7", got.Version())
	assert.Equal(t, m.Weights().Tensors, got.(*Model).Weights().Tensors)

	_, err = Loader(nil).Load(context.Background(), dadc.ModelCard{Version: "big"}, bytes.NewReader(make([]byte, 2<<20)))
	assert.ErrorContains(t, err, "larger than")
	_, err = Loader(nil).Load(context.Background(), dadc.ModelCard{Version: "junk"}, bytes.NewReader([]byte("junk")))
	assert.ErrorIs(t, err, ErrSafetensors)
}

// TestFineTuneAnchorToFirst: with AnchorToFirst every model of a chain of
// retrains distils toward and is anchored at the chain's first model, so a
// second retrain differs from one that pulls toward its own parent.
func TestFineTuneAnchorToFirst(t *testing.T) {
	train, test := loadSubset(t)
	chain := func(first bool) (m0, m2 *Model) {
		cfg := FineTuneConfig{Seed: 3, Steps: 10, BatchSize: 16, Anchor: 1, AnchorToFirst: first}
		m0, err := NewModel(pretrainedWeights(t), &ModelOptions{Replay: train, FineTune: &cfg})
		require.NoError(t, err)
		samples := misclassified(t, m0, test, 3)
		got, err := m0.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: samples})
		require.NoError(t, err)
		m1 := got.(*Model)
		got, err = m1.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Samples: samples})
		require.NoError(t, err)
		m2 = got.(*Model)
		if first {
			assert.Same(t, m0, m1.opts.FineTune.first, "the first retrain hands on its model")
			assert.Same(t, m0, m2.opts.FineTune.first, "and the second hands on the same one")
		} else {
			assert.Nil(t, m2.opts.FineTune.first)
		}
		return m0, m2
	}
	_, toFirst := chain(true)
	_, toParent := chain(false)
	assert.NotEqual(t, toFirst.Weights().Tensors, toParent.Weights().Tensors, "the second retrain pulls toward another model")
}
