package dadc

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxAccuracyDrop = 0.005
	DefaultHoldoutEvery    = 5
	DefaultTrainTimeout    = 10 * time.Minute
	DefaultCheckInterval   = time.Second
	DefaultRecoverTimeout  = time.Minute
)

// Options configures a Loop. A nil *Options is invalid because Classes is
// required; every other zero field means its default.
type Options[In any] struct {
	// Classes is the number of classes; labels must be in [0, Classes). Required (> 0).
	Classes int
	// CleanTest is the clean test set the gate scores candidates on. When it
	// is empty the gate checks nothing (every trained candidate is promoted)
	// and the Loop logs a warning.
	CleanTest []Example[In]
	// MaxAccuracyDrop is the gate: a candidate is promoted only if its clean
	// accuracy >= the serving model's clean accuracy - MaxAccuracyDrop.
	// 0 means DefaultMaxAccuracyDrop (0.005). A negative value demands that
	// much improvement. Must be at most 1.
	MaxAccuracyDrop float64
	// HoldoutEvery holds every k-th adversarial sample (in the order they
	// were stored; samples recovered at NewLoop in CreatedAt order) out of
	// training; held-out samples measure the candidate's adversarial accuracy. 0 means DefaultHoldoutEvery (5); a negative
	// value disables holding out; 1 is invalid (nothing would be trained on).
	HoldoutEvery int
	// TrainTimeout bounds one retrain (training and evaluation). 0 means
	// DefaultTrainTimeout (10 minutes).
	TrainTimeout time.Duration
	// CheckInterval is how often the policy is asked between flags, for
	// time-based policies. 0 means DefaultCheckInterval (1s); negative
	// disables the periodic check (the policy is then asked only after flags
	// and after retrains).
	CheckInterval time.Duration
	// RecoverTimeout bounds reading stored samples from a SampleSource in
	// NewLoop. 0 means DefaultRecoverTimeout (1 minute).
	RecoverTimeout time.Duration
	// Logger receives the Loop's logs. nil discards them. Inputs are never logged.
	Logger *slog.Logger
	// Now is the clock. nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
	// NewID returns a fresh sample ID. nil means 128 random bits in hex
	// (crypto/rand). It must be safe for concurrent use and never return "".
	NewID func() string
	// NewVersion returns the version for the model trained to serve round.
	// nil means "r<round>-<6 random hex digits>".
	NewVersion func(round int) string
}

// FlagResult is what Loop.Flag reports.
type FlagResult[In any] struct {
	// Fooled reports whether the input fooled the model (and was stored).
	Fooled bool
	// Sample is the stored sample; the zero value when not fooled.
	Sample Sample[In]
	// Prediction is the serving model's answer for the input.
	Prediction Prediction
	// Count is the flagged total after this call.
	Count int
	// Round is the round the submission belongs to.
	Round int
	// Retraining reports whether a retrain is running (possibly just started by this call).
	Retraining bool
}

// Loop ties a Model, a Flagger and a RetrainPolicy together: it predicts,
// stores the inputs that fool the model, counts them in rounds, retrains in
// the background when the policy says so, gates the candidate and swaps it in
// atomically.
//
// # Rounds
//
// Round 0 is served by the model given to NewLoop. When a retrain starts the
// current round closes and the next one opens at once: flags that arrive
// during the retrain count toward the new round and are not in that retrain's
// training set. A submission belongs to the round in which the model answered
// it (Sample.Round); so a flag whose durable write was still in flight when
// its round closed is added to that closed round when the write completes,
// the only way a closed round's counts change. The trainer always gets every
// stored adversarial sample that is not held out, from all rounds
// (cumulative): each candidate learns from everything collected so far. The
// slice is the trainer's own; the Inputs in it are shared with the Loop and
// must not be modified. The Loop keeps every stored sample in memory, as the
// training pool.
//
// # Retrains
//
// At most one retrain runs at a time, in its own goroutine, under a context
// that Close cancels and Options.TrainTimeout bounds. The policy is asked
// after every submission, every Options.CheckInterval and when a retrain
// ends, but never while one runs: if it would have fired meanwhile, nothing
// starts, and the Loop asks again when the retrain ends (coalescing). With
// EveryN(10), 1,000 flags that arrive during one slow retrain therefore lead
// to exactly one more retrain, not a hundred. A model that does not implement
// Trainer is never retrained by the policy (the Loop logs this once) and
// Retrain returns ErrNotTrainable.
//
// After training, the candidate is scored on Options.CleanTest (through
// Evaluator if it implements it, else BatchPredictor, else Predict) and on the
// held-out adversarial samples. The serving model's clean accuracy (the
// baseline) is computed once per model and cached. The candidate is promoted
// iff its clean accuracy >= baseline - Options.MaxAccuracyDrop. Promotion is
// an atomic pointer swap: calls already running on the old model finish on
// it. A rejected candidate, a trainer error, a panic in user code or a timeout
// leave the old model serving, and the round history and events say why.
//
// # Model ownership
//
// The Loop owns the model given to NewLoop and every model its trainer
// returns. A model that implements io.Closer is closed once it can no longer
// serve (replaced, rejected, or the Loop closed) and every call the Loop made
// on it has returned: the Loop counts references to each model, so Close is
// never called under a running Predict.
//
// # Concurrency
//
// All methods are safe for concurrent use. Flag and Predict never wait for a
// running retrain. The Loop calls the policy from one goroutine at a time, the
// trainer from one goroutine at a time, and the flagger concurrently.
type Loop[In any] struct {
	flagger Flagger[In]
	policy  RetrainPolicy
	opts    Options[In] // defaults resolved
	log     *slog.Logger

	// current is the served model. It changes only under mu (so that code
	// holding mu sees a stable model), but is read without locks.
	current atomic.Pointer[modelRef[In]]

	// baseCtx is cancelled by Close; retrains and the ticker run under it.
	baseCtx context.Context
	cancel  context.CancelFunc

	// ops counts running Flag/Predict calls, the retrain goroutine and the
	// ticker, so that Close can wait for them. Add only under mu while !closed.
	ops sync.WaitGroup

	events broadcaster

	// progress holds the running retrain's progress as float64 bits.
	progress atomic.Uint64

	mu                 sync.Mutex
	closed             bool
	round              int
	rounds             []RoundStats // rounds[i].Round == i
	flaggedTotal       int
	attempts           int
	perLabel           []int
	pool               []pooledSample[In] // stored samples, in the order they were counted
	ids                map[string]struct{}
	heldOut            int
	retraining         bool
	retrainDone        chan struct{} // closed when the running retrain ends
	notTrainableLogged bool
	lastStartErr       string        // last reason a policy-asked retrain could not start, logged once
	drained            chan struct{} // closed when ops reaches zero after Close

	closeMu       sync.Mutex // serialises Close
	closeFinished bool
}

type pooledSample[In any] struct {
	s       Sample[In]
	heldOut bool
}

// NewLoop returns a Loop that serves model, stores flagged samples with
// flagger and retrains when policy says so.
//
// It checks its arguments (nil model, flagger or policy, Classes <= 0, bad
// options, a policy whose Validate fails) and returns a clear error if any is
// wrong. If flagger implements SampleSource, NewLoop reads the stored samples
// and recovers the counts, the per-label counts, the training pool and the
// round (the largest Sample.Round seen); the history of those rounds is
// marked Recovered. The model and every trained successor are owned by the
// Loop (see Loop); call Close when done. When NewLoop fails it starts
// nothing and closes nothing: the caller still owns model and flagger.
func NewLoop[In any](model Model[In], flagger Flagger[In], policy RetrainPolicy, opts *Options[In]) (*Loop[In], error) {
	if model == nil {
		return nil, errors.New("dadc: NewLoop: model is nil; pass the Model to serve")
	}
	if flagger == nil {
		return nil, errors.New("dadc: NewLoop: flagger is nil; pass a Flagger (for instance a dadc.FlaggerFunc) to store flagged samples")
	}
	if policy == nil {
		return nil, errors.New("dadc: NewLoop: policy is nil; pass a RetrainPolicy such as dadc.EveryN(10) or dadc.Manual()")
	}
	if v, ok := policy.(PolicyValidator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("dadc: NewLoop: invalid policy: %w", err)
		}
	}
	if opts == nil {
		return nil, errors.New("dadc: NewLoop: options are nil; Options.Classes (the number of classes) is required")
	}
	o, err := resolveOptions(opts)
	if err != nil {
		return nil, err
	}

	l := &Loop[In]{
		flagger:  flagger,
		policy:   policy,
		opts:     o,
		log:      o.Logger,
		perLabel: make([]int, o.Classes),
		ids:      make(map[string]struct{}),
	}
	l.current.Store(newModelRef(model, model.Version(), l.log))
	now := l.now()
	l.rounds = []RoundStats{{Round: 0, ModelVersion: model.Version(), StartedAt: now}}

	if src, ok := flagger.(SampleSource[In]); ok {
		if err := l.recover(src); err != nil {
			return nil, err
		}
	}
	if len(o.CleanTest) == 0 {
		l.log.Warn("dadc: no clean test set; the gate will promote every trained candidate")
	}

	l.baseCtx, l.cancel = context.WithCancel(context.Background())
	if o.CheckInterval > 0 {
		l.ops.Add(1)
		go l.tick(o.CheckInterval)
	}
	l.log.Info("dadc: loop started",
		"model_version", model.Version(), "classes", o.Classes, "policy", policyName(policy),
		"round", l.round, "flagged_total", l.flaggedTotal, "clean_test", len(o.CleanTest))
	return l, nil
}

func resolveOptions[In any](opts *Options[In]) (Options[In], error) {
	o := *opts
	if o.Classes <= 0 {
		return o, fmt.Errorf("dadc: NewLoop: Options.Classes is %d; set it to the number of classes (for MNIST digits, 10)", o.Classes)
	}
	if math.IsNaN(o.MaxAccuracyDrop) || o.MaxAccuracyDrop > 1 || o.MaxAccuracyDrop < -1 {
		return o, fmt.Errorf("dadc: NewLoop: Options.MaxAccuracyDrop is %v; it is a fraction of accuracy in [-1, 1] (for instance 0.005)", o.MaxAccuracyDrop)
	}
	if o.MaxAccuracyDrop == 0 {
		o.MaxAccuracyDrop = DefaultMaxAccuracyDrop
	}
	switch {
	case o.HoldoutEvery == 0:
		o.HoldoutEvery = DefaultHoldoutEvery
	case o.HoldoutEvery == 1:
		return o, errors.New("dadc: NewLoop: Options.HoldoutEvery is 1, which would hold out every sample and leave nothing to train on; use 2 or more, or a negative value to disable holding out")
	}
	if o.TrainTimeout < 0 {
		return o, fmt.Errorf("dadc: NewLoop: Options.TrainTimeout is %s; it must be positive (0 means %s)", o.TrainTimeout, DefaultTrainTimeout)
	}
	if o.TrainTimeout == 0 {
		o.TrainTimeout = DefaultTrainTimeout
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.RecoverTimeout < 0 {
		return o, fmt.Errorf("dadc: NewLoop: Options.RecoverTimeout is %s; it must be positive (0 means %s)", o.RecoverTimeout, DefaultRecoverTimeout)
	}
	if o.RecoverTimeout == 0 {
		o.RecoverTimeout = DefaultRecoverTimeout
	}
	for i, e := range o.CleanTest {
		if e.Label < 0 || e.Label >= o.Classes {
			return o, fmt.Errorf("dadc: NewLoop: Options.CleanTest[%d] has label %d outside [0, %d)", i, e.Label, o.Classes)
		}
	}
	o.CleanTest = slices.Clone(o.CleanTest)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = func() string { return randomHex(16) }
	}
	if o.NewVersion == nil {
		o.NewVersion = func(round int) string { return fmt.Sprintf("r%d-%s", round, randomHex(3)) }
	}
	return o, nil
}

// randomHex returns n random bytes from crypto/rand in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go >= 1.24 crashes instead)
	return hex.EncodeToString(b)
}

func (l *Loop[In]) now() time.Time { return l.opts.Now().UTC() }

// maxRecoveredRound bounds the rounds a store may claim, so that a damaged
// sample cannot make NewLoop allocate a gigantic history.
const maxRecoveredRound = 1 << 20

// recover loads the samples stored by src into the counters and the pool.
func (l *Loop[In]) recover(src SampleSource[In]) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.RecoverTimeout)
	defer cancel()
	stored, err := src.Samples(ctx)
	if err != nil {
		return fmt.Errorf("dadc: NewLoop: recovering stored samples from the flagger: %w", err)
	}
	if len(stored) == 0 {
		return nil
	}
	stored = slices.Clone(stored)
	// Stored order is not guaranteed; the creation order reproduces the order
	// the samples were counted in, which decides which ones are held out.
	slices.SortStableFunc(stored, func(a, b Sample[In]) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	maxRound := 0
	for _, s := range stored {
		if s.ID == "" {
			return errors.New("dadc: NewLoop: a recovered sample has an empty ID; the store is damaged")
		}
		if s.Label < 0 || s.Label >= l.opts.Classes {
			return fmt.Errorf("dadc: NewLoop: recovered sample %s has label %d outside [0, %d); is Options.Classes right?", s.ID, s.Label, l.opts.Classes)
		}
		if s.Round < 0 {
			return fmt.Errorf("dadc: NewLoop: recovered sample %s has negative round %d; the store is damaged", s.ID, s.Round)
		}
		if s.Round > maxRecoveredRound {
			return fmt.Errorf("dadc: NewLoop: recovered sample %s has round %d, more than %d; the store is damaged", s.ID, s.Round, maxRecoveredRound)
		}
		maxRound = max(maxRound, s.Round)
	}
	serving := l.rounds[0].ModelVersion
	l.round = maxRound
	l.rounds = make([]RoundStats, maxRound+1)
	for i := range l.rounds {
		l.rounds[i] = RoundStats{Round: i, Recovered: true}
	}
	duplicates := 0
	for _, s := range stored {
		if _, dup := l.ids[s.ID]; dup {
			duplicates++
			continue
		}
		r := &l.rounds[s.Round]
		if r.StartedAt.IsZero() {
			r.StartedAt = s.CreatedAt.UTC()
			r.ModelVersion = s.ModelVersion
		}
		l.addSampleLocked(s)
	}
	// Rounds without samples start when the next known round does; a closed
	// round ends when the next one starts.
	next := l.now()
	for i := len(l.rounds) - 1; i >= 0; i-- {
		if l.rounds[i].StartedAt.IsZero() {
			l.rounds[i].StartedAt = next
		}
		if i < len(l.rounds)-1 {
			end := l.rounds[i+1].StartedAt
			l.rounds[i].EndedAt = &end
		}
		next = l.rounds[i].StartedAt
	}
	l.rounds[maxRound].ModelVersion = serving
	l.log.Info("dadc: recovered stored samples",
		"samples", len(l.pool), "duplicates_skipped", duplicates, "round", l.round, "held_out", l.heldOut)
	return nil
}

// Model returns the model currently served. If models implement io.Closer,
// a model returned here may be closed once it is replaced; use Loop.Predict
// to predict safely across swaps.
func (l *Loop[In]) Model() Model[In] { return l.current.Load().model }

// enter registers a running call so that Close waits for it; it fails with
// ErrClosed once Close has begun. Every successful enter needs l.ops.Done().
func (l *Loop[In]) enter() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.ops.Add(1)
	return nil
}

// acquire returns the served model with a reference held, or nil once the
// Loop has closed it.
func (l *Loop[In]) acquire() *modelRef[In] {
	for {
		r := l.current.Load()
		if r.tryAcquire() {
			return r
		}
		if l.current.Load() == r {
			return nil // released by Close and not replaced
		}
	}
}

// Predict classifies in with the model currently served. It returns ErrClosed
// after Close, and an error if the model fails or breaks the Model contract
// (wrong number of probabilities, label out of range).
func (l *Loop[In]) Predict(ctx context.Context, in In) (Prediction, error) {
	if err := l.enter(); err != nil {
		return Prediction{}, err
	}
	defer l.ops.Done()
	return l.predict(ctx, in)
}

func (l *Loop[In]) predict(ctx context.Context, in In) (Prediction, error) {
	ref := l.acquire()
	if ref == nil {
		return Prediction{}, ErrClosed
	}
	defer ref.release()
	p, err := ref.model.Predict(ctx, in)
	if err != nil {
		return Prediction{}, fmt.Errorf("dadc: model %s: predict: %w", ref.version, err)
	}
	if err := checkPrediction(p, l.opts.Classes); err != nil {
		return Prediction{}, fmt.Errorf("dadc: model %s: %w", ref.version, err)
	}
	if p.ModelVersion == "" {
		p.ModelVersion = ref.version
	}
	return p, nil
}

func checkPrediction(p Prediction, classes int) error {
	if len(p.Probabilities) != classes {
		return fmt.Errorf("prediction has %d probabilities, want one per class (%d)", len(p.Probabilities), classes)
	}
	if p.Label < 0 || p.Label >= classes {
		return fmt.Errorf("predicted label %d is outside [0, %d)", p.Label, classes)
	}
	return nil
}

// Flag submits an input together with the label a person says is correct.
//
// The Loop predicts in itself with the current model. If the prediction
// differs from label the input fooled the model: Flag builds a Sample (new ID,
// the model's probabilities and version, the current round, Now in UTC,
// session), stores it with the flagger, and only after the flagger succeeds
// counts it and returns Fooled=true. If the model was right Flag counts an
// attempt, stores nothing and returns Fooled=false.
//
// A label outside [0, Classes) returns an error wrapping ErrInvalidLabel; a
// flagger or model error is returned wrapped; in both cases nothing is
// counted. After Close, Flag returns ErrClosed. Flag never waits for a
// running retrain; after counting it asks the policy (unless a retrain runs)
// and may start a retrain in the background.
func (l *Loop[In]) Flag(ctx context.Context, in In, label int, session string) (FlagResult[In], error) {
	if label < 0 || label >= l.opts.Classes {
		return FlagResult[In]{}, fmt.Errorf("%w: got %d, want a class in [0, %d)", ErrInvalidLabel, label, l.opts.Classes)
	}
	if err := l.enter(); err != nil {
		return FlagResult[In]{}, err
	}
	defer l.ops.Done()

	pred, err := l.predict(ctx, in)
	if err != nil {
		return FlagResult[In]{}, err
	}

	if pred.Label == label {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.attempts++
		l.rounds[l.round].Attempts++
		res := FlagResult[In]{Prediction: pred, Count: l.flaggedTotal, Round: l.round}
		l.publishLocked(Event{Kind: EventAttempt, Round: l.round, Message: fmt.Sprintf("model %s answered %d correctly", pred.ModelVersion, label)})
		l.maybeRetrainLocked()
		res.Retraining = l.retraining
		return res, nil
	}

	id := l.opts.NewID()
	l.mu.Lock()
	round := l.round
	_, dup := l.ids[id]
	l.mu.Unlock()
	if id == "" || dup {
		return FlagResult[In]{}, fmt.Errorf("dadc: Options.NewID returned %q, which is empty or already used; it must return a fresh unique ID", id)
	}
	s := Sample[In]{SampleMeta: SampleMeta{
		ID:                 id,
		Label:              label,
		ModelLabel:         pred.Label,
		ModelProbabilities: slices.Clone(pred.Probabilities),
		ModelVersion:       pred.ModelVersion,
		Round:              round,
		CreatedAt:          l.now(),
		Session:            session,
	}, Input: in}
	if err := l.flagger.Flag(ctx, s); err != nil {
		l.log.Warn("dadc: storing a flagged sample failed; nothing counted", "id", id, "round", round, "err", err)
		return FlagResult[In]{}, fmt.Errorf("dadc: storing flagged sample %s: %w", id, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.addSampleLocked(s)
	l.log.Debug("dadc: flagged", "id", id, "label", label, "model_label", pred.Label,
		"model_version", pred.ModelVersion, "round", round, "flagged_total", l.flaggedTotal)
	l.publishLocked(Event{Kind: EventFlagged, Round: round, SampleID: id,
		Message: fmt.Sprintf("model %s said %d, the correct label is %d", pred.ModelVersion, pred.Label, label)})
	l.maybeRetrainLocked()
	return FlagResult[In]{
		Fooled:     true,
		Sample:     s,
		Prediction: pred,
		Count:      l.flaggedTotal,
		Round:      round,
		Retraining: l.retraining,
	}, nil
}

// addSampleLocked counts a stored sample and adds it to the pool.
func (l *Loop[In]) addSampleLocked(s Sample[In]) {
	r := min(s.Round, l.round)
	l.rounds[r].Flags++
	l.flaggedTotal++
	l.perLabel[s.Label]++
	held := l.opts.HoldoutEvery > 0 && (len(l.pool)+1)%l.opts.HoldoutEvery == 0
	if held {
		l.heldOut++
	}
	l.pool = append(l.pool, pooledSample[In]{s: s, heldOut: held})
	l.ids[s.ID] = struct{}{}
}

func (l *Loop[In]) publishLocked(e Event) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	if e.ModelVersion == "" {
		e.ModelVersion = l.current.Load().version
	}
	e.FlaggedTotal = l.flaggedTotal
	l.events.publish(e)
}

func (l *Loop[In]) policyStateLocked() PolicyState {
	r := l.rounds[l.round]
	return PolicyState{
		Round:        l.round,
		Flags:        r.Flags,
		Attempts:     r.Attempts,
		FlagsTotal:   l.flaggedTotal,
		RoundStarted: r.StartedAt,
		Now:          l.now(),
	}
}

// maybeRetrainLocked asks the policy and starts a retrain if it fires.
func (l *Loop[In]) maybeRetrainLocked() {
	if l.closed || l.retraining {
		return
	}
	if !l.askPolicyLocked() {
		return
	}
	err := l.startRetrainLocked()
	switch {
	case err == nil:
	case errors.Is(err, ErrNotTrainable):
		if !l.notTrainableLogged {
			l.notTrainableLogged = true
			l.log.Warn("dadc: the policy asked for a retrain but the model does not implement dadc.Trainer; retrains will not start",
				"model_version", l.current.Load().version)
		}
	case errors.Is(err, ErrNothingToTrain):
		l.log.Debug("dadc: the policy asked for a retrain but every sample is held out so far")
	default:
		if msg := err.Error(); msg != l.lastStartErr { // log each new reason once, not every tick
			l.lastStartErr = msg
			l.log.Warn("dadc: the policy asked for a retrain but it could not start", "err", err)
		}
	}
}

// askPolicyLocked calls the policy, treating a panic as "no".
func (l *Loop[In]) askPolicyLocked() (fire bool) {
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("dadc: the retrain policy panicked; treated as no retrain", "policy", policyName(l.policy), "panic", fmt.Sprint(p))
			fire = false
		}
	}()
	return l.policy.ShouldRetrain(l.policyStateLocked())
}

// tick asks the policy every interval until Close.
func (l *Loop[In]) tick(interval time.Duration) {
	defer l.ops.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.baseCtx.Done():
			return
		case <-t.C:
			l.mu.Lock()
			l.maybeRetrainLocked()
			l.mu.Unlock()
		}
	}
}

// Retrain closes the current round and starts a retrain in the background
// now, whatever the policy says. It returns once the retrain has started;
// the retrain runs under the Loop's own context (Close cancels it), not ctx.
// Use WaitIdle to wait for it and Stats or Subscribe to see its result.
//
// Errors: ErrClosed, ErrRetrainInProgress, ErrNotTrainable (the model does
// not implement Trainer), ErrNothingToTrain (no stored sample that is not
// held out), or ctx's error if ctx is already done.
func (l *Loop[In]) Retrain(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.startRetrainLocked()
}

// WaitIdle blocks until no retrain is running, including retrains that the
// policy starts as soon as one ends (coalescing), or until ctx is done.
func (l *Loop[In]) WaitIdle(ctx context.Context) error {
	for {
		l.mu.Lock()
		if !l.retraining {
			l.mu.Unlock()
			return nil
		}
		done := l.retrainDone
		l.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("dadc: waiting for the retrain to end: %w", ctx.Err())
		}
	}
}

// Stats returns a snapshot of the counters and the round history.
func (l *Loop[In]) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Stats{
		ModelVersion:   l.current.Load().version,
		Round:          l.round,
		FlaggedTotal:   l.flaggedTotal,
		Attempts:       l.attempts,
		ModelErrorRate: errorRate(l.flaggedTotal, l.attempts),
		PerLabel:       slices.Clone(l.perLabel),
		TrainingPool:   len(l.pool) - l.heldOut,
		HeldOut:        l.heldOut,
		Retraining:     l.retraining,
		EventsDropped:  l.events.droppedCount(),
		Rounds:         make([]RoundStats, len(l.rounds)),
	}
	if l.retraining {
		st.RetrainProgress = math.Float64frombits(l.progress.Load())
	}
	for i, r := range l.rounds {
		st.Rounds[i] = r.clone()
	}
	return st
}

// Samples returns up to limit stored samples, most recent first (all of them
// when limit <= 0). The slices in each Sample are copies; Input values are
// shared with the Loop and must not be modified.
func (l *Loop[In]) Samples(limit int) []Sample[In] {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.pool)
	if limit > 0 && limit < n {
		n = limit
	}
	out := make([]Sample[In], 0, n)
	for i := len(l.pool) - 1; i >= 0 && len(out) < n; i-- {
		s := l.pool[i].s
		s.ModelProbabilities = slices.Clone(s.ModelProbabilities)
		out = append(out, s)
	}
	return out
}

// Subscribe returns a channel that receives the Loop's events, and a cancel
// function that ends the subscription and closes the channel. The Loop never
// waits for a subscriber: when the channel's buffer is full the event is
// dropped for that subscriber (Stats.EventsDropped counts drops), so a slow
// reader misses events rather than slowing flags down. buffer <= 0 means 64.
// Close closes every subscription's channel. cancel may be called more than
// once and after Close.
func (l *Loop[In]) Subscribe(buffer int) (events <-chan Event, cancel func()) {
	return l.events.subscribe(buffer)
}

// Close stops the Loop: later Flag, Predict and Retrain calls return
// ErrClosed. It cancels a running retrain and waits for it and for running
// Flag and Predict calls, then flushes the flagger (if it implements Flusher),
// closes every subscription, and releases the served model (closing it, if it
// implements io.Closer). It does not close the flagger: whoever constructs it
// closes it, after Close.
//
// If ctx ends before the running calls finish, Close returns ctx's error
// without touching the flagger; call Close again to finish. Once Close has
// completed, further calls return nil.
func (l *Loop[In]) Close(ctx context.Context) error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closeFinished {
		return nil
	}
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		l.cancel()
		l.drained = make(chan struct{})
		go func(done chan<- struct{}) {
			l.ops.Wait()
			close(done)
		}(l.drained)
		l.log.Info("dadc: closing", "round", l.round, "flagged_total", l.flaggedTotal, "retraining", l.retraining)
	}
	drained := l.drained
	l.mu.Unlock()

	select {
	case <-drained:
	case <-ctx.Done():
		return fmt.Errorf("dadc: close: running calls or the retrain did not finish in time (call Close again to finish): %w", ctx.Err())
	}

	var errs []error
	if f, ok := l.flagger.(Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("dadc: close: flushing the flagger: %w", err))
		}
	}
	l.events.closeAll()
	l.current.Load().release()
	l.closeFinished = true
	err := errors.Join(errs...)
	if err != nil {
		l.log.Error("dadc: closed with errors", "err", err)
	} else {
		l.log.Info("dadc: closed")
	}
	return err
}
