package idx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFindFile(t *testing.T) {
	dir := t.TempDir()
	put := func(name string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
	}
	put("both")
	put("both.gz")
	put("raw")
	put("gz.gz")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "folder"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "folder.gz"), 0o755))
	tests := []struct {
		name, want string
		found      bool
	}{
		{"both", "both.gz", true},
		{"raw", "raw", true},
		{"gz", "gz.gz", true},
		{"missing", "", false},
		{"folder", "", false}, // folders are not files, whatever their name
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := FindFile(dir, tt.name)
			require.NoError(t, err)
			assert.Equal(t, tt.found, found)
			if tt.found {
				assert.Equal(t, filepath.Join(dir, tt.want), got)
			}
		})
	}
	_, found, err := FindFile(filepath.Join(dir, "raw"), "x") // the folder is a file
	assert.False(t, found)
	assert.Error(t, err)

	assert.Equal(t, [4]string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}, StandardFiles())
}
