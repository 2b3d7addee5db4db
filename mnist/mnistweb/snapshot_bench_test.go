package mnistweb_test

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/internal/pngluma"
)

// snapshotFixtures are the page's 84x84 snapshots: as the page sends it
// (greyscale, stored blocks), the same canvas as Chromium's RGBA PNG (what
// the page sent before), and an older RGBA snapshot of a thicker seven.
var snapshotFixtures = []struct{ name, path string }{
	{"page-grey", pageSnapshotFixture},
	{"canvas-rgba", canvasSnapshotFixture},
	{"old-rgba-seven", filepath.Join("..", "testdata", "chromium-canvas-seven-84.png")},
}

// BenchmarkSnapshot times the server's side of the page's snapshot, per
// fixture: decoding it to luminance (as mnist.Preprocess does), decoding it
// with image/png, and the whole of mnist.Preprocess.
//
//	go test -run '^$' -bench Snapshot ./mnist/mnistweb
func BenchmarkSnapshot(b *testing.B) {
	for _, f := range snapshotFixtures {
		data, err := os.ReadFile(f.path)
		require.NoError(b, err)
		buf := make([]byte, 84*84)
		b.Run(f.name+"/decode", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := pngluma.Decode(data, 0xff, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.name+"/image-png", func(b *testing.B) {
			for b.Loop() {
				if _, err := png.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.name+"/preprocess", func(b *testing.B) {
			for b.Loop() {
				if _, err := mnist.Preprocess(data, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
