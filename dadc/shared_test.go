package dadc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

func sharedSample(id string, label, round int) dadc.Sample[int] {
	return dadc.Sample[int]{SampleMeta: dadc.SampleMeta{ID: id, Label: label, ModelLabel: (label + 1) % 10, Round: round,
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, Input: label}
}

func TestLoop_IngestStoresCountsOnceAndAsksThePolicy(t *testing.T) {
	clock := dadctest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := dadctest.NewFlagger[int](nil)
	next := dadctest.NewModel("v1", 10, accurateOn(10))
	m := trainable("v0", 0, func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) { return next, nil })
	l := newLoop(t, m, f, dadc.EveryN(3), baseOpts(clock))
	ctx := t.Context()

	added, err := l.Ingest(ctx, []dadc.Sample[int]{sharedSample("a", 1, 0), sharedSample("b", 2, 0)})
	require.NoError(t, err)
	assert.Equal(t, 2, added)
	assert.Equal(t, 2, f.Len(), "stored with the flagger")
	assert.False(t, l.Stats().Retraining, "2 < EveryN(3)")

	added, err = l.Ingest(ctx, []dadc.Sample[int]{sharedSample("a", 1, 0), sharedSample("c", 3, 5)})
	require.NoError(t, err)
	assert.Equal(t, 1, added, "a is known")
	st := l.Stats()
	assert.Equal(t, 3, st.FlaggedTotal)
	assert.Equal(t, 3, st.Rounds[0].Flags, "a later round counts in the current one")
	assert.Equal(t, []int{0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, st.PerLabel)
	waitIdle(t, l)
	assert.Equal(t, "v1", l.Stats().ModelVersion, "the third sample fired EveryN(3): retrained and promoted")
}

func TestLoop_IngestRefusesBadSamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    dadc.Sample[int]
		want string
	}{
		{"empty id", sharedSample("", 1, 0), "empty ID"},
		{"label", sharedSample("x", 10, 0), "label out of range"},
		{"round", sharedSample("x", 1, -1), "round -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := dadctest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			f := dadctest.NewFlagger[int](nil)
			l := newLoop(t, dadctest.NewModel("v0", 10, accurateOn(0)), f, dadc.Manual(), baseOpts(clock))
			added, err := l.Ingest(t.Context(), []dadc.Sample[int]{sharedSample("ok", 1, 0), tc.s})
			require.ErrorContains(t, err, tc.want)
			assert.Equal(t, 1, added)
			assert.Equal(t, 1, l.Stats().FlaggedTotal)
			assert.Equal(t, 1, f.Len())
		})
	}
}

func TestLoop_AdoptSwapsModelRoundAndHistory(t *testing.T) {
	clock := dadctest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	old := dadctest.NewModel("v0", 10, accurateOn(0))
	l := newLoop(t, old, dadctest.NewFlagger[int](nil), dadc.Manual(), baseOpts(clock))
	ctx := t.Context()
	res, err := l.Flag(ctx, 3, 7, "s")
	require.NoError(t, err)
	require.True(t, res.Fooled)
	require.NoError(t, err)

	err = l.Adopt(ctx, dadctest.NewModel("other", 10, accurateOn(0)), dadc.ModelCard{Version: "v1", Round: 1}, nil)
	require.ErrorContains(t, err, "version")
	assert.Equal(t, "v0", l.Stats().ModelVersion)

	ref := 0.99
	hist := &dadc.History{ReferenceCleanAccuracy: &ref, Rounds: []dadc.RoundStats{
		{Round: 0, ModelVersion: "v0", Flags: 40, Promoted: true},
		{Round: 1, ModelVersion: "v1"},
	}}
	next := dadctest.NewModel("v1", 10, accurateOn(10))
	require.NoError(t, l.Adopt(ctx, next, dadc.ModelCard{Version: "v1", Round: 1, Parent: "v0"}, hist))
	st := l.Stats()
	assert.Equal(t, "v1", st.ModelVersion)
	assert.Equal(t, 1, st.Round)
	require.Len(t, st.Rounds, 2)
	assert.Equal(t, 40, st.Rounds[0].Flags, "the publisher's rounds")
	assert.NotNil(t, st.Rounds[0].EndedAt)
	assert.Equal(t, 1, st.FlaggedTotal, "this server's own flags")
	assert.True(t, old.Closed(), "the replaced model is released")
	p, err := l.Predict(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, "v1", p.ModelVersion)

	// The next flag counts in the adopted round.
	res, err = l.Flag(ctx, 5, 9, "s")
	require.NoError(t, err)
	require.True(t, res.Fooled)
	require.NoError(t, err)
	assert.Equal(t, 1, l.Stats().Rounds[1].Flags)

	// The same version again changes nothing; the given model is closed.
	again := dadctest.NewModel("v1", 10, accurateOn(10))
	require.NoError(t, l.Adopt(ctx, again, dadc.ModelCard{Version: "v1", Round: 1}, hist))
	assert.True(t, again.Closed())
	assert.False(t, next.Closed())

	// Without a history the rounds are extended up to the card's.
	require.NoError(t, l.Adopt(ctx, dadctest.NewModel("v3", 10, accurateOn(0)), dadc.ModelCard{Version: "v3", Round: 3}, nil))
	st = l.Stats()
	assert.Equal(t, 3, st.Round)
	assert.Len(t, st.Rounds, 4)
	assert.Equal(t, "v3", st.Rounds[3].ModelVersion)
}
