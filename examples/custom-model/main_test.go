package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

// runProgram runs the program and splits its output into the outcome lines
// and the final stats.
func runProgram(t *testing.T, args ...string) (outcomes []string, st dadc.Stats) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	require.Equal(t, 0, code, "stderr: %s", stderr.String())
	out := stdout.String()
	i := strings.Index(out, "{")
	require.GreaterOrEqual(t, i, 0, "no JSON in %q", out)
	require.NoError(t, json.Unmarshal([]byte(out[i:]), &st))
	return strings.Split(strings.TrimSpace(out[:i]), "\n"), st
}

func TestRun_PromotesARetrainedModel(t *testing.T) {
	dir := t.TempDir()
	// The default gate needs a significant gain on held-out samples (1 in 5
	// flags): the first retrains of round 0 are rejected, the third is promoted.
	outcomes, st := runProgram(t, "-data", dir, "-seed", "1", "-submissions", "1000")

	require.GreaterOrEqual(t, len(st.Rounds), 2)
	r0 := st.Rounds[0]
	assert.True(t, r0.Promoted, "round 0's candidate is promoted: %+v", r0)
	require.NotNil(t, r0.CleanAccuracy)
	require.NotNil(t, r0.BaselineCleanAccuracy)
	assert.Greater(t, *r0.CleanAccuracy, *r0.BaselineCleanAccuracy, "learning the flagged points helps")
	assert.NotEqual(t, "proto-r0", st.ModelVersion)
	assert.Equal(t, 1000, st.FlaggedTotal+st.Attempts)
	assert.Contains(t, outcomes[0], "round 0: candidate proto-r1 rejected: gain:")
	assert.Contains(t, strings.Join(outcomes, "\n"), "round 0: model proto-r1 replaces proto-r0; round 1 begins")

	// Every flagged sample is in the JSON-lines log, once.
	f, err := os.Open(filepath.Join(dir, "samples.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var row struct {
			ID    string  `json:"id"`
			Label int     `json:"label"`
			X     float64 `json:"x"`
			Y     float64 `json:"y"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &row))
		assert.False(t, ids[row.ID])
		ids[row.ID] = true
		assert.Equal(t, truth(Point{row.X, row.Y}), row.Label)
	}
	require.NoError(t, sc.Err())
	assert.Len(t, ids, st.FlaggedTotal)
}

func TestRun_DeterministicForASeed(t *testing.T) {
	a, sa := runProgram(t, "-seed", "7", "-submissions", "150", "-retrain-every", "10")
	b, sb := runProgram(t, "-seed", "7", "-submissions", "150", "-retrain-every", "10")
	assert.Equal(t, a, b)
	assert.Equal(t, sa.FlaggedTotal, sb.FlaggedTotal)
	assert.Equal(t, sa.PerLabel, sb.PerLabel)
}

func TestRun_BadUsage(t *testing.T) {
	for _, args := range [][]string{{"-submissions", "0"}, {"-retrain-every", "-1"}, {"extra"}, {"-nope"}} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &stdout, &stderr), "%v", args)
		assert.Empty(t, stdout.String())
		assert.NotEmpty(t, stderr.String())
	}
}

func TestProtoModel_Conformance(t *testing.T) {
	inputs := []Point{{0.1, 0.1}, {0.5, 0.2}, {0.6, 0.9}, {0.95, 0.35}, {0.39, 0.5}}
	dadctest.TestModel(t, func(t *testing.T) dadc.Model[Point] {
		return newProtoModel("proto-test", randomPointsForTest())
	}, inputs)
}

func TestJSONLFlagger_Conformance(t *testing.T) {
	dadctest.TestFlagger(t, func(t *testing.T, dir string) dadc.Flagger[Point] {
		f, closeLog, err := jsonlFlagger(filepath.Join(dir, "samples.jsonl"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = closeLog() })
		return f
	}, func(i int) Point { return Point{float64(i) / 1000, 0.5} })
}

func randomPointsForTest() []dadc.Example[Point] {
	var out []dadc.Example[Point]
	for _, p := range []Point{{0.2, 0.2}, {0.2, 0.8}, {0.6, 0.2}, {0.7, 0.8}, {0.9, 0.4}} {
		out = append(out, dadc.Example[Point]{Input: p, Label: truth(p)})
	}
	return out
}
