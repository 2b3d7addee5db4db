package space

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist"
)

// apiError is an answer for a person: an HTTP status and what is wrong.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Space) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae.status, ae.msg)
		return
	}
	switch {
	case errors.Is(err, dadc.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the server is shutting down; try again in a moment")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		writeError(w, 499, "request cancelled")
	default:
		s.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, "something went wrong on the server; nothing was stored, please try again")
	}
}

const imageFormatHint = `send the drawing as a raw image/png or image/jpeg body, or as JSON {"image": "data:image/png;base64,..."}`

// readJSON decodes r's body (at most s.maxBody bytes) into v, strictly: one
// object, no unknown fields. shape is the object the route expects; errors
// about the JSON itself end with it, so that the person knows what to send.
func (s *Space) readJSON(w http.ResponseWriter, r *http.Request, v any, shape string) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		e := s.jsonError(err)
		if e.status == http.StatusBadRequest {
			e.msg += "; send " + shape
		}
		return e
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return s.tooLarge()
		}
		return badRequest("malformed JSON: the body must hold exactly one JSON object; send %s", shape)
	}
	return nil
}

func (s *Space) tooLarge() *apiError {
	return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is too large: the limit is %d bytes", s.maxBody)}
}

func (s *Space) jsonError(err error) *apiError {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return s.tooLarge()
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: %v", err)
	case errors.As(err, &ute):
		if ute.Field == "label" {
			return badRequest("label must be a whole number from 0 to 9")
		}
		return badRequest("malformed JSON: field %q must be a %s, not a %s", ute.Field, ute.Type, ute.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return badRequest("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return badRequest("malformed JSON: %v", err)
	}
}

// decodeDataURL returns the bytes of a data URL holding a PNG or JPEG.
func decodeDataURL(u string) ([]byte, error) {
	if u == "" {
		return nil, badRequest(`image is missing: send {"image": "data:image/png;base64,..."}`)
	}
	rest, ok := strings.CutPrefix(u, "data:")
	meta, data, ok2 := strings.Cut(rest, ",")
	if !ok || !ok2 {
		return nil, badRequest("image must be a data URL such as data:image/png;base64,...")
	}
	params := strings.Split(meta, ";")
	mediaType := strings.ToLower(strings.TrimSpace(params[0]))
	if mediaType != "image/png" && mediaType != "image/jpeg" {
		return nil, &apiError{http.StatusUnsupportedMediaType, fmt.Sprintf("image must be a PNG or JPEG data URL, not %q", mediaType)}
	}
	if params[len(params)-1] != "base64" {
		return nil, badRequest("image must be a base64 data URL (data:image/png;base64,...)")
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, badRequest("image is not valid base64: %v", err)
	}
	return b, nil
}

// readImage returns the image bytes of a predict request: a raw PNG/JPEG body
// or JSON {"image": data URL}.
func (s *Space) readImage(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, &apiError{http.StatusUnsupportedMediaType, "missing or invalid Content-Type: " + imageFormatHint}
	}
	switch mediaType {
	case "image/png", "image/jpeg":
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, s.tooLarge()
			}
			return nil, badRequest("could not read the body: %v", err)
		}
		if len(b) == 0 {
			return nil, badRequest("the body is empty: " + imageFormatHint)
		}
		return b, nil
	case "application/json":
		var req struct {
			Image string `json:"image"`
		}
		if err := s.readJSON(w, r, &req, `{"image": "data:image/png;base64,..."}`); err != nil {
			return nil, err
		}
		return decodeDataURL(req.Image)
	default:
		return nil, &apiError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %s is not supported: %s", mediaType, imageFormatHint)}
	}
}

// preprocess turns uploaded bytes into the model's 28x28 input.
func (s *Space) preprocess(b []byte) (*image.Gray, error) {
	g, err := mnist.Preprocess(b, &mnist.PreprocessOptions{MaxPixels: s.maxPixels, MaxBytes: s.maxBody})
	switch {
	case err == nil:
		return g, nil
	case errors.Is(err, mnist.ErrEmptyImage):
		return nil, &apiError{http.StatusUnprocessableEntity, "the drawing is empty: draw a digit first"}
	case errors.Is(err, mnist.ErrImageTooLarge):
		return nil, &apiError{http.StatusRequestEntityTooLarge, "the image is too large: " + strings.TrimPrefix(strings.TrimPrefix(err.Error(), "mnist: "), "image too large: ")}
	case errors.Is(err, mnist.ErrNotImage):
		return nil, badRequest("the image is not a PNG or JPEG image: " + imageFormatHint)
	default:
		return nil, badRequest("the image cannot be read: %v", err)
	}
}

type predictResponse struct {
	Label         int       `json:"label"`
	Probabilities []float64 `json:"probabilities"`
	ModelVersion  string    `json:"model_version"`
	Input         string    `json:"input"`
}

func (s *Space) servePredict(w http.ResponseWriter, r *http.Request) {
	b, err := s.readImage(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in, err := s.preprocess(b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.loop.Predict(r.Context(), in)
	if err != nil {
		s.fail(w, r, fmt.Errorf("predict: %w", err))
		return
	}
	input, err := s.pngDataURL(in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.predictions.Inc()
	writeJSON(w, http.StatusOK, predictResponse{Label: p.Label, Probabilities: p.Probabilities, ModelVersion: p.ModelVersion, Input: input})
}

type flagRequest struct {
	Image   string `json:"image"`
	Label   *int   `json:"label"`
	Session string `json:"session"`
}

type flagResponse struct {
	Fooled        bool      `json:"fooled"`
	ID            string    `json:"id,omitempty"`
	Label         int       `json:"label"`
	ModelLabel    int       `json:"model_label"`
	Probabilities []float64 `json:"model_probabilities"`
	ModelVersion  string    `json:"model_version"`
	Count         int       `json:"count"`
	Round         int       `json:"round"`
	Retraining    bool      `json:"retraining"`
	Message       string    `json:"message"`
}

func (s *Space) serveFlag(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.limiter.allow(s.clientKey(r), time.Now()); !ok {
		s.metrics.flagOutcome("rate_limited")
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(wait.Seconds(), 1)))))
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many flags from you: wait %s and try again", wait.Round(time.Second)))
		return
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "application/json" {
		s.metrics.flagOutcome("rejected")
		writeError(w, http.StatusUnsupportedMediaType, `send JSON {"image": "data:image/png;base64,...", "label": 0-9} with Content-Type: application/json`)
		return
	}
	in, req, err := s.readFlag(w, r)
	if err != nil {
		s.metrics.flagOutcome("rejected")
		s.fail(w, r, err)
		return
	}
	sess := session(r)
	if sess == "" && sessionRE.MatchString(req.Session) {
		sess = req.Session
	}
	res, err := s.loop.Flag(r.Context(), in, *req.Label, sess)
	if err != nil {
		if errors.Is(err, dadc.ErrInvalidLabel) {
			err = badRequest("label must be a whole number from 0 to 9")
			s.metrics.flagOutcome("rejected")
		} else {
			s.metrics.flagOutcome("error")
		}
		s.fail(w, r, err)
		return
	}
	out := flagResponse{
		Fooled:        res.Fooled,
		Label:         *req.Label,
		ModelLabel:    res.Prediction.Label,
		Probabilities: res.Prediction.Probabilities,
		ModelVersion:  res.Prediction.ModelVersion,
		Count:         res.Count,
		Round:         res.Round,
		Retraining:    res.Retraining,
	}
	if !res.Fooled {
		s.metrics.flagOutcome("right")
		out.Message = "the model got it right"
		writeJSON(w, http.StatusOK, out)
		return
	}
	s.metrics.flagOutcome("fooled")
	out.ID = res.Sample.ID
	out.Message = fmt.Sprintf("✔ (%d) saved — you fooled the model", res.Count)
	writeJSON(w, http.StatusCreated, out)
}

// readFlag validates a flag request fully before anything is stored.
func (s *Space) readFlag(w http.ResponseWriter, r *http.Request) (*image.Gray, *flagRequest, error) {
	var req flagRequest
	if err := s.readJSON(w, r, &req, `{"image": "data:image/png;base64,...", "label": 0-9}`); err != nil {
		return nil, nil, err
	}
	if req.Label == nil {
		return nil, nil, badRequest(`label is missing: send the correct digit, {"label": 0-9}`)
	}
	if *req.Label < 0 || *req.Label >= mnist.Classes {
		return nil, nil, badRequest("label must be a whole number from 0 to 9, not %d", *req.Label)
	}
	if req.Session != "" && !sessionRE.MatchString(req.Session) {
		return nil, nil, badRequest("session must be 1 to 64 letters, digits, '-' or '_'")
	}
	b, err := decodeDataURL(req.Image)
	if err != nil {
		return nil, nil, err
	}
	in, err := s.preprocess(b)
	if err != nil {
		return nil, nil, err
	}
	return in, &req, nil
}

type statsResponse struct {
	dadc.Stats
	HubDataset string `json:"hub_dataset,omitempty"`
}

func (s *Space) serveStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, statsResponse{Stats: s.loop.Stats(), HubDataset: s.hubDataset})
}

// Sample limits of /api/samples.
const (
	defaultSampleLimit = 20
	maxSampleLimit     = 100
)

type sampleJSON struct {
	ID                 string    `json:"id"`
	Label              int       `json:"label"`
	ModelLabel         int       `json:"model_label"`
	ModelProbabilities []float64 `json:"model_probabilities"`
	ModelVersion       string    `json:"model_version"`
	Round              int       `json:"round"`
	CreatedAt          time.Time `json:"created_at"`
	Image              string    `json:"image"`
}

func (s *Space) serveSamples(w http.ResponseWriter, r *http.Request) {
	limit := defaultSampleLimit
	if v, ok := r.URL.Query()["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || len(v) != 1 || n < 1 || n > maxSampleLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be one whole number from 1 to %d", maxSampleLimit))
			return
		}
		limit = n
	}
	samples := s.loop.Samples(limit)
	out := make([]sampleJSON, 0, len(samples))
	for _, smp := range samples {
		img := ""
		if smp.Input != nil {
			var err error
			if img, err = s.pngDataURL(smp.Input); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		// The session id is deliberately left out: it is nobody else's business.
		out = append(out, sampleJSON{
			ID: smp.ID, Label: smp.Label, ModelLabel: smp.ModelLabel, ModelProbabilities: smp.ModelProbabilities,
			ModelVersion: smp.ModelVersion, Round: smp.Round, CreatedAt: smp.CreatedAt, Image: img,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"samples": out, "count": len(out)})
}

func (s *Space) serveHealth(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.done:
		writeError(w, http.StatusServiceUnavailable, "shutting down")
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// eventKeepAlive is how often an idle event stream gets a comment line, so
// that proxies and the browser keep it open.
const eventKeepAlive = 20 * time.Second

func (s *Space) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		writeError(w, http.StatusServiceUnavailable, "too many open event streams; the page falls back to polling")
		return
	}
	events, cancel := s.loop.Subscribe(16)
	defer cancel()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		// A server WriteTimeout would cut the stream; each write gets its own deadline.
		_ = rc.SetWriteDeadline(time.Now().Add(2 * eventKeepAlive))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 3000\n: connected\n\n")) {
		return
	}
	tick := time.NewTicker(eventKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-tick.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			if !retrainEvent(ev.Kind) {
				continue
			}
			b, err := json.Marshal(ev)
			if err != nil {
				s.log.Error("encode event", "error", err)
				continue
			}
			if !write(append(append([]byte("data: "), b...), '\n', '\n')) {
				return
			}
		}
	}
}

// retrainEvent reports whether events of kind k go to the page's event
// stream. Flagged and attempt events are not sent: one per submission to
// every open page would grow with the square of the audience; pages poll
// /api/stats for counts instead.
func retrainEvent(k dadc.EventKind) bool {
	switch k {
	case dadc.EventRetrainStarted, dadc.EventModelPromoted, dadc.EventModelRejected, dadc.EventRetrainFailed:
		return true
	}
	return false
}

// pngPool reuses PNG encoder buffers across requests.
type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}
func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

// pngDataURL encodes g as a data:image/png;base64 URL.
func (s *Space) pngDataURL(g *image.Gray) (string, error) {
	var buf bytes.Buffer
	if err := s.png.Encode(&buf, g); err != nil {
		return "", fmt.Errorf("space: encode png: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// remoteIP is the default client key: the IP of the connection's peer.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
