package dadchttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/advspace/advspace/dadc"
)

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

// diskFullMessage is the answer (507) when the flagger reports that its
// storage is full: it is for a person, and names no path. With the noun
// "the drawing": "the server could not save your drawing: its disk is full".
func diskFullMessage(noun string) string {
	return "the server could not save your " + strings.TrimPrefix(noun, "the ") + ": its disk is full"
}

func (h *Handler[In]) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	if errors.As(err, &ae) {
		writeError(w, ae.Status, ae.Message)
		return
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is too large: the limit is %d bytes", mbe.Limit))
	case errors.Is(err, dadc.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the server is shutting down; try again in a moment")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		writeError(w, 499, "request cancelled")
	case storageFull(err):
		// The error names the file; the log line and the answer do not.
		h.log.ErrorContext(r.Context(), "request failed: the storage is full; nothing was stored", "path", r.URL.Path)
		writeError(w, http.StatusInsufficientStorage, diskFullMessage(h.spec.Noun))
	default:
		h.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, "something went wrong on the server; nothing was stored, please try again")
	}
}

// storageFull reports whether err says the disk (or the quota) is full.
func storageFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || isQuotaExceeded(err)
}

// readObject decodes r's body as exactly one JSON object into members,
// refusing members other than allowed. shape is the object the route
// expects; errors about the JSON itself end with it.
func readObject(r *http.Request, allowed []string, shape string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&m); err != nil {
		// A body that is both malformed and over the size limit gets the
		// 413 (what the client must change first), not a 400 about its
		// first bytes: the rest is read, up to the limit, to find out.
		var mbe *http.MaxBytesError
		if _, rerr := io.Copy(io.Discard, r.Body); errors.As(rerr, &mbe) {
			return nil, rerr
		}
		e := jsonError(err)
		if ae, ok := e.(*Error); ok && ae.Status == http.StatusBadRequest {
			ae.Message += "; send " + shape
		}
		return nil, e
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("malformed JSON: the body must hold exactly one JSON object; send %s", shape)
	}
	if m == nil {
		return nil, badRequest("malformed JSON: the body must hold a JSON object, not null; send %s", shape)
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			return nil, badRequest("malformed JSON: unknown field %q; send %s", k, shape)
		}
	}
	return m, nil
}

// bodyReadError is the answer to a body that could not be read: 408 when it
// did not arrive in time (the server's read timeout), 400 otherwise. The
// cause is not shown: it names the connection's addresses.
func bodyReadError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Errorf(http.StatusRequestTimeout, "the request body did not arrive in time; send it again, whole")
	}
	return badRequest("the request body could not be read (the connection broke off); send it again, whole")
}

func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: %v", err)
	case errors.As(err, &ute):
		return badRequest("malformed JSON: the body must be a JSON object, not a %s", ute.Value)
	default:
		if ne := net.Error(nil); errors.As(err, &ne) {
			return bodyReadError(err)
		}
		return badRequest("malformed JSON: %v", err)
	}
}

// decode runs the codec and turns its plain errors into 400s.
func decodeErr(err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return badRequest("%v", err)
}

// readInput returns the input of a predict request: a raw body of one of
// the codec's media types, or JSON {Field: value}.
func (h *Handler[In]) readInput(r *http.Request) (In, error) {
	var zero In
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return zero, Errorf(http.StatusUnsupportedMediaType, "missing or invalid Content-Type: %s", h.inputHint)
	}
	if mediaType == "application/json" {
		m, err := readObject(r, []string{h.spec.Field}, h.predictShape)
		if err != nil {
			return zero, err
		}
		in, err := h.codec.DecodeJSON(m[h.spec.Field])
		if err != nil {
			return zero, decodeErr(err)
		}
		return in, nil
	}
	if h.body == nil || !slices.Contains(h.body.MediaTypes(), mediaType) {
		return zero, Errorf(http.StatusUnsupportedMediaType, "Content-Type %s is not supported: %s", mediaType, h.inputHint)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return zero, err
		}
		return zero, bodyReadError(err)
	}
	if len(b) == 0 {
		return zero, badRequest("the body is empty: %s", h.inputHint)
	}
	in, err := h.body.DecodeBody(mediaType, b)
	if err != nil {
		return zero, decodeErr(err)
	}
	return in, nil
}

type predictResponse struct {
	Label         int       `json:"label"`
	Probabilities []float64 `json:"probabilities"`
	ModelVersion  string    `json:"model_version"`
	Input         any       `json:"input"`
}

func (h *Handler[In]) servePredict(w http.ResponseWriter, r *http.Request) {
	in, err := h.readInput(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.loop.Predict(r.Context(), in)
	if err != nil {
		h.fail(w, r, fmt.Errorf("predict: %w", err))
		return
	}
	shown, err := h.codec.Render(in)
	if err != nil {
		h.fail(w, r, fmt.Errorf("render the input: %w", err))
		return
	}
	h.metrics.predictions.Inc()
	writeJSON(w, http.StatusOK, predictResponse{Label: p.Label, Probabilities: p.Probabilities, ModelVersion: p.ModelVersion, Input: shown})
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
	// Validation is the stored sample's validation state, with validation on.
	Validation *dadc.ValidationState `json:"validation,omitempty"`
}

func (h *Handler[In]) serveFlag(w http.ResponseWriter, r *http.Request) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "application/json" {
		h.metrics.flagOutcome("rejected")
		writeError(w, http.StatusUnsupportedMediaType, "send JSON "+h.flagShape+" with Content-Type: application/json")
		return
	}
	in, label, sess, confirmed, err := h.readFlag(r)
	if err != nil {
		h.metrics.flagOutcome("rejected")
		h.fail(w, r, err)
		return
	}
	if s := session(r); s != "" {
		sess = s
	}
	if !confirmed {
		c, err := h.needsConfirmation(r.Context(), in, label)
		if err != nil {
			h.metrics.flagOutcome("error")
			h.fail(w, r, err)
			return
		}
		if c != nil {
			h.metrics.flagOutcome("needs_confirmation")
			writeJSON(w, http.StatusConflict, c)
			return
		}
	}
	res, err := h.loop.Flag(r.Context(), in, label, sess)
	if err != nil {
		if errors.Is(err, dadc.ErrInvalidLabel) {
			err = badRequest("label must be a whole number from %s", strings.Replace(h.labelRange(), "-", " to ", 1))
			h.metrics.flagOutcome("rejected")
		} else {
			h.metrics.flagOutcome("error")
		}
		h.fail(w, r, err)
		return
	}
	out := flagResponse{
		Fooled:        res.Fooled,
		Label:         label,
		ModelLabel:    res.Prediction.Label,
		Probabilities: res.Prediction.Probabilities,
		ModelVersion:  res.Prediction.ModelVersion,
		Count:         res.Count,
		Round:         res.Round,
		Retraining:    res.Retraining,
	}
	if h.val != nil {
		h.val.submit(sess)
	}
	if !res.Fooled {
		h.metrics.flagOutcome("right")
		out.Message = "the model got it right"
		writeJSON(w, http.StatusOK, out)
		return
	}
	h.metrics.flagOutcome("fooled")
	out.ID = res.Sample.ID
	out.Message = fmt.Sprintf("✔ (%d) saved — you fooled the model", res.Count)
	if h.val != nil {
		h.val.add(res.Sample)
		if st, ok := h.val.v.State(res.Sample.ID); ok {
			out.Validation = &st
			if st.Required > 0 {
				out.Message = fmt.Sprintf("✔ (%d) saved — it counts as fooling the model, and trains, once %d other people confirm your label", res.Count, st.Required)
			}
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

// readFlag validates a flag request fully before anything is stored.
func (h *Handler[In]) readFlag(r *http.Request) (in In, label int, sess string, confirmed bool, err error) {
	m, err := readObject(r, []string{h.spec.Field, "label", "session", "confirm"}, h.flagShape)
	if err != nil {
		return in, 0, "", false, err
	}
	if raw, ok := m["confirm"]; ok {
		if err := json.Unmarshal(raw, &confirmed); err != nil {
			return in, 0, "", false, badRequest(`malformed JSON: field "confirm" must be true or false`)
		}
	}
	labelRange := strings.Replace(h.labelRange(), "-", " to ", 1)
	raw, ok := m["label"]
	var lp *int
	if ok {
		if err := json.Unmarshal(raw, &lp); err != nil {
			return in, 0, "", false, badRequest("label must be a whole number from %s", labelRange)
		}
	}
	if lp == nil {
		return in, 0, "", false, badRequest(`label is missing: send the correct label, {"label": %s}`, h.labelRange())
	}
	if *lp < 0 || *lp >= len(h.spec.Labels) {
		return in, 0, "", false, badRequest("label must be a whole number from %s, not %d", labelRange, *lp)
	}
	if raw, ok := m["session"]; ok {
		if err := json.Unmarshal(raw, &sess); err != nil {
			return in, 0, "", false, badRequest("malformed JSON: field \"session\" must be a string")
		}
		if sess != "" && !sessionRE.MatchString(sess) {
			return in, 0, "", false, badRequest("session must be 1 to 64 letters, digits, '-' or '_'")
		}
	}
	in, err = h.codec.DecodeJSON(m[h.spec.Field])
	if err != nil {
		return in, 0, "", false, decodeErr(err)
	}
	return in, *lp, sess, confirmed, nil
}

type statsResponse struct {
	dadc.Stats
	HubDataset string           `json:"hub_dataset,omitempty"`
	Validation *ValidationStats `json:"validation,omitempty"`
	// GateMaxAccuracyDrop is the loop's promotion gate (Options.GateMaxAccuracyDrop),
	// so that a page can draw each round's threshold: baseline − drop.
	GateMaxAccuracyDrop float64 `json:"gate_max_accuracy_drop"`
	// ConfirmThreshold is the model probability at or above which a flag
	// that disagrees must be confirmed (above 1: never), so that a page
	// can ask before it sends.
	ConfirmThreshold float64 `json:"confirm_threshold"`
}

func (h *Handler[In]) serveStats(w http.ResponseWriter, r *http.Request) {
	st := h.loop.Stats()
	writeJSON(w, http.StatusOK, statsResponse{Stats: st, HubDataset: h.hub, Validation: h.validationStats(st, session(r)), GateMaxAccuracyDrop: h.gateDrop, ConfirmThreshold: h.confirmAt})
}

// Sample limits of /api/samples.
const (
	defaultSampleLimit = 20
	maxSampleLimit     = 100
)

func (h *Handler[In]) serveSamples(w http.ResponseWriter, r *http.Request) {
	limit := defaultSampleLimit
	if v, ok := r.URL.Query()["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || len(v) != 1 || n < 1 || n > maxSampleLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be one whole number from 1 to %d", maxSampleLimit))
			return
		}
		limit = n
	}
	samples := h.loop.Samples(limit)
	out := make([]map[string]any, 0, len(samples))
	for _, s := range samples {
		shown, err := h.codec.Render(s.Input)
		if err != nil {
			h.fail(w, r, fmt.Errorf("render sample %s: %w", s.ID, err))
			return
		}
		// The session id is deliberately left out: it is nobody else's business.
		row := map[string]any{
			"id": s.ID, "label": s.Label, "model_label": s.ModelLabel, "model_probabilities": s.ModelProbabilities,
			"model_version": s.ModelVersion, "round": s.Round, "created_at": s.CreatedAt, h.spec.Field: shown,
		}
		if h.val != nil {
			if st, ok := h.val.v.State(s.ID); ok {
				row["validation"] = st.Status
			}
		}
		out = append(out, row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"samples": out, "count": len(out)})
}

func (h *Handler[In]) serveHealth(w http.ResponseWriter, r *http.Request) {
	select {
	case <-h.done:
		writeError(w, http.StatusServiceUnavailable, "shutting down")
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// EventKeepAlive is how often an idle event stream gets a comment line, so
// that proxies and the browser keep it open.
const EventKeepAlive = 20 * time.Second
