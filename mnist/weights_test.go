package mnist

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLayoutIsACopy: Layout is no mutable global; changing what it returns
// changes nothing for the next caller or for the weights checks.
func TestLayoutIsACopy(t *testing.T) {
	l := Layout()
	require.Len(t, l, 8)
	sum := 0
	for _, s := range l {
		sum += shapeSize(s.Shape)
	}
	assert.Equal(t, NumParams, sum)

	l[0].Name = "changed"
	l[0].Shape[0] = 99
	again := Layout()
	assert.Equal(t, "conv1.weight", again[0].Name)
	assert.Equal(t, []int{10, 1, 5, 5}, again[0].Shape)
	assert.NoError(t, NewZeroWeights().Validate())
}
