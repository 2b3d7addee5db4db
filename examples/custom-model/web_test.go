package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

// The generic web layer serves the point model over the same HTTP API as
// the MNIST app: same routes, same JSON fields, same status codes; only the
// input member ("point") differs.
func TestServePointModelOverHTTP(t *testing.T) {
	flagger, closeLog, err := jsonlFlagger(filepath.Join(t.TempDir(), "samples.jsonl"))
	require.NoError(t, err)
	defer closeLog()
	model := newProtoModel("proto-r0", randomPointsForTest())
	loop, err := dadc.NewLoop[Point](model, flagger, dadc.Manual(), len(classes), nil)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, "127.0.0.1:0", loop, slog.New(slog.DiscardHandler), func(u string) { ready <- u })
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}

	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(url+path, "application/json", bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out), string(b))
		return resp.StatusCode, out
	}

	// Ask the model first; which label fools it follows from its answer.
	code, pred := post("api/predict", `{"point": {"x": 0.39, "y": 0.45}}`)
	require.Equal(t, http.StatusOK, code, pred)
	assert.Equal(t, map[string]any{"x": 0.39, "y": 0.45}, pred["input"])
	assert.Equal(t, "proto-r0", pred["model_version"])
	assert.Len(t, pred["probabilities"], 3)
	said := int(pred["label"].(float64))

	// A label other than the model's fools it (201, stored); its own does not (200).
	wrong := (said + 1) % 3
	code, out := post("api/flag", `{"point": {"x": 0.39, "y": 0.45}, "label": `+itoa(wrong)+`}`)
	require.Equal(t, http.StatusCreated, code, out)
	assert.Equal(t, true, out["fooled"])
	assert.NotEmpty(t, out["id"])
	code, out = post("api/flag", `{"point": {"x": 0.39, "y": 0.45}, "label": `+itoa(said)+`}`)
	require.Equal(t, http.StatusOK, code, out)
	assert.Equal(t, false, out["fooled"])

	// Bad input is a 4xx with a message for a person, and stores nothing.
	code, out = post("api/flag", `{"point": {"x": 3, "y": 0.5}, "label": 1}`)
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Equal(t, "x and y must be from 0 to 1, not 3 and 0.5", out["error"])
	code, out = post("api/flag", `{"point": {"x": 0.5, "y": 0.5}, "label": 3}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "label must be a whole number from 0 to 2, not 3", out["error"])
	code, out = post("api/predict", `{"image": "data:image/png;base64,AAAA"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, out["error"], `unknown field "image"; send {"point": {"x": 0.4, "y": 0.7}}`)

	resp, err := http.Get(url + "api/stats")
	require.NoError(t, err)
	var st dadc.Stats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	assert.Equal(t, 1, st.FlaggedTotal)
	assert.Equal(t, 1, st.Attempts)

	resp, err = http.Get(url + "api/samples")
	require.NoError(t, err)
	var samples struct {
		Samples []map[string]any `json:"samples"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&samples))
	resp.Body.Close()
	require.Len(t, samples.Samples, 1)
	assert.Equal(t, map[string]any{"x": 0.39, "y": 0.45}, samples.Samples[0]["point"])
	assert.Equal(t, float64(wrong), samples.Samples[0]["label"])

	cancel()
	require.NoError(t, <-done, "a clean shutdown")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
