//go:build !amd64 || purego

package pngluma

import "encoding/binary"

// paethSIMD unfilters nothing in this build: it returns i, and the caller
// unfilters cur[i:j] itself.
func paethSIMD(cur, prev []byte, i, j, bpp int) int { return i }

// avgSIMD unfilters nothing in this build.
func avgSIMD(cur, prev []byte, i, j, bpp int) int { return i }

// subSIMD unfilters nothing in this build.
func subSIMD(cur []byte, i, j, bpp int) int { return i }

// paethRun fills the flat run of a Paeth-filtered row from byte i, where
// the filtered bytes are zero and the bytes above equal w (eight bytes of
// one level, which the pixel to the left and the one above it hold too),
// eight bytes at a time, and returns where the run stopped.
func paethRun(cur, prev []byte, i int, w uint64) int {
	for i+8 <= len(cur) && binary.LittleEndian.Uint64(cur[i:]) == 0 && binary.LittleEndian.Uint64(prev[i:]) == w {
		binary.LittleEndian.PutUint64(cur[i:], w)
		i += 8
	}
	return i
}
