//go:build unix

package flag

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A new user trips over files other tools cannot read: every file a Dir
// stores (input, metadata, card) gets the same permission, 0644 under the
// usual umask 022, like files made by cp or the datasets library.
func TestNewUserTrip_StoredFilesShareOnePermission(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	root := t.TempDir()
	d := openTestDir(t, root, &DirOptions{Shard: "a"})
	require.NoError(t, d.Flag(t.Context(), testSample(1)))
	for _, name := range []string{
		filepath.Join(root, "README.md"),
		filepath.Join(d.ShardDir(), MetadataFile),
		filepath.Join(d.ShardDir(), testSample(1).ID+".png"),
	} {
		st, err := os.Stat(name)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o644), st.Mode().Perm(), "%s", filepath.Base(name))
	}
}
