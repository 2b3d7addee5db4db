package mnistweb_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/mnist/mnistweb"
)

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"), rec.Body.String())
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return v
}

type predictAnswer struct {
	Label         int       `json:"label"`
	Probabilities []float64 `json:"probabilities"`
	ModelVersion  string    `json:"model_version"`
	Input         string    `json:"input"`
}

type flagAnswer struct {
	Fooled     bool      `json:"fooled"`
	ID         string    `json:"id"`
	Label      int       `json:"label"`
	ModelLabel int       `json:"model_label"`
	Count      int       `json:"count"`
	Round      int       `json:"round"`
	Retraining bool      `json:"retraining"`
	Message    string    `json:"message"`
	Probs      []float64 `json:"model_probabilities"`
}

type errorAnswer struct {
	Error string `json:"error"`
}

func flagBody(t *testing.T, img []byte, label any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"image": dataURL("image/png", img), "label": label})
	require.NoError(t, err)
	return b
}

// nthSeven is a PNG of a drawn seven, different for each n: flags with the
// same body from the same client within a minute count once.
func nthSeven(t *testing.T, n int) []byte {
	t.Helper()
	return pngBytes(t, drawing(100+n, 100, false))
}

func decodeDataURLImage(t *testing.T, u string) image.Image {
	t.Helper()
	raw, ok := strings.CutPrefix(u, "data:image/png;base64,")
	require.True(t, ok, "not a PNG data URL: %.40q", u)
	b, err := base64.StdEncoding.DecodeString(raw)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	return img
}

func TestPredictAccepts(t *testing.T) {
	f := newFixture(t, nil)
	seven := drawing(280, 280, false)
	jsonBody, err := json.Marshal(map[string]string{"image": dataURL("image/png", pngBytes(t, seven))})
	require.NoError(t, err)
	tests := []struct {
		name, contentType string
		body              []byte
	}{
		{"raw png", "image/png", pngBytes(t, seven)},
		{"raw jpeg", "image/jpeg", jpegBytes(t, seven)},
		{"png with charset parameter", "image/png; charset=binary", pngBytes(t, seven)},
		{"json data url", "application/json", jsonBody},
		{"small canvas", "image/png", pngBytes(t, drawing(40, 60, false))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do("POST", "/api/predict", tt.contentType, tt.body)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			p := decode[predictAnswer](t, rec)
			assert.Equal(t, 3, p.Label)
			assert.Equal(t, "fake-v0", p.ModelVersion)
			require.Len(t, p.Probabilities, 10)
			in := decodeDataURLImage(t, p.Input)
			assert.Equal(t, image.Rect(0, 0, 28, 28), in.Bounds())
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		})
	}
	rows, pngs := f.stored()
	assert.Empty(t, rows, "predict must not store anything")
	assert.Empty(t, pngs)
}

// badInputCase is one malformed request; every case must answer a 4xx with
// a JSON error and leave the store and the counters untouched.
type badInputCase struct {
	name        string
	method      string
	target      string
	contentType string
	body        []byte
	status      int
	contains    string
}

func runBadInput(t *testing.T, f *fixture, tests []badInputCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.target, tt.contentType, tt.body)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			e := decode[errorAnswer](t, rec)
			assert.Contains(t, e.Error, tt.contains)
			if tt.status == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, rec.Header().Get("Allow"))
			}
			rows, pngs := f.stored()
			assert.Empty(t, rows, "nothing may be written on bad input")
			assert.Empty(t, pngs, "nothing may be written on bad input")
			st := f.loop.Stats()
			assert.Zero(t, st.FlaggedTotal)
			assert.Zero(t, st.Attempts, "bad input is not an attempt")
		})
	}
}

func TestPredictBadInput(t *testing.T) {
	f := newFixture(t, &fixtureOptions{config: func(c *dadchttp.Options) { c.MaxBodyBytes = 64 << 10 }})
	seven := pngBytes(t, drawing(280, 280, false))
	big := make([]byte, 100<<10)
	copy(big, seven)
	jsonOf := func(v any) []byte {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return b
	}
	runBadInput(t, f, []badInputCase{
		{"wrong method", "GET", "/api/predict", "", nil, 405, "not allowed"},
		{"no content type", "POST", "/api/predict", "", seven, 415, "Content-Type"},
		{"text content type", "POST", "/api/predict", "text/plain", seven, 415, "not supported"},
		{"gif content type", "POST", "/api/predict", "image/gif", seven, 415, "not supported"},
		{"empty body", "POST", "/api/predict", "image/png", nil, 400, "empty"},
		{"not an image", "POST", "/api/predict", "image/png", []byte("hello, I am not a PNG"), 400, "not a PNG or JPEG"},
		{"truncated png", "POST", "/api/predict", "image/png", seven[:len(seven)/2], 400, "the PNG file is damaged or cut short"},
		{"empty drawing", "POST", "/api/predict", "image/png", pngBytes(t, drawing(280, 280, true)), 422, "empty"},
		{"body too large", "POST", "/api/predict", "image/png", big, 413, "too large"},
		{"declared size too large", "POST", "/api/predict", "image/png", hugePNG(t, 100000, 100000), 413, ""},
		{"malformed json", "POST", "/api/predict", "application/json", []byte(`{"image": `), 400, "malformed JSON"},
		{"json not an object", "POST", "/api/predict", "application/json", []byte(`[1,2]`), 400, "malformed JSON"},
		{"two json objects", "POST", "/api/predict", "application/json", []byte(`{"image":"x"} {}`), 400, "exactly one"},
		{"unknown json field", "POST", "/api/predict", "application/json", jsonOf(map[string]any{"img": "x"}), 400, "unknown field"},
		{"json image missing", "POST", "/api/predict", "application/json", []byte(`{}`), 400, "image is missing"},
		{"json image not a data url", "POST", "/api/predict", "application/json", jsonOf(map[string]any{"image": "http://example.com/x.png"}), 400, "data URL"},
		{"json data url of text", "POST", "/api/predict", "application/json", jsonOf(map[string]any{"image": "data:text/html;base64,PGI+"}), 415, "PNG or JPEG"},
		{"json data url not base64", "POST", "/api/predict", "application/json", jsonOf(map[string]any{"image": "data:image/png,abc"}), 400, "base64"},
		{"json bad base64", "POST", "/api/predict", "application/json", jsonOf(map[string]any{"image": "data:image/png;base64,@@@"}), 400, "base64"},
		{"json image wrong type", "POST", "/api/predict", "application/json", []byte(`{"image": 7}`), 400, "image"},
		{"json empty body", "POST", "/api/predict", "application/json", nil, 400, "empty"},
		{"json too large", "POST", "/api/predict", "application/json", append(append([]byte(`{"image":"`), bytes.Repeat([]byte("A"), 100<<10)...), '"', '}'), 413, "too large"},
	})
}

func TestFlag(t *testing.T) {
	f := newFixture(t, nil)
	seven := pngBytes(t, drawing(280, 280, false))

	// The model says 3: a 7 fools it.
	rec := f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 7))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	a := decode[flagAnswer](t, rec)
	assert.True(t, a.Fooled)
	assert.NotEmpty(t, a.ID)
	assert.Equal(t, 7, a.Label)
	assert.Equal(t, 3, a.ModelLabel)
	assert.Equal(t, 1, a.Count)
	assert.Equal(t, 0, a.Round)
	assert.Equal(t, "✔ (1) saved — you fooled the model", a.Message)

	rows, pngs := f.stored()
	require.Len(t, rows, 1)
	require.Len(t, pngs, 1)
	assert.Equal(t, a.ID, rows[0].ID)
	assert.Equal(t, 7, rows[0].Label)
	assert.Equal(t, 3, rows[0].ModelLabel)
	assert.Equal(t, "fake-v0", rows[0].ModelVersion)

	// Saying 3 agrees with the model: an attempt, nothing stored.
	rec = f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 3))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	a = decode[flagAnswer](t, rec)
	assert.False(t, a.Fooled)
	assert.Empty(t, a.ID)
	assert.Equal(t, "the model got it right", a.Message)
	assert.Equal(t, 1, a.Count)
	rows, _ = f.stored()
	assert.Len(t, rows, 1)
	st := f.loop.Stats()
	assert.Equal(t, 1, st.FlaggedTotal)
	assert.Equal(t, 1, st.Attempts)
	assert.Equal(t, 1, st.PerLabel[7])
}

func TestFlagSession(t *testing.T) {
	f := newFixture(t, nil)
	page := f.do("GET", "/", "", nil)
	require.Equal(t, http.StatusOK, page.Code)
	cookies := page.Result().Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.Equal(t, "advspace_session", c.Name)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
	assert.Regexp(t, `^[0-9a-f]{32}$`, c.Value)

	req := httptest.NewRequest("POST", "/api/flag", bytes.NewReader(flagBody(t, pngBytes(t, drawing(100, 100, false)), 1)))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	f.space.ServeHTTP(rec, req)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	rows, _ := f.stored()
	require.Len(t, rows, 1)
	assert.Equal(t, c.Value, rows[0].Session, "only the anonymous session id is stored")

	// A page view with a valid cookie keeps it.
	req = httptest.NewRequest("GET", "/", nil)
	req.AddCookie(c)
	rec = httptest.NewRecorder()
	f.space.ServeHTTP(rec, req)
	assert.Empty(t, rec.Result().Cookies())
}

func TestFlagBadInput(t *testing.T) {
	f := newFixture(t, &fixtureOptions{config: func(c *dadchttp.Options) { c.MaxBodyBytes = 64 << 10 }})
	seven := pngBytes(t, drawing(280, 280, false))
	img := dataURL("image/png", seven)
	raw := func(s string) []byte { return []byte(s) }
	runBadInput(t, f, []badInputCase{
		{"wrong method", "GET", "/api/flag", "", nil, 405, "not allowed"},
		{"put", "PUT", "/api/flag", "application/json", flagBody(t, seven, 7), 405, "POST"},
		{"raw png", "POST", "/api/flag", "image/png", seven, 415, "application/json"},
		{"no content type", "POST", "/api/flag", "", flagBody(t, seven, 7), 415, "application/json"},
		{"label missing", "POST", "/api/flag", "application/json", raw(`{"image":"` + img + `"}`), 400, "label is missing"},
		{"label negative", "POST", "/api/flag", "application/json", flagBody(t, seven, -1), 400, "0 to 9"},
		{"label ten", "POST", "/api/flag", "application/json", flagBody(t, seven, 10), 400, "0 to 9"},
		{"label huge", "POST", "/api/flag", "application/json", raw(`{"image":"` + img + `","label":1e30}`), 400, "0 to 9"},
		{"label fraction", "POST", "/api/flag", "application/json", flagBody(t, seven, 3.5), 400, "0 to 9"},
		{"label string", "POST", "/api/flag", "application/json", flagBody(t, seven, "7"), 400, "0 to 9"},
		{"label null", "POST", "/api/flag", "application/json", raw(`{"image":"` + img + `","label":null}`), 400, "label is missing"},
		{"image missing", "POST", "/api/flag", "application/json", raw(`{"label":7}`), 400, "image is missing"},
		{"image not an image", "POST", "/api/flag", "application/json", flagBody(t, []byte("not an image at all"), 7), 400, "not a PNG or JPEG"},
		{"empty drawing", "POST", "/api/flag", "application/json", flagBody(t, pngBytes(t, drawing(280, 280, true)), 7), 422, "empty"},
		{"declared size too large", "POST", "/api/flag", "application/json", flagBody(t, hugePNG(t, 50000, 50000), 7), 413, ""},
		{"body too large", "POST", "/api/flag", "application/json", flagBody(t, bytes.Repeat([]byte{0x89}, 64<<10), 7), 413, "too large"},
		{"malformed json", "POST", "/api/flag", "application/json", raw(`{"label": 7,`), 400, "malformed JSON"},
		{"unknown field", "POST", "/api/flag", "application/json", raw(`{"label": 7, "image":"` + img + `", "admin": true}`), 400, "unknown field"},
		{"bad session", "POST", "/api/flag", "application/json", raw(`{"label": 7, "image":"` + img + `", "session": "<script>"}`), 400, "session"},
	})
}

func TestFlagRateLimit(t *testing.T) {
	f := newFixture(t, &fixtureOptions{config: func(c *dadchttp.Options) {
		c.FlagRate = rate.Every(time.Hour)
		c.FlagBurst = 2
	}})
	seven := pngBytes(t, drawing(100, 100, false))
	for i := range 2 {
		rec := f.doFrom("198.51.100.7", "POST", "/api/flag", "application/json", flagBody(t, nthSeven(t, i+1), 7))
		require.Equal(t, http.StatusCreated, rec.Code, "flag %d: %s", i, rec.Body.String())
	}
	rec := f.doFrom("198.51.100.7", "POST", "/api/flag", "application/json", flagBody(t, nthSeven(t, 3), 7))
	require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
	retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After must be seconds")
	assert.InDelta(t, 1800, retry, 1801, "Retry-After is up to an hour")
	assert.Contains(t, decode[errorAnswer](t, rec).Error, "too many flags")
	rows, _ := f.stored()
	assert.Len(t, rows, 2, "the limited request stores nothing")

	// Another client is not limited; predictions are not limited.
	rec = f.doFrom("198.51.100.8", "POST", "/api/flag", "application/json", flagBody(t, seven, 7))
	assert.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	rec = f.doFrom("198.51.100.7", "POST", "/api/predict", "image/png", seven)
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

func TestFlagRateLimitRecovers(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f := newFixture(t, &fixtureOptions{config: func(c *dadchttp.Options) {
		c.FlagRate = 20 // a token every 50 ms
		c.FlagBurst = 1
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	}})
	require.Equal(t, http.StatusCreated, f.do("POST", "/api/flag", "application/json", flagBody(t, nthSeven(t, 1), 7)).Code)
	rec := f.do("POST", "/api/flag", "application/json", flagBody(t, nthSeven(t, 2), 7))
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"), "waits under a second round up to 1")
	assert.Equal(t, "too many flags from you: wait 1s and try again", decode[errorAnswer](t, rec).Error, "the body says the same wait")
	mu.Lock()
	now = now.Add(50 * time.Millisecond)
	mu.Unlock()
	assert.Equal(t, http.StatusCreated, f.do("POST", "/api/flag", "application/json", flagBody(t, nthSeven(t, 2), 7)).Code)
}

func TestStats(t *testing.T) {
	f := newFixture(t, &fixtureOptions{config: func(c *dadchttp.Options) { c.HubDataset = "someone/mnist-adversarial" }})
	seven := pngBytes(t, drawing(100, 100, false))
	require.Equal(t, http.StatusCreated, f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 7)).Code)
	require.Equal(t, http.StatusCreated, f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 1)).Code)
	require.Equal(t, http.StatusOK, f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 3)).Code)

	rec := f.do("GET", "/api/stats", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	st := decode[struct {
		dadc.Stats
		HubDataset string `json:"hub_dataset"`
	}](t, rec)
	assert.Equal(t, "fake-v0", st.ModelVersion)
	assert.Equal(t, 2, st.FlaggedTotal)
	assert.Equal(t, 1, st.Attempts)
	assert.InDelta(t, 2.0/3, st.ModelErrorRate, 1e-9)
	assert.Equal(t, []int{0, 1, 0, 0, 0, 0, 0, 1, 0, 0}, st.PerLabel)
	require.Len(t, st.Rounds, 1)
	assert.Equal(t, 2, st.Rounds[0].Flags)
	assert.Equal(t, "someone/mnist-adversarial", st.HubDataset)
	// The raw JSON uses the contract's names.
	for _, key := range []string{`"model_version"`, `"flagged_total"`, `"attempts"`, `"model_error_rate"`, `"per_label"`, `"rounds"`, `"retraining"`, `"clean_accuracy"`, `"adversarial_accuracy"`, `"promoted"`} {
		assert.Contains(t, rec.Body.String(), key)
	}
	runBadInput(t, newFixture(t, nil), []badInputCase{{"post", "POST", "/api/stats", "application/json", []byte(`{}`), 405, "GET"}})
}

func TestSamples(t *testing.T) {
	f := newFixture(t, nil)
	seven := pngBytes(t, drawing(100, 100, false))
	var ids []string
	for _, label := range []int{7, 1, 9} {
		rec := f.do("POST", "/api/flag", "application/json", flagBody(t, seven, label))
		require.Equal(t, http.StatusCreated, rec.Code)
		ids = append(ids, decode[flagAnswer](t, rec).ID)
	}
	type sampleAnswer struct {
		Samples []map[string]any `json:"samples"`
		Count   int              `json:"count"`
	}
	rec := f.do("GET", "/api/samples", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	all := decode[sampleAnswer](t, rec)
	require.Equal(t, 3, all.Count)
	require.Len(t, all.Samples, 3)
	assert.Equal(t, ids[2], all.Samples[0]["id"], "most recent first")
	assert.EqualValues(t, 9, all.Samples[0]["label"])
	assert.EqualValues(t, 3, all.Samples[0]["model_label"])
	assert.Equal(t, "fake-v0", all.Samples[0]["model_version"])
	assert.NotContains(t, all.Samples[0], "session", "other people's session ids are not shown")
	img := decodeDataURLImage(t, all.Samples[0]["image"].(string))
	assert.Equal(t, image.Rect(0, 0, 28, 28), img.Bounds())

	rec = f.do("GET", "/api/samples?limit=2", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Len(t, decode[sampleAnswer](t, rec).Samples, 2)

	for _, q := range []string{"limit=0", "limit=101", "limit=abc", "limit=-3", "limit=", "limit=1&limit=2", "limit=2.5"} {
		rec := f.do("GET", "/api/samples?"+q, "", nil)
		assert.Equal(t, http.StatusBadRequest, rec.Code, q)
		assert.Contains(t, decode[errorAnswer](t, rec).Error, "1 to 100", q)
	}
}

func TestPageAndStatic(t *testing.T) {
	f := newFixture(t, &fixtureOptions{config: func(c *dadchttp.Options) { c.HubDataset = "someone/digits" }})
	rec := f.do("GET", "/", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	body := rec.Body.String()
	assert.Contains(t, body, `<canvas id="pad"`)
	assert.Contains(t, body, `src="static/app.js"`, "relative URLs, so the Space can be mounted under a prefix")
	assert.Contains(t, body, "someone/digits")
	assert.NotContains(t, body, "<script>", "no inline scripts")
	assert.NotContains(t, body, "style=", "no inline styles")
	assert.NotContains(t, body, "{{", "template fully rendered")

	for _, tt := range []struct{ path, contentType, contains string }{
		{"/static/app.js", "text/javascript; charset=utf-8", "api/predict"},
		{"/static/style.css", "text/css; charset=utf-8", "touch-action: none"},
	} {
		rec := f.do("GET", tt.path, "", nil)
		require.Equal(t, http.StatusOK, rec.Code, tt.path)
		assert.Equal(t, tt.contentType, rec.Header().Get("Content-Type"), tt.path)
		assert.Contains(t, rec.Body.String(), tt.contains)
	}
	js := f.do("GET", "/static/app.js", "", nil).Body.String()
	assert.False(t, strings.Contains(js, "innerHTML"), "the page never parses data as HTML")
	// The only absolute URL is the SVG namespace name, which is never fetched.
	js = strings.ReplaceAll(js, "'http://www.w3.org/2000/svg'", "")
	assert.False(t, strings.Contains(js, "http://") || strings.Contains(js, "https://"), "no CDN, no absolute URLs")

	for _, p := range []string{"/static/", "/static/index.html", "/static/nope.js", "/static/../space.go", "/nope", "/api/nope"} {
		rec := f.do("GET", p, "", nil)
		assert.Equal(t, http.StatusNotFound, rec.Code, p)
	}
	assert.Equal(t, http.StatusOK, f.do("HEAD", "/", "", nil).Code)
	assert.Equal(t, http.StatusOK, f.do("HEAD", "/api/events", "", nil).Code, "HEAD does not open a stream")
	assert.Equal(t, http.StatusMethodNotAllowed, f.do("POST", "/static/app.js", "text/plain", nil).Code)
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	f := newFixture(t, nil)
	seven := pngBytes(t, drawing(100, 100, false))
	requests := []struct {
		method, path, ct string
		body             []byte
	}{
		{"GET", "/", "", nil},
		{"GET", "/static/app.js", "", nil},
		{"POST", "/api/predict", "image/png", seven},
		{"POST", "/api/predict", "text/plain", nil},
		{"GET", "/api/stats", "", nil},
		{"GET", "/healthz", "", nil},
		{"GET", "/metrics", "", nil},
		{"GET", "/nope", "", nil},
	}
	for _, r := range requests {
		rec := f.do(r.method, r.path, r.ct, r.body)
		h := rec.Header()
		csp := h.Get("Content-Security-Policy")
		assert.Contains(t, csp, "default-src 'self'", r.path)
		assert.Contains(t, csp, "img-src 'self' data:", r.path)
		assert.NotContains(t, csp, "unsafe-inline", r.path)
		assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), r.path)
		assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"), r.path)
		assert.Equal(t, "DENY", h.Get("X-Frame-Options"), r.path)
	}
}

func TestHealthz(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.do("GET", "/healthz", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ok", decode[map[string]string](t, rec)["status"])
	require.NoError(t, f.space.Close())
	assert.Equal(t, http.StatusServiceUnavailable, f.do("GET", "/healthz", "", nil).Code)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	backlog := 4
	f := newFixture(t, &fixtureOptions{config: func(c *dadchttp.Options) {
		c.Registry = reg
		c.Backlog = func() int { return backlog }
	}})
	seven := pngBytes(t, drawing(100, 100, false))
	require.Equal(t, http.StatusOK, f.do("POST", "/api/predict", "image/png", seven).Code)
	require.Equal(t, http.StatusCreated, f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 7)).Code)
	require.Equal(t, http.StatusOK, f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 3)).Code)
	require.Equal(t, http.StatusBadRequest, f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 11)).Code)

	rec := f.do("GET", "/metrics", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	problems, err := testutil.GatherAndLint(reg)
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
# HELP advspace_http_requests_total HTTP requests by route, method and status code.
# TYPE advspace_http_requests_total counter
advspace_http_requests_total{code="200",method="GET",route="metrics"} 1
advspace_http_requests_total{code="200",method="POST",route="flag"} 1
advspace_http_requests_total{code="200",method="POST",route="predict"} 1
advspace_http_requests_total{code="201",method="POST",route="flag"} 1
advspace_http_requests_total{code="400",method="POST",route="flag"} 1
# HELP advspace_model_info The model being served (value 1).
# TYPE advspace_model_info gauge
advspace_model_info{version="fake-v0"} 1
# HELP advspace_flag_backlog Flags stored locally that wait for upload to the Hub.
# TYPE advspace_flag_backlog gauge
advspace_flag_backlog 4
# HELP advspace_round The current round.
# TYPE advspace_round gauge
advspace_round 0
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"advspace_flag_requests_total", "advspace_http_requests_total", "advspace_model_info", "advspace_flag_backlog", "advspace_round"))
	assert.Contains(t, rec.Body.String(), `advspace_http_request_duration_seconds_count{route="predict"} 1`, "the text format is served")

	// A second app in the same registry is refused with a clear error.
	_, err = mnistweb.New(f.loop, &mnistweb.Options{HTTP: &dadchttp.Options{Registry: reg}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "register metrics")
}

func TestNewValidates(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name string
		loop dadchttp.Loop[*image.Gray]
		cfg  dadchttp.Options
		want string
	}{
		{"no loop", nil, dadchttp.Options{}, "loop is required"},
		{"negative body limit", f.loop, dadchttp.Options{MaxBodyBytes: -1}, "negative"},
		{"negative burst", f.loop, dadchttp.Options{FlagBurst: -1}, "negative"},
		{"hub dataset with markup", f.loop, dadchttp.Options{HubDataset: `"><script>alert(1)</script>`}, "owner/name"},
		{"hub dataset without owner", f.loop, dadchttp.Options{HubDataset: "digits"}, "owner/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mnistweb.New(tt.loop, &mnistweb.Options{HTTP: &tt.cfg})
			require.Error(t, err)
			assert.ErrorIs(t, err, dadchttp.ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	f := newFixture(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/digits/", http.StripPrefix("/digits", f.space))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/digits/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "static/app.js")
	resp, err = http.Get(srv.URL + "/digits/static/app.js")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Post(srv.URL+"/digits/api/predict", "image/png", bytes.NewReader(pngBytes(t, drawing(100, 100, false))))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestEventsStreamRetrain(t *testing.T) {
	f := newFixture(t, &fixtureOptions{
		model:  &digitModel{digit: 3, version: "fake-v0", trainDelay: 50 * time.Millisecond},
		policy: dadc.EveryN(2),
	})
	srv := httptest.NewServer(f.space)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	for i := range 2 {
		r, err := http.Post(srv.URL+"/api/flag", "application/json", bytes.NewReader(flagBody(t, nthSeven(t, i), 7)))
		require.NoError(t, err)
		r.Body.Close()
		require.Equal(t, http.StatusCreated, r.StatusCode)
	}
	// The stream carries the retrain's start and its promotion, nothing per flag.
	var kinds []string
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 1024)
	for len(kinds) < 2 {
		n, err := resp.Body.Read(chunk)
		require.NoError(t, err, "stream ended early; got %v", kinds)
		buf = append(buf, chunk[:n]...)
		for {
			i := bytes.Index(buf, []byte("\n\n"))
			if i < 0 {
				break
			}
			msg := string(buf[:i])
			buf = buf[i+2:]
			for line := range strings.SplitSeq(msg, "\n") {
				if data, ok := strings.CutPrefix(line, "data: "); ok {
					var ev dadc.Event
					require.NoError(t, json.Unmarshal([]byte(data), &ev))
					kinds = append(kinds, string(ev.Kind))
				}
			}
		}
	}
	assert.Equal(t, []string{"retrain_started", "model_promoted"}, kinds)
	require.NoError(t, f.loop.WaitIdle(ctx))
	assert.NotEqual(t, "fake-v0", f.loop.Stats().ModelVersion)

	// Close ends open streams so that a server shutdown is not held up.
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		done <- err
	}()
	require.NoError(t, f.space.Close())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("event stream still open after Close")
	}
}

func TestConcurrentRequests(t *testing.T) {
	f := newFixture(t, &fixtureOptions{
		model:  &digitModel{digit: 3, version: "fake-v0", trainDelay: 20 * time.Millisecond},
		policy: dadc.EveryN(5),
	})
	seven := pngBytes(t, drawing(120, 120, false))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				label := []int{7, 3}[i%2]
				rec := f.doFrom(fmt.Sprintf("10.0.0.%d", g), "POST", "/api/flag", "application/json", flagBody(t, nthSeven(t, 20+10*g+i), label))
				if label == 7 {
					if assert.Equal(t, http.StatusCreated, rec.Code, rec.Body.String()) {
						mu.Lock()
						ids[decode[flagAnswer](t, rec).ID] = true
						mu.Unlock()
					}
				} else {
					assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
				}
				assert.Equal(t, http.StatusOK, f.do("POST", "/api/predict", "image/png", seven).Code)
				assert.Equal(t, http.StatusOK, f.do("GET", "/api/stats", "", nil).Code)
				assert.Equal(t, http.StatusOK, f.do("GET", "/api/samples?limit=5", "", nil).Code)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, f.loop.WaitIdle(ctx))
	rows, pngs := f.stored()
	assert.Len(t, ids, 40)
	assert.Len(t, rows, 40, "every acknowledged flag stored exactly once")
	assert.Len(t, pngs, 40)
	for _, r := range rows {
		assert.True(t, ids[r.ID], r.ID)
	}
	st := f.loop.Stats()
	assert.Equal(t, 40, st.FlaggedTotal)
	assert.Equal(t, 40, st.Attempts)
}

func TestLogsRequests(t *testing.T) {
	var logs syncBuffer
	f := newFixture(t, &fixtureOptions{config: func(c *dadchttp.Options) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	}})
	seven := pngBytes(t, drawing(100, 100, false))
	require.Equal(t, http.StatusCreated, f.do("POST", "/api/flag", "application/json", flagBody(t, seven, 7)).Code)
	out := logs.String()
	assert.Contains(t, out, `"path":"/api/flag"`)
	assert.Contains(t, out, `"status":201`)
	assert.Contains(t, out, `"duration"`)
	assert.NotContains(t, out, base64.StdEncoding.EncodeToString(seven)[:40], "image bytes are never logged")
}
