package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist"
)

func TestRun_BadFlags(t *testing.T) {
	for _, args := range [][]string{{"-families", "nope"}, {"-rounds", "0"}, {"extra"}} {
		var out, errb bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &out, &errb), "%q", args)
		assert.NotEmpty(t, errb.String())
	}
}

func TestFamiliesAreDeterministicAndDistort(t *testing.T) {
	src := &mnist.Dataset{Rows: mnist.Side, Cols: mnist.Side}
	for i := range 4 {
		img := make([]uint8, mnist.InputSize)
		for y := 6; y < 22; y++ {
			for x := 8 + i; x < 18+i; x++ {
				img[y*mnist.Side+x] = 255 // an off-centre block
			}
		}
		src.Images = append(src.Images, img...)
		src.Labels = append(src.Labels, 1)
	}
	for _, f := range familyList {
		d := makeDrawings(f, src, []int{0, 1}, []int{2, 3}, 1)
		assert.Equal(t, 2, d.drawn.Len(), f.name)
		assert.Equal(t, 2, d.unseen.Len(), f.name)
		assert.NotEqual(t, src.Pixels(0), d.drawn.Pixels(0), "%s distorts the digit", f.name)
		again := makeDrawings(f, src, []int{0, 1}, []int{2, 3}, 1)
		assert.Equal(t, d.drawn.Images, again.drawn.Images, "%s is deterministic for a seed", f.name)
	}
}

// TestSimulate plays one pass through the real loop: -short in CI (a few
// seconds of training), the full pass of 80 flags otherwise.
func TestSimulate(t *testing.T) {
	cfg := simConfig{Rounds: 1, FlagsPerRound: 80, Seed: 1, Short: true, Out: t.TempDir()}
	if testing.Short() {
		cfg.FlagsPerRound = 20
		cfg.FineTune = mnist.FineTuneConfig{Steps: 20}
	}
	f, err := familyByName("rotated")
	require.NoError(t, err)
	cfg.Families = []family{f}
	var out bytes.Buffer
	rep, err := simulate(t.Context(), cfg, &out)
	require.NoError(t, err)
	t.Log("\n" + out.String())
	require.Len(t, rep.Results, 2)
	start, pass := rep.Results[0], rep.Results[1]
	assert.Equal(t, cfg.FlagsPerRound, pass.Flags)
	assert.Greater(t, pass.ErrorRate, 0.2, "the rotated family fools the embedded model often")
	assert.Greater(t, start.CleanAccuracy, 0.98)
	assert.Contains(t, []string{"promoted", "rejected"}, pass.Decision)
	assert.NotEmpty(t, pass.Reason, "the gate's reasons are reported")
	if pass.Decision == "promoted" {
		assert.Equal(t, 1, pass.LoopRound)
		assert.GreaterOrEqual(t, pass.CleanAccuracy, start.CleanAccuracy-0.003-1e-9, "the gate keeps clean accuracy within budget")
		assert.Greater(t, pass.Unseen["rotated"], start.Unseen["rotated"])
	} else {
		assert.Equal(t, 0, pass.LoopRound, "a rejected candidate does not change the round")
		assert.Equal(t, start.ModelVersion, pass.ModelVersion)
	}

	b, err := os.ReadFile(filepath.Join(cfg.Out, "sim.json"))
	require.NoError(t, err)
	var back simReport
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, rep.Results[1].Unseen, back.Results[1].Unseen)
	svg, err := os.ReadFile(filepath.Join(cfg.Out, "sim.svg"))
	require.NoError(t, err)
	assert.Contains(t, string(svg), "<svg")
	assert.Contains(t, string(svg), "rotated")
}
