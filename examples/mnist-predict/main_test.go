package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/advspace/advspace/mnist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func digitFiles(t *testing.T) []string {
	files, err := filepath.Glob("../../testdata/digits/*.png")
	require.NoError(t, err)
	require.Len(t, files, 10)
	return files
}

func decodeAnswers(t *testing.T, out []byte) []answer {
	var as []answer
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var a answer
		require.NoError(t, dec.Decode(&a))
		as = append(as, a)
	}
	return as
}

// The test digits are named <label>-<index>.png.
func labelOf(file string) int {
	l, _ := strconv.Atoi(strings.SplitN(filepath.Base(file), "-", 2)[0])
	return l
}

func TestPredictDigits(t *testing.T) {
	files := digitFiles(t)
	for _, mode := range [][]string{{"-raw"}, nil} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(mode, files...), &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		as := decodeAnswers(t, stdout.Bytes())
		require.Len(t, as, len(files))
		for i, a := range as {
			assert.Equal(t, files[i], a.File)
			assert.Equal(t, labelOf(a.File), a.Label, "%v %s", mode, a.File)
			assert.Len(t, a.Probabilities, 10)
		}
	}
}

func TestPredictWithWeightsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, mnist.InitWeights(1).Encode(f))
	require.NoError(t, f.Close())
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-weights", path, "-raw", digitFiles(t)[0]}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Len(t, decodeAnswers(t, stdout.Bytes()), 1)

	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{"-weights", filepath.Join(t.TempDir(), "missing"), digitFiles(t)[0]}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout.String())
}

func TestPredictPerFileErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.png")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, image.NewGray(image.Rect(0, 0, 50, 40))))
	require.NoError(t, f.Close())
	notImage := filepath.Join(dir, "note.txt")
	require.NoError(t, os.WriteFile(notImage, []byte("hello"), 0o644))
	good := digitFiles(t)[3]

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-raw", big, good, notImage, filepath.Join(dir, "missing.png")}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	as := decodeAnswers(t, stdout.Bytes())
	require.Len(t, as, 1, "the good file is still answered")
	assert.Equal(t, good, as[0].File)
	assert.Contains(t, stderr.String(), "big.png: -raw needs a 28x28 image, this one is 50x40")
	assert.Contains(t, stderr.String(), "note.txt: not a PNG or JPEG image")
	assert.Contains(t, stderr.String(), "missing.png")

	// Without -raw an empty drawing is an error, not a prediction.
	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{big}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout.String())
	assert.Contains(t, stderr.String(), "empty")
}

func TestPredictUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-raw"}, {"-bogus", "x.png"}} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &stdout, &stderr), "%q", args)
		assert.Contains(t, stderr.String(), "usage:")
	}
}
