//go:build !amd64 || purego

package pngluma

// simdUnfilter is false: this build has only the portable unfiltering.
const simdUnfilter = false

// paethSIMD unfilters nothing in this build: it returns i, and the caller
// unfilters cur[i:j] itself.
func paethSIMD(cur, prev []byte, i, j, bpp int) int { return i }

// avgSIMD unfilters nothing in this build.
func avgSIMD(cur, prev []byte, i, j, bpp int) int { return i }

// subSIMD unfilters nothing in this build.
func subSIMD(cur []byte, i, j, bpp int) int { return i }
