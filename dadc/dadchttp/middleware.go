package dadchttp

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Middleware wraps an http.Handler with a cross-cutting concern.
type Middleware = func(http.Handler) http.Handler

// Chain applies middleware so that the first one is the outermost:
// Chain(h, a, b) serves a(b(h)).
func Chain(h http.Handler, mw ...Middleware) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// ContentSecurityPolicy is the policy SecurityHeaders sets by default: only
// the server's own scripts, styles and connections, images from the server
// or data: URLs, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// SecurityHeaders sets Content-Security-Policy (csp, or
// ContentSecurityPolicy when csp is empty), X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer, X-Frame-Options: DENY and
// Cross-Origin-Opener-Policy: same-origin on every answer.
func SecurityHeaders(csp string) Middleware {
	if csp == "" {
		csp = ContentSecurityPolicy
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			next.ServeHTTP(w, r)
		})
	}
}

// DrainOptions bound how much of an oversized body BodyLimit reads and
// throws away before the handler answers. Zero fields mean the defaults.
type DrainOptions struct {
	// MaxBytes is the most bytes read past the limit. Default 32 MiB: a
	// client that sends a 12 MB body before reading (Python's urllib does)
	// then reads the 413 instead of a connection reset.
	MaxBytes int64
	// Timeout bounds the time spent draining. Default 10 seconds.
	Timeout time.Duration
}

// Defaults of DrainOptions.
const (
	DefaultDrainBytes   = 32 << 20
	DefaultDrainTimeout = 10 * time.Second
)

// BodyLimit bounds request bodies to max bytes, like http.MaxBytesReader:
// reading past max fails with *http.MaxBytesError, which the handler
// answers with 413. Before that error is returned, the rest of the body is
// read and discarded, up to drain.MaxBytes within drain.Timeout, so that a
// client that writes its whole body before reading the answer gets the 413
// rather than a connection reset. A body larger than that is cut off (the
// connection is closed after the answer). max must be positive.
func BodyLimit(max int64, drain *DrainOptions) Middleware {
	d := DrainOptions{}
	if drain != nil {
		d = *drain
	}
	if d.MaxBytes <= 0 {
		d.MaxBytes = DefaultDrainBytes
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultDrainTimeout
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil && r.Body != http.NoBody {
				// A shallow copy: the server keeps its own view of the body,
				// so that it knows how much was left unread.
				r2 := new(http.Request)
				*r2 = *r
				r = r2
				r.Body = &drainingBody{
					limited: http.MaxBytesReader(w, r.Body, max),
					orig:    r.Body,
					rc:      http.NewResponseController(w),
					drain:   d,
					// A body declared larger than the limit plus what may
					// be drained is refused without reading it.
					drained: r.ContentLength > max+d.MaxBytes,
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// drainingBody is a MaxBytesReader that drains the original body (bounded)
// when the limit is hit.
type drainingBody struct {
	limited io.ReadCloser
	orig    io.ReadCloser
	rc      *http.ResponseController
	drain   DrainOptions
	drained bool
}

func (b *drainingBody) Read(p []byte) (int, error) {
	n, err := b.limited.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && !b.drained && errors.As(err, &mbe) {
		b.drained = true
		// The deadline is left in place: the server closes this connection
		// after the answer anyway (the body was too large).
		_ = b.rc.SetReadDeadline(time.Now().Add(b.drain.Timeout))
		_, _ = io.CopyN(io.Discard, b.orig, b.drain.MaxBytes)
	}
	return n, err
}

func (b *drainingBody) Close() error { return b.limited.Close() }

// RouteFunc names the route of a request for logs and metrics, with a small
// fixed set of names (never the raw path, which would make label values
// unbounded).
type RouteFunc func(r *http.Request) string

// RequestLog logs one line per request at level Info: method, path, route,
// status, bytes and duration. Never the body, the query or any header.
func RequestLog(log *slog.Logger, route RouteFunc) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := newRecorder(w)
			next.ServeHTTP(rec, r)
			log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", route(r)),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)))
		})
	}
}

// RequestMetrics counts each request in requests (labels route, method,
// code) and observes its duration in seconds in latency (label route).
func RequestMetrics(requests *prometheus.CounterVec, latency *prometheus.HistogramVec, route RouteFunc) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := newRecorder(w)
			next.ServeHTTP(rec, r)
			name := route(r)
			requests.WithLabelValues(name, r.Method, strconv.Itoa(rec.status)).Inc()
			latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		})
	}
}

// RateLimit answers 429 with a Retry-After header (whole seconds, at least
// 1) and a JSON error saying the same wait when l has no token for the
// request's key; otherwise it serves next. denied, if not nil, is called for
// each refused request (for instance to count it).
func RateLimit(l *Limiter, key func(*http.Request) string, denied func(*http.Request)) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ok, wait := l.Allow(key(r))
			if ok {
				next.ServeHTTP(w, r)
				return
			}
			if denied != nil {
				denied(r)
			}
			secs := RetryAfterSeconds(wait)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests,
				"too many flags from you: wait "+strconv.Itoa(secs)+"s and try again")
		})
	}
}

// RetryAfterSeconds is the Retry-After value of a wait: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(wait time.Duration) int {
	return int(math.Ceil(max(wait.Seconds(), 1)))
}

// recorder captures the status and size of a response for logs and metrics.
// It passes Flush through (Server-Sent Events) and unwraps for
// http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func newRecorder(w http.ResponseWriter) *recorder {
	return &recorder{ResponseWriter: w, status: http.StatusOK}
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	r.wroteHeader = true
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
