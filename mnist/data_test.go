package mnist

import (
	"image"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist/internal/idx"
)

// testdataDir is the repository's testdata/mnist subset (2,000 training and
// 1,000 test images, written by mnist/internal/mksubset).
var testdataDir = filepath.Join("..", "testdata", "mnist")

func TestLoadDataDirTestdata(t *testing.T) {
	train, test, err := LoadDataDir(testdataDir)
	require.NoError(t, err)
	assert.Equal(t, 2000, train.Len())
	assert.Equal(t, 1000, test.Len())
	assert.Equal(t, 28, train.Rows)
	assert.Equal(t, 28, test.Cols)
	// The first MNIST training label is 5 and the first test label is 7.
	assert.Equal(t, uint8(5), train.Labels[0])
	assert.Equal(t, uint8(7), test.Labels[0])
	var counts [10]int
	for _, l := range train.Labels {
		counts[l]++
	}
	for c, n := range counts {
		assert.Greater(t, n, 150, "class %d has %d training images", c, n)
	}
}

func TestLoadDataDirRawAndMissing(t *testing.T) {
	dir := t.TempDir()
	imgs, _ := idxImagesBytes(t, 2, 28, 28)
	labels := idxLabelsBytes(t, []uint8{3, 4})
	writeFile(t, dir, idx.TrainImagesFile, imgs) // raw
	writeFile(t, dir, idx.TrainLabelsFile+".gz", gzipBytes(t, labels))
	writeFile(t, dir, idx.TestImagesFile+".gz", gzipBytes(t, imgs))

	_, _, err := LoadDataDir(dir)
	require.ErrorIs(t, err, ErrDataNotFound)
	assert.Contains(t, err.Error(), idx.TestLabelsFile)

	writeFile(t, dir, idx.TestLabelsFile, labels)
	train, test, err := LoadDataDir(dir)
	require.NoError(t, err)
	assert.Equal(t, []uint8{3, 4}, train.Labels)
	assert.Equal(t, []uint8{3, 4}, test.Labels)

	small, _ := idxImagesBytes(t, 2, 8, 8)
	writeFile(t, dir, idx.TestImagesFile+".gz", gzipBytes(t, small))
	_, _, err = LoadDataDir(dir)
	require.ErrorIs(t, err, ErrIDXFormat)
	assert.Contains(t, err.Error(), "test images are 8x8")
}

func TestDatasetExamples(t *testing.T) {
	_, test, err := LoadDataDir(testdataDir)
	require.NoError(t, err)
	ex := test.Examples()
	require.Len(t, ex, test.Len())
	for _, i := range []int{0, 1, 999} {
		assert.Equal(t, int(test.Labels[i]), ex[i].Label)
		assert.Equal(t, image.Rect(0, 0, 28, 28), ex[i].Input.Bounds())
		assert.Equal(t, test.Pixels(i), ex[i].Input.Pix)
	}
	ex[0].Input.Pix[0] = 123 // inputs are copies
	assert.NotEqual(t, uint8(123), test.Pixels(0)[0])
}
