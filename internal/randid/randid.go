package randid

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
)

// Hex returns n random bytes from crypto/rand as 2·n lower-case hex digits;
// n of zero or less gives "". crypto/rand does not fail on supported
// platforms (since Go 1.24 the program crashes instead), so there is no
// error to handle.
func Hex(n int) string {
	if n <= 0 {
		return ""
	}
	b := make([]byte, n)
	_, _ = rand.Read(b) // documented never to return an error
	return hex.EncodeToString(b)
}

// HexFrom is Hex reading the bytes from r, for deterministic ids in tests
// (pass a seeded reader). It fails when r cannot give n bytes.
func HexFrom(r io.Reader, n int) (string, error) {
	if n <= 0 {
		return "", nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("randid: reading %d random bytes: %w", n, err)
	}
	return hex.EncodeToString(b), nil
}
