package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
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
		{"-ema", "1", "-out", "f"},
		{"-ema", "-0.5", "-out", "f"},
		{"-dropout", "1", "-out", "f"},
		{"-dropout", "-0.1", "-out", "f"},
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

// TestTrainChecksOutFirst: a -out that cannot be written is refused before
// anything else happens (the data is not even looked for: -data names an
// empty folder here, which would otherwise be the error), not after a long
// training run.
func TestTrainChecksOutFirst(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	tests := []struct {
		name, out, wantMsg string
	}{
		{"a folder", dir, "is a folder"},
		{"a folder with a slash", dir + string(os.PathSeparator), "is a folder"},
		{"missing parent folder", filepath.Join(dir, "nope", "w.safetensors"), "does not exist"},
		{"parent is a file", filepath.Join(file, "w.safetensors"), "is not a folder"},
	}
	if runtime.GOOS == "linux" {
		// sysfs refuses new files even to root, so this holds in CI too.
		tests = append(tests, struct{ name, out, wantMsg string }{"folder not writable", "/sys/w.safetensors", "cannot write in the folder /sys"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"-data", t.TempDir(), "-out", tt.out}, &stdout, &stderr)
			assert.Equal(t, 2, code)
			assert.Contains(t, stderr.String(), "-out "+tt.out)
			assert.Contains(t, stderr.String(), tt.wantMsg)
			assert.NotContains(t, stderr.String(), "MNIST data not found", "checked before the data")
			assert.Empty(t, stdout.String())
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "nothing left behind by the check")
		})
	}
}

// TestTrainLimitSaysWhatItTrainsOn: with -limit the log names the images
// actually trained on, not the size of the whole training set.
func TestTrainLimitSaysWhatItTrainsOn(t *testing.T) {
	out := filepath.Join(t.TempDir(), "w.safetensors")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-data", "../../testdata/mnist", "-epochs", "1", "-limit", "64", "-batch", "32", "-quiet", "-out", out}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stderr.String(), "training on the first 64 of 2000 training images")
	assert.NotContains(t, stderr.String(), "2000 training and")
}

func TestTrainingSetLine(t *testing.T) {
	tests := []struct {
		limit, n int
		want     string
	}{
		{0, 60000, "training on all 60000 training images"},
		{640, 60000, "training on the first 640 of 60000 training images"},
		{60000, 60000, "training on all 60000 training images"},
		{70000, 60000, "training on all 60000 training images (-limit 70000 is more than there are)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, trainingSetLine(tt.limit, tt.n), "limit %d of %d", tt.limit, tt.n)
	}
}

// TestTrainArgumentsBeforeFlags: an argument before the flags stops flag
// parsing; the message says so instead of claiming -out is missing.
func TestTrainArgumentsBeforeFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"w.safetensors", "-out", "w.safetensors"}, &stdout, &stderr)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), `unexpected arguments ["w.safetensors" "-out" "w.safetensors"]`)
	assert.Contains(t, stderr.String(), "flags after the first argument are not read")
	assert.NotContains(t, stderr.String(), "-out FILE is required")
}

// TestTrainEMAWritesTheAverage: -ema writes (and reports the accuracy of)
// the averaged weights, which differ from the last weights of the same run,
// and the file names the flag.
func TestTrainEMAWritesTheAverage(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-data", "../../testdata/mnist", "-epochs", "1", "-batch", "32", "-limit", "320", "-seed", "4", "-quiet"}
	weights := map[string]*mnist.Weights{}
	for _, ema := range []string{"0", "0.99"} {
		out := filepath.Join(dir, "w"+ema+".safetensors")
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(args, "-ema", ema, "-out", out), &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		var res result
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &res))
		w, err := mnist.LoadWeightsFile(out)
		require.NoError(t, err)
		assert.Contains(t, w.Metadata["trained_by"], "-dropout 0.5 -ema "+ema)
		ev, err := mnist.Evaluate(context.Background(), w, mustTest(t))
		require.NoError(t, err)
		assert.InDelta(t, res.TestAccuracy, ev.Accuracy, 1e-9, "the reported accuracy is the written weights'")
		weights[ema] = w
	}
	assert.NotEqual(t, weights["0"].Tensors, weights["0.99"].Tensors)
}
