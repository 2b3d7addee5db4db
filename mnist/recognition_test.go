package mnist

import (
	"context"
	"image"
	"image/color"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/draw"
)

// TestRecognisesDrawings checks the drawing path end to end: MNIST test
// digits, enlarged 4-8x and drawn as dark ink at random places on a large
// white canvas (as a person would draw them in the browser), go through
// PreprocessImage and then Predict. Accuracy must stay within 1 percentage
// point of the model's accuracy on the 28x28 originals.
func TestRecognisesDrawings(t *testing.T) {
	skipSlowUnderRace(t)
	_, test := loadSubset(t)
	w, err := Pretrained()
	require.NoError(t, err)
	m, err := NewModel(w, nil)
	require.NoError(t, err)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(5))
	const n, canvas = 500, 400
	origCorrect, drawnCorrect := 0, 0
	for i := 0; i < n; i++ {
		label := int(test.Labels[i])
		p, err := m.Predict(ctx, test.Gray(i))
		require.NoError(t, err)
		if p.Label == label {
			origCorrect++
		}

		// Dark ink on white: invert the MNIST image, then scale it up.
		inv := test.Gray(i)
		for j := range inv.Pix {
			inv.Pix[j] = 255 - inv.Pix[j]
		}
		size := Side * (4 + rng.Intn(5))
		x0, y0 := rng.Intn(canvas-size), rng.Intn(canvas-size)
		page := image.NewRGBA(image.Rect(0, 0, canvas, canvas))
		draw.Draw(page, page.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
		draw.BiLinear.Scale(page, image.Rect(x0, y0, x0+size, y0+size), inv, inv.Bounds(), draw.Src, nil)

		in, err := PreprocessImage(page)
		require.NoError(t, err, "image %d", i)
		p, err = m.Predict(ctx, in)
		require.NoError(t, err)
		if p.Label == label {
			drawnCorrect++
		}
	}
	orig, drawn := float64(origCorrect)/n, float64(drawnCorrect)/n
	t.Logf("%d digits: %.1f%% as 28x28 originals, %.1f%% as enlarged drawings through PreprocessImage", n, 100*orig, 100*drawn)
	assert.GreaterOrEqual(t, drawn, orig-0.01)
}
