package dadc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

func newValidations(t *testing.T, k int, samples ...dadc.SampleMeta) *dadc.Validations {
	t.Helper()
	v, err := dadc.NewValidations(k, 10)
	require.NoError(t, err)
	for _, s := range samples {
		v.AddSample(s)
	}
	return v
}

func verdict(id, session string, vd dadc.Verdict) dadc.ValidationRecord {
	return dadc.ValidationRecord{Kind: dadc.RecordVerdict, SampleID: id, Session: session, Verdict: vd}
}

func retraction(id, session string) dadc.ValidationRecord {
	return dadc.ValidationRecord{Kind: dadc.RecordRetraction, SampleID: id, Session: session}
}

func TestValidationsRules(t *testing.T) {
	ctx := context.Background()
	label := 3
	bad := 12
	tests := []struct {
		name    string
		records []dadc.ValidationRecord // applied in order; only the last may fail
		wantErr error
		want    dadc.ValidationStatus
	}{
		{"one correct of two is pending", []dadc.ValidationRecord{verdict("a", "v1", dadc.VerdictCorrect)}, nil, dadc.StatusPending},
		{"two correct verify", []dadc.ValidationRecord{verdict("a", "v1", dadc.VerdictCorrect), verdict("a", "v2", dadc.VerdictCorrect)}, nil, dadc.StatusVerified},
		{"incorrect and flagged reject together", []dadc.ValidationRecord{
			{Kind: dadc.RecordVerdict, SampleID: "a", Session: "v1", Verdict: dadc.VerdictIncorrect, Label: &label},
			verdict("a", "v2", dadc.VerdictFlagged)}, nil, dadc.StatusRejected},
		{"own sample is refused", []dadc.ValidationRecord{verdict("a", "writer", dadc.VerdictCorrect)}, dadc.ErrOwnSample, dadc.StatusPending},
		{"second verdict is refused", []dadc.ValidationRecord{verdict("a", "v1", dadc.VerdictCorrect), verdict("a", "v1", dadc.VerdictIncorrect)}, dadc.ErrAlreadyValidated, dadc.StatusPending},
		{"unknown sample", []dadc.ValidationRecord{verdict("zz", "v1", dadc.VerdictCorrect)}, dadc.ErrUnknownSample, dadc.StatusPending},
		{"unknown verdict", []dadc.ValidationRecord{verdict("a", "v1", "maybe")}, dadc.ErrInvalidRecord, dadc.StatusPending},
		{"label out of range", []dadc.ValidationRecord{{Kind: dadc.RecordVerdict, SampleID: "a", Session: "v1", Verdict: dadc.VerdictIncorrect, Label: &bad}}, dadc.ErrInvalidRecord, dadc.StatusPending},
		{"label with correct", []dadc.ValidationRecord{{Kind: dadc.RecordVerdict, SampleID: "a", Session: "v1", Verdict: dadc.VerdictCorrect, Label: &label}}, dadc.ErrInvalidRecord, dadc.StatusPending},
		{"no session", []dadc.ValidationRecord{verdict("a", "", dadc.VerdictCorrect)}, dadc.ErrInvalidRecord, dadc.StatusPending},
		{"writer retracts", []dadc.ValidationRecord{retraction("a", "writer")}, nil, dadc.StatusRetracted},
		{"retraction beats verification", []dadc.ValidationRecord{verdict("a", "v1", dadc.VerdictCorrect), verdict("a", "v2", dadc.VerdictCorrect), retraction("a", "writer")}, nil, dadc.StatusRetracted},
		{"someone else cannot retract", []dadc.ValidationRecord{retraction("a", "v1")}, dadc.ErrNotOwner, dadc.StatusPending},
		{"twice retracted", []dadc.ValidationRecord{retraction("a", "writer"), retraction("a", "writer")}, dadc.ErrAlreadyValidated, dadc.StatusRetracted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newValidations(t, 2, dadc.SampleMeta{ID: "a", Session: "writer", Label: 4})
			var persisted []dadc.ValidationRecord
			persist := func(_ context.Context, r dadc.ValidationRecord) error { persisted = append(persisted, r); return nil }
			var err error
			for _, r := range tt.records {
				_, err = v.Record(ctx, r, persist)
			}
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Len(t, persisted, len(tt.records)-1, "a refused record is not persisted")
			} else {
				require.NoError(t, err)
				assert.Len(t, persisted, len(tt.records))
			}
			st, ok := v.State("a")
			require.True(t, ok)
			assert.Equal(t, tt.want, st.Status)
		})
	}
}

func TestValidationsPersistFailureChangesNothing(t *testing.T) {
	v := newValidations(t, 1, dadc.SampleMeta{ID: "a", Session: "w"})
	boom := errors.New("disk full")
	_, err := v.Record(context.Background(), verdict("a", "v", dadc.VerdictCorrect), func(context.Context, dadc.ValidationRecord) error { return boom })
	require.ErrorIs(t, err, boom)
	st, _ := v.State("a")
	assert.Equal(t, dadc.ValidationState{ID: "a", Status: dadc.StatusPending, Required: 1}, st)
	// The same verdict can be given again once storage works.
	st, err = v.Record(context.Background(), verdict("a", "v", dadc.VerdictCorrect), nil)
	require.NoError(t, err)
	assert.Equal(t, dadc.StatusVerified, st.Status)
}

func TestValidationsTrainable(t *testing.T) {
	ctx := context.Background()
	for _, k := range []int{0, 2} {
		t.Run(fmt.Sprint("k=", k), func(t *testing.T) {
			v := newValidations(t, k,
				dadc.SampleMeta{ID: "pending", Session: "w"},
				dadc.SampleMeta{ID: "verified", Session: "w"},
				dadc.SampleMeta{ID: "rejected", Session: "w"},
				dadc.SampleMeta{ID: "retracted", Session: "w"})
			for _, s := range []string{"v1", "v2"} {
				_, err := v.Record(ctx, verdict("verified", s, dadc.VerdictCorrect), nil)
				require.NoError(t, err)
				_, err = v.Record(ctx, verdict("rejected", s, dadc.VerdictFlagged), nil)
				require.NoError(t, err)
			}
			_, err := v.Record(ctx, retraction("retracted", "w"), nil)
			require.NoError(t, err)
			assert.Equal(t, k == 0, v.Trainable("pending"), "pending trains only with validation off")
			assert.True(t, v.Trainable("verified"))
			assert.Equal(t, k == 0, v.Trainable("rejected"), "verdicts do not reject with validation off")
			assert.False(t, v.Trainable("retracted"), "a retracted sample never trains")
			assert.Equal(t, k == 0, v.Trainable("unknown"), "a sample not added yet trains only with validation off")
		})
	}
}

func TestValidationsNext(t *testing.T) {
	ctx := context.Background()
	v := newValidations(t, 2,
		dadc.SampleMeta{ID: "mine", Session: "me"},
		dadc.SampleMeta{ID: "a", Session: "other"},
		dadc.SampleMeta{ID: "b", Session: "other"})
	m, ok := v.Next("me")
	require.True(t, ok)
	assert.Equal(t, "a", m.ID, "own samples are never offered")
	_, err := v.Record(ctx, verdict("a", "me", dadc.VerdictCorrect), nil)
	require.NoError(t, err)
	m, ok = v.Next("me")
	require.True(t, ok)
	assert.Equal(t, "b", m.ID, "a sample already validated by me is not offered again")
	_, err = v.Record(ctx, retraction("b", "other"), nil)
	require.NoError(t, err)
	_, ok = v.Next("me")
	assert.False(t, ok, "retracted samples are not offered")
	m, ok = v.Next("third")
	require.True(t, ok)
	assert.Equal(t, "mine", m.ID)
}

func TestValidationsConcurrentVerdictsOnOneSample(t *testing.T) {
	v := newValidations(t, 2, dadc.SampleMeta{ID: "a", Session: "w"})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			// Eight validators, each sending its verdict twice at once.
			_, err := v.Record(context.Background(), verdict("a", fmt.Sprint("v", i%8), dadc.VerdictCorrect), nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	var ok, dup int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, dadc.ErrAlreadyValidated):
			dup++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	assert.Equal(t, 8, ok)
	assert.Equal(t, 8, dup)
	st, _ := v.State("a")
	assert.Equal(t, 8, st.Correct)
	assert.Equal(t, dadc.StatusVerified, st.Status)
}

func TestValidationsReplaySkipsForgedRecords(t *testing.T) {
	v := newValidations(t, 1, dadc.SampleMeta{ID: "a", Session: "w"})
	skipped := v.Replay([]dadc.ValidationRecord{
		verdict("a", "w", dadc.VerdictCorrect),    // own: forged
		verdict("gone", "v", dadc.VerdictCorrect), // unknown sample
		verdict("a", "v", dadc.VerdictIncorrect),
		verdict("a", "v", dadc.VerdictCorrect), // duplicate
	})
	assert.Equal(t, 3, skipped)
	st, _ := v.State("a")
	assert.Equal(t, dadc.StatusRejected, st.Status)
}

func TestVerifiedErrorRate(t *testing.T) {
	ctx := context.Background()
	v := newValidations(t, 1,
		dadc.SampleMeta{ID: "a", Session: "s1", Round: 0},
		dadc.SampleMeta{ID: "b", Session: "s1", Round: 0},
		dadc.SampleMeta{ID: "c", Session: "s2", Round: 1})
	_, err := v.Record(ctx, verdict("a", "s2", dadc.VerdictIncorrect), nil)
	require.NoError(t, err)
	_, err = v.Record(ctx, verdict("b", "s2", dadc.VerdictCorrect), nil)
	require.NoError(t, err)
	byRound, bySession := v.Counts()
	assert.Equal(t, dadc.VerifiedCounts{Fooled: 2, Verified: 1, NotFooled: 1}, byRound[0])
	assert.Equal(t, dadc.VerifiedCounts{Fooled: 1}, byRound[1])
	assert.Equal(t, dadc.VerifiedCounts{Fooled: 2, Verified: 1, NotFooled: 1}, bySession["s1"])
	// 2 fooled, 1 rejected, of 10 submitted: raw 20%, verified 10%.
	assert.InDelta(t, 0.1, dadc.VerifiedErrorRate(byRound[0], 10), 1e-12)
	assert.Zero(t, dadc.VerifiedErrorRate(byRound[0], 0))
}
