package randid_test

import (
	"bytes"
	"regexp"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/internal/randid"
)

func TestHex(t *testing.T) {
	hexRE := regexp.MustCompile(`^[0-9a-f]*$`)
	for _, n := range []int{-1, 0, 1, 4, 16} {
		got := randid.Hex(n)
		assert.Len(t, got, 2*max(n, 0), "n=%d", n)
		assert.Regexp(t, hexRE, got)
	}
	seen := map[string]bool{}
	for range 1000 {
		id := randid.Hex(8)
		require.False(t, seen[id], "64-bit ids repeat only with negligible probability")
		seen[id] = true
	}
}

func TestHexFrom(t *testing.T) {
	tests := []struct {
		name    string
		src     []byte
		n       int
		want    string
		wantErr string
	}{
		{"reads n bytes", []byte{0x00, 0xab, 0xff, 0x10}, 3, "00abff", ""},
		{"zero", []byte{1}, 0, "", ""},
		{"short source", []byte{1, 2}, 4, "", "randid: reading 4 random bytes: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := randid.HexFrom(bytes.NewReader(tt.src), tt.n)
			if tt.wantErr != "" {
				assert.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := randid.HexFrom(iotest.ErrReader(assert.AnError), 2)
	assert.ErrorIs(t, err, assert.AnError)
}
