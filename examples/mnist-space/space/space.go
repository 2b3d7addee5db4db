package space

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"image"
	"image/png"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/hfhub"
)

//go:embed static
var staticFiles embed.FS

// Loop is what a Space needs of a DADC loop. *dadc.Loop[*image.Gray]
// implements it; the methods must be safe for concurrent use.
type Loop interface {
	Predict(ctx context.Context, in *image.Gray) (dadc.Prediction, error)
	Flag(ctx context.Context, in *image.Gray, label int, session string) (dadc.FlagResult[*image.Gray], error)
	Stats() dadc.Stats
	Samples(limit int) []dadc.Sample[*image.Gray]
	Subscribe(buffer int) (events <-chan dadc.Event, cancel func())
}

var _ Loop = (*dadc.Loop[*image.Gray])(nil)

// Registry is where a Space registers its metrics and what /metrics serves;
// *prometheus.Registry implements it.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 5 << 20
	DefaultMaxPixels    = 2048 * 2048
	DefaultFlagRate     = rate.Limit(1)
	DefaultFlagBurst    = 20
	DefaultMaxClients   = 10000
	DefaultMaxStreams   = 1000
)

// Config configures a Space. Only Loop is required; every zero field means
// its default.
type Config struct {
	// Loop predicts, flags and keeps the statistics. Required.
	Loop Loop
	// Logger receives one line per request (method, path, status, duration)
	// and the errors; never image bytes nor tokens. Default: discard.
	Logger *slog.Logger
	// Registry receives the Space's metrics and is served on /metrics.
	// Default: a new registry private to the Space.
	Registry Registry
	// MaxBodyBytes bounds request bodies before they are decoded. Default 5 MiB.
	MaxBodyBytes int64
	// MaxPixels bounds the declared width*height of an uploaded image,
	// checked before its pixels are decoded. Default 2048*2048.
	MaxPixels int
	// FlagRate and FlagBurst bound how fast one client may call /api/flag
	// (token bucket per client key). Defaults: 1 per second, burst 20.
	// rate.Inf disables the limit.
	FlagRate  rate.Limit
	FlagBurst int
	// MaxClients bounds the number of clients whose rate-limit state is kept;
	// the least recently seen client is forgotten first. Default 10,000.
	MaxClients int
	// ClientKey names the client of a request for rate limiting. Default: the
	// remote IP address. Behind a trusted reverse proxy, read its header here.
	ClientKey func(r *http.Request) string
	// MaxStreams bounds concurrent /api/events streams. Default 1,000.
	MaxStreams int
	// HubDataset is the Hub dataset the flags are pushed to ("owner/name"),
	// shown on the page. Empty: none.
	HubDataset string
	// Backlog, if set, reports how many flags wait for upload (for instance
	// flag.Hub's Pending); exported as the advspace_flag_backlog gauge.
	Backlog func() int
}

// Space is the web app as an http.Handler. Create it with New.
type Space struct {
	loop       Loop
	log        *slog.Logger
	maxBody    int64
	maxPixels  int
	hubDataset string
	index      []byte
	routes     map[string]*route
	limiter    *clientLimiter
	clientKey  func(*http.Request) string
	metrics    *metrics
	metricsH   http.Handler
	streams    chan struct{}
	png        *png.Encoder
	done       chan struct{}
	closeOnce  sync.Once
}

type route struct {
	name    string
	methods map[string]http.HandlerFunc
	allow   string
}

// New checks cfg and returns a Space. It registers the Space's metrics in
// cfg.Registry; registering twice in one registry fails.
func New(cfg Config) (*Space, error) {
	if cfg.Loop == nil {
		return nil, errors.New("space: Config.Loop is required: create one with dadc.NewLoop")
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxPixels < 0 || cfg.FlagBurst < 0 || cfg.MaxClients < 0 || cfg.MaxStreams < 0 || cfg.FlagRate < 0 {
		return nil, errors.New("space: Config limits must not be negative (zero means the default)")
	}
	if cfg.HubDataset != "" {
		if _, err := hfhub.ParseRepoID(cfg.HubDataset); err != nil {
			return nil, fmt.Errorf("space: Config.HubDataset is not of the form owner/name: %w", err)
		}
	}
	s := &Space{
		loop:       cfg.Loop,
		log:        cfg.Logger,
		maxBody:    cfg.MaxBodyBytes,
		maxPixels:  cfg.MaxPixels,
		hubDataset: cfg.HubDataset,
		clientKey:  cfg.ClientKey,
		done:       make(chan struct{}),
		// Uncompressed: a 28x28 PNG is under 1 KB either way, and setting up
		// a compressor costs 15 to 200 times as much as storing (the pool
		// empties at every GC).
		png: &png.Encoder{CompressionLevel: png.NoCompression, BufferPool: &pngPool{}},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxPixels == 0 {
		s.maxPixels = DefaultMaxPixels
	}
	if s.clientKey == nil {
		s.clientKey = remoteIP
	}
	flagRate, flagBurst, maxClients := cfg.FlagRate, cfg.FlagBurst, cfg.MaxClients
	if flagRate == 0 {
		flagRate = DefaultFlagRate
	}
	if flagBurst == 0 {
		flagBurst = DefaultFlagBurst
	}
	if maxClients == 0 {
		maxClients = DefaultMaxClients
	}
	s.limiter = newClientLimiter(flagRate, flagBurst, maxClients)
	maxStreams := cfg.MaxStreams
	if maxStreams == 0 {
		maxStreams = DefaultMaxStreams
	}
	s.streams = make(chan struct{}, maxStreams)

	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, cfg.Loop, cfg.Backlog)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.metricsH = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPromLogger{s.log}})

	tmpl, err := template.ParseFS(staticFiles, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("space: parse page: %w", err)
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, struct{ HubDataset string }{cfg.HubDataset}); err != nil {
		return nil, fmt.Errorf("space: render page: %w", err)
	}
	s.index = page.Bytes()

	s.routes = map[string]*route{}
	s.handle("/", "page", "GET", s.servePage)
	s.handle("/api/predict", "predict", "POST", s.servePredict)
	s.handle("/api/flag", "flag", "POST", s.serveFlag)
	s.handle("/api/stats", "stats", "GET", s.serveStats)
	s.handle("/api/samples", "samples", "GET", s.serveSamples)
	s.handle("/api/events", "events", "GET", s.serveEvents)
	s.handle("/healthz", "healthz", "GET", s.serveHealth)
	s.handle("/metrics", "metrics", "GET", s.metricsH.ServeHTTP)
	return s, nil
}

func (s *Space) handle(path, name, method string, h http.HandlerFunc) {
	r := &route{name: name, methods: map[string]http.HandlerFunc{method: h}}
	if method == http.MethodGet {
		r.methods[http.MethodHead] = h
	}
	var allow []string
	for m := range r.methods {
		allow = append(allow, m)
	}
	sort.Strings(allow)
	r.allow = strings.Join(allow, ", ")
	s.routes[path] = r
}

// Close ends the open /api/events streams (so that http.Server.Shutdown is
// not held up by them) and makes /healthz answer 503. Register it with
// http.Server.RegisterOnShutdown. The rest of the API keeps working until the
// Loop is closed.
func (s *Space) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Space) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	setSecurityHeaders(rec.Header())

	name, h := s.dispatch(r)
	h(rec, r)

	d := time.Since(start)
	s.metrics.observe(name, r.Method, rec.status, d)
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", name),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", d))
}

// dispatch finds the handler of r and the route name used in metrics.
func (s *Space) dispatch(r *http.Request) (string, http.HandlerFunc) {
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	if strings.HasPrefix(path, "/static/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return "static", methodNotAllowed("GET, HEAD")
		}
		return "static", s.serveStatic
	}
	rt, ok := s.routes[path]
	if !ok {
		return "other", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "there is nothing at "+path+": see / for the page and /api/... for the API")
		}
	}
	h, ok := rt.methods[r.Method]
	if !ok {
		return rt.name, methodNotAllowed(rt.allow)
	}
	return rt.name, h
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+allow)
	}
}

// contentSecurityPolicy allows nothing but the Space's own files: no inline
// scripts or styles, images from the Space or data: URLs (the 28x28 inputs).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

const sessionCookie = "advspace_session"

var sessionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// session returns the anonymous session id of r's cookie, or "" if it has
// none (or an invalid one).
func session(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !sessionRE.MatchString(c.Value) {
		return ""
	}
	return c.Value
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func (s *Space) servePage(w http.ResponseWriter, r *http.Request) {
	if session(r) == "" {
		// No Path: the cookie's default path is the page's own, which keeps
		// it right when the Space is mounted under a prefix.
		http.SetCookie(w, &http.Cookie{
			Name:     sessionCookie,
			Value:    newSessionID(),
			MaxAge:   365 * 24 * 3600,
			HttpOnly: true,
			Secure:   r.TLS != nil,
			SameSite: http.SameSiteLaxMode,
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(s.index)
}

func (s *Space) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	if name == "" || name == "index.html" || strings.Contains(name, "/") || !fs.ValidPath(name) {
		writeError(w, http.StatusNotFound, "no such file")
		return
	}
	if _, err := fs.Stat(staticFiles, "static/"+name); err != nil {
		writeError(w, http.StatusNotFound, "no such file")
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, staticFiles, "static/"+name)
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

type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Error("metrics", "error", fmt.Sprint(v...)) }
