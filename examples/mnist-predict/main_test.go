package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
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

// exifJPEG encodes img as JPEG with an Exif APP1 segment whose IFD0 holds
// Orientation = o.
func exifJPEG(t *testing.T, img image.Image, o uint16) []byte {
	t.Helper()
	var enc bytes.Buffer
	require.NoError(t, jpeg.Encode(&enc, img, &jpeg.Options{Quality: 95}))
	tiff := []byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01")
	tiff = binary.BigEndian.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0, 0, 0, 0, 0)
	app1 := binary.BigEndian.AppendUint16([]byte{0xff, 0xe1}, uint16(2+6+len(tiff)))
	app1 = append(append(app1, "Exif\x00\x00"...), tiff...)
	j := enc.Bytes()
	return append(append(append([]byte{}, j[:2]...), app1...), j[2:]...)
}

// turnLeft returns g turned a quarter to the left: how a phone held upright
// stores what it sees, recording Orientation 6 (turn right to display).
func turnLeft(g *image.Gray) *image.Gray {
	b := g.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.SetGray(y, b.Dx()-1-x, g.GrayAt(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// TestPredictImagesThatSayHowToDisplayThem: an upright "1" stored sideways
// with EXIF Orientation 6 is predicted 1, both as a drawing and with -raw
// (a 28x28 MNIST-format input stored sideways), as a browser would show it.
func TestPredictImagesThatSayHowToDisplayThem(t *testing.T) {
	b, err := os.ReadFile("../../testdata/digits/1-2.png")
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	one := img.(*image.Gray)
	// A drawing: dark ink on white, eight times larger.
	big := image.NewGray(image.Rect(0, 0, 224, 224))
	for y := range 224 {
		for x := range 224 {
			big.SetGray(x, y, color.Gray{Y: 255 - one.GrayAt(x/8, y/8).Y})
		}
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw-1.jpg")
	drawing := filepath.Join(dir, "drawing-1.jpg")
	require.NoError(t, os.WriteFile(raw, exifJPEG(t, turnLeft(one), 6), 0o644))
	require.NoError(t, os.WriteFile(drawing, exifJPEG(t, turnLeft(big), 6), 0o644))

	for _, args := range [][]string{{"-raw", raw}, {drawing}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		as := decodeAnswers(t, stdout.Bytes())
		require.Len(t, as, 1)
		assert.Equal(t, 1, as[0].Label, "%q: the upright 1, not the stored horizontal bar", args)
	}
}

// TestPredictFlagsAfterImages: flags may follow the images (as people type
// them); "--" ends the flags, so a file named like a flag can still be given.
func TestPredictFlagsAfterImages(t *testing.T) {
	files := digitFiles(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{files[0], "-raw", files[1]}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	as := decodeAnswers(t, stdout.Bytes())
	require.Len(t, as, 2)
	assert.Equal(t, []string{files[0], files[1]}, []string{as[0].File, as[1].File})

	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{"-raw", "--", "-weird.png"}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "-weird.png: ")
	assert.NotContains(t, stderr.String(), "usage:")
}

// TestPredictFolderIsNotAnImage: a folder among the images says what to do.
func TestPredictFolderIsNotAnImage(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{dir}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "is a folder, not an image: give the image files in it")
}
