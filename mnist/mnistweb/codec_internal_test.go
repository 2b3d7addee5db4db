package mnistweb

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCodecBoundsConcurrentDecodes: however many requests decode at once,
// no more than MaxConcurrent images are decoded together (each may take
// tens of megabytes while decoding).
func TestCodecBoundsConcurrentDecodes(t *testing.T) {
	// A 16-bit image: image/png decodes it (the slow, memory-hungry path).
	img := image.NewGray16(image.Rect(0, 0, 600, 600))
	for y := 200; y < 400; y++ {
		for x := 280; x < 320; x++ {
			img.SetGray16(x, y, color.Gray16{Y: 0xffff})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	c := NewCodec(&CodecOptions{MaxConcurrent: 2})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			g, err := c.DecodeBody("image/png", buf.Bytes())
			if assert.NoError(t, err) {
				assert.Equal(t, image.Rect(0, 0, 28, 28), g.Rect)
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, c.maxInFlight.Load(), int32(2))
	assert.GreaterOrEqual(t, c.maxInFlight.Load(), int32(1))
	assert.Zero(t, c.inFlight.Load())
	assert.Equal(t, 2, cap(c.slots))
	assert.Equal(t, runtime.GOMAXPROCS(0), cap(NewCodec(nil).slots), "default: GOMAXPROCS")
}
