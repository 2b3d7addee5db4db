package dadc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

// rangeModel is right on the clean inputs n < K and on the adversarial
// inputs n in [Lo, Hi) (n >= 2000), wrong on the others. It exports itself as
// JSON, so that a model store can keep it and rangeLoader bring it back.
type rangeModel struct {
	*dadctest.FakeModel[int]
	K, Lo, Hi int
}

func (m *rangeModel) Export(ctx context.Context, w io.Writer) error {
	return json.NewEncoder(w).Encode(struct{ K, Lo, Hi int }{m.K, m.Lo, m.Hi})
}

// newRangeModel returns a rangeModel whose Train gives the candidate next(req).
func newRangeModel(name string, k, lo, hi int, next func(req dadc.TrainRequest[int]) (k, lo, hi int)) *rangeModel {
	m := &rangeModel{K: k, Lo: lo, Hi: hi}
	m.FakeModel = dadctest.NewModel(name, 10, func(n int) int {
		if n < k || (n >= 2000 && n >= lo && n < hi) {
			return truth(n)
		}
		return (truth(n) + 1) % 10
	})
	m.TrainFunc = func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		k, lo, hi := next(req)
		return newRangeModel(req.Version, k, lo, hi, next), nil
	}
	return m
}

func rangeLoader(next func(req dadc.TrainRequest[int]) (k, lo, hi int)) dadc.ModelLoader[int] {
	return dadc.LoaderFunc[int](func(_ context.Context, card dadc.ModelCard, r io.Reader) (dadc.Model[int], error) {
		var p struct{ K, Lo, Hi int }
		if err := json.NewDecoder(r).Decode(&p); err != nil {
			return nil, err
		}
		return newRangeModel(card.Version, p.K, p.Lo, p.Hi, next), nil
	})
}

// learnsAll trains candidates that keep clean accuracy k and learn every
// adversarial input from 2000 up to the largest trained on, plus 100 (so
// they generalise to the round's held-out samples).
func learnsAll(k int) func(req dadc.TrainRequest[int]) (int, int, int) {
	return func(req dadc.TrainRequest[int]) (int, int, int) {
		hi := 0
		for _, s := range req.Samples {
			hi = max(hi, s.Input+100)
		}
		return k, 2000, hi
	}
}

// flagRange submits the adversarial inputs [from, from+n) with their right labels.
func flagRange(t *testing.T, l *dadc.Loop[int], from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		res, err := l.Flag(t.Context(), i, truth(i), "")
		require.NoError(t, err)
		require.True(t, res.Fooled, "input %d should fool model %s", i, res.Prediction.ModelVersion)
	}
}

// storeOpts returns deterministic options with the default gate, a clean
// set of 1000 and a LocalStore in dir.
func storeOpts(t *testing.T, clock *dadctest.Clock, dir string, loader dadc.ModelLoader[int]) *dadc.Options[int] {
	store, err := dadc.NewLocalStore(dir, &dadc.LocalStoreOptions{Keep: 3})
	require.NoError(t, err)
	o := baseOpts(clock)
	o.Gate = nil
	o.CleanTest = cleanSet(1000)
	o.HoldoutEvery = 2
	o.Store = store
	o.Loader = loader
	return o
}

// TestRestart_ServesThePromotedModelWithTheSameStats: promote, drop the Loop
// without Close (as a crash would), start a new Loop on the same store and
// flagger: the promoted version serves, still gets the flagged inputs right,
// and Stats are the same.
func TestRestart_ServesThePromotedModelWithTheSameStats(t *testing.T) {
	dir := t.TempDir()
	clock := dadctest.NewClock(t0)
	flagger := dadctest.NewFlagger[int](nil) // survives the "crash", like a durable flagger
	next := learnsAll(900)
	first := newRangeModel("m0", 900, 0, 0, next)
	l1, err := dadc.NewLoop(first, flagger, dadc.Manual(), 10, storeOpts(t, clock, dir, rangeLoader(next)))
	require.NoError(t, err)
	for n := range 3 { // attempts
		_, err := l1.Flag(t.Context(), n, truth(n), "")
		require.NoError(t, err)
		clock.Advance(time.Second)
	}
	for i := 2000; i < 2012; i++ {
		_, err := l1.Flag(t.Context(), i, truth(i), "")
		require.NoError(t, err)
		clock.Advance(time.Second)
	}
	require.NoError(t, l1.Retrain(t.Context()))
	waitIdle(t, l1)
	before := l1.Stats()
	require.Equal(t, 1, before.Round)
	require.Equal(t, "v1", before.ModelVersion)
	require.True(t, before.Rounds[0].Promoted, "%+v", before.Rounds[0])
	// l1 is dropped here without Close.

	second := newRangeModel("m0", 900, 0, 0, next)
	l2 := newLoop(t, second, flagger, dadc.Manual(), storeOpts(t, clock, dir, rangeLoader(next)))
	after := l2.Stats()
	assert.Equal(t, before, after)
	assert.Equal(t, "v1", l2.Model().Version())
	assert.True(t, second.Closed(), "the given model is closed: the stored one serves")
	for i := 2000; i < 2012; i++ {
		p, err := l2.Predict(t.Context(), i)
		require.NoError(t, err)
		assert.Equal(t, truth(i), p.Label, "the restored model still gets flagged input %d right", i)
	}

	store, err := dadc.NewLocalStore(dir, nil)
	require.NoError(t, err)
	cards, err := store.List(t.Context())
	require.NoError(t, err)
	require.Len(t, cards, 2)
	assert.Equal(t, "m0", cards[0].Version)
	c := cards[1]
	assert.Equal(t, "v1", c.Version)
	assert.Equal(t, 1, c.Round)
	assert.Equal(t, "m0", c.Parent)
	assert.Equal(t, 6, c.TrainSamples)
	assert.Equal(t, 6, c.HeldOutSamples)
	require.NotNil(t, c.CleanAccuracy)
	assert.InDelta(t, 0.9, *c.CleanAccuracy, 1e-12)
	require.NotNil(t, c.AdversarialAccuracy)
	assert.InDelta(t, 1, *c.AdversarialAccuracy, 1e-12)
	assert.NotEmpty(t, c.Reasons)
}

// TestRestart_ServeGivenModelForcesIt: an operator's forced model serves, is
// logged and becomes the store's latest version.
func TestRestart_ServeGivenModelForcesIt(t *testing.T) {
	dir := t.TempDir()
	clock := dadctest.NewClock(t0)
	next := learnsAll(900)
	l1 := newLoop(t, newRangeModel("m0", 900, 0, 0, next), dadctest.NewFlagger[int](nil), dadc.Manual(), storeOpts(t, clock, dir, rangeLoader(next)))
	flagRange(t, l1, 2000, 12)
	require.NoError(t, l1.Retrain(t.Context()))
	waitIdle(t, l1)
	require.Equal(t, "v1", l1.Stats().ModelVersion)

	var logs syncBuffer
	opts := storeOpts(t, clock, dir, rangeLoader(next))
	opts.ServeGivenModel = true
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	l2 := newLoop(t, newRangeModel("forced", 900, 0, 0, next), dadctest.NewFlagger[int](nil), dadc.Manual(), opts)
	assert.Equal(t, "forced", l2.Model().Version())
	assert.Contains(t, logs.String(), "serving the given model, not the store's latest")
	latest, err := opts.Store.Latest(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "forced", latest.Version)
}

func TestNewLoop_StoredModelNeedsALoader(t *testing.T) {
	dir := t.TempDir()
	clock := dadctest.NewClock(t0)
	next := learnsAll(900)
	l1 := newLoop(t, newRangeModel("m0", 900, 0, 0, next), dadctest.NewFlagger[int](nil), dadc.Manual(), storeOpts(t, clock, dir, nil))
	require.NoError(t, l1.Close(t.Context()))
	given := newRangeModel("m0", 900, 0, 0, next)
	_, err := dadc.NewLoop(given, dadctest.NewFlagger[int](nil), dadc.Manual(), 10, storeOpts(t, clock, dir, nil))
	require.ErrorIs(t, err, dadc.ErrNoLoader)
	assert.Contains(t, err.Error(), "set Options.Loader")
	assert.False(t, given.Closed(), "a failed NewLoop leaves the given model to the caller")
}

func TestNewLoop_StoreNeedsAnExporter(t *testing.T) {
	o := storeOpts(t, dadctest.NewClock(t0), t.TempDir(), nil)
	_, err := dadc.NewLoop[int](dadctest.NewModel("plain", 10, truth), dadctest.NewFlagger[int](nil), dadc.Manual(), 10, o)
	require.ErrorIs(t, err, dadc.ErrNotExportable)
}

// TestGate_NoRatchet: every candidate loses 0.2 clean points against the
// model it replaces while learning its round. Measured against the serving
// model (the old gate) each would pass a 0.3-point budget; measured against
// the fixed reference, the second and every later one is rejected, round
// after round, with the reason recorded.
func TestGate_NoRatchet(t *testing.T) {
	clock := dadctest.NewClock(t0)
	k := 900
	var ks []int
	chain := func(req dadc.TrainRequest[int]) (int, int, int) {
		_, lo, hi := learnsAll(0)(req)
		k -= 2 // 0.2 points below the previous candidate
		ks = append(ks, k)
		return k, lo, hi
	}
	o := storeOpts(t, clock, t.TempDir(), nil)
	l := newLoop(t, newRangeModel("m0", 900, 0, 0, chain), dadctest.NewFlagger[int](nil), dadc.Manual(), o)
	for r := range 6 {
		flagRange(t, l, 2000+1000*r, 12) // beyond what any candidate learned: fools the serving model
		require.NoError(t, l.Retrain(t.Context()))
		waitIdle(t, l)
	}
	st := l.Stats()
	require.NotNil(t, st.ReferenceCleanAccuracy)
	assert.InDelta(t, 0.9, *st.ReferenceCleanAccuracy, 1e-12, "the reference never moves")
	assert.Equal(t, 1, st.Round, "only the first candidate (-0.2 points) was promoted")
	assert.Equal(t, []int{898, 896, 894, 892, 890, 888}, ks)
	require.Len(t, st.Rounds, 2)
	assert.True(t, st.Rounds[0].Promoted)
	rejected := st.Rounds[1].Retrains
	require.Len(t, rejected, 5)
	for i, r := range rejected {
		assert.Equal(t, dadc.DecisionRejected, r.Decision)
		require.NotNil(t, r.Gate)
		require.NotNil(t, r.Gate.Clean)
		assert.InDelta(t, 0.898, r.Gate.Clean.Serving, 1e-12)
		assert.InDelta(t, 0.9, r.Gate.Clean.Reference, 1e-12)
		want := fmt.Sprintf("FAIL clean: %.2f%% < fixed reference 90.00%% - 0.30 points", float64(ks[i+1])/10)
		assert.True(t, slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.HasPrefix(s, want) }), "reasons %q lack %q", r.Reasons, want)
	}
	assert.Contains(t, st.Rounds[1].Error, "rejected: clean: 88.80% < fixed reference 90.00%")
}

// TestGate_EarlierRoundRegressionRejected: a candidate that learns the new
// round but forgets an earlier round's held-out set is rejected, with the
// round and the numbers in its reasons; the events carry them too.
func TestGate_EarlierRoundRegressionRejected(t *testing.T) {
	clock := dadctest.NewClock(t0)
	forget := false
	next := func(req dadc.TrainRequest[int]) (int, int, int) {
		_, lo, hi := learnsAll(0)(req)
		if forget {
			lo = 3000 // right on round 1's inputs only
		}
		return 900, lo, hi
	}
	o := storeOpts(t, clock, t.TempDir(), nil)
	l := newLoop(t, newRangeModel("m0", 900, 0, 0, next), dadctest.NewFlagger[int](nil), dadc.Manual(), o)
	events, cancel := l.Subscribe(64)
	defer cancel()
	flagRange(t, l, 2000, 12)
	require.NoError(t, l.Retrain(t.Context()))
	waitIdle(t, l)
	require.Equal(t, 1, l.Stats().Round)

	forget = true
	flagRange(t, l, 3000, 12)
	require.NoError(t, l.Retrain(t.Context()))
	waitIdle(t, l)
	st := l.Stats()
	assert.Equal(t, 1, st.Round, "rejected: the round stays")
	require.NotNil(t, st.Rounds[0].HeldOutReference)
	assert.InDelta(t, 1, *st.Rounds[0].HeldOutReference, 1e-12)
	r := st.Rounds[1].Retrains[0]
	assert.Equal(t, dadc.DecisionRejected, r.Decision)
	assert.Contains(t, r.Reasons, "FAIL round 0 held-out: 0/6 (0.0%) < reference 6/6 (100.0%) - 1 sample (2.0 points is less than 1 of 6)")
	assert.Contains(t, r.Reasons, "ok gain: held-out 6/6 vs serving 0/6; 6 won, 0 lost; one-sided exact McNemar p=0.0156 < 0.05")
	var rejectedEvent *dadc.Event
	for e := range drain(events) {
		if e.Kind == dadc.EventModelRejected {
			rejectedEvent = &e
		}
	}
	require.NotNil(t, rejectedEvent)
	assert.Equal(t, r.Reasons, rejectedEvent.Reasons)
	assert.Contains(t, rejectedEvent.Message, "round 0 held-out: 0/6")
}

func drain(ch <-chan dadc.Event) func(func(dadc.Event) bool) {
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

// TestTicker_EveryIntervalAndHistorySaves runs the Loop's ticker on the
// synctest clock: the time policy fires on the tick once due, and attempts
// made after the last retrain reach the history store on the next tick.
func TestTicker_EveryIntervalAndHistorySaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		next := learnsAll(900)
		o := storeOpts(t, nil, dir, rangeLoader(next))
		o.Now = nil // the bubble's fake time.Now
		o.CheckInterval = time.Second
		l, err := dadc.NewLoop(newRangeModel("m0", 900, 0, 0, next), dadctest.NewFlagger[int](nil), dadc.EveryInterval(time.Hour), 10, o)
		require.NoError(t, err)
		flagRange(t, l, 2000, 12)
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		assert.Equal(t, 0, l.Stats().Round, "not due yet")
		time.Sleep(31 * time.Minute)
		synctest.Wait()
		require.NoError(t, l.WaitIdle(t.Context()))
		st := l.Stats()
		assert.Equal(t, 1, st.Round)
		assert.True(t, st.Rounds[0].Promoted)

		_, err = l.Flag(t.Context(), 1, truth(1), "") // an attempt
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		h, err := o.Store.(dadc.HistoryStore).LoadHistory(t.Context())
		require.NoError(t, err)
		require.Len(t, h.Rounds, 2)
		assert.Equal(t, 1, h.Rounds[1].Attempts, "saved on the tick, before any Close")
		require.NoError(t, l.Close(t.Context()))
	})
}
