package dadc_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

// syncBuffer is a bytes.Buffer safe for the loop's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogs_EveryStepNeverInputs runs a loop over strings through flags, a
// rejected and a promoted retrain, a failed store and Close, and checks that
// each step is logged and that no input ever is.
func TestLogs_EveryStepNeverInputs(t *testing.T) {
	const secret = "SECRET-INPUT"
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	byLength := func(s string) int { return len(s) % 4 }
	train := 0
	m := dadctest.NewModel("m0", 4, func(s string) int { // right on clean inputs, wrong on the secret ones
		if strings.HasPrefix(s, secret) {
			return (byLength(s) + 1) % 4
		}
		return byLength(s)
	})
	m.TrainFunc = func(_ context.Context, req dadc.TrainRequest[string]) (dadc.Model[string], error) {
		train++
		if train == 1 {
			return dadctest.NewModel(req.Version, 4, func(string) int { return 0 }), nil // worse: rejected
		}
		return dadctest.NewModel(req.Version, 4, byLength), nil // perfect: promoted
	}
	f := dadctest.NewFlagger(&dadctest.FlaggerScript[string]{FailCalls: []int{2}})
	clean := []dadc.Example[string]{{Input: "a", Label: 1}, {Input: "ab", Label: 2}, {Input: "abc", Label: 3}, {Input: "abcd", Label: 0}}
	l, err := dadc.NewLoop[string](m, f, dadc.Manual(), 4, &dadc.Options[string]{CleanTest: clean, HoldoutEvery: -1, Logger: logger, Gate: mechanicsGate})
	require.NoError(t, err)

	ctx := t.Context()
	for i := range 3 {
		in := secret + strings.Repeat("x", i)
		_, err := l.Flag(ctx, in, byLength(in), "session-"+secret)
		if i == 1 {
			require.Error(t, err)
		} else {
			require.NoError(t, err)
		}
	}
	require.NoError(t, l.Retrain(ctx))
	require.NoError(t, l.WaitIdle(ctx))
	require.NoError(t, l.Retrain(ctx))
	require.NoError(t, l.WaitIdle(ctx))
	require.NoError(t, l.Close(ctx))

	out := logs.String()
	for _, step := range []string{
		"dadc: loop started", "dadc: flagged", "storing a flagged sample failed", "dadc: retrain started",
		"training done", "candidate rejected by the gate", "candidate promoted", "dadc: closing", "dadc: closed",
	} {
		assert.Contains(t, out, step)
	}
	assert.NotContains(t, out, secret, "inputs and sessions are never logged")
	assert.Equal(t, "r1", l.Stats().ModelVersion[:2], "the rejected candidate did not change the round")
}
