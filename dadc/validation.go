package dadc

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Verdict is one person's judgement of another person's flagged sample, as in
// Dynabench's validation: the three labels its validators choose from.
type Verdict string

// The verdicts a validator can give.
const (
	// VerdictCorrect: the writer's label is right, so the sample really fooled the model.
	VerdictCorrect Verdict = "correct"
	// VerdictIncorrect: the writer's label is wrong; ValidationRecord.Label may give the right one.
	VerdictIncorrect Verdict = "incorrect"
	// VerdictFlagged: the sample is unusable (not a digit, offensive, ambiguous).
	VerdictFlagged Verdict = "flagged"
)

// RecordKind says what a ValidationRecord records.
type RecordKind string

// The kinds of ValidationRecord.
const (
	// RecordVerdict is a validator's verdict on a sample.
	RecordVerdict RecordKind = "verdict"
	// RecordRetraction is the writer withdrawing their own sample.
	RecordRetraction RecordKind = "retraction"
)

// ValidationRecord is one append-only record about a stored sample: a verdict
// given by a session that did not write it, or a retraction by the session
// that did. Records are never rewritten; the state of a sample is the fold of
// its records (see Validations).
type ValidationRecord struct {
	Kind     RecordKind `json:"kind"`
	SampleID string     `json:"sample_id"`
	// Session is the validator's session (verdicts) or the writer's (retractions).
	Session string `json:"session"`
	// Verdict is set for RecordVerdict.
	Verdict Verdict `json:"verdict,omitempty"`
	// Label is the class the validator says is right, with VerdictIncorrect; nil otherwise.
	Label *int `json:"label,omitempty"`
	// CreatedAt is when the record was made (UTC).
	CreatedAt time.Time `json:"created_at"`
}

// ValidationStatus is where a sample stands in validation.
type ValidationStatus string

// The validation statuses of a sample.
const (
	// StatusPending: fewer than the required matching verdicts so far.
	StatusPending ValidationStatus = "pending"
	// StatusVerified: the required number of "correct" verdicts; the sample may train.
	StatusVerified ValidationStatus = "verified"
	// StatusRejected: the required number of "incorrect" or "flagged" verdicts; it never trains.
	StatusRejected ValidationStatus = "rejected"
	// StatusRetracted: its writer withdrew it; it never trains.
	StatusRetracted ValidationStatus = "retracted"
)

// ValidationState is a sample's validation state, JSON-ready.
type ValidationState struct {
	ID     string           `json:"id"`
	Status ValidationStatus `json:"status"`
	// Correct, Incorrect and Flagged count the verdicts given.
	Correct   int `json:"correct"`
	Incorrect int `json:"incorrect"`
	Flagged   int `json:"flagged"`
	// Required is the number of matching verdicts that settle the sample (K);
	// 0 means validation is off and every sample that is not retracted trains.
	Required int `json:"required"`
}

// Validations folds validation records into each sample's state and answers
// the questions a loop and a web app ask: may this sample train, what should
// this session validate next, what is the verified model error rate.
//
// A sample is verified after Required "correct" verdicts and rejected after
// Required "incorrect" or "flagged" verdicts (counted together), whichever
// comes first; later verdicts are still recorded but change nothing. With
// Required == 0 validation is off: every sample that is not retracted may
// train. A retracted sample never trains, whatever its verdicts.
//
// All methods are safe for concurrent use. Record holds the Validations' lock
// while it persists a record, so two validators racing on one sample are
// serialised: exactly one of two verdicts by the same session is accepted.
type Validations struct {
	mu       sync.Mutex
	required int
	classes  int
	samples  map[string]*validationEntry
	order    []string // sample IDs, oldest first
}

type validationEntry struct {
	meta      SampleMeta
	verdicts  map[string]Verdict // by validator session
	correct   int
	incorrect int
	flagged   int
	retracted bool
}

// NewValidations returns an empty Validations for labels in [0, classes)
// that settles a sample after required matching verdicts (0: validation off).
func NewValidations(required, classes int) (*Validations, error) {
	if required < 0 {
		return nil, fmt.Errorf("dadc: validations required must be >= 0, got %d", required)
	}
	if classes <= 0 {
		return nil, fmt.Errorf("dadc: classes must be > 0, got %d", classes)
	}
	return &Validations{required: required, classes: classes, samples: make(map[string]*validationEntry)}, nil
}

// Required returns the number of matching verdicts that settle a sample.
func (v *Validations) Required() int { return v.required }

// AddSample makes a stored sample known. Adding an ID twice keeps the first.
func (v *Validations) AddSample(m SampleMeta) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.samples[m.ID]; ok {
		return
	}
	v.samples[m.ID] = &validationEntry{meta: m, verdicts: make(map[string]Verdict)}
	v.order = append(v.order, m.ID)
}

// Record checks rec against the current state, calls persist (which must make
// it durable; nil persist keeps it in memory only) and only then applies it,
// returning the sample's new state. On any error nothing changes.
//
// Errors: ErrInvalidRecord, ErrUnknownSample, ErrOwnSample (a verdict by the
// writer), ErrAlreadyValidated (a second verdict by the same session, or a
// second retraction), ErrNotOwner (a retraction by anyone but the writer),
// or persist's error, all wrapped.
func (v *Validations) Record(ctx context.Context, rec ValidationRecord, persist func(context.Context, ValidationRecord) error) (ValidationState, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, err := v.check(rec)
	if err != nil {
		return ValidationState{}, err
	}
	if persist != nil {
		if err := persist(ctx, rec); err != nil {
			return ValidationState{}, err
		}
	}
	v.apply(e, rec)
	return v.state(e), nil
}

// Replay applies records read back from storage (for instance at start),
// skipping those that break the rules (a corrupt or forged record never
// counts) and those for samples not added yet. It returns how many it skipped.
func (v *Validations) Replay(recs []ValidationRecord) (skipped int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, rec := range recs {
		e, err := v.check(rec)
		if err != nil {
			skipped++
			continue
		}
		v.apply(e, rec)
	}
	return skipped
}

func (v *Validations) check(rec ValidationRecord) (*validationEntry, error) {
	if rec.Session == "" {
		return nil, fmt.Errorf("%w: no session", ErrInvalidRecord)
	}
	e, ok := v.samples[rec.SampleID]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSample, rec.SampleID)
	}
	switch rec.Kind {
	case RecordVerdict:
		switch rec.Verdict {
		case VerdictCorrect, VerdictFlagged:
			if rec.Label != nil {
				return nil, fmt.Errorf("%w: a label goes only with the verdict %q", ErrInvalidRecord, VerdictIncorrect)
			}
		case VerdictIncorrect:
			if rec.Label != nil && (*rec.Label < 0 || *rec.Label >= v.classes) {
				return nil, fmt.Errorf("%w: label %d is outside 0-%d", ErrInvalidRecord, *rec.Label, v.classes-1)
			}
		default:
			return nil, fmt.Errorf("%w: verdict %q (want %q, %q or %q)", ErrInvalidRecord, rec.Verdict, VerdictCorrect, VerdictIncorrect, VerdictFlagged)
		}
		if rec.Session == e.meta.Session {
			return nil, ErrOwnSample
		}
		if _, dup := e.verdicts[rec.Session]; dup {
			return nil, ErrAlreadyValidated
		}
	case RecordRetraction:
		if rec.Session != e.meta.Session {
			return nil, ErrNotOwner
		}
		if e.retracted {
			return nil, fmt.Errorf("%w: the sample is already retracted", ErrAlreadyValidated)
		}
	default:
		return nil, fmt.Errorf("%w: kind %q", ErrInvalidRecord, rec.Kind)
	}
	return e, nil
}

func (v *Validations) apply(e *validationEntry, rec ValidationRecord) {
	if rec.Kind == RecordRetraction {
		e.retracted = true
		return
	}
	e.verdicts[rec.Session] = rec.Verdict
	switch rec.Verdict {
	case VerdictCorrect:
		e.correct++
	case VerdictIncorrect:
		e.incorrect++
	case VerdictFlagged:
		e.flagged++
	}
}

func (v *Validations) status(e *validationEntry) ValidationStatus {
	switch {
	case e.retracted:
		return StatusRetracted
	case v.required == 0:
		return StatusPending
	}
	// Whichever side reached the threshold first settles the sample; replaying
	// the verdicts in order is unnecessary because a settled sample is no
	// longer offered for validation, so both sides cannot both reach it
	// except through racing records, where "not verified" is the safe answer.
	if e.incorrect+e.flagged >= v.required {
		return StatusRejected
	}
	if e.correct >= v.required {
		return StatusVerified
	}
	return StatusPending
}

func (v *Validations) state(e *validationEntry) ValidationState {
	return ValidationState{ID: e.meta.ID, Status: v.status(e), Correct: e.correct,
		Incorrect: e.incorrect, Flagged: e.flagged, Required: v.required}
}

// State returns the validation state of the sample with this ID.
func (v *Validations) State(id string) (ValidationState, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.samples[id]
	if !ok {
		return ValidationState{}, false
	}
	return v.state(e), true
}

// Trainable reports whether the sample may train: not retracted, and verified
// when validation is on (Required > 0). An ID not added yet (a sample the
// Loop stored a moment before the web app learnt of it) is trainable only
// when validation is off, so a Loop filter never lets an unvalidated sample
// through and never holds one back when K = 0.
func (v *Validations) Trainable(id string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.samples[id]
	if !ok {
		return v.required == 0
	}
	switch v.status(e) {
	case StatusRetracted, StatusRejected:
		return false
	case StatusVerified:
		return true
	}
	return v.required == 0
}

// Next returns the oldest sample that session did not write, has not
// validated, and that is still pending and not retracted; false when none.
func (v *Validations) Next(session string) (SampleMeta, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range v.order {
		e := v.samples[id]
		if e.meta.Session == session || v.status(e) != StatusPending {
			continue
		}
		if _, done := e.verdicts[session]; done {
			continue
		}
		m := e.meta
		m.ModelProbabilities = slices.Clone(m.ModelProbabilities)
		return m, true
	}
	return SampleMeta{}, false
}

// VerifiedCounts is what the verified model error rate is made of, for one
// round or one session: Dynabench's verified MER is
// (Fooled − NotFooled) / Submitted, where NotFooled counts the fooling
// samples that validation rejected or their writer retracted.
type VerifiedCounts struct {
	// Fooled counts stored fooling samples.
	Fooled int `json:"fooled"`
	// Verified counts those verified by others.
	Verified int `json:"verified"`
	// NotFooled counts those rejected or retracted.
	NotFooled int `json:"not_fooled"`
}

// Counts returns VerifiedCounts per round and per session.
func (v *Validations) Counts() (byRound map[int]VerifiedCounts, bySession map[string]VerifiedCounts) {
	v.mu.Lock()
	defer v.mu.Unlock()
	byRound, bySession = make(map[int]VerifiedCounts), make(map[string]VerifiedCounts)
	for _, id := range v.order {
		e := v.samples[id]
		add := func(c VerifiedCounts) VerifiedCounts {
			c.Fooled++
			switch v.status(e) {
			case StatusVerified:
				c.Verified++
			case StatusRejected, StatusRetracted:
				c.NotFooled++
			}
			return c
		}
		byRound[e.meta.Round] = add(byRound[e.meta.Round])
		bySession[e.meta.Session] = add(bySession[e.meta.Session])
	}
	return byRound, bySession
}

// VerifiedErrorRate returns (fooled − notFooled) / submitted, or 0 when
// nothing was submitted.
func VerifiedErrorRate(c VerifiedCounts, submitted int) float64 {
	if submitted <= 0 {
		return 0
	}
	return float64(c.Fooled-c.NotFooled) / float64(submitted)
}
