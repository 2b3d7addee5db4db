package dadchttp

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/internal/randid"
)

// Loop is what a Handler needs of a DADC loop; *dadc.Loop[In] implements
// it. Its methods must be safe for concurrent use.
type Loop[In any] interface {
	Predict(ctx context.Context, in In) (dadc.Prediction, error)
	Flag(ctx context.Context, in In, label int, session string) (dadc.FlagResult[In], error)
	Stats() dadc.Stats
	Samples(limit int) []dadc.Sample[In]
	Subscribe(buffer int) (events <-chan dadc.Event, cancel func())
}

var _ Loop[int] = (*dadc.Loop[int])(nil)

// Registry is where a Handler registers its metrics and what /metrics
// serves; *prometheus.Registry implements it.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 5 << 20
	DefaultFlagRate     = rate.Limit(1)
	DefaultFlagBurst    = 20
	DefaultMaxClients   = 10000
	DefaultMaxStreams   = 1000
)

// Options configure a Handler. The zero value (or nil) means every default.
type Options struct {
	// Logger receives one line per request (method, path, status, duration)
	// and the errors; never request bodies nor tokens. Default: discard.
	Logger *slog.Logger
	// Registry receives the Handler's metrics and is served on /metrics.
	// Default: a new registry private to the Handler.
	Registry Registry
	// MaxBodyBytes bounds request bodies before they are decoded; larger
	// ones get 413. Default 5 MiB.
	MaxBodyBytes int64
	// Drain bounds how much of a too large body is read before the 413 is
	// sent. Default: see DrainOptions.
	Drain *DrainOptions
	// FlagRate and FlagBurst bound how fast one client may call /api/flag
	// (token bucket per client key). Defaults: 1 per second, burst 20.
	// rate.Inf disables the limit.
	FlagRate  rate.Limit
	FlagBurst int
	// MaxClients bounds the number of clients whose rate-limit state is
	// kept; the least recently seen client is forgotten first. Default
	// 10,000.
	MaxClients int
	// ClientKey names the client of a request for rate limiting. Default
	// RemoteIP; behind reverse proxies use ForwardedClientIP.
	ClientKey func(r *http.Request) string
	// Idempotency configures how repeated flags are recognized. Default: see
	// IdempotencyOptions (its Scope and Now are set by the Handler).
	Idempotency *IdempotencyOptions
	// MaxStreams bounds concurrent /api/events streams. Default 1,000.
	MaxStreams int
	// HubDataset is the Hub dataset the flags are pushed to ("owner/name"),
	// reported by /api/stats as hub_dataset. Empty: none.
	HubDataset string
	// Backlog, if set, reports how many flags wait for upload (for instance
	// a Hub flagger's Pending); exported as the advspace_flag_backlog gauge.
	Backlog func() int
	// Page, if set, serves GET / and GET /static/... (the page and its
	// files). Requests for / get a session cookie first.
	Page http.Handler
	// Now is the clock of the rate limits, of repeated-flag detection and
	// of validation records. Default time.Now.
	Now func() time.Time
	// ConfirmThreshold is the serving model's probability for its own
	// answer at or above which a flag with another label is stored only
	// with "confirm": true (otherwise 409 {"needs_confirmation": true,
	// ...}). 0 means DefaultConfirmThreshold (0.9); a value above 1 turns
	// confirmation off. Must not be negative.
	ConfirmThreshold float64
	// Validation, if set, turns on validation by other people and
	// retraction (/api/validate/next, /api/validate, /api/retract) and the
	// verified model error rate in /api/stats. Nil: those routes answer
	// 404 and every flag trains.
	Validation *ValidationOptions
	// GateMaxAccuracyDrop is reported by /api/stats as gate_max_accuracy_drop
	// for pages that draw the promotion gate: set it to the loop's
	// dadc.Options.MaxAccuracyDrop. 0 means dadc.DefaultMaxAccuracyDrop.
	GateMaxAccuracyDrop float64
	// Models, if set, is the loop's model store: GET /api/model then
	// downloads the serving model's weights from it (404 without it).
	Models dadc.ModelStore
	// ModelFileName is the file name GET /api/model suggests for the
	// download, with the model's version inserted before its extension
	// (default "model.bin"; the MNIST app uses "model.safetensors").
	ModelFileName string
}

// Handler serves the JSON API, Server-Sent Events, /healthz and /metrics
// of a DADC loop over inputs of type In, and optionally a page. Create it
// with New; all its methods are safe for concurrent use.
type Handler[In any] struct {
	loop    Loop[In]
	codec   Codec[In]
	body    BodyDecoder[In] // nil: JSON only
	spec    InputSpec
	log     *slog.Logger
	hub     string
	metrics *metrics
	mux     *http.ServeMux
	h       http.Handler
	streams chan struct{}
	done    chan struct{}
	once    sync.Once
	now     func() time.Time

	confirmAt float64
	gateDrop  float64
	val       *validation[In] // nil: validation off
	models    dadc.ModelStore // nil: no /api/model
	modelFile string

	predictShape, flagShape, inputHint string
}

// routeNames are the route labels of logs and metrics, by ServeMux pattern.
var routeNames = map[string]string{
	"GET /{$}":               "page",
	"GET /static/":           "static",
	"POST /api/predict":      "predict",
	"POST /api/flag":         "flag",
	"GET /api/stats":         "stats",
	"GET /api/validate/next": "validate_next",
	"POST /api/validate":     "validate",
	"POST /api/retract":      "retract",
	"GET /api/samples":       "samples",
	"GET /api/model":         "model",
	"GET /api/events":        "events",
	"GET /healthz":           "healthz",
	"GET /metrics":           "metrics",
}

// New returns a Handler over loop with codec for its inputs. It registers
// its metrics in opts.Registry; registering twice in one registry fails.
// Errors wrap ErrConfig.
func New[In any](loop Loop[In], codec Codec[In], opts *Options) (*Handler[In], error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if loop == nil {
		return nil, fmt.Errorf("%w: a loop is required: create one with dadc.NewLoop", ErrConfig)
	}
	if codec == nil {
		return nil, fmt.Errorf("%w: a codec is required", ErrConfig)
	}
	if o.MaxBodyBytes < 0 || o.FlagBurst < 0 || o.MaxClients < 0 || o.MaxStreams < 0 || o.FlagRate < 0 || o.ConfirmThreshold < 0 {
		return nil, fmt.Errorf("%w: limits must not be negative (zero means the default)", ErrConfig)
	}
	if o.HubDataset != "" && !validRepoID(o.HubDataset) {
		return nil, fmt.Errorf("%w: HubDataset %q is not of the form owner/name", ErrConfig, o.HubDataset)
	}
	spec := codec.Spec()
	if spec.Field == "" || spec.Example == "" || len(spec.Labels) == 0 {
		return nil, fmt.Errorf("%w: the codec's InputSpec needs Field, Example and Labels", ErrConfig)
	}
	if spec.Noun == "" {
		spec.Noun = "the input"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.ClientKey == nil {
		o.ClientKey = RemoteIP
	}
	if o.FlagRate == 0 {
		o.FlagRate = DefaultFlagRate
	}
	if o.FlagBurst == 0 {
		o.FlagBurst = DefaultFlagBurst
	}
	if o.MaxStreams == 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ConfirmThreshold == 0 {
		o.ConfirmThreshold = DefaultConfirmThreshold
	}
	limiter, err := NewLimiter(o.FlagRate, o.FlagBurst, &LimiterOptions{MaxClients: o.MaxClients, Now: o.Now})
	if err != nil {
		return nil, err
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, loop.Stats, o.Backlog)
	if err != nil {
		return nil, err
	}

	h := &Handler[In]{
		loop: loop, codec: codec, spec: spec, log: o.Logger, hub: o.HubDataset, metrics: m,
		streams: make(chan struct{}, o.MaxStreams),
		done:    make(chan struct{}),
		now:     o.Now, confirmAt: o.ConfirmThreshold, gateDrop: o.GateMaxAccuracyDrop,
		models: o.Models, modelFile: cmp.Or(o.ModelFileName, "model.bin"),
	}
	if h.gateDrop == 0 {
		h.gateDrop = dadc.DefaultMaxAccuracyDrop
	}
	if o.Validation != nil {
		maxSess := o.MaxClients
		if maxSess == 0 {
			maxSess = DefaultMaxClients
		}
		val, skipped, err := newValidation(loop, o.Validation, maxSess)
		if err != nil {
			return nil, err
		}
		if skipped > 0 {
			o.Logger.Warn("dadchttp: skipped stored validation records that break the rules (unknown sample, self-validation, repeats)", "skipped", skipped)
		}
		h.val = val
	}
	h.body, _ = codec.(BodyDecoder[In])
	example := fmt.Sprintf("{%q: %s}", spec.Field, spec.Example)
	h.predictShape = example
	h.flagShape = fmt.Sprintf("{%q: %s, \"label\": %s}", spec.Field, spec.Example, h.labelRange())
	h.inputHint = "send " + spec.Noun + " as JSON " + example
	if h.body != nil {
		h.inputHint = "send " + spec.Noun + " as a raw " + strings.Join(h.body.MediaTypes(), " or ") + " body, or as JSON " + example
	}

	idem := IdempotencyOptions{}
	if o.Idempotency != nil {
		idem = *o.Idempotency
	}
	idem.Now = o.Now
	idem.Scope = func(r *http.Request) string {
		if s := session(r); s != "" {
			return "session " + s
		}
		return "client " + o.ClientKey(r)
	}

	mux := http.NewServeMux()
	if o.Page != nil {
		mux.Handle("GET /{$}", withSession(o.Page))
		mux.Handle("GET /static/", o.Page)
	}
	mux.HandleFunc("POST /api/predict", h.servePredict)
	mux.Handle("POST /api/flag", Chain(http.HandlerFunc(h.serveFlag),
		RateLimit(limiter, o.ClientKey, func(*http.Request) { m.flagOutcome("rate_limited") }),
		Idempotency(&idem),
	))
	mux.HandleFunc("GET /api/stats", h.serveStats)
	mux.HandleFunc("GET /api/validate/next", h.serveValidateNext)
	// Verdicts and retractions have their own budget, as fast as flags.
	vlimiter, err := NewLimiter(o.FlagRate, o.FlagBurst, &LimiterOptions{MaxClients: o.MaxClients, Now: o.Now})
	if err != nil {
		return nil, err
	}
	limited := RateLimit(vlimiter, o.ClientKey, nil)
	mux.Handle("POST /api/validate", limited(http.HandlerFunc(h.serveValidate)))
	mux.Handle("POST /api/retract", limited(http.HandlerFunc(h.serveRetract)))
	mux.HandleFunc("GET /api/samples", h.serveSamples)
	mux.HandleFunc("GET /api/model", h.serveModel)
	mux.HandleFunc("GET /api/events", h.serveEvents)
	mux.HandleFunc("GET /healthz", h.serveHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPromLogger{o.Logger}}))
	h.mux = mux

	route := func(r *http.Request) string {
		_, pattern := mux.Handler(r)
		if name, ok := routeNames[pattern]; ok {
			return name
		}
		return "other"
	}
	h.h = Chain(http.HandlerFunc(h.route),
		RequestMetrics(m.requests, m.latency, route),
		RequestLog(o.Logger, route),
		SecurityHeaders(""),
		BodyLimit(o.MaxBodyBytes, o.Drain),
	)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler[In]) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.h.ServeHTTP(w, r) }

// route serves r through the mux, answering what the mux refuses (no such
// path, wrong method) with a JSON error like every other answer.
func (h *Handler[In]) route(w http.ResponseWriter, r *http.Request) {
	handler, pattern := h.mux.Handler(r)
	if pattern != "" {
		h.mux.ServeHTTP(w, r)
		return
	}
	// Ask the mux what it would answer, then say it in JSON.
	probe := &probeWriter{header: http.Header{}, code: http.StatusOK}
	handler.ServeHTTP(probe, r)
	switch probe.code {
	case http.StatusMethodNotAllowed:
		allow := probe.Header().Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+allow)
	default:
		// Not found, or a redirect to a cleaned path: nothing is there.
		writeError(w, http.StatusNotFound, "there is nothing at "+r.URL.Path+": see / for the page and /api/... for the API")
	}
}

// Close ends the open /api/events streams (so that http.Server.Shutdown is
// not held up by them) and makes /healthz answer 503. Call it right after
// the server stops taking requests (or register it with
// http.Server.RegisterOnShutdown), before closing the loop. It is safe to
// call more than once and always returns nil.
func (h *Handler[In]) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *Handler[In]) labelRange() string {
	return fmt.Sprintf("0-%d", len(h.spec.Labels)-1)
}

// SessionCookie is the name of the cookie that holds a person's anonymous
// session id.
const SessionCookie = "advspace_session"

var sessionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// session returns the anonymous session id of r's cookie, or "" if it has
// none (or an invalid one).
func session(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil || !sessionRE.MatchString(c.Value) {
		return ""
	}
	return c.Value
}

// withSession gives a request without a session cookie a new one.
func withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if session(r) == "" {
			// No Path: the cookie's default path is the page's own, which
			// keeps it right when the handler is mounted under a prefix.
			http.SetCookie(w, &http.Cookie{
				Name:     SessionCookie,
				Value:    randid.Hex(16),
				MaxAge:   365 * 24 * 3600,
				HttpOnly: true,
				Secure:   r.TLS != nil,
				SameSite: http.SameSiteLaxMode,
			})
		}
		next.ServeHTTP(w, r)
	})
}

// repoIDRE is the shape of a Hub repo id, owner/name.
var repoIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)

func validRepoID(id string) bool { return repoIDRE.MatchString(id) }

type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Error("metrics", "error", fmt.Sprint(v...)) }

// probeWriter records the status and headers the mux answers for a request
// it does not route; the body is dropped.
type probeWriter struct {
	header http.Header
	code   int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) WriteHeader(code int)        { p.code = code }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
