package mnist_test

import (
	"image"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
	"github.com/advspace/advspace/mnist"
)

// The dadc.Model conformance suite runs on the package's own model (with its
// Trainer, Evaluator and BatchPredictor capabilities), as slog runs slogtest
// on its own handlers.
func TestModelConformance(t *testing.T) {
	_, test, err := mnist.LoadDataDir(filepath.Join("..", "testdata", "mnist"))
	require.NoError(t, err)
	var inputs []*image.Gray
	seen := map[uint8]bool{}
	for i := 0; i < test.Len() && len(inputs) < 10; i++ { // one input per class
		if !seen[test.Labels[i]] {
			seen[test.Labels[i]] = true
			inputs = append(inputs, test.Gray(i))
		}
	}
	require.Len(t, inputs, 10)
	w, err := mnist.Pretrained()
	require.NoError(t, err)
	dadctest.TestModel(t, func(t *testing.T) dadc.Model[*image.Gray] {
		m, err := mnist.NewModel(w, nil)
		require.NoError(t, err)
		return m
	}, inputs)
}
