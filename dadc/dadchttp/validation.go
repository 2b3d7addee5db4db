package dadchttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"

	"github.com/advspace/advspace/dadc"
)

// DefaultConfirmThreshold is the model probability at or above which a flag
// whose label disagrees with the model is stored only when confirmed: 0.9.
// A well-trained MNIST model is right on nearly every drawing it is 90%
// sure of, so a disagreement there is far more often a slip (or a poisoning
// attempt) than a real fooling example; below it the model itself is
// unsure and asking would only slow people down.
const DefaultConfirmThreshold = 0.9

// ValidationOptions turn on validation by other people (Dynabench's
// validation): the routes /api/validate/next, /api/validate and
// /api/retract, and the verified model error rate in /api/stats.
type ValidationOptions struct {
	// Validations folds the records into each sample's state; required.
	// Its Required() is K, the matching verdicts that verify or reject a
	// sample (0: every flag that is not retracted trains). Give the Loop
	// the same Validations' Trainable as its training filter.
	Validations *dadc.Validations
	// Persist makes a record durable before it counts (for instance
	// flag.RecordLog.Append); nil keeps records in memory only, lost at a
	// restart.
	Persist func(ctx context.Context, rec dadc.ValidationRecord) error
	// Records are the records read back from storage at start (for
	// instance by flag.ReadRecords), replayed by New after the loop's
	// stored samples are made known; records that break the rules are
	// skipped and counted in a warning.
	Records []dadc.ValidationRecord
}

// validation is a Handler's validation state: the Validations, the inputs
// of the samples it knows (to show them to validators) and what each
// session submitted since the process started.
type validation[In any] struct {
	v       *dadc.Validations
	persist func(context.Context, dadc.ValidationRecord) error

	mu        sync.Mutex
	inputs    map[string]In
	submitted map[string]int // by session, since start
	maxSess   int
}

func newValidation[In any](loop Loop[In], o *ValidationOptions, maxSessions int) (*validation[In], int, error) {
	if o.Validations == nil {
		return nil, 0, fmt.Errorf("%w: Validation.Validations is required: create one with dadc.NewValidations", ErrConfig)
	}
	val := &validation[In]{v: o.Validations, persist: o.Persist, inputs: make(map[string]In),
		submitted: make(map[string]int), maxSess: maxSessions}
	samples := loop.Samples(0) // most recent first
	for i := len(samples) - 1; i >= 0; i-- {
		val.add(samples[i])
	}
	return val, o.Validations.Replay(o.Records), nil
}

func (val *validation[In]) add(s dadc.Sample[In]) {
	val.mu.Lock()
	val.inputs[s.ID] = s.Input
	val.mu.Unlock()
	val.v.AddSample(s.SampleMeta)
}

func (val *validation[In]) input(id string) (In, bool) {
	val.mu.Lock()
	defer val.mu.Unlock()
	in, ok := val.inputs[id]
	return in, ok
}

// submit counts one answered flag of session. Sessions beyond maxSess are
// not counted (their own figures then show no attempts), which bounds the
// memory a flood of new sessions can take.
func (val *validation[In]) submit(session string) {
	if session == "" {
		return
	}
	val.mu.Lock()
	defer val.mu.Unlock()
	if _, ok := val.submitted[session]; ok || len(val.submitted) < val.maxSess {
		val.submitted[session]++
	}
}

func (val *validation[In]) submittedBy(session string) int {
	val.mu.Lock()
	defer val.mu.Unlock()
	return val.submitted[session]
}

// confirmation is the 409 answer to a confident disagreement.
type confirmation struct {
	NeedsConfirmation bool    `json:"needs_confirmation"`
	Label             int     `json:"label"`
	ModelLabel        int     `json:"model_label"`
	Probability       float64 `json:"probability"`
	Message           string  `json:"message"`
}

// needsConfirmation asks the serving model about in and returns the 409
// answer when it is at least threshold sure of a label other than label.
func (h *Handler[In]) needsConfirmation(ctx context.Context, in In, label int) (*confirmation, error) {
	if h.confirmAt > 1 {
		return nil, nil
	}
	p, err := h.loop.Predict(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if p.Label == label || p.Label < 0 || p.Label >= len(p.Probabilities) {
		return nil, nil
	}
	prob := p.Probabilities[p.Label]
	if prob < h.confirmAt {
		return nil, nil
	}
	pct := math.Floor(prob * 100) // "99%" for 0.996: never overstate
	return &confirmation{
		NeedsConfirmation: true, Label: label, ModelLabel: p.Label, Probability: prob,
		Message: fmt.Sprintf("The model is %.0f%% sure this is a %s. Is it really a %s? Nothing was stored: send the same request with \"confirm\": true to store it.",
			pct, h.spec.Labels[p.Label], h.spec.Labels[label]),
	}, nil
}

type validateNextResponse struct {
	ID         string `json:"id"`
	Label      int    `json:"label"`
	LabelName  string `json:"label_name"`
	ModelLabel int    `json:"model_label"`
	Required   int    `json:"required"`
}

func (h *Handler[In]) validationOff(w http.ResponseWriter) bool {
	if h.val == nil {
		writeError(w, http.StatusNotFound, "validation is not enabled on this server")
		return true
	}
	return false
}

const noSession = "a session is needed: load the page first (it sets the " + SessionCookie + " cookie), or send that cookie"

func (h *Handler[In]) serveValidateNext(w http.ResponseWriter, r *http.Request) {
	if h.validationOff(w) {
		return
	}
	sess := session(r)
	if sess == "" {
		writeError(w, http.StatusBadRequest, noSession)
		return
	}
	m, ok := h.val.v.Next(sess)
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	in, ok := h.val.input(m.ID)
	if !ok {
		h.fail(w, r, fmt.Errorf("validate: sample %s has no input", m.ID))
		return
	}
	shown, err := h.codec.Render(in)
	if err != nil {
		h.fail(w, r, fmt.Errorf("render sample %s: %w", m.ID, err))
		return
	}
	// The writer's session is deliberately left out.
	body, err := json.Marshal(validateNextResponse{ID: m.ID, Label: m.Label, LabelName: h.spec.Labels[m.Label],
		ModelLabel: m.ModelLabel, Required: h.val.v.Required()})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]json.RawMessage{}
	_ = json.Unmarshal(body, &out)
	raw, err := json.Marshal(shown)
	if err != nil {
		h.fail(w, r, fmt.Errorf("render sample %s: %w", m.ID, err))
		return
	}
	out[h.spec.Field] = raw
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler[In]) serveValidate(w http.ResponseWriter, r *http.Request) {
	if h.validationOff(w) {
		return
	}
	shape := fmt.Sprintf(`{"id": "...", "verdict": "correct" | "incorrect" | "flagged", "label": %s (optional, with "incorrect")}`, h.labelRange())
	m, err := readObject(r, []string{"id", "verdict", "label"}, shape)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var (
		id      string
		verdict dadc.Verdict
		label   *int
	)
	if json.Unmarshal(m["id"], &id) != nil || id == "" {
		writeError(w, http.StatusBadRequest, "id must be the sample's id, a string; send "+shape)
		return
	}
	if json.Unmarshal(m["verdict"], &verdict) != nil {
		writeError(w, http.StatusBadRequest, "verdict must be \"correct\", \"incorrect\" or \"flagged\"; send "+shape)
		return
	}
	if raw, ok := m["label"]; ok && json.Unmarshal(raw, &label) != nil {
		writeError(w, http.StatusBadRequest, "label must be a whole number from "+h.labelRange()+"; send "+shape)
		return
	}
	sess := session(r)
	if sess == "" {
		writeError(w, http.StatusBadRequest, noSession)
		return
	}
	h.record(w, r, dadc.ValidationRecord{Kind: dadc.RecordVerdict, SampleID: id, Session: sess, Verdict: verdict, Label: label})
}

func (h *Handler[In]) serveRetract(w http.ResponseWriter, r *http.Request) {
	if h.validationOff(w) {
		return
	}
	const shape = `{"id": "..."}`
	m, err := readObject(r, []string{"id"}, shape)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var id string
	if json.Unmarshal(m["id"], &id) != nil || id == "" {
		writeError(w, http.StatusBadRequest, "id must be the id of a sample you flagged, a string; send "+shape)
		return
	}
	sess := session(r)
	if sess == "" {
		writeError(w, http.StatusBadRequest, noSession)
		return
	}
	h.record(w, r, dadc.ValidationRecord{Kind: dadc.RecordRetraction, SampleID: id, Session: sess})
}

func (h *Handler[In]) record(w http.ResponseWriter, r *http.Request, rec dadc.ValidationRecord) {
	rec.CreatedAt = h.now().UTC()
	st, err := h.val.v.Record(r.Context(), rec, h.val.persist)
	switch {
	case err == nil:
		h.metrics.validationOutcome(string(rec.Kind), "stored")
		writeJSON(w, http.StatusOK, st)
		return
	case errors.Is(err, dadc.ErrUnknownSample):
		msg := "there is no sample with id " + rec.SampleID + ": ask /api/validate/next for one"
		if rec.Kind == dadc.RecordRetraction {
			msg = "there is no sample with id " + rec.SampleID + ": send the id that /api/flag answered when you flagged it"
		}
		writeError(w, http.StatusNotFound, msg)
	case errors.Is(err, dadc.ErrOwnSample):
		writeError(w, http.StatusForbidden, "you cannot validate your own sample: other people validate it; ask /api/validate/next for someone else's")
	case errors.Is(err, dadc.ErrNotOwner):
		writeError(w, http.StatusForbidden, "only the session that flagged this sample can retract it")
	case errors.Is(err, dadc.ErrAlreadyValidated):
		msg := "you already gave a verdict on this sample; each person counts once"
		if rec.Kind == dadc.RecordRetraction {
			msg = "this sample is already retracted"
		}
		writeError(w, http.StatusConflict, msg)
	case errors.Is(err, dadc.ErrInvalidRecord):
		writeError(w, http.StatusBadRequest, trimPrefix(err))
	default:
		h.metrics.validationOutcome(string(rec.Kind), "error")
		h.fail(w, r, fmt.Errorf("store a %s: %w", rec.Kind, err))
		return
	}
	h.metrics.validationOutcome(string(rec.Kind), "refused")
}

func trimPrefix(err error) string {
	s := err.Error()
	const p = "dadc: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// ValidationStats is the validation part of /api/stats: Dynabench's
// verified model error rate, (fooled − rejected or retracted) / submitted,
// next to the raw rate fooled / submitted.
type ValidationStats struct {
	// Required is K (0: validation off, every flag trains).
	Required int `json:"required"`
	// Total is over all rounds.
	Total VerifiedRate `json:"total"`
	// Rounds[i] is round i (the loop's round history).
	Rounds []VerifiedRate `json:"rounds"`
	// Session is the asking session's own figures (submitted counts since
	// the server started); absent without a session. No other session's
	// id or figures are ever shown.
	Session *VerifiedRate `json:"session,omitempty"`
}

// VerifiedRate is the raw and verified model error rate of a round, a
// session or everything.
type VerifiedRate struct {
	// Round is set for per-round figures.
	Round *int `json:"round,omitempty"`
	dadc.VerifiedCounts
	// Pending counts fooling samples neither settled nor retracted.
	Pending int `json:"pending"`
	// Submitted counts every answered flag (fooled or not).
	Submitted int `json:"submitted"`
	// ModelErrorRate is Fooled / Submitted.
	ModelErrorRate float64 `json:"model_error_rate"`
	// VerifiedModelErrorRate is (Fooled − NotFooled) / Submitted.
	VerifiedModelErrorRate float64 `json:"verified_model_error_rate"`
}

func verifiedRate(c dadc.VerifiedCounts, submitted int) VerifiedRate {
	// After a restart a session's fooling samples are known but its
	// attempts are not: never report more fooled than submitted.
	submitted = max(submitted, c.Fooled)
	r := VerifiedRate{VerifiedCounts: c, Submitted: submitted, Pending: c.Fooled - c.Verified - c.NotFooled,
		VerifiedModelErrorRate: dadc.VerifiedErrorRate(c, submitted)}
	if submitted > 0 {
		r.ModelErrorRate = float64(c.Fooled) / float64(submitted)
	}
	return r
}

func (h *Handler[In]) validationStats(st dadc.Stats, sess string) *ValidationStats {
	if h.val == nil {
		return nil
	}
	byRound, bySession := h.val.v.Counts()
	out := &ValidationStats{Required: h.val.v.Required(), Rounds: make([]VerifiedRate, 0, len(st.Rounds))}
	var total dadc.VerifiedCounts
	for _, c := range byRound {
		total.Fooled += c.Fooled
		total.Verified += c.Verified
		total.NotFooled += c.NotFooled
	}
	out.Total = verifiedRate(total, st.FlaggedTotal+st.Attempts)
	for _, rs := range st.Rounds {
		r := verifiedRate(byRound[rs.Round], rs.Flags+rs.Attempts)
		r.Round = &rs.Round
		out.Rounds = append(out.Rounds, r)
	}
	if sess != "" {
		r := verifiedRate(bySession[sess], h.val.submittedBy(sess))
		out.Session = &r
	}
	return out
}
