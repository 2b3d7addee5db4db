package dadc_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

func TestLocalStore_Conformance(t *testing.T) {
	dadctest.TestModelStore(t, 3, func(dir string) (dadc.ModelStore, error) {
		return dadc.NewLocalStore(dir, &dadc.LocalStoreOptions{Keep: 3, WeightsName: "model.safetensors"})
	})
}

func TestLocalStore_RemovesInterruptedSaves(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "models", ".tmp-1-dead")
	require.NoError(t, os.MkdirAll(tmp, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "model.bin"), []byte("half"), 0o644))
	s, err := dadc.NewLocalStore(dir, nil)
	require.NoError(t, err)
	assert.NoDirExists(t, tmp)
	_, err = s.Latest(t.Context())
	assert.ErrorIs(t, err, dadc.ErrNoModel)
}

func TestLocalStore_Validation(t *testing.T) {
	for _, tt := range []struct {
		name string
		dir  string
		opts *dadc.LocalStoreOptions
		want string
	}{
		{"no folder", "", nil, "the folder is empty"},
		{"negative keep", t.TempDir(), &dadc.LocalStoreOptions{Keep: -1}, "Keep is -1"},
		{"path as weights name", t.TempDir(), &dadc.LocalStoreOptions{WeightsName: "../x"}, "plain file name"},
		{"card as weights name", t.TempDir(), &dadc.LocalStoreOptions{WeightsName: "card.json"}, "plain file name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dadc.NewLocalStore(tt.dir, tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
