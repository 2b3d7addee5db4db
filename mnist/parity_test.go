package mnist

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parityWeightsSeed makes testdata/parity/random.safetensors: InitWeights(parityWeightsSeed).Encode.
const parityWeightsSeed = 2024

// TestParityRandomWeightsFile checks that the committed random-weights file
// is exactly what this code writes for InitWeights(2024), so the PyTorch
// fixture made from it also checks Go -> PyTorch weights loading.
func TestParityRandomWeightsFile(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, InitWeights(parityWeightsSeed).Encode(&buf))
	if os.Getenv("ADVSPACE_UPDATE_PARITY") == "1" {
		require.NoError(t, os.WriteFile("testdata/parity/random.safetensors", buf.Bytes(), 0o644))
	}
	file, err := os.ReadFile("testdata/parity/random.safetensors")
	require.NoError(t, err)
	assert.Equal(t, buf.Bytes(), file)
}

// TestPyTorchParity compares the log-probabilities of Model.PredictPixels
// (the logs of its probabilities) with PyTorch's. The fixtures were made by testdata/parity/make_parity.py
// (Debian python3-torch 1.13, CPU), which loads a Go-written safetensors
// file into the seed's MNIST_Model with load_state_dict(strict=True) and
// runs it in eval mode on 4 MNIST test images and 4 random images:
//
//	cd mnist/testdata/parity
//	/usr/bin/python3 make_parity.py random.safetensors random.json
//	/usr/bin/python3 make_parity.py ../../pretrained.safetensors pretrained.json
func TestPyTorchParity(t *testing.T) {
	for _, tc := range []struct{ fixture, weights string }{
		{"testdata/parity/random.json", "testdata/parity/random.safetensors"},
		{"testdata/parity/pretrained.json", "pretrained.safetensors"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			raw, err := os.ReadFile(tc.fixture)
			require.NoError(t, err)
			var fx struct {
				Inputs   [][]int     `json:"inputs"`
				LogProbs [][]float64 `json:"log_probs"`
			}
			require.NoError(t, json.Unmarshal(raw, &fx))
			require.Len(t, fx.Inputs, 8)
			w, err := LoadWeightsFile(tc.weights)
			require.NoError(t, err)
			m, err := NewModel(w, nil)
			require.NoError(t, err)
			for i, in := range fx.Inputs {
				px := make([]uint8, len(in))
				for j, v := range in {
					px[j] = uint8(v)
				}
				p, err := m.PredictPixels(context.Background(), px)
				require.NoError(t, err)
				require.Len(t, p.Probabilities, Classes)
				for k, prob := range p.Probabilities {
					assert.InDelta(t, fx.LogProbs[i][k], math.Log(prob), 1e-5, "input %d class %d", i, k)
				}
			}
		})
	}
}
