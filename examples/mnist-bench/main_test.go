package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrintTableRatios(t *testing.T) {
	g := &goFigures{TrainSamplesPerS: 15000, PredictLatencyUS: 20, PredictCPUUS: 19, BatchImagesPerS: 60000,
		Preprocess84MS: 0.010, Preprocess84CPU: 0.009, PreprocessRGBA84MS: 0.030, PreprocessRGBA84CPU: 0.029,
		Preprocess280MS: 0.4, Preprocess4000MS: 90, Kernels: "avx2+fma", GOMAXPROCS: 2}
	tf := &torchFigures{Framework: "torch 1.13", Threads: 2, TrainSamplesPerS: 10000, InferLatencyUS: 200, BatchInferPerS: 20000}
	var buf bytes.Buffer
	printTable(&buf, g, tf)
	out := buf.String()
	assert.Contains(t, out, "| training, batch 64 | 15000 samples/s | 10000 samples/s | 1.50× | ≥ 1.5× |")
	assert.Contains(t, out, "| 0.100× (time) |")
	assert.Contains(t, out, "| 3.00× |")
	assert.Contains(t, out, "kernels: avx2+fma, GOMAXPROCS 2; anchor: torch 1.13, 2 threads")
	assert.Contains(t, out, "as the page encodes it) | 10.0 µs (CPU 9.0 µs) |  | 0.50× our predict | < 1× our predict |")
	assert.Contains(t, out, "as the page sent before) | 30.0 µs (CPU 29.0 µs) |  | 1.50× our predict | < 1× our predict |")

	buf.Reset()
	printTable(&buf, g, nil)
	assert.NotContains(t, buf.String(), "×  |", "no ratios without the anchor")
	assert.Contains(t, buf.String(), "| training, batch 64 | 15000 samples/s |  |  | ≥ 1.5× |")
}

func TestRunRejectsTooFewSteps(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-steps", "5"}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-steps 5 is too few")
	assert.Empty(t, out.String())
}

func TestPythonFor(t *testing.T) {
	assert.Empty(t, pythonFor("off"))
	assert.Equal(t, "/opt/py/bin/python3", pythonFor("/opt/py/bin/python3"))
}
