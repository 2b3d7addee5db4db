package dadc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// truth is the correct class of n in these tests.
func truth(n int) int { return n % 10 }

// accurateOn returns a classifier right on n < k and wrong from k on.
func accurateOn(k int) func(int) int {
	return func(n int) int {
		if n < k {
			return truth(n)
		}
		return (truth(n) + 1) % 10
	}
}

// cleanSet returns the examples 0..n-1 labelled by truth.
func cleanSet(n int) []dadc.Example[int] {
	out := make([]dadc.Example[int], n)
	for i := range out {
		out[i] = dadc.Example[int]{Input: i, Label: truth(i)}
	}
	return out
}

// wrongLabel is a label the models built with accurateOn(k) get wrong for n >= k.
func wrongLabel(n int) int { return truth(n) }

// mechanicsGate promotes a candidate unless its clean accuracy is more than
// half a point below the serving model's. The tests of the Loop's mechanics
// (rounds, concurrency, failures) use it so that they need no held-out
// samples; the default gate has its own tests.
var mechanicsGate = dadc.GateFunc(func(in dadc.GateInput) dadc.GateDecision {
	if in.Clean != nil && in.Clean.Candidate < in.Clean.Serving-0.005 {
		return dadc.GateDecision{Reasons: []string{fmt.Sprintf("FAIL clean %.4f < serving %.4f - 0.005", in.Clean.Candidate, in.Clean.Serving)}}
	}
	return dadc.GateDecision{Promote: true, Reasons: []string{"ok mechanics gate"}}
})

// baseOpts returns deterministic options: fake clock, sequential IDs and versions.
func baseOpts(clock *dadctest.Clock) *dadc.Options[int] {
	return &dadc.Options[int]{
		Gate:          mechanicsGate,
		HoldoutEvery:  -1,
		CheckInterval: -1,
		Now:           clock.Now,
		NewID:         dadctest.Sequence("s"),
		NewVersion:    func(round int) string { return fmt.Sprintf("v%d", round) },
	}
}

func newLoop(t *testing.T, m dadc.Model[int], f dadc.Flagger[int], p dadc.RetrainPolicy, o *dadc.Options[int]) *dadc.Loop[int] {
	t.Helper()
	l, err := dadc.NewLoop(m, f, p, 10, o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, l.Close(ctx))
	})
	return l
}

func waitIdle(t *testing.T, l *dadc.Loop[int]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, l.WaitIdle(ctx))
}

// trainable returns a FakeModel named name, accurate on n < k, whose Train
// returns next(req) (or an error if next is nil).
func trainable(name string, k int, next func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error)) *dadctest.FakeModel[int] {
	m := dadctest.NewModel(name, 10, accurateOn(k))
	m.TrainFunc = next
	return m
}

// returns a TrainFunc that yields a FakeModel accurate on n < k.
func yields(k int) func(context.Context, dadc.TrainRequest[int]) (dadc.Model[int], error) {
	return func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		return dadctest.NewModel(req.Version, 10, accurateOn(k)), nil
	}
}

func TestNewLoop_Validation(t *testing.T) {
	m := dadctest.NewModel("m", 10, truth)
	f := dadctest.NewFlagger[int](nil)
	ok := func(mod func(o *dadc.Options[int])) *dadc.Options[int] {
		o := &dadc.Options[int]{CheckInterval: -1}
		mod(o)
		return o
	}
	tests := []struct {
		name    string
		model   dadc.Model[int]
		flagger dadc.Flagger[int]
		policy  dadc.RetrainPolicy
		classes int
		opts    *dadc.Options[int]
		want    string
	}{
		{"nil model", nil, f, dadc.Manual(), 10, nil, "model is nil"},
		{"nil flagger", m, nil, dadc.Manual(), 10, nil, "flagger is nil"},
		{"nil policy", m, f, nil, 10, nil, "policy is nil"},
		{"invalid policy", m, f, dadc.EveryN(0), 10, nil, "n must be at least 1"},
		{"zero classes", m, f, dadc.Manual(), 0, nil, "classes is 0"},
		{"negative classes", m, f, dadc.Manual(), -2, ok(func(*dadc.Options[int]) {}), "classes is -2"},
		{"holdout 1", m, f, dadc.Manual(), 10, ok(func(o *dadc.Options[int]) { o.HoldoutEvery = 1 }), "HoldoutEvery is 1"},
		{"drop > 1", m, f, dadc.Manual(), 10, ok(func(o *dadc.Options[int]) { o.MaxAccuracyDrop = 2 }), "MaxAccuracyDrop"},
		{"negative timeout", m, f, dadc.Manual(), 10, ok(func(o *dadc.Options[int]) { o.TrainTimeout = -time.Second }), "TrainTimeout"},
		{"clean label", m, f, dadc.Manual(), 10, ok(func(o *dadc.Options[int]) {
			o.CleanTest = []dadc.Example[int]{{Input: 1, Label: 1}, {Input: 2, Label: 10}}
		}), "CleanTest[1] has label 10"},
		{"unreadable store", m, dadctest.NewFlagger(&dadctest.FlaggerScript[int]{SamplesErr: errors.New("disk gone")}),
			dadc.Manual(), 10, nil, "disk gone"},
		{"stored label out of range", m, dadctest.NewFlagger(&dadctest.FlaggerScript[int]{Preload: []dadc.Sample[int]{{SampleMeta: dadc.SampleMeta{ID: "a", Label: 12}}}}),
			dadc.Manual(), 10, nil, "label 12 outside [0, 10)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := dadc.NewLoop(tt.model, tt.flagger, tt.policy, tt.classes, tt.opts)
			require.Error(t, err)
			assert.Nil(t, l)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "dadc: ")
		})
	}
}

func TestFlag_FooledAndAttempt(t *testing.T) {
	clock := dadctest.NewClock(t0)
	m := dadctest.NewModel("m0", 10, accurateOn(100)) // right below 100, wrong from 100 on
	f := dadctest.NewFlagger[int](nil)
	l := newLoop(t, m, f, dadc.Manual(), baseOpts(clock))
	ctx := t.Context()

	res, err := l.Flag(ctx, 5, 5, "sess-a") // model right
	require.NoError(t, err)
	assert.False(t, res.Fooled)
	assert.Zero(t, res.Sample)
	assert.Equal(t, 5, res.Prediction.Label)
	assert.Equal(t, 0, res.Count)
	assert.Zero(t, f.Calls(), "nothing stored for an attempt")

	clock.Advance(time.Second)
	res, err = l.Flag(ctx, 123, 3, "sess-b") // model says 4
	require.NoError(t, err)
	assert.True(t, res.Fooled)
	assert.Equal(t, 1, res.Count)
	assert.Equal(t, 0, res.Round)
	assert.False(t, res.Retraining)
	want := dadc.Sample[int]{Input: 123, SampleMeta: dadc.SampleMeta{
		ID: "s-000001", Label: 3, ModelLabel: 4,
		ModelProbabilities: res.Prediction.Probabilities, ModelVersion: "m0",
		Round: 0, CreatedAt: t0.Add(time.Second), Session: "sess-b",
	}}
	assert.Equal(t, want, res.Sample)
	require.Equal(t, []dadc.Sample[int]{want}, f.Stored())

	st := l.Stats()
	assert.Equal(t, 1, st.FlaggedTotal)
	assert.Equal(t, 1, st.Attempts)
	assert.InDelta(t, 0.5, st.ModelErrorRate, 1e-12)
	assert.Equal(t, []int{0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, st.PerLabel)
	require.Len(t, st.Rounds, 1)
	assert.Equal(t, 1, st.Rounds[0].Flags)
	assert.Equal(t, 1, st.Rounds[0].Attempts)
	assert.InDelta(t, 0.5, st.Rounds[0].ModelErrorRate, 1e-12)
	assert.Equal(t, "m0", st.ModelVersion)
	assert.Equal(t, []dadc.Sample[int]{want}, l.Samples(10))
}

func TestFlag_InvalidLabelChangesNothing(t *testing.T) {
	m := dadctest.NewModel("m0", 10, accurateOn(0))
	f := dadctest.NewFlagger[int](nil)
	l := newLoop(t, m, f, dadc.EveryN(1), baseOpts(dadctest.NewClock(t0)))
	before := l.Stats()
	for _, label := range []int{-1, 10, 1 << 40} {
		_, err := l.Flag(t.Context(), 3, label, "")
		require.ErrorIs(t, err, dadc.ErrInvalidLabel)
		assert.Contains(t, err.Error(), fmt.Sprintf("got %d, want a class in [0, 10)", label))
	}
	assert.Equal(t, before, l.Stats())
	assert.Zero(t, f.Calls())
	assert.Zero(t, m.Predicts())
}

func TestFlag_FlaggerFailureCountsNothing(t *testing.T) {
	m := dadctest.NewModel("m0", 10, accurateOn(0)) // always wrong
	f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{FailCalls: []int{1}})
	l := newLoop(t, m, f, dadc.EveryN(1), baseOpts(dadctest.NewClock(t0)))
	events, cancel := l.Subscribe(16)
	defer cancel()

	_, err := l.Flag(t.Context(), 1, 1, "")
	require.ErrorIs(t, err, dadctest.ErrInjected)
	assert.Contains(t, err.Error(), "dadc: storing flagged sample s-000001")
	st := l.Stats()
	assert.Zero(t, st.FlaggedTotal)
	assert.Zero(t, st.Attempts)
	assert.Equal(t, make([]int, 10), st.PerLabel)
	assert.False(t, st.Retraining, "a failed flag must not trigger the policy")
	assert.Empty(t, l.Samples(0))
	assert.Empty(t, events)

	res, err := l.Flag(t.Context(), 2, 2, "") // the store works again
	require.NoError(t, err)
	assert.Equal(t, 1, res.Count)
}

func TestFlag_ModelErrorCountsNothing(t *testing.T) {
	m := dadctest.NewModel("m0", 10, truth)
	m.PredictErr = errors.New("gpu on fire")
	f := dadctest.NewFlagger[int](nil)
	l := newLoop(t, m, f, dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
	_, err := l.Flag(t.Context(), 1, 2, "")
	require.ErrorContains(t, err, "gpu on fire")
	_, err = l.Predict(t.Context(), 1)
	require.ErrorContains(t, err, "dadc: model m0: predict: gpu on fire")
	assert.Zero(t, l.Stats().Attempts)
	assert.Zero(t, f.Calls())
}

func TestPredict_RejectsBrokenPredictions(t *testing.T) {
	m := dadctest.NewModel("three", 3, func(int) int { return 0 }) // 3 probabilities for a 10-class loop
	l := newLoop(t, m, dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
	_, err := l.Predict(t.Context(), 1)
	require.ErrorContains(t, err, "prediction has 3 probabilities, want one per class (10)")
	_, err = l.Flag(t.Context(), 1, 4, "")
	require.Error(t, err)
	assert.Zero(t, l.Stats().FlaggedTotal)
}

// gatedTrainer counts Train calls across models; each Train blocks until
// release is closed and returns a model trained the same way.
type gatedTrainer struct {
	calls   atomic.Int32
	release chan struct{}
	started chan struct{} // receives one value per Train call
}

func newGatedTrainer() *gatedTrainer {
	return &gatedTrainer{release: make(chan struct{}), started: make(chan struct{}, 100)}
}

func (g *gatedTrainer) model(name string) *dadctest.FakeModel[int] {
	m := dadctest.NewModel(name, 10, accurateOn(0)) // every input fools it
	m.TrainFunc = func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		g.calls.Add(1)
		g.started <- struct{}{}
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return g.model(req.Version), nil
	}
	return m
}

// TestFlag_ThousandConcurrentFlagsCoalesce: 50 goroutines flag 1,000 inputs
// that all fool the model while the first retrain (started after 10 flags)
// is held. Nothing is lost or duplicated, the counts are exact, and the
// retrains coalesce: exactly one more retrain follows when the first ends.
func TestFlag_ThousandConcurrentFlagsCoalesce(t *testing.T) {
	gt := newGatedTrainer()
	f := dadctest.NewFlagger[int](nil)
	opts := baseOpts(dadctest.NewClock(t0))
	opts.HoldoutEvery = 5
	opts.NewID = nil // real random IDs
	l := newLoop(t, gt.model("m0"), f, dadc.EveryN(10), opts)

	const goroutines, each = 50, 20
	var wg sync.WaitGroup
	var fooled atomic.Int32
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for k := range each {
				n := g*each + k
				res, err := l.Flag(t.Context(), n, wrongLabel(n), fmt.Sprint("g", g))
				if err != nil {
					errs <- err
					return
				}
				if res.Fooled {
					fooled.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, goroutines*each, fooled.Load())

	st := l.Stats()
	assert.True(t, st.Retraining)
	assert.EqualValues(t, 1, gt.calls.Load(), "the first retrain is still held: no other may start")
	require.Len(t, st.Rounds, 1, "a running retrain does not change the round")
	assert.Equal(t, goroutines*each, st.Rounds[0].Flags)
	trainedFirst := st.Rounds[0].TrainSamples
	assert.GreaterOrEqual(t, trainedFirst, 8)

	close(gt.release)
	waitIdle(t, l)

	st = l.Stats()
	assert.EqualValues(t, 2, gt.calls.Load(), "flags that arrived during the retrain coalesce into exactly one more")
	assert.Equal(t, 2, st.Round)
	require.Len(t, st.Rounds, 3)
	assert.Equal(t, goroutines*each, st.Rounds[0].Flags, "flags during the retrain belong to the round the old model served")
	assert.Zero(t, st.Rounds[1].Flags)
	assert.Zero(t, st.Rounds[2].Flags)
	assert.True(t, st.Rounds[0].Promoted)
	assert.True(t, st.Rounds[1].Promoted, "the coalesced retrain learned the flags that arrived during the first")
	assert.Equal(t, "v2", st.ModelVersion)
	assert.Equal(t, goroutines*each, st.FlaggedTotal)
	assert.Equal(t, goroutines*each/5, st.HeldOut)
	assert.Equal(t, goroutines*each*4/5, st.TrainingPool)
	assert.Equal(t, goroutines*each*4/5, st.Rounds[1].TrainSamples, "training is cumulative")
	assert.Zero(t, st.Rounds[1].HeldOutSamples, "round 1 collected nothing of its own")

	// None lost, none duplicated.
	stored := f.Stored()
	require.Len(t, stored, goroutines*each)
	assert.Equal(t, goroutines*each, f.Calls())
	assert.Zero(t, f.Duplicates())
	inputs := map[int]bool{}
	ids := map[string]bool{}
	perLabel := make([]int, 10)
	for _, s := range stored {
		assert.False(t, inputs[s.Input], "input %d stored twice", s.Input)
		assert.False(t, ids[s.ID], "ID %s stored twice", s.ID)
		assert.Len(t, s.ID, 32)
		inputs[s.Input], ids[s.ID] = true, true
		perLabel[s.Label]++
	}
	assert.Equal(t, perLabel, st.PerLabel)
	assert.Len(t, l.Samples(0), goroutines*each)
}

func TestRetrain_RoundStaysOpenUntilPromotion(t *testing.T) {
	gt := newGatedTrainer()
	f := dadctest.NewFlagger[int](nil)
	clock := dadctest.NewClock(t0)
	l := newLoop(t, gt.model("m0"), f, dadc.Manual(), baseOpts(clock))
	ctx := t.Context()

	require.ErrorIs(t, l.Retrain(ctx), dadc.ErrNothingToTrain)
	for n := range 4 {
		_, err := l.Flag(ctx, n, wrongLabel(n), "")
		require.NoError(t, err)
	}
	clock.Advance(time.Minute)
	require.NoError(t, l.Retrain(ctx))
	<-gt.started
	require.ErrorIs(t, l.Retrain(ctx), dadc.ErrRetrainInProgress)

	for n := 10; n < 12; n++ {
		res, err := l.Flag(ctx, n, wrongLabel(n), "")
		require.NoError(t, err)
		assert.Equal(t, 0, res.Round, "the round is the time one model serves")
		assert.Equal(t, 0, res.Sample.Round)
		assert.Equal(t, "m0", res.Sample.ModelVersion, "the old model still serves during the retrain")
		assert.True(t, res.Retraining)
	}
	st := l.Stats()
	assert.Equal(t, 0, st.Round)
	require.Len(t, st.Rounds, 1)
	assert.Equal(t, 6, st.Rounds[0].Flags)
	assert.Nil(t, st.Rounds[0].EndedAt)
	assert.Equal(t, "v1", st.Rounds[0].Candidate)
	require.Len(t, st.Rounds[0].Retrains, 1)
	assert.Equal(t, dadc.DecisionRunning, st.Rounds[0].Retrains[0].Decision)
	assert.Equal(t, t0.Add(time.Minute), st.Rounds[0].Retrains[0].StartedAt)
	assert.Equal(t, 4, st.Rounds[0].Retrains[0].TrainSamples)

	clock.Advance(time.Minute)
	close(gt.release)
	waitIdle(t, l)
	st = l.Stats()
	assert.True(t, st.Rounds[0].Promoted)
	assert.Equal(t, dadc.DecisionPromoted, st.Rounds[0].Retrains[0].Decision)
	require.NotNil(t, st.Rounds[0].EndedAt)
	assert.Equal(t, t0.Add(2*time.Minute), *st.Rounds[0].EndedAt, "the round closes at promotion")
	require.Len(t, st.Rounds, 2)
	assert.Equal(t, "v1", st.Rounds[1].ModelVersion)
	assert.Equal(t, t0.Add(2*time.Minute), st.Rounds[1].StartedAt)
	assert.Equal(t, 1, st.Round, "Manual policy: no further retrain")

	reqs := gt.calls.Load()
	assert.EqualValues(t, 1, reqs)
	assert.Equal(t, "v1", l.Model().Version())
}

func TestRetrain_TrainRequestHasCumulativeNonHeldOutSamples(t *testing.T) {
	var got []dadc.TrainRequest[int]
	var mu sync.Mutex
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
	l := newLoop(t, next("m0"), dadctest.NewFlagger[int](nil), dadc.EveryN(6), opts)
	for n := range 12 {
		_, err := l.Flag(t.Context(), n, wrongLabel(n), "")
		require.NoError(t, err)
		if n == 5 {
			waitIdle(t, l)
		}
	}
	waitIdle(t, l)
	require.Len(t, got, 2)
	ids := func(r dadc.TrainRequest[int]) []int {
		var out []int
		for _, s := range r.Samples {
			out = append(out, s.Input)
		}
		return out
	}
	assert.Equal(t, 0, got[0].Round)
	assert.Equal(t, "v1", got[0].Version)
	assert.Equal(t, []int{0, 1, 3, 4}, ids(got[0]), "every 3rd sample is held out")
	assert.Equal(t, 1, got[1].Round)
	assert.Equal(t, "v2", got[1].Version)
	assert.Equal(t, []int{0, 1, 3, 4, 6, 7, 9, 10}, ids(got[1]), "all rounds so far")
	st := l.Stats()
	assert.Equal(t, 2, st.Rounds[0].HeldOutSamples)
	assert.Equal(t, 2, st.Rounds[1].HeldOutSamples, "a round's gate sees the round's own held-out samples")
}

// learner is a classifier right on clean inputs n < k, and right on the
// adversarial inputs (n >= 2000) when learns is set.
func learner(k int, learns bool) func(int) int {
	return func(n int) int {
		if n >= 2000 && learns {
			return truth(n)
		}
		return accurateOn(k)(n)
	}
}

// TestGate runs the default gate inside the Loop: promotion needs clean
// accuracy within the budget of the fixed reference AND a significant gain on
// the held-out fooling samples; every decision records its reasons.
func TestGate(t *testing.T) {
	tests := []struct {
		name      string
		baseline  int // correct among 1000 clean examples
		candidate int
		learns    bool // the candidate gets the held-out fooling samples right
		drop      float64
		promoted  bool
		reason    string // in the failed reasons when rejected
	}{
		{"better", 900, 950, true, 0, true, ""},
		{"equal", 900, 900, true, 0, true, ""},
		{"small drop within default 0.003", 900, 897, true, 0, true, ""},
		{"drop beyond default", 900, 896, true, 0, false, "clean: 89.60% < fixed reference 90.00% - 0.30 points"},
		{"much worse", 900, 500, true, 0, false, "clean: 50.00%"},
		{"custom drop", 900, 850, true, 0.06, true, ""},
		{"negative drop demands improvement", 900, 905, true, -0.01, false, "clean: 90.50% < fixed reference 90.00% - -1.00 points"},
		{"negative drop met", 900, 915, true, -0.01, true, ""},
		{"no adversarial gain", 900, 950, false, 0, false, "gain: held-out 0/6 vs serving 0/6; 0 won, 0 lost; one-sided exact McNemar p=1 >= 0.05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := trainable("m0", tt.baseline, nil)
			var cand *dadctest.FakeModel[int]
			m.TrainFunc = func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
				cand = dadctest.NewModel(req.Version, 10, learner(tt.candidate, tt.learns))
				return cand, nil
			}
			opts := baseOpts(dadctest.NewClock(t0))
			opts.Gate = nil // the default gate
			opts.CleanTest = cleanSet(1000)
			opts.MaxAccuracyDrop = tt.drop
			opts.HoldoutEvery = 2
			l := newLoop(t, m, dadctest.NewFlagger[int](nil), dadc.Manual(), opts)
			events, cancel := l.Subscribe(64)
			defer cancel()
			for n := 2000; n < 2012; n++ { // the serving model is wrong on all of them
				_, err := l.Flag(t.Context(), n, wrongLabel(n), "")
				require.NoError(t, err)
			}
			require.NoError(t, l.Retrain(t.Context()))
			waitIdle(t, l)

			st := l.Stats()
			r := st.Rounds[0]
			assert.Equal(t, tt.promoted, r.Promoted)
			require.NotNil(t, r.CleanAccuracy)
			require.NotNil(t, r.BaselineCleanAccuracy)
			require.NotNil(t, r.AdversarialAccuracy)
			require.NotNil(t, st.ReferenceCleanAccuracy)
			assert.InDelta(t, float64(tt.baseline)/1000, *st.ReferenceCleanAccuracy, 1e-12, "the first model's score is the fixed reference")
			assert.InDelta(t, float64(tt.candidate)/1000, *r.CleanAccuracy, 1e-12)
			assert.InDelta(t, float64(tt.baseline)/1000, *r.BaselineCleanAccuracy, 1e-12)
			wantAdv := 0.0
			if tt.learns {
				wantAdv = 1
			}
			assert.InDelta(t, wantAdv, *r.AdversarialAccuracy, 1e-12)
			assert.Equal(t, 6, r.HeldOutSamples)
			assert.Equal(t, 1, m.Evaluates(), "the baseline is scored once, through Evaluator")
			require.Len(t, r.Retrains, 1)
			rt := r.Retrains[0]
			require.NotNil(t, rt.Gate)
			assert.Equal(t, dadc.PairedScore{N: 6, Candidate: int(6 * wantAdv), CandidateOnly: int(6 * wantAdv)}, rt.Gate.HeldOut)
			assert.NotEmpty(t, rt.Reasons)
			kinds := drainKinds(events)
			if tt.promoted {
				assert.Empty(t, r.Error)
				assert.Equal(t, dadc.DecisionPromoted, rt.Decision)
				assert.Contains(t, rt.Reasons, "ok gain: held-out 6/6 vs serving 0/6; 6 won, 0 lost; one-sided exact McNemar p=0.0156 < 0.05")
				assert.Equal(t, "v1", st.ModelVersion)
				assert.Equal(t, "v1", l.Model().Version())
				assert.Equal(t, 1, st.Round)
				assert.Contains(t, kinds, dadc.EventModelPromoted)
				assert.False(t, cand.Closed())
				assert.True(t, m.Closed(), "no call holds the replaced model: it is closed by the time WaitIdle returns")
			} else {
				assert.Equal(t, dadc.DecisionRejected, rt.Decision)
				assert.Contains(t, r.Error, tt.reason)
				assert.True(t, slices.ContainsFunc(rt.Reasons, func(r string) bool { return strings.HasPrefix(r, "FAIL "+tt.reason) }), "reasons: %q", rt.Reasons)
				assert.Equal(t, "m0", st.ModelVersion, "the old model keeps serving")
				assert.Equal(t, 0, st.Round, "a rejected candidate does not change the round")
				assert.Len(t, st.Rounds, 1)
				assert.Contains(t, kinds, dadc.EventModelRejected)
				assert.True(t, cand.Closed(), "a rejected candidate is closed")
				assert.False(t, m.Closed())
				p, err := l.Predict(t.Context(), 1)
				require.NoError(t, err)
				assert.Equal(t, "m0", p.ModelVersion)
			}
		})
	}
}

func drainKinds(ch <-chan dadc.Event) []dadc.EventKind {
	var out []dadc.EventKind
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e.Kind)
		default:
			return out
		}
	}
}

// TestGate_BaselineCachedPerModel: the serving model is scored once, however
// many retrains compare against it.
func TestGate_BaselineCachedPerModel(t *testing.T) {
	m := trainable("m0", 900, yields(50)) // always rejected
	opts := baseOpts(dadctest.NewClock(t0))
	opts.CleanTest = cleanSet(100)
	l := newLoop(t, m, dadctest.NewFlagger[int](nil), dadc.Manual(), opts)
	_, err := l.Flag(t.Context(), 5000, wrongLabel(5000), "")
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, l.Retrain(t.Context()))
		waitIdle(t, l)
	}
	assert.Equal(t, 1, m.Evaluates())
	st := l.Stats()
	assert.Equal(t, 0, st.Round, "rejected candidates do not change the round")
	require.Len(t, st.Rounds, 1)
	assert.False(t, st.Rounds[0].Promoted)
	require.Len(t, st.Rounds[0].Retrains, 3)
	for _, r := range st.Rounds[0].Retrains {
		assert.Equal(t, dadc.DecisionRejected, r.Decision)
	}
}

// TestGate_PromotedModelKeepsItsGateScore: the clean accuracy the gate
// measured for a promoted candidate is its baseline in the next retrain; the
// clean test set is not scored again for it.
func TestGate_PromotedModelKeepsItsGateScore(t *testing.T) {
	var cand *dadctest.FakeModel[int]
	m := trainable("m0", 50, func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		cand = trainable(req.Version, 80, yields(10)) // its successor is much worse: rejected
		return cand, nil
	})
	opts := baseOpts(dadctest.NewClock(t0))
	opts.CleanTest = cleanSet(100)
	l := newLoop(t, m, dadctest.NewFlagger[int](nil), dadc.Manual(), opts)
	_, err := l.Flag(t.Context(), 5000, wrongLabel(5000), "")
	require.NoError(t, err)
	for range 2 {
		require.NoError(t, l.Retrain(t.Context()))
		waitIdle(t, l)
	}
	st := l.Stats()
	require.True(t, st.Rounds[0].Promoted, "%+v", st.Rounds[0])
	require.False(t, st.Rounds[1].Promoted, "%+v", st.Rounds[1])
	require.NotNil(t, st.Rounds[0].CleanAccuracy)
	require.NotNil(t, st.Rounds[1].BaselineCleanAccuracy)
	assert.InDelta(t, 0.8, *st.Rounds[0].CleanAccuracy, 1e-12)
	assert.InDelta(t, 0.8, *st.Rounds[1].BaselineCleanAccuracy, 1e-12)
	assert.Equal(t, 1, cand.Evaluates(), "scored by the gate only, not again as the next baseline")
}

// TestPromotion_SwapUnderLoad hammers Predict and Flag while a better model is
// promoted: no call errors, and the old model is closed only after its last
// call returned.
func TestPromotion_SwapUnderLoad(t *testing.T) {
	old := trainable("m0", 500, nil)
	old.PredictDelay = 50 * time.Microsecond
	var cand *dadctest.FakeModel[int]
	// The candidate comes only once the hammer has run on the old model, and
	// the test stops the hammer once it has run on the new one.
	hammered, sawNewEnough := make(chan struct{}), make(chan struct{})
	var hammeredOnce, sawNewOnce sync.Once
	old.TrainFunc = func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		select {
		case <-hammered:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		cand = dadctest.NewModel(req.Version, 10, accurateOn(900))
		cand.PredictDelay = 50 * time.Microsecond
		return cand, nil
	}
	opts := baseOpts(dadctest.NewClock(t0))
	opts.CleanTest = cleanSet(200)
	l := newLoop(t, old, dadctest.NewFlagger[int](nil), dadc.Manual(), opts)
	_, err := l.Flag(t.Context(), 700, wrongLabel(700), "")
	require.NoError(t, err)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, sawNew atomic.Int64
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var p dadc.Prediction
				var err error
				if g%4 == 0 {
					var res dadc.FlagResult[int]
					res, err = l.Flag(t.Context(), i%100, truth(i%100), "")
					p = res.Prediction
				} else {
					p, err = l.Predict(t.Context(), i%1000)
				}
				if err != nil {
					errs <- err
					return
				}
				if calls.Add(1) == 50 {
					hammeredOnce.Do(func() { close(hammered) })
				}
				if p.ModelVersion == "v1" && sawNew.Add(1) == 50 {
					sawNewOnce.Do(func() { close(sawNewEnough) })
				}
			}
		})
	}
	wg.Go(func() { // readers of the loop's state, alongside
		for {
			select {
			case <-stop:
				return
			default:
			}
			st := l.Stats()
			if len(st.Rounds) == 0 || len(st.PerLabel) != 10 {
				errs <- fmt.Errorf("inconsistent stats %+v", st)
				return
			}
			_ = l.Samples(5)
			_, cancel := l.Subscribe(1)
			cancel()
			_ = l.Model().Version()
		}
	})
	require.NoError(t, l.Retrain(t.Context()))
	waitIdle(t, l)
	select {
	case <-sawNewEnough:
	case err := <-errs:
		t.Fatalf("a call failed before 50 ran on the new model: %v", err)
	}
	close(stop)
	wg.Wait()
	// Once the calls that may still hold the old model have returned, it is closed.
	assert.True(t, old.Closed(), "the replaced model is closed once its calls are done")
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.True(t, l.Stats().Rounds[0].Promoted)
	assert.Equal(t, "v1", l.Model().Version())
	assert.Greater(t, calls.Load(), sawNew.Load(), "calls ran on both models")
	assert.False(t, old.ClosedWhileInUse())
	assert.Zero(t, old.UsedAfterClose())
	assert.False(t, cand.Closed())
}

func TestRetrain_Failures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(m *dadctest.FakeModel[int], o *dadc.Options[int])
		wantErr string
	}{
		{"trainer error", func(m *dadctest.FakeModel[int], _ *dadc.Options[int]) {
			m.TrainErr = errors.New("out of memory")
		}, "training: out of memory"},
		{"trainer panic", func(m *dadctest.FakeModel[int], _ *dadc.Options[int]) {
			m.TrainFunc = func(context.Context, dadc.TrainRequest[int]) (dadc.Model[int], error) { panic("index out of range") }
		}, "retrain panicked: index out of range"},
		{"timeout", func(m *dadctest.FakeModel[int], o *dadc.Options[int]) {
			m.TrainDelay = time.Hour
			o.TrainTimeout = 30 * time.Millisecond
		}, "timed out after 30ms"},
		{"trainer ignores deadline", func(m *dadctest.FakeModel[int], o *dadc.Options[int]) {
			o.TrainTimeout = 20 * time.Millisecond
			m.TrainFunc = func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
				<-ctx.Done() // past its deadline, it still answers with a model
				return dadctest.NewModel(req.Version, 10, truth), nil
			}
		}, "timed out"},
		{"nil model", func(m *dadctest.FakeModel[int], _ *dadc.Options[int]) {
			m.TrainFunc = func(context.Context, dadc.TrainRequest[int]) (dadc.Model[int], error) { return nil, nil }
		}, "neither a model nor an error"},
		{"candidate evaluator panics", func(m *dadctest.FakeModel[int], _ *dadc.Options[int]) {
			m.TrainFunc = func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
				c := dadctest.NewModel(req.Version, 10, truth)
				c.EvaluateFunc = func(context.Context, []dadc.Example[int]) (dadc.Evaluation, error) { panic("nil map") }
				return c, nil
			}
		}, "retrain panicked: nil map"},
		{"candidate evaluator lies", func(m *dadctest.FakeModel[int], _ *dadc.Options[int]) {
			m.TrainFunc = func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
				c := dadctest.NewModel(req.Version, 10, truth)
				c.EvaluateFunc = func(context.Context, []dadc.Example[int]) (dadc.Evaluation, error) {
					return dadc.Evaluation{N: 3, Accuracy: 1.5}, nil
				}
				return c, nil
			}
		}, "want N equal to the number of examples"},
		{"candidate predict fails", func(m *dadctest.FakeModel[int], _ *dadc.Options[int]) {
			m.TrainFunc = func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
				c := dadctest.NewModel(req.Version, 10, truth)
				c.PredictErr = errors.New("bad weights")
				return dadctest.PredictOnly[int](c), nil
			}
		}, "scoring the candidate on the clean test set: bad weights"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := trainable("m0", 50, yields(100))
			opts := baseOpts(dadctest.NewClock(t0))
			opts.CleanTest = cleanSet(50)
			tt.setup(m, opts)
			l := newLoop(t, m, dadctest.NewFlagger[int](nil), dadc.Manual(), opts)
			events, cancel := l.Subscribe(64)
			defer cancel()
			_, err := l.Flag(t.Context(), 500, wrongLabel(500), "")
			require.NoError(t, err)
			require.NoError(t, l.Retrain(t.Context()))
			waitIdle(t, l)

			st := l.Stats()
			r := st.Rounds[0]
			assert.False(t, r.Promoted)
			assert.Contains(t, r.Error, tt.wantErr)
			assert.Equal(t, "m0", st.ModelVersion, "the old model keeps serving")
			assert.False(t, st.Retraining)
			var failed *dadc.Event
			for e := range drainEvents(events) {
				if e.Kind == dadc.EventRetrainFailed {
					failed = &e
				}
			}
			require.NotNil(t, failed, "a retrain_failed event")
			assert.Contains(t, failed.Message, tt.wantErr)
			assert.Equal(t, 0, failed.Round)

			// The loop still works, and can retrain again.
			p, err := l.Predict(t.Context(), 3)
			require.NoError(t, err)
			assert.Equal(t, "m0", p.ModelVersion)
			require.NoError(t, l.Retrain(t.Context()))
			waitIdle(t, l)
		})
	}
}

func drainEvents(ch <-chan dadc.Event) func(func(dadc.Event) bool) {
	return func(yield func(dadc.Event) bool) {
		for {
			select {
			case e, ok := <-ch:
				if !ok || !yield(e) {
					return
				}
			default:
				return
			}
		}
	}
}

func TestRetrain_NotTrainable(t *testing.T) {
	m := dadctest.PredictOnly[int](dadctest.NewModel("m0", 10, accurateOn(0)))
	l := newLoop(t, m, dadctest.NewFlagger[int](nil), dadc.EveryN(1), baseOpts(dadctest.NewClock(t0)))
	for n := range 3 {
		res, err := l.Flag(t.Context(), n, wrongLabel(n), "")
		require.NoError(t, err)
		assert.False(t, res.Retraining)
	}
	require.ErrorIs(t, l.Retrain(t.Context()), dadc.ErrNotTrainable)
	st := l.Stats()
	assert.Equal(t, 0, st.Round)
	assert.Equal(t, 3, st.FlaggedTotal)
}

func TestRetrain_NoCleanTestPromotesAndCanUseBatchPredictor(t *testing.T) {
	m := trainable("m0", 0, nil)
	var cand *dadctest.BatchModel[int]
	m.TrainFunc = func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		cand = dadctest.WithBatch[int](dadctest.NewModel(req.Version, 10, truth))
		return cand, nil
	}
	opts := baseOpts(dadctest.NewClock(t0))
	opts.HoldoutEvery = 2
	l := newLoop(t, m, dadctest.NewFlagger[int](nil), dadc.EveryN(600), opts)
	for n := range 600 {
		_, err := l.Flag(t.Context(), n, truth(n), "") // accurateOn(0) is wrong on all
		require.NoError(t, err)
	}
	waitIdle(t, l)
	r := l.Stats().Rounds[0]
	assert.True(t, r.Promoted, "no clean test set: the gate checks nothing")
	assert.Nil(t, r.CleanAccuracy)
	assert.Nil(t, r.BaselineCleanAccuracy)
	require.NotNil(t, r.AdversarialAccuracy)
	assert.InDelta(t, 1, *r.AdversarialAccuracy, 1e-12)
	assert.Equal(t, 2, cand.Batches(), "300 held-out samples in chunks of 256")
}

func TestRetrain_ProgressAndPolicyPanic(t *testing.T) {
	progressed := make(chan struct{})
	release := make(chan struct{})
	m := trainable("m0", 0, func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		req.Progress(0.25)
		close(progressed)
		<-release
		return dadctest.NewModel(req.Version, 10, truth), nil
	})
	calls := 0
	policy := dadc.PolicyFunc(func(s dadc.PolicyState) bool {
		calls++
		if calls == 1 {
			panic("policy bug")
		}
		return s.Flags >= 2
	})
	l := newLoop(t, m, dadctest.NewFlagger[int](nil), policy, baseOpts(dadctest.NewClock(t0)))
	res, err := l.Flag(t.Context(), 1, 1, "")
	require.NoError(t, err, "a panicking policy counts as no")
	assert.False(t, res.Retraining)
	res, err = l.Flag(t.Context(), 2, 1, "")
	require.NoError(t, err)
	assert.True(t, res.Retraining)
	<-progressed
	assert.InDelta(t, 0.25, l.Stats().RetrainProgress, 1e-12)
	close(release)
	waitIdle(t, l)
	assert.Zero(t, l.Stats().RetrainProgress)
}

func TestEveryInterval_FiresOnTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := trainable("m0", 0, yields(10))
		opts := baseOpts(nil)
		opts.Now = nil // the bubble's fake clock
		opts.CheckInterval = 2 * time.Millisecond
		l, err := dadc.NewLoop(m, dadctest.NewFlagger[int](nil), dadc.EveryInterval(time.Hour), 10, opts)
		require.NoError(t, err)
		_, err = l.Flag(t.Context(), 1, 1, "")
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 0, l.Stats().Round, "not due yet")
		time.Sleep(time.Hour)
		synctest.Wait()
		require.NoError(t, l.WaitIdle(t.Context()))
		assert.Equal(t, 1, l.Stats().Round)
		assert.True(t, l.Stats().Rounds[0].Promoted)
		require.NoError(t, l.Close(t.Context()))
	})
}

func TestRecovery(t *testing.T) {
	mk := func(id string, input, label, round int, at time.Duration) dadc.Sample[int] {
		return dadc.Sample[int]{Input: input, SampleMeta: dadc.SampleMeta{ID: id, Label: label, ModelLabel: (label + 1) % 10,
			ModelProbabilities: dadctest.Peaked((label+1)%10, 10, "old").Probabilities,
			ModelVersion:       fmt.Sprint("old-r", round), Round: round, CreatedAt: t0.Add(at)}}
	}
	stored := []dadc.Sample[int]{ // out of order, as a store may list them
		mk("e", 105, 5, 2, 5*time.Minute),
		mk("a", 101, 1, 0, 1*time.Minute),
		mk("c", 103, 3, 1, 3*time.Minute),
		mk("b", 102, 1, 0, 2*time.Minute),
		mk("d", 104, 4, 1, 4*time.Minute),
		mk("f", 106, 6, 2, 6*time.Minute),
	}
	f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{Preload: stored})
	var reqs []dadc.TrainRequest[int]
	m := trainable("fresh", 0, func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		reqs = append(reqs, req)
		return dadctest.NewModel(req.Version, 10, truth), nil
	})
	opts := baseOpts(dadctest.NewClock(t0.Add(time.Hour)))
	opts.HoldoutEvery = 3
	l := newLoop(t, m, f, dadc.Manual(), opts)

	st := l.Stats()
	assert.Equal(t, 2, st.Round)
	assert.Equal(t, 6, st.FlaggedTotal)
	assert.Equal(t, []int{0, 2, 0, 1, 1, 1, 1, 0, 0, 0}, st.PerLabel)
	assert.Equal(t, 2, st.HeldOut)
	assert.Equal(t, 4, st.TrainingPool)
	assert.Equal(t, "fresh", st.ModelVersion)
	require.Len(t, st.Rounds, 3)
	for i, want := range []struct {
		flags   int
		version string
		started time.Duration
	}{{2, "old-r0", time.Minute}, {2, "old-r1", 3 * time.Minute}, {2, "fresh", 5 * time.Minute}} {
		r := st.Rounds[i]
		assert.True(t, r.Recovered)
		assert.Equal(t, want.flags, r.Flags, "round %d", i)
		assert.Equal(t, want.version, r.ModelVersion, "round %d", i)
		assert.Equal(t, t0.Add(want.started), r.StartedAt, "round %d", i)
	}
	require.NotNil(t, st.Rounds[0].EndedAt)
	assert.Equal(t, t0.Add(3*time.Minute), *st.Rounds[0].EndedAt)
	assert.Nil(t, st.Rounds[2].EndedAt)

	recent := l.Samples(2)
	require.Len(t, recent, 2)
	assert.Equal(t, "f", recent[0].ID)
	assert.Equal(t, "e", recent[1].ID)

	// A new flag continues round 2; the recovered samples train the next model.
	res, err := l.Flag(t.Context(), 200, 3, "")
	require.NoError(t, err)
	assert.Equal(t, 2, res.Round)
	assert.Equal(t, 7, res.Count)
	require.NoError(t, l.Retrain(t.Context()))
	waitIdle(t, l)
	require.Len(t, reqs, 1)
	var ids []string
	for _, s := range reqs[0].Samples {
		ids = append(ids, s.ID)
	}
	assert.Equal(t, []string{"a", "b", "d", "e", "s-000001"}, ids, "in creation order; c and f (3rd and 6th) held out")
	assert.Equal(t, 2, reqs[0].Round)
	assert.Equal(t, "v3", reqs[0].Version)
}

func TestClose(t *testing.T) {
	gt := newGatedTrainer()
	f := dadctest.NewFlagger[int](nil)
	m := gt.model("m0")
	l, err := dadc.NewLoop[int](m, f, dadc.Manual(), 10, baseOpts(dadctest.NewClock(t0)))
	require.NoError(t, err)
	events, _ := l.Subscribe(64)
	_, err = l.Flag(t.Context(), 1, 1, "")
	require.NoError(t, err)
	require.NoError(t, l.Retrain(t.Context()))
	<-gt.started

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, l.Close(ctx), "Close cancels the held retrain")
	require.NoError(t, l.Close(ctx), "a second Close is a no-op")

	st := l.Stats()
	assert.False(t, st.Retraining)
	assert.Contains(t, st.Rounds[0].Error, "cancelled because the loop is closing")
	assert.False(t, st.Rounds[0].Promoted)
	assert.Equal(t, 1, f.Flushes())
	assert.False(t, f.Closed(), "whoever constructs the flagger closes it")
	assert.True(t, m.Closed(), "the served model is released at Close")
	assert.False(t, m.ClosedWhileInUse())

	var kinds []dadc.EventKind
	for e := range events { // the channel is closed by Close
		kinds = append(kinds, e.Kind)
	}
	assert.Equal(t, []dadc.EventKind{dadc.EventFlagged, dadc.EventRetrainStarted, dadc.EventRetrainFailed}, kinds)

	_, err = l.Flag(t.Context(), 1, 1, "")
	assert.ErrorIs(t, err, dadc.ErrClosed)
	_, err = l.Predict(t.Context(), 1)
	assert.ErrorIs(t, err, dadc.ErrClosed)
	assert.ErrorIs(t, l.Retrain(t.Context()), dadc.ErrClosed)
	ch, cancelSub := l.Subscribe(1)
	_, open := <-ch
	assert.False(t, open, "subscribing after Close gives a closed channel")
	cancelSub()
	assert.NoError(t, l.WaitIdle(t.Context()))
}

func TestClose_WaitsForInFlightFlag(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{Hook: func(ctx context.Context, call int, s dadc.Sample[int]) error {
		close(entered)
		<-release
		return nil
	}})
	l, err := dadc.NewLoop[int](dadctest.NewModel("m0", 10, accurateOn(0)), f, dadc.Manual(), 10, baseOpts(dadctest.NewClock(t0)))
	require.NoError(t, err)

	flagDone := make(chan error, 1)
	go func() {
		_, err := l.Flag(context.Background(), 1, 1, "")
		flagDone <- err
	}()
	<-entered

	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err = l.Close(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "call Close again")
	assert.Zero(t, f.Flushes(), "the flagger is not flushed under an in-flight Flag")
	_, err = l.Flag(t.Context(), 2, 1, "")
	assert.ErrorIs(t, err, dadc.ErrClosed, "no new calls once Close began")

	close(release)
	require.NoError(t, <-flagDone, "the in-flight flag completes and is acknowledged")
	require.NoError(t, l.Close(t.Context()))
	assert.Equal(t, 1, f.Flushes(), "Close flushes once the in-flight flag is done")
	assert.Equal(t, 1, f.Len())
	assert.Equal(t, 1, l.Stats().FlaggedTotal)
}

func TestClose_ReportsFlushError(t *testing.T) {
	f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{FlushErr: errors.New("hub down")})
	l, err := dadc.NewLoop[int](dadctest.NewModel("m0", 10, truth), f, dadc.Manual(), 10, baseOpts(dadctest.NewClock(t0)))
	require.NoError(t, err)
	err = l.Close(t.Context())
	require.ErrorContains(t, err, "dadc: close: flushing the flagger: hub down")
	assert.False(t, f.Closed(), "whoever constructs the flagger closes it")
}

func TestSubscribe_SlowSubscriberMissesEvents(t *testing.T) {
	l := newLoop(t, dadctest.NewModel("m0", 10, accurateOn(50)), dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
	slow, cancelSlow := l.Subscribe(2)
	fast, cancelFast := l.Subscribe(100)
	defer cancelFast()
	for n := range 10 {
		_, err := l.Flag(t.Context(), n*10, truth(n*10), "") // right below 50, wrong from 50
		require.NoError(t, err)
	}
	var got []dadc.Event
	for e := range drainEvents(fast) {
		got = append(got, e)
	}
	require.Len(t, got, 10)
	assert.Equal(t, dadc.EventAttempt, got[0].Kind)
	assert.Equal(t, dadc.EventFlagged, got[9].Kind)
	assert.Equal(t, "s-000005", got[9].SampleID)
	assert.Equal(t, 5, got[9].FlaggedTotal)
	assert.Equal(t, "m0", got[9].ModelVersion)
	assert.Equal(t, t0, got[9].Time)

	assert.Len(t, slow, 2, "the slow subscriber kept what fit")
	assert.EqualValues(t, 8, l.Stats().EventsDropped)
	cancelSlow()
	cancelSlow()
	n := 0
	for range slow {
		n++
	}
	assert.Equal(t, 2, n, "buffered events stay readable after cancel")
}

func TestStats_JSON(t *testing.T) {
	l := newLoop(t, trainable("m0", 0, yields(5)), dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
	_, err := l.Flag(t.Context(), 1, 1, "")
	require.NoError(t, err)
	require.NoError(t, l.Retrain(t.Context()))
	waitIdle(t, l)
	b, err := json.Marshal(l.Stats())
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	for _, key := range []string{"model_version", "round", "flagged_total", "attempts", "model_error_rate", "per_label", "retraining", "rounds"} {
		assert.Contains(t, got, key)
	}
	rounds := got["rounds"].([]any)
	require.Len(t, rounds, 2)
	r0 := rounds[0].(map[string]any)
	assert.Equal(t, "v1", r0["candidate"])
	assert.Equal(t, true, r0["promoted"])
	assert.Nil(t, r0["clean_accuracy"], "no clean test set: null, not 0")
	assert.Contains(t, r0, "ended_at")
	r1 := rounds[1].(map[string]any)
	assert.NotContains(t, r1, "ended_at")
	assert.Equal(t, "v1", r1["model_version"])
	assert.Len(t, got["per_label"], 10)

	e, err := json.Marshal(dadc.Event{Kind: dadc.EventFlagged, SampleID: "x"})
	require.NoError(t, err)
	assert.Contains(t, string(e), `"kind":"flagged"`)
	assert.Contains(t, string(e), `"sample_id":"x"`)
}

func TestStats_IsACopy(t *testing.T) {
	l := newLoop(t, dadctest.NewModel("m0", 10, accurateOn(0)), dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
	res, err := l.Flag(t.Context(), 1, 1, "")
	require.NoError(t, err)
	st := l.Stats()
	st.PerLabel[1] = 99
	st.Rounds[0].Flags = 99
	s := l.Samples(1)
	s[0].ModelProbabilities[0] = 99
	res.Sample.ModelProbabilities[1] = 99
	assert.Equal(t, 1, l.Stats().PerLabel[1])
	assert.Equal(t, 1, l.Stats().Rounds[0].Flags)
	assert.NotEqual(t, 99.0, l.Samples(1)[0].ModelProbabilities[0])
}

func TestFlag_RejectsDuplicateIDs(t *testing.T) {
	opts := baseOpts(dadctest.NewClock(t0))
	opts.NewID = func() string { return "same" }
	f := dadctest.NewFlagger[int](nil)
	l := newLoop(t, dadctest.NewModel("m0", 10, accurateOn(0)), f, dadc.Manual(), opts)
	_, err := l.Flag(t.Context(), 1, 1, "")
	require.NoError(t, err)
	_, err = l.Flag(t.Context(), 2, 1, "")
	require.ErrorContains(t, err, "NewID returned \"same\"")
	assert.Equal(t, 1, l.Stats().FlaggedTotal)
	assert.Equal(t, 1, f.Calls())
}

func TestRetrainAndWaitIdle_HonourContext(t *testing.T) {
	gt := newGatedTrainer()
	l := newLoop(t, gt.model("m0"), dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
	_, err := l.Flag(t.Context(), 1, wrongLabel(1), "")
	require.NoError(t, err)

	done, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, l.Retrain(done), context.Canceled)
	assert.Equal(t, 0, l.Stats().Round, "nothing started")

	require.NoError(t, l.WaitIdle(done), "idle: returns at once even with a done context")
	require.NoError(t, l.Retrain(t.Context()))
	short, cancelShort := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancelShort()
	err = l.WaitIdle(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, l.Stats().Retraining, "the retrain goes on; only the wait ended")
	close(gt.release)
	waitIdle(t, l)
}

func TestSamples_Limit(t *testing.T) {
	l := newLoop(t, dadctest.NewModel("m0", 10, accurateOn(0)), dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
	assert.Empty(t, l.Samples(3))
	for n := range 5 {
		_, err := l.Flag(t.Context(), n, wrongLabel(n), "")
		require.NoError(t, err)
	}
	inputs := func(ss []dadc.Sample[int]) []int {
		var out []int
		for _, s := range ss {
			out = append(out, s.Input)
		}
		return out
	}
	for _, tt := range []struct {
		limit int
		want  []int
	}{{0, []int{4, 3, 2, 1, 0}}, {-1, []int{4, 3, 2, 1, 0}}, {2, []int{4, 3}}, {5, []int{4, 3, 2, 1, 0}}, {50, []int{4, 3, 2, 1, 0}}} {
		assert.Equal(t, tt.want, inputs(l.Samples(tt.limit)), "limit %d", tt.limit)
	}
}

func TestSubscribe_DefaultBuffer(t *testing.T) {
	l := newLoop(t, dadctest.NewModel("m0", 10, truth), dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
	ch, cancel := l.Subscribe(0)
	defer cancel()
	for n := range 100 {
		_, err := l.Flag(t.Context(), n, truth(n), "")
		require.NoError(t, err)
	}
	assert.Equal(t, 64, len(ch))
	assert.EqualValues(t, 36, l.Stats().EventsDropped)
}

// panickyVersion is a model whose Version panics.
type panickyVersion struct{ *dadctest.FakeModel[int] }

func (panickyVersion) Version() string { panic("no version") }

func TestRetrain_UserCodePanicsNeverCrash(t *testing.T) {
	t.Run("candidate Version", func(t *testing.T) {
		m := trainable("m0", 0, func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
			return panickyVersion{dadctest.NewModel(req.Version, 10, truth)}, nil
		})
		l := newLoop(t, m, dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(dadctest.NewClock(t0)))
		_, err := l.Flag(t.Context(), 1, wrongLabel(1), "")
		require.NoError(t, err)
		require.NoError(t, l.Retrain(t.Context()))
		waitIdle(t, l)
		r := l.Stats().Rounds[0]
		assert.False(t, r.Promoted)
		assert.Contains(t, r.Error, "retrain panicked: no version")
		assert.Equal(t, "m0", l.Model().Version())
	})
	for _, tt := range []struct {
		name       string
		newVersion func(int) string
		want       string
	}{
		{"NewVersion empty", func(int) string { return "" }, "returned an empty version"},
		{"NewVersion panics", func(int) string { panic("bad clock") }, "Options.NewVersion(1) panicked: bad clock"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := baseOpts(nil)
				opts.Now = nil // the bubble's fake clock
				opts.NewVersion = tt.newVersion
				opts.CheckInterval = time.Millisecond // the ticker asks the policy too
				l := newLoop(t, trainable("m0", 0, yields(5)), dadctest.NewFlagger[int](nil), dadc.EveryN(1), opts)
				res, err := l.Flag(t.Context(), 1, wrongLabel(1), "")
				require.NoError(t, err, "the flag is stored even though no retrain can start")
				assert.True(t, res.Fooled)
				assert.False(t, res.Retraining)
				time.Sleep(10 * time.Millisecond) // ten ticks of the fake clock, each asking the policy
				synctest.Wait()
				require.ErrorContains(t, l.Retrain(t.Context()), tt.want)
				st := l.Stats()
				assert.Equal(t, 0, st.Round, "nothing changed")
				assert.Equal(t, 1, st.FlaggedTotal)
			})
		})
	}
}

func TestNewLoop_RefusesAbsurdStoredRound(t *testing.T) {
	f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{Preload: []dadc.Sample[int]{{SampleMeta: dadc.SampleMeta{ID: "a", Label: 1, Round: 1 << 30}}}})
	_, err := dadc.NewLoop[int](dadctest.NewModel("m0", 10, truth), f, dadc.Manual(), 10, nil)
	require.ErrorContains(t, err, "the store is damaged")
}

// TestClose_LeavesNoGoroutines: loops that retrained, ticked and were closed
// leave nothing running.
//
// It runs in a synctest bubble: once every goroutine of the bubble has
// exited or is blocked (synctest.Wait), the bubble holds as many goroutines
// as before (goroutines of other tests, outside the bubble, are not
// counted); and synctest.Test itself fails if a goroutine of the loops stays
// blocked forever.
func TestClose_LeavesNoGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := bubbleGoroutines(t)
		require.Positive(t, before, "the test's own goroutine is in the bubble")
		for range 5 {
			opts := baseOpts(nil)
			opts.Now = nil // the bubble's fake clock
			opts.CheckInterval = time.Millisecond
			gt := newGatedTrainer()
			l, err := dadc.NewLoop[int](gt.model("m0"), dadctest.NewFlagger[int](nil), dadc.EveryN(1), 10, opts)
			require.NoError(t, err)
			_, cancel := l.Subscribe(1)
			_, err = l.Flag(t.Context(), 1, wrongLabel(1), "")
			require.NoError(t, err)
			<-gt.started // a retrain is running when Close is called
			require.NoError(t, l.Close(t.Context()))
			cancel()
		}
		synctest.Wait()
		if n := bubbleGoroutines(t); n > before {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines in the bubble: %d before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// bubbleGoroutines counts the goroutines of the caller's synctest bubble, from
// the headers of a stack dump ("goroutine 7 [chan receive, synctest bubble 3]:").
func bubbleGoroutines(t *testing.T) int {
	t.Helper()
	buf := make([]byte, 1<<10)
	self := string(buf[:runtime.Stack(buf, false)])
	_, rest, ok := strings.Cut(self, "synctest bubble ")
	require.True(t, ok, "not in a synctest bubble:\n%s", self)
	id, _, _ := strings.Cut(rest, "]")
	tag := "synctest bubble " + id + "]"
	buf = make([]byte, 1<<20)
	n := 0
	for _, block := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		header, _, _ := strings.Cut(block, "\n")
		if strings.Contains(header, tag) {
			n++
		}
	}
	return n
}

// TestPromotionEvent_HistoryIsDurableFirst: whoever hears of a promotion may
// rely on a restart showing it: when the event arrives, the stored history
// already holds the decision (the app-level restart test kills the process
// right after the event).
func TestPromotionEvent_HistoryIsDurableFirst(t *testing.T) {
	dir := t.TempDir()
	clock := dadctest.NewClock(t0)
	next := learnsAll(900)
	opts := storeOpts(t, clock, dir, rangeLoader(next))
	l := newLoop(t, newRangeModel("m0", 900, 0, 0, next), dadctest.NewFlagger[int](nil), dadc.Manual(), opts)
	events, cancel := l.Subscribe(16)
	defer cancel()
	for i := 2000; i < 2012; i++ {
		_, err := l.Flag(t.Context(), i, truth(i), "")
		require.NoError(t, err)
	}
	require.NoError(t, l.Retrain(t.Context()))
	for ev := range events {
		if ev.Kind != dadc.EventModelPromoted {
			continue
		}
		h, err := opts.Store.(dadc.HistoryStore).LoadHistory(t.Context())
		require.NoError(t, err)
		require.NotNil(t, h)
		require.Len(t, h.Rounds, 2, "the promotion opened round 1 in the stored history")
		require.NotEmpty(t, h.Rounds[0].Retrains)
		assert.Equal(t, dadc.DecisionPromoted, h.Rounds[0].Retrains[0].Decision)
		assert.NotNil(t, h.ReferenceCleanAccuracy)
		return
	}
	t.Fatal("the event stream ended without a promotion")
}

// TestNewLoop_NilOptionsMeanTheDefaults: only the parts and the number of
// classes are required.
func TestNewLoop_NilOptionsMeanTheDefaults(t *testing.T) {
	l, err := dadc.NewLoop[int](dadctest.NewModel("m0", 3, func(n int) int { return n % 3 }), dadctest.NewFlagger[int](nil), dadc.Manual(), 3, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close(context.Background())) }()
	res, err := l.Flag(t.Context(), 4, 2, "s")
	require.NoError(t, err)
	assert.True(t, res.Fooled)
	assert.Len(t, l.Stats().PerLabel, 3)
}
