package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/advspace/advspace/mnist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTrainWritesWeightsAndJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "w.safetensors")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-data", "../../testdata/mnist", "-epochs", "2", "-batch", "32", "-lr", "0.003", "-limit", "640", "-seed", "3", "-augment", "-out", out}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	var res result
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &res))
	assert.Equal(t, 2, res.Epochs)
	assert.Greater(t, res.TestAccuracy, 0.25, "better than chance (0.1)")
	assert.Greater(t, res.Seconds, 0.0)
	assert.Contains(t, stderr.String(), "epoch 2: loss")
	w, err := mnist.LoadWeightsFile(out)
	require.NoError(t, err)
	assert.Contains(t, w.Metadata["trained_by"], "-seed 3")
	ev, err := mnist.Evaluate(context.Background(), w, mustTest(t))
	require.NoError(t, err)
	assert.InDelta(t, res.TestAccuracy, ev.Accuracy, 1e-9, "the reported accuracy is the written weights'")
}

func mustTest(t *testing.T) *mnist.Dataset {
	_, test, err := mnist.LoadDataDir("../../testdata/mnist")
	require.NoError(t, err)
	return test
}

func TestTrainUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},                            // no -out
		{"-epochs", "x", "-out", "f"}, // bad number
		{"-epochs", "0", "-out", "f"},
		{"-nope", "-out", "f"},
		{"-out", "f", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		assert.Equal(t, 2, code, "%q", args)
		assert.Contains(t, stderr.String(), "usage:", "%q", args)
		assert.Empty(t, stdout.String())
	}
}

func TestTrainBadDataDir(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-data", t.TempDir(), "-out", filepath.Join(t.TempDir(), "w")}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.True(t, strings.HasPrefix(stderr.String(), "mnist-train: "), stderr.String())
}

func TestTrainInterrupted(t *testing.T) {
	out := filepath.Join(t.TempDir(), "w.safetensors")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-data", "../../testdata/mnist", "-out", out}, &stdout, &stderr)
	assert.Equal(t, 130, code)
	assert.Contains(t, stderr.String(), "interrupted")
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err), "nothing written")
	entries, _ := os.ReadDir(filepath.Dir(out))
	assert.Empty(t, entries, "no temporary file left behind")
}
