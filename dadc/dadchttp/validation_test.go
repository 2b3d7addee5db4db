package dadchttp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/dadc/dadctest"
)

// cookie is the header pair of a request from session s.
func cookie(s string) []string { return []string{"Cookie", dadchttp.SessionCookie + "=" + s} }

type valFixture struct {
	*fixture
	model *dadctest.FakeModel[int]
	vals  *dadc.Validations
	mu    sync.Mutex
	recs  []dadc.ValidationRecord // persisted, in order
}

func (f *valFixture) persisted() []dadc.ValidationRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recs)
}

// newValFixture is a Handler with validation (K = k) over a loop of whole
// numbers whose model says n % 3 (90% sure) and trains into "mod3-r1".
func newValFixture(t *testing.T, k int, opts *dadchttp.Options, records ...dadc.ValidationRecord) *valFixture {
	t.Helper()
	vals, err := dadc.NewValidations(k, 3)
	require.NoError(t, err)
	model := dadctest.NewModel("mod3", 3, func(n int) int { return n % 3 })
	model.TrainFunc = func(context.Context, dadc.TrainRequest[int]) (dadc.Model[int], error) {
		return dadctest.NewModel("mod3-r1", 3, func(n int) int { return n % 3 }), nil
	}
	flagger := dadctest.NewFlagger[int](nil)
	loop, err := dadc.NewLoop[int](model, flagger, dadc.Manual(), 3, &dadc.Options[int]{HoldoutEvery: -1,
		Trainable: func(m dadc.SampleMeta) bool { return vals.Trainable(m.ID) }})
	require.NoError(t, err)
	var o dadchttp.Options
	if opts != nil {
		o = *opts
	}
	vf := &valFixture{model: model, vals: vals}
	// newFixture builds its own loop and Handler (without validation);
	// this fixture replaces both.
	f := newFixture(t, flagger, &o)
	o2 := o
	o2.Validation = &dadchttp.ValidationOptions{Validations: vals, Records: records,
		Persist: func(_ context.Context, rec dadc.ValidationRecord) error {
			vf.mu.Lock()
			defer vf.mu.Unlock()
			vf.recs = append(vf.recs, rec)
			return nil
		}}
	o2.Registry = nil
	o2.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	o2.Now = f.clock.Now
	if o2.ConfirmThreshold == 0 {
		o2.ConfirmThreshold = 2
	}
	if o2.FlagRate == 0 {
		o2.FlagRate, o2.FlagBurst = 1000, 1000
	}
	h, err := dadchttp.New[int](loop, numberCodec{}, &o2)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, h.Close())
		require.NoError(t, loop.Close(context.Background()))
	})
	f.loop, f.h = loop, h
	vf.fixture = f
	return vf
}

func (f *valFixture) flagAs(session string, n, label int) string {
	f.t.Helper()
	rec := f.do("POST", "/api/flag", "application/json", fmt.Sprintf(`{"n": %d, "label": %d}`, n, label), cookie(session)...)
	require.Equal(f.t, http.StatusCreated, rec.Code, rec.Body.String())
	return decode[flagAnswer](f.t, rec.Body).ID
}

func (f *valFixture) validate(session, body string) (int, string) {
	f.t.Helper()
	rec := f.do("POST", "/api/validate", "application/json", body, cookie(session)...)
	return rec.Code, rec.Body.String()
}

func TestConfirmConfidentDisagreement(t *testing.T) {
	tests := []struct {
		name      string
		threshold float64
		body      string
		want      int
		stored    int
	}{
		{"at the threshold, unconfirmed: asked, nothing stored", 0.9, `{"n": 4, "label": 0}`, http.StatusConflict, 0},
		{"confirmed: stored", 0.9, `{"n": 4, "label": 0, "confirm": true}`, http.StatusCreated, 1},
		{"confirm false is unconfirmed", 0.9, `{"n": 4, "label": 0, "confirm": false}`, http.StatusConflict, 0},
		{"below the threshold: stored without asking", 0.95, `{"n": 4, "label": 0}`, http.StatusCreated, 1},
		{"agreeing label: never asked", 0.9, `{"n": 4, "label": 1}`, http.StatusOK, 0},
		{"confirm must be a boolean", 0.9, `{"n": 4, "label": 0, "confirm": "yes"}`, http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, &dadchttp.Options{ConfirmThreshold: tt.threshold})
			rec := f.do("POST", "/api/flag", "application/json", tt.body)
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			assert.Equal(t, tt.stored, f.loop.Stats().FlaggedTotal)
			if tt.want == http.StatusConflict {
				got := decode[map[string]any](t, rec.Body)
				assert.Equal(t, true, got["needs_confirmation"])
				assert.EqualValues(t, 1, got["model_label"])
				assert.InDelta(t, 0.9, got["probability"], 1e-9)
				assert.Equal(t, `The model is 90% sure this is a one. Is it really a zero? Nothing was stored: send the same request with "confirm": true to store it.`, got["message"])
			}
		})
	}
}

func TestConfirmThresholdConfig(t *testing.T) {
	f := newValFixture(t, 2, nil)
	_, err := dadchttp.New[int](f.loop, numberCodec{}, &dadchttp.Options{ConfirmThreshold: -1})
	require.ErrorIs(t, err, dadchttp.ErrConfig)
	_, err = dadchttp.New[int](f.loop, numberCodec{}, &dadchttp.Options{Validation: &dadchttp.ValidationOptions{}})
	require.ErrorIs(t, err, dadchttp.ErrConfig, "validation without a Validations")

	vals, err := dadc.NewValidations(2, 3)
	require.NoError(t, err)
	h, err := dadchttp.New[int](f.loop, numberCodec{}, &dadchttp.Options{Validation: &dadchttp.ValidationOptions{Validations: vals}})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/stats", nil))
	st := decode[map[string]any](t, rec.Body)
	assert.InDelta(t, dadchttp.DefaultConfirmThreshold, st["confirm_threshold"], 1e-9, "zero means the default")
}

func TestValidationRoutes(t *testing.T) {
	f := newValFixture(t, 2, nil)
	// Nothing to validate yet.
	rec := f.do("GET", "/api/validate/next", "", "", cookie("v1")...)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())

	id := f.flagAs("writer", 4, 0)

	// The writer is never offered their own sample.
	rec = f.do("GET", "/api/validate/next", "", "", cookie("writer")...)
	assert.Equal(t, http.StatusNoContent, rec.Code)
	rec = f.do("GET", "/api/validate/next", "", "", cookie("v1")...)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	next := decode[map[string]any](t, rec.Body)
	assert.Equal(t, map[string]any{"id": id, "n": 4.0, "label": 0.0, "label_name": "zero", "model_label": 1.0, "required": 2.0}, next,
		"the sample as shown, the writer's label and the model's; never the writer's session")

	tests := []struct {
		name, session, body string
		want                int
		msg                 string
	}{
		{"own sample", "writer", `{"id": "` + id + `", "verdict": "correct"}`, http.StatusForbidden, "your own sample"},
		{"unknown id", "v1", `{"id": "nope", "verdict": "correct"}`, http.StatusNotFound, "no sample with id nope"},
		{"bad verdict", "v1", `{"id": "` + id + `", "verdict": "maybe"}`, http.StatusBadRequest, `verdict "maybe"`},
		{"label with correct", "v1", `{"id": "` + id + `", "verdict": "correct", "label": 1}`, http.StatusBadRequest, "a label goes only with"},
		{"label out of range", "v1", `{"id": "` + id + `", "verdict": "incorrect", "label": 7}`, http.StatusBadRequest, "outside 0-2"},
		{"no id", "v1", `{"verdict": "correct"}`, http.StatusBadRequest, "id must be"},
		{"unknown field", "v1", `{"id": "` + id + `", "verdict": "correct", "x": 1}`, http.StatusBadRequest, `unknown field "x"`},
		{"not JSON", "v1", `{"id": `, http.StatusBadRequest, "malformed JSON"},
		{"no session", "", `{"id": "` + id + `", "verdict": "correct"}`, http.StatusBadRequest, "a session is needed"},
		{"first verdict", "v1", `{"id": "` + id + `", "verdict": "incorrect", "label": 1}`, http.StatusOK, `"status":"pending"`},
		{"second verdict by the same session", "v1", `{"id": "` + id + `", "verdict": "correct"}`, http.StatusConflict, "already gave a verdict"},
		{"second validator settles it", "v2", `{"id": "` + id + `", "verdict": "flagged"}`, http.StatusOK, `"status":"rejected"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.session != "" {
				h = cookie(tt.session)
			}
			rec := f.do("POST", "/api/validate", "application/json", tt.body, h...)
			assert.Equal(t, tt.want, rec.Code, rec.Body.String())
			assert.Contains(t, answer(t, rec), tt.msg)
		})
	}
	// Two verdicts were stored, each persisted once, with the validator's session.
	recs := f.persisted()
	require.Len(t, recs, 2)
	assert.Equal(t, "v1", recs[0].Session)
	assert.Equal(t, 1, *recs[0].Label)
	assert.Equal(t, f.clock.Now(), recs[1].CreatedAt)
	// A settled sample is no longer offered.
	assert.Equal(t, http.StatusNoContent, f.do("GET", "/api/validate/next", "", "", cookie("v3")...).Code)
	assert.Equal(t, http.StatusBadRequest, f.do("GET", "/api/validate/next", "", "").Code, "no session")
}

func TestRetract(t *testing.T) {
	f := newValFixture(t, 2, nil)
	id := f.flagAs("writer", 4, 0)
	tests := []struct {
		name, session, body string
		want                int
		msg                 string
	}{
		{"someone else", "other", `{"id": "` + id + `"}`, http.StatusForbidden, "only the session that flagged"},
		{"unknown", "writer", `{"id": "nope"}`, http.StatusNotFound, "no sample with id nope: send the id that /api/flag answered"},
		{"malformed", "writer", `{"id": 3}`, http.StatusBadRequest, "id must be"},
		{"the writer", "writer", `{"id": "` + id + `"}`, http.StatusOK, `"status":"retracted"`},
		{"twice", "writer", `{"id": "` + id + `"}`, http.StatusConflict, "already retracted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do("POST", "/api/retract", "application/json", tt.body, cookie(tt.session)...)
			assert.Equal(t, tt.want, rec.Code, rec.Body.String())
			assert.Contains(t, answer(t, rec), tt.msg)
		})
	}
	require.Len(t, f.persisted(), 1)
	assert.Equal(t, dadc.RecordRetraction, f.persisted()[0].Kind)
	assert.False(t, f.vals.Trainable(id))
	assert.Equal(t, http.StatusNoContent, f.do("GET", "/api/validate/next", "", "", cookie("other")...).Code, "a retracted sample is not offered")
}

func TestValidationOff(t *testing.T) {
	f := newFixture(t, nil, nil)
	for _, r := range [][2]string{{"GET", "/api/validate/next"}, {"POST", "/api/validate"}, {"POST", "/api/retract"}} {
		rec := f.do(r[0], r[1], "application/json", `{"id": "x"}`, cookie("s")...)
		assert.Equal(t, http.StatusNotFound, rec.Code, r[1])
		assert.Contains(t, rec.Body.String(), "validation is not enabled")
	}
	assert.NotContains(t, f.do("GET", "/api/stats", "", "").Body.String(), `"validation"`)
}

func TestPersistFailureChangesNothing(t *testing.T) {
	f := newValFixture(t, 1, nil)
	id := f.flagAs("writer", 4, 0)
	h := f.h
	// A Handler whose Persist fails, over the same loop and Validations.
	failing, err := dadchttp.New[int](f.loop, numberCodec{}, &dadchttp.Options{Validation: &dadchttp.ValidationOptions{
		Validations: f.vals, Persist: func(context.Context, dadc.ValidationRecord) error { return errors.New("disk on fire") }}})
	require.NoError(t, err)
	f.h = failing
	code, body := f.validate("v1", `{"id": "`+id+`", "verdict": "correct"}`)
	assert.Equal(t, http.StatusInternalServerError, code, body)
	assert.NotContains(t, body, "disk on fire")
	st, _ := f.vals.State(id)
	assert.Equal(t, dadc.StatusPending, st.Status)
	f.h = h
	code, body = f.validate("v1", `{"id": "`+id+`", "verdict": "correct"}`)
	assert.Equal(t, http.StatusOK, code, body, "the failed verdict did not count as given")
}

func TestRecordsReplayedAtStart(t *testing.T) {
	// A first server stores a sample and a verdict.
	f := newValFixture(t, 1, nil)
	id := f.flagAs("writer", 4, 0)
	code, body := f.validate("v1", `{"id": "`+id+`", "verdict": "correct"}`)
	require.Equal(t, http.StatusOK, code, body)
	recs := append(f.persisted(), dadc.ValidationRecord{Kind: dadc.RecordVerdict, SampleID: id, Session: "writer", Verdict: dadc.VerdictCorrect})

	// A new Validations over the same loop: the records are replayed (the
	// forged self-validation is skipped and logged).
	vals, err := dadc.NewValidations(1, 3)
	require.NoError(t, err)
	var logs syncBuffer
	_, err = dadchttp.New[int](f.loop, numberCodec{}, &dadchttp.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Validation: &dadchttp.ValidationOptions{Validations: vals, Records: recs}})
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "skipped=1")
	st, ok := vals.State(id)
	require.True(t, ok)
	assert.Equal(t, dadc.StatusVerified, st.Status)
	assert.Equal(t, 1, st.Correct)
	assert.True(t, vals.Trainable(id))
}

func TestStatsVerifiedErrorRate(t *testing.T) {
	f := newValFixture(t, 1, nil)
	a := f.flagAs("writer", 4, 0)
	b := f.flagAs("writer", 5, 0)
	f.flagAs("writer", 7, 0)
	// An attempt the model gets right.
	require.Equal(t, http.StatusOK, f.do("POST", "/api/flag", "application/json", `{"n": 3, "label": 0}`, cookie("writer")...).Code)
	code, body := f.validate("v1", `{"id": "`+a+`", "verdict": "correct"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = f.validate("v1", `{"id": "`+b+`", "verdict": "incorrect"}`)
	require.Equal(t, http.StatusOK, code, body)

	type rate struct {
		Round                  *int    `json:"round"`
		Fooled                 int     `json:"fooled"`
		Verified               int     `json:"verified"`
		NotFooled              int     `json:"not_fooled"`
		Pending                int     `json:"pending"`
		Submitted              int     `json:"submitted"`
		ModelErrorRate         float64 `json:"model_error_rate"`
		VerifiedModelErrorRate float64 `json:"verified_model_error_rate"`
	}
	type stats struct {
		Validation struct {
			Required int    `json:"required"`
			Total    rate   `json:"total"`
			Rounds   []rate `json:"rounds"`
			Session  *rate  `json:"session"`
		} `json:"validation"`
	}
	rec := f.do("GET", "/api/stats", "", "", cookie("writer")...)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.NotContains(t, rec.Body.String(), "v1", "no other session's id")
	st := decode[stats](t, rec.Body)
	want := rate{Fooled: 3, Verified: 1, NotFooled: 1, Pending: 1, Submitted: 4, ModelErrorRate: 0.75, VerifiedModelErrorRate: 0.5}
	assert.Equal(t, 1, st.Validation.Required)
	assert.Equal(t, want, st.Validation.Total)
	require.Len(t, st.Validation.Rounds, 1)
	zero := 0
	want.Round = &zero
	assert.Equal(t, want, st.Validation.Rounds[0])
	require.NotNil(t, st.Validation.Session)
	want.Round = nil
	assert.Equal(t, want, *st.Validation.Session, "the writer's own figures")

	other := decode[stats](t, f.do("GET", "/api/stats", "", "", cookie("v1")...).Body)
	require.NotNil(t, other.Validation.Session)
	assert.Equal(t, rate{}, *other.Validation.Session, "a validator who flagged nothing")
	anon := decode[stats](t, f.do("GET", "/api/stats", "", "").Body)
	assert.Nil(t, anon.Validation.Session)
}

func TestTwoValidatorsAtOnce(t *testing.T) {
	f := newValFixture(t, 2, nil)
	id := f.flagAs("writer", 4, 0)
	body := `{"id": "` + id + `", "verdict": "correct"}`

	// The same session from two tabs at once: exactly one verdict counts.
	const n = 16
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i], _ = f.validate("tabs", body) })
	}
	wg.Wait()
	assert.Equal(t, 1, count(codes, http.StatusOK))
	assert.Equal(t, n-1, count(codes, http.StatusConflict))

	// Different people at once: each counts once, and K of them verify it.
	for i := range n {
		wg.Go(func() { codes[i], _ = f.validate(fmt.Sprint("p", i), body) })
	}
	wg.Wait()
	assert.Equal(t, n, count(codes, http.StatusOK))
	st, _ := f.vals.State(id)
	assert.Equal(t, dadc.ValidationState{ID: id, Status: dadc.StatusVerified, Correct: n + 1, Required: 2}, st)
	assert.Len(t, f.persisted(), n+1, "every accepted verdict persisted exactly once")
}

// answer is the error message of a refusal, or the body of a success.
func answer(t *testing.T, rec *httptest.ResponseRecorder) string {
	if rec.Code == http.StatusOK {
		return rec.Body.String()
	}
	return decode[errorAnswer](t, rec.Body).Error
}

func count(codes []int, code int) int {
	c := 0
	for _, x := range codes {
		if x == code {
			c++
		}
	}
	return c
}

func TestValidateWhileRetraining(t *testing.T) {
	f := newValFixture(t, 1, nil)
	ids := []string{f.flagAs("writer", 4, 0), f.flagAs("writer", 5, 0), f.flagAs("writer", 7, 2)}
	code, body := f.validate("v1", `{"id": "`+ids[0]+`", "verdict": "correct"}`)
	require.Equal(t, http.StatusOK, code, body)

	release := make(chan struct{})
	started := make(chan struct{})
	f.model.TrainFunc = func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		close(started)
		<-release
		return dadctest.NewModel("mod3-r1", 3, func(n int) int { return n % 3 }), nil
	}
	require.NoError(t, f.loop.Retrain(context.Background()))
	<-started
	// The retrain runs: verdicts, retractions and stats go on.
	code, body = f.validate("v1", `{"id": "`+ids[1]+`", "verdict": "correct"}`)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, http.StatusOK, f.do("POST", "/api/retract", "application/json", `{"id": "`+ids[2]+`"}`, cookie("writer")...).Code)
	assert.Equal(t, http.StatusOK, f.do("GET", "/api/stats", "", "", cookie("writer")...).Code)
	close(release)
	require.NoError(t, f.loop.WaitIdle(context.Background()))

	reqs := f.model.TrainRequests()
	require.Len(t, reqs, 1)
	require.Len(t, reqs[0].Samples, 1, "only the sample verified when the retrain started")
	assert.Equal(t, ids[0], reqs[0].Samples[0].ID)
}

// Many mislabelled flags from one session, with K = 2: none reaches
// training and the served model does not change.
func TestPoisoningOneSessionNeverTrains(t *testing.T) {
	f := newValFixture(t, 2, &dadchttp.Options{ConfirmThreshold: dadchttp.DefaultConfirmThreshold})
	var poison []string
	for n := range 30 {
		// Confident wrong labels: each must be confirmed, and is.
		body := fmt.Sprintf(`{"n": %d, "label": %d}`, n, (n+1)%3)
		rec := f.do("POST", "/api/flag", "application/json", body, cookie("poisoner")...)
		require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
		rec = f.do("POST", "/api/flag", "application/json", strings.Replace(body, "}", `, "confirm": true}`, 1), cookie("poisoner")...)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		poison = append(poison, decode[flagAnswer](t, rec.Body).ID)
	}
	// The poisoner cannot verify their own samples, and one honest person
	// rejects the first two; nobody confirms any.
	for _, id := range poison {
		code, _ := f.validate("poisoner", `{"id": "`+id+`", "verdict": "correct"}`)
		require.Equal(t, http.StatusForbidden, code)
	}
	for _, id := range poison[:2] {
		code, body := f.validate("honest", `{"id": "`+id+`", "verdict": "incorrect"}`)
		require.Equal(t, http.StatusOK, code, body)
	}
	before := f.loop.Stats().ModelVersion
	require.ErrorIs(t, f.loop.Retrain(context.Background()), dadc.ErrNothingToTrain, "nothing is trainable, so no retrain starts")
	require.NoError(t, f.loop.WaitIdle(context.Background()))
	assert.Empty(t, f.model.TrainRequests(), "no poisoned sample reached the trainer")
	st := f.loop.Stats()
	assert.Equal(t, before, st.ModelVersion, "the served model did not change")
	assert.Equal(t, 30, st.FlaggedTotal, "the flags are stored (the dataset keeps them, with their verdicts)")
	for _, id := range poison {
		assert.False(t, f.vals.Trainable(id))
	}
}
