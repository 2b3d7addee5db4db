package dadchttp_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/dadc/dadctest"
)

func TestAPIOverIntegers(t *testing.T) {
	f := newFixture(t, nil, nil)
	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        string
		status      int
		want        string
	}{
		{"predict JSON", "POST", "/api/predict", "application/json", `{"n": 4}`, 200, `"label":1`},
		{"predict raw body", "POST", "/api/predict", "text/plain", "5", 200, `"input":5`},
		{"predict unknown field", "POST", "/api/predict", "application/json", `{"n": 4, "x": 1}`, 400, `unknown field \"x\"; send {\"n\": 7}`},
		{"predict not JSON", "POST", "/api/predict", "application/json", `{"n":`, 400, "malformed JSON"},
		{"predict unsupported type", "POST", "/api/predict", "image/gif", "GIF89a", 415, `send the number as a raw text/plain body, or as JSON {\"n\": 7}`},
		{"predict codec error", "POST", "/api/predict", "application/json", `{"n": "four"}`, 400, "n must be a whole number"},
		{"flag fooled", "POST", "/api/flag", "application/json", `{"n": 4, "label": 0}`, 201, `"fooled":true`},
		{"flag right", "POST", "/api/flag", "application/json", `{"n": 5, "label": 2}`, 200, `"fooled":false`},
		{"flag label out of range", "POST", "/api/flag", "application/json", `{"n": 4, "label": 3}`, 400, "label must be a whole number from 0 to 2, not 3"},
		{"flag label missing", "POST", "/api/flag", "application/json", `{"n": 4}`, 400, `label is missing: send the correct label, {\"label\": 0-2}`},
		{"flag label not a number", "POST", "/api/flag", "application/json", `{"n": 4, "label": "one"}`, 400, "label must be a whole number from 0 to 2"},
		{"flag not JSON", "POST", "/api/flag", "text/plain", "4", 415, `send JSON {\"n\": 7, \"label\": 0-2}`},
		{"stats", "GET", "/api/stats", "", "", 200, `"flagged_total":1`},
		{"samples", "GET", "/api/samples?limit=5", "", "", 200, `"n":4`},
		{"samples bad limit", "GET", "/api/samples?limit=500", "", "", 400, "limit must be one whole number from 1 to 100"},
		{"healthz", "GET", "/healthz", "", "", 200, `"ok"`},
		{"no page configured", "GET", "/", "", "", 404, "there is nothing at /"},
		{"wrong method", "GET", "/api/flag", "", "", 405, "method GET is not allowed here; use POST"},
		{"unknown path", "GET", "/api/nope", "", "", 404, "there is nothing at /api/nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.target, tt.contentType, tt.body)
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tt.want)
			assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.Equal(t, dadchttp.ContentSecurityPolicy, rec.Header().Get("Content-Security-Policy"))
			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
		})
	}
	assert.Equal(t, "POST", f.do("GET", "/api/flag", "", "").Header().Get("Allow"))
}

func TestNewValidates(t *testing.T) {
	loop, err := dadc.NewLoop[int](dadctest.NewModel("m", 3, func(int) int { return 0 }), dadctest.NewFlagger[int](nil), dadc.Manual(), 3, nil)
	require.NoError(t, err)
	defer loop.Close(context.Background())
	tests := []struct {
		name  string
		loop  dadchttp.Loop[int]
		codec dadchttp.Codec[int]
		opts  *dadchttp.Options
		want  string
	}{
		{"no loop", nil, numberCodec{}, nil, "a loop is required"},
		{"no codec", loop, nil, nil, "a codec is required"},
		{"negative limit", loop, numberCodec{}, &dadchttp.Options{MaxStreams: -1}, "must not be negative"},
		{"bad hub dataset", loop, numberCodec{}, &dadchttp.Options{HubDataset: "a/b/c"}, "owner/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dadchttp.New(tt.loop, tt.codec, tt.opts)
			require.ErrorIs(t, err, dadchttp.ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil, &dadchttp.Options{Backlog: func() int { return 4 }})
	require.Equal(t, 200, f.do("POST", "/api/predict", "text/plain", "4").Code)
	require.Equal(t, 201, f.flag(4, 0).Code)
	require.Equal(t, 200, f.flag(5, 2).Code)
	require.Equal(t, 400, f.flag(5, 9).Code)

	problems, err := testutil.GatherAndLint(f.reg)
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint")

	const want = `
# HELP advspace_flag_requests_total Requests to /api/flag by outcome: fooled (sample stored), right (attempt counted), needs_confirmation (a confident disagreement, nothing stored), rejected (bad input), rate_limited, error.
# TYPE advspace_flag_requests_total counter
advspace_flag_requests_total{outcome="error"} 0
advspace_flag_requests_total{outcome="fooled"} 1
advspace_flag_requests_total{outcome="needs_confirmation"} 0
advspace_flag_requests_total{outcome="rate_limited"} 0
advspace_flag_requests_total{outcome="rejected"} 1
advspace_flag_requests_total{outcome="right"} 1
# HELP advspace_predictions_total Predictions answered by /api/predict.
# TYPE advspace_predictions_total counter
advspace_predictions_total 1
# HELP advspace_flagged_samples_total Adversarial samples stored (the model was fooled), all rounds.
# TYPE advspace_flagged_samples_total counter
advspace_flagged_samples_total 1
# HELP advspace_attempts_total Submissions the model got right (nothing stored), all rounds.
# TYPE advspace_attempts_total counter
advspace_attempts_total 1
# HELP advspace_flag_backlog Flags stored locally that wait for upload to the Hub.
# TYPE advspace_flag_backlog gauge
advspace_flag_backlog 4
# HELP advspace_model_info The model being served (value 1).
# TYPE advspace_model_info gauge
advspace_model_info{version="mod3"} 1
# HELP advspace_http_requests_total HTTP requests by route, method and status code.
# TYPE advspace_http_requests_total counter
advspace_http_requests_total{code="200",method="POST",route="flag"} 1
advspace_http_requests_total{code="200",method="POST",route="predict"} 1
advspace_http_requests_total{code="201",method="POST",route="flag"} 1
advspace_http_requests_total{code="400",method="POST",route="flag"} 1
`
	require.NoError(t, testutil.GatherAndCompare(f.reg, strings.NewReader(want),
		"advspace_flag_requests_total", "advspace_predictions_total", "advspace_flagged_samples_total",
		"advspace_attempts_total", "advspace_flag_backlog", "advspace_model_info", "advspace_http_requests_total"))
	assert.Equal(t, 3, testutil.CollectAndCount(f.reg, "advspace_retrains_total"))

	// /metrics serves the same registry in the text format.
	rec := f.do("GET", "/metrics", "", "")
	assert.Equal(t, 200, rec.Code)
	assert.Contains(t, rec.Header().Get("Content-Type"), "text/plain")
	parsed, err := testutil.GatherAndCount(f.reg, "advspace_http_requests_total")
	require.NoError(t, err)
	assert.Equal(t, 5, parsed, "the scrape itself is counted")
}

// SSE: an open stream gets a keep-alive comment every EventKeepAlive and
// ends when the Handler closes; no goroutine outlives it (the synctest
// bubble fails the test if one does). Time is the bubble's fake clock.
func TestEventsKeepAliveAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		loop, err := dadc.NewLoop[int](dadctest.NewModel("m", 3, func(int) int { return 0 }), dadctest.NewFlagger[int](nil), dadc.Manual(), 3, nil)
		require.NoError(t, err)
		h, err := dadchttp.New(loop, dadchttp.Codec[int](numberCodec{}), nil)
		require.NoError(t, err)

		w := &streamWriter{header: http.Header{}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(w, httptest.NewRequest("GET", "/api/events", nil))
		}()
		synctest.Wait()
		assert.Equal(t, "retry: 3000\n: connected\n\n", w.String())
		assert.Equal(t, "text/event-stream", w.header.Get("Content-Type"))

		time.Sleep(dadchttp.EventKeepAlive)
		synctest.Wait()
		assert.Equal(t, "retry: 3000\n: connected\n\n: keep-alive\n\n", w.String())

		require.NoError(t, h.Close())
		<-done
		assert.Equal(t, http.StatusServiceUnavailable, func() int {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			return rec.Code
		}())
		require.NoError(t, h.Close(), "Close is idempotent")
		require.NoError(t, loop.Close(context.Background()))
	})
}

// streamWriter is a ResponseWriter with Flush whose body can be read while
// the handler writes.
type streamWriter struct {
	header http.Header
	mu     sync.Mutex
	buf    bytes.Buffer
}

func (w *streamWriter) Header() http.Header { return w.header }
func (w *streamWriter) WriteHeader(int)     {}
func (w *streamWriter) Flush()              {}
func (w *streamWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}
func (w *streamWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
