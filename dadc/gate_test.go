package dadc_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

func TestMcNemarP(t *testing.T) {
	tests := []struct {
		won, lost int
		want      float64
	}{
		{0, 0, 1},
		{0, 5, 1},
		{1, 0, 0.5},
		{5, 0, 1.0 / 32},
		{4, 0, 1.0 / 16},
		{6, 1, 8.0 / 128}, // P(X>=6), X~Bin(7,½) = (7+1)/128
		{10, 10, 0.5880985260009766},
		{2000, 1900, 0.05645}, // large n stays finite (log space); normal approximation with continuity gives 0.0564
	}
	for _, tt := range tests {
		got := dadc.McNemarP(tt.won, tt.lost)
		assert.InDelta(t, tt.want, got, 1e-4, "won %d lost %d", tt.won, tt.lost)
		assert.False(t, math.IsNaN(got))
	}
}

func TestNewGate_Validation(t *testing.T) {
	for _, o := range []dadc.GateOptions{
		{MaxCleanDrop: 2}, {MaxCleanDrop: math.NaN()}, {Significance: 1}, {Significance: -0.1}, {MaxEarlierDrop: 1.5},
	} {
		_, err := dadc.NewGate(&o)
		assert.Error(t, err, "%+v", o)
	}
	g, err := dadc.NewGate(&dadc.GateOptions{MaxEarlierDrop: -1}) // no loss at all on earlier rounds
	require.NoError(t, err)
	d := g.Decide(dadc.GateInput{HeldOut: dadc.PairedScore{N: 8, Candidate: 8, CandidateOnly: 8},
		Earlier: []dadc.EarlierScore{{Round: 0, N: 10, Reference: 10, Candidate: 9}}})
	assert.False(t, d.Promote)
	assert.Contains(t, d.Reasons, "FAIL round 0 held-out: 9/10 (90.0%) < reference 10/10 (100.0%) - 0.0 points")
}

// TestGate_EarlierToleranceIsAtLeastOneSample: the default 2-point tolerance
// on an earlier round's held-out set is less than one sample of a small set;
// one sample may go, two may not; on a large set it is 2 points.
func TestGate_EarlierToleranceIsAtLeastOneSample(t *testing.T) {
	g, err := dadc.NewGate(nil)
	require.NoError(t, err)
	gain := dadc.PairedScore{N: 8, Candidate: 8, CandidateOnly: 8}
	tests := []struct {
		earlier dadc.EarlierScore
		promote bool
		reason  string
	}{
		{dadc.EarlierScore{Round: 0, N: 16, Reference: 10, Candidate: 9}, true,
			"ok round 0 held-out: 9/16 (56.2%) >= reference 10/16 (62.5%) - 1 sample (2.0 points is less than 1 of 16)"},
		{dadc.EarlierScore{Round: 0, N: 16, Reference: 10, Candidate: 8}, false,
			"FAIL round 0 held-out: 8/16 (50.0%) < reference 10/16 (62.5%) - 1 sample (2.0 points is less than 1 of 16)"},
		{dadc.EarlierScore{Round: 1, N: 200, Reference: 100, Candidate: 96}, true,
			"ok round 1 held-out: 96/200 (48.0%) >= reference 100/200 (50.0%) - 2.0 points"},
		{dadc.EarlierScore{Round: 1, N: 200, Reference: 100, Candidate: 95}, false,
			"FAIL round 1 held-out: 95/200 (47.5%) < reference 100/200 (50.0%) - 2.0 points"},
	}
	for _, tt := range tests {
		d := g.Decide(dadc.GateInput{HeldOut: gain, Earlier: []dadc.EarlierScore{tt.earlier}})
		assert.Equal(t, tt.promote, d.Promote, "%+v: %v", tt.earlier, d.Reasons)
		assert.Contains(t, d.Reasons, tt.reason)
	}
}

func TestGate_NoHeldOutCannotShowAGain(t *testing.T) {
	g, err := dadc.NewGate(nil)
	require.NoError(t, err)
	d := g.Decide(dadc.GateInput{Round: 3, Clean: &dadc.CleanScore{N: 100, Candidate: 1, Serving: 1, Reference: 1}})
	assert.False(t, d.Promote)
	assert.Contains(t, d.Reasons[1], "FAIL gain: round 3 has no held-out fooling samples")
}

func TestGateFunc(t *testing.T) {
	var seen dadc.GateInput
	g := dadc.GateFunc(func(in dadc.GateInput) dadc.GateDecision { seen = in; return dadc.GateDecision{Promote: true} })
	assert.True(t, g.Decide(dadc.GateInput{Round: 7}).Promote)
	assert.Equal(t, 7, seen.Round)
}
