package dadchttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/dadc/dadctest"
)

// numberCodec takes whole numbers: JSON {"n": 7} or a text/plain body "7".
// It shows a number as itself.
type numberCodec struct{}

func (numberCodec) Spec() dadchttp.InputSpec {
	return dadchttp.InputSpec{Field: "n", Example: "7", Noun: "the number", Labels: []string{"zero", "one", "two"}}
}

func (numberCodec) DecodeJSON(raw json.RawMessage) (int, error) {
	if raw == nil {
		return 0, dadchttp.Errorf(http.StatusBadRequest, `n is missing: send {"n": 7}`)
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, dadchttp.Errorf(http.StatusBadRequest, "n must be a whole number")
	}
	return n, nil
}

func (numberCodec) Render(n int) (any, error) { return n, nil }

func (numberCodec) MediaTypes() []string { return []string{"text/plain"} }

func (numberCodec) DecodeBody(_ string, body []byte) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return 0, dadchttp.Errorf(http.StatusBadRequest, "the body must be a whole number")
	}
	return n, nil
}

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is a Handler over a real dadc.Loop of whole numbers whose model
// says n % 3, storing into flagger.
type fixture struct {
	t       *testing.T
	loop    *dadc.Loop[int]
	h       *dadchttp.Handler[int]
	reg     *prometheus.Registry
	clock   *clock
	logs    *syncBuffer
	flagger dadc.Flagger[int]
}

func newFixture(t *testing.T, flagger dadc.Flagger[int], opts *dadchttp.Options) *fixture {
	t.Helper()
	if flagger == nil {
		flagger = dadctest.NewFlagger[int](nil)
	}
	var o dadchttp.Options
	if opts != nil {
		o = *opts
	}
	f := &fixture{t: t, clock: newClock(), logs: &syncBuffer{}, reg: prometheus.NewRegistry(), flagger: flagger}
	model := dadctest.NewModel("mod3", 3, func(n int) int { return n % 3 })
	loop, err := dadc.NewLoop[int](model, flagger, dadc.Manual(), 3, nil)
	require.NoError(t, err)
	if o.Now == nil {
		o.Now = f.clock.Now
	}
	if o.FlagRate == 0 {
		o.FlagRate, o.FlagBurst = 1000, 1000
	}
	if o.ConfirmThreshold == 0 {
		// Off unless a test turns it on: the mod-3 model is always sure.
		o.ConfirmThreshold = 2
	}
	o.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	o.Registry = f.reg
	h, err := dadchttp.New(loop, dadchttp.Codec[int](numberCodec{}), &o)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h.Close())
		require.NoError(t, loop.Close(context.Background()))
	})
	f.loop, f.h = loop, h
	return f
}

// do serves one request from peer 192.0.2.1 (or the given headers' peer).
func (f *fixture) do(method, target, contentType, body string, header ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.1:1234"
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "RemoteAddr" {
			req.RemoteAddr = header[i+1]
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) flag(n, label int, header ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.do("POST", "/api/flag", "application/json", fmt.Sprintf(`{"n": %d, "label": %d}`, n, label), header...)
}

func decode[T any](t *testing.T, r io.Reader) T {
	t.Helper()
	var v T
	require.NoError(t, json.NewDecoder(r).Decode(&v))
	return v
}

type errorAnswer struct {
	Error string `json:"error"`
}

type flagAnswer struct {
	Fooled     bool   `json:"fooled"`
	ID         string `json:"id"`
	Label      int    `json:"label"`
	ModelLabel int    `json:"model_label"`
	Count      int    `json:"count"`
}
