package dadchttp_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
)

func TestModelDownload(t *testing.T) {
	store, err := dadc.NewLocalStore(t.TempDir(), &dadc.LocalStoreOptions{WeightsName: "model.safetensors"})
	require.NoError(t, err)
	weights := []byte("the weights of mod3")
	require.NoError(t, store.Save(context.Background(), dadc.ModelCard{Version: "mod3"}, func(w io.Writer) error {
		_, err := w.Write(weights)
		return err
	}))
	other, err := dadc.NewLocalStore(t.TempDir(), nil)
	require.NoError(t, err)

	tests := []struct {
		name     string
		opts     *dadchttp.Options
		status   int
		body     []byte
		filename string
	}{
		{"serving model from the store", &dadchttp.Options{Models: store, ModelFileName: "model.safetensors"}, http.StatusOK, weights, `attachment; filename="model-mod3.safetensors"`},
		{"no store", nil, http.StatusNotFound, nil, ""},
		{"serving model not stored", &dadchttp.Options{Models: other}, http.StatusNotFound, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, tt.opts)
			rec := f.do("GET", "/api/model", "", "")
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.status != http.StatusOK {
				assert.Contains(t, decode[map[string]string](t, rec.Body)["error"], "model")
				return
			}
			assert.Equal(t, "mod3", rec.Header().Get(dadchttp.ModelVersionHeader))
			assert.Equal(t, tt.filename, rec.Header().Get("Content-Disposition"))
			assert.Equal(t, "application/octet-stream", rec.Header().Get("Content-Type"))
			assert.True(t, bytes.Equal(tt.body, rec.Body.Bytes()))
		})
	}
}
