package dadc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/advspace/advspace/internal/randid"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxAccuracyDrop = DefaultMaxCleanDrop
	DefaultHoldoutEvery    = 5
	DefaultTrainTimeout    = 10 * time.Minute
	DefaultCheckInterval   = time.Second
	DefaultRecoverTimeout  = time.Minute
)

// Options configures a Loop. A nil *Options and every zero field mean the
// defaults.
type Options[In any] struct {
	// classes is NewLoop's classes argument, kept with the resolved options.
	classes int
	// CleanTest is the clean test set the gate scores candidates on. When it
	// is empty the gate does not check clean accuracy and the Loop logs a
	// warning.
	CleanTest []Example[In]
	// Gate decides whether a candidate replaces the serving model. nil means
	// NewGate with MaxCleanDrop = MaxAccuracyDrop and the other defaults.
	Gate Gate
	// MaxAccuracyDrop is the default gate's clean budget: a candidate's clean
	// accuracy must be >= the fixed reference (CleanReference, or the first
	// model's accuracy) - MaxAccuracyDrop. The reference never moves with
	// promotions. 0 means DefaultMaxAccuracyDrop (0.003); a negative value
	// demands that much improvement. Must be in [-1, 1]. Ignored when Gate is set.
	MaxAccuracyDrop float64
	// CleanReference is the fixed clean accuracy the gate compares with, in
	// (0, 1]. 0 means the accuracy of the first model measured (stored in the
	// history, so it survives restarts).
	CleanReference float64
	// Store keeps promoted models (and, if it implements HistoryStore, the
	// round history) durably: a promoted candidate is saved through its
	// Exporter before it serves, and NewLoop serves the latest stored model.
	// nil keeps nothing: a restart serves the given model again.
	Store ModelStore
	// Loader turns the store's latest model back into a Model at NewLoop.
	// Required when Store holds a model and ServeGivenModel is false.
	Loader ModelLoader[In]
	// ServeGivenModel serves the model given to NewLoop even if Store holds
	// a newer one (an operator forcing a weights file); the Loop logs it and
	// stores the given model as the latest version.
	ServeGivenModel bool
	// Trainable, if not nil, says whether a stored sample may be used by a
	// retrain, to train on or to score the candidate on the current round's
	// held-out samples; it is asked at each retrain, so a sample verified,
	// rejected or retracted since it was stored is judged by its state then
	// (for instance Validations.Trainable: only samples verified by other
	// people train, retracted and rejected ones never do). nil: every stored
	// sample may. It must be safe for concurrent use and must not block.
	Trainable func(SampleMeta) bool
	// HoldoutEvery holds every k-th adversarial sample (in the order they
	// were stored; samples recovered at NewLoop in CreatedAt order) out of
	// training; held-out samples measure the candidate's adversarial accuracy. 0 means DefaultHoldoutEvery (5); a negative
	// value disables holding out; 1 is invalid (nothing would be trained on).
	HoldoutEvery int
	// TrainTimeout bounds one retrain (training, scoring and storing). 0 means
	// DefaultTrainTimeout (10 minutes).
	TrainTimeout time.Duration
	// CheckInterval is how often the policy is asked between flags, for
	// time-based policies, and how often a changed history is saved to a
	// HistoryStore (counts of attempts made since the last save are lost in
	// a crash). 0 means DefaultCheckInterval (1s); negative disables the
	// periodic check (the policy is then asked only after flags and after
	// retrains, and the history is saved after retrains and at Close).
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
// A round is the time one model serves. Round 0 is served by the first model
// (the one given to NewLoop, or the latest stored one). A retrain does not
// change the round: flags that arrive while it runs count toward the current
// round, and if its candidate is rejected (or the retrain fails) the round
// stays open and its counts go on. Only a promotion closes the round and
// opens the next one, served by the candidate. The trainer always gets every
// stored adversarial sample that is not held out, from all rounds
// (cumulative). The slice is the trainer's own; the Inputs in it are shared
// with the Loop and must not be modified. The Loop keeps every stored sample
// in memory, as the training pool.
//
// # Retrains and the gate
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
// Every Options.HoldoutEvery-th sample is held out of training. After
// training the Loop scores the candidate on Options.CleanTest (through
// Evaluator, else BatchPredictor, else Predict), pairs its answers with the
// serving model's on the current round's held-out samples, and scores it on
// every earlier round's held-out set (frozen when that round closed, with the
// then promoted model's score as reference); the Gate (NewGate by default)
// decides on these figures and gives its reasons, which go into Stats, the
// events and the log. A promoted candidate is first saved in Options.Store
// (if any), then swapped in atomically: calls already running on the old
// model finish on it. A rejected candidate, a trainer or store error, a
// panic in user code or a timeout leave the old model serving.
//
// # Durability
//
// With Options.Store, promoted models survive restarts; if the store is a
// HistoryStore the round history does too (saved after every retrain, every
// CheckInterval when it changed, and at Close), and a restarted Loop shows
// the same Stats, its per-round flag counts recomputed from the flagger's
// stored samples.
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
	gate               Gate
	hist               HistoryStore // nil: the history is not durable
	refClean           *float64     // the gate's fixed clean reference
	heldOutSets        []HeldOutSet // frozen held-out sets of closed rounds
	newFlags           int          // flags counted since the last retrain started
	lastRetrain        time.Time    // when the last retrain started (zero: none yet)
	historyDirty       bool
	histMu             sync.Mutex    // serialises history saves
	lastStartErr       string        // last reason a policy-asked retrain could not start, logged once
	drained            chan struct{} // closed when ops reaches zero after Close

	closeMu       sync.Mutex // serialises Close
	closeFinished bool
}

type pooledSample[In any] struct {
	s       Sample[In]
	round   int // the round it was counted in
	heldOut bool
}

// NewLoop returns a Loop that serves model, stores flagged samples with
// flagger and retrains when policy says so.
//
// classes is the number of classes: labels are in [0, classes), and every
// Prediction has that many probabilities. opts may be nil (the defaults).
//
// It checks its arguments (nil model, flagger or policy, classes <= 0, bad
// options, a policy whose Validate fails) and returns a clear error if any is
// wrong. If flagger implements SampleSource, NewLoop reads the stored samples
// and recovers the counts, the per-label counts, the training pool and the
// round (the largest Sample.Round seen); the history of those rounds is
// marked Recovered. The model and every trained successor are owned by the
// Loop (see Loop); call Close when done. When NewLoop fails it starts
// nothing and closes nothing: the caller still owns model and flagger.
func NewLoop[In any](model Model[In], flagger Flagger[In], policy RetrainPolicy, classes int, opts *Options[In]) (*Loop[In], error) {
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
	if classes <= 0 {
		return nil, fmt.Errorf("dadc: NewLoop: classes is %d; pass the number of classes (for MNIST digits, 10)", classes)
	}
	if opts == nil {
		opts = &Options[In]{}
	}
	o, err := resolveOptions(opts, classes)
	if err != nil {
		return nil, err
	}

	l := &Loop[In]{
		flagger:  flagger,
		policy:   policy,
		opts:     o,
		log:      o.Logger,
		perLabel: make([]int, o.classes),
		ids:      make(map[string]struct{}),
	}
	if o.Gate != nil {
		l.gate = o.Gate
	} else if l.gate, err = NewGate(&GateOptions{MaxCleanDrop: o.MaxAccuracyDrop}); err != nil {
		return nil, fmt.Errorf("dadc: NewLoop: %w", err)
	}
	if o.CleanReference > 0 {
		l.refClean = &o.CleanReference
	}
	serve, given, err := l.openStore(model)
	if err != nil {
		return nil, err
	}
	l.current.Store(newModelRef(serve, serve.Version(), l.log))
	now := l.now()
	l.rounds = []RoundStats{{Round: 0, ModelVersion: serve.Version(), StartedAt: now}}
	var hist *History
	if l.hist != nil {
		ctx, cancel := context.WithTimeout(context.Background(), o.RecoverTimeout)
		hist, err = l.hist.LoadHistory(ctx)
		cancel()
		if err != nil {
			l.discard(serve, given)
			return nil, fmt.Errorf("dadc: NewLoop: loading the round history: %w", err)
		}
	}
	if src, ok := flagger.(SampleSource[In]); ok {
		if err := l.recover(src, hist); err != nil {
			l.discard(serve, given)
			return nil, err
		}
	} else if hist != nil {
		l.applyHistory(hist, nil)
	}
	if len(o.CleanTest) == 0 {
		l.log.Warn("dadc: no clean test set; the gate will not check clean accuracy")
	}
	if given != nil && given != serve {
		closeModel(given, given.Version(), l.log) // the stored model serves instead
	}

	l.baseCtx, l.cancel = context.WithCancel(context.Background())
	if o.CheckInterval > 0 {
		l.ops.Add(1)
		go l.tick(o.CheckInterval)
	}
	l.log.Info("dadc: loop started",
		"model_version", model.Version(), "classes", o.classes, "policy", policyName(policy),
		"round", l.round, "flagged_total", l.flaggedTotal, "clean_test", len(o.CleanTest))
	return l, nil
}

func resolveOptions[In any](opts *Options[In], classes int) (Options[In], error) {
	o := *opts
	o.classes = classes
	if math.IsNaN(o.MaxAccuracyDrop) || o.MaxAccuracyDrop > 1 || o.MaxAccuracyDrop < -1 {
		return o, fmt.Errorf("dadc: NewLoop: Options.MaxAccuracyDrop is %v; it is a fraction of accuracy in [-1, 1] (for instance 0.003)", o.MaxAccuracyDrop)
	}
	if math.IsNaN(o.CleanReference) || o.CleanReference < 0 || o.CleanReference > 1 {
		return o, fmt.Errorf("dadc: NewLoop: Options.CleanReference is %v; it is an accuracy in (0, 1], or 0 to use the first model's measured accuracy", o.CleanReference)
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
		if e.Label < 0 || e.Label >= o.classes {
			return o, fmt.Errorf("dadc: NewLoop: Options.CleanTest[%d] has label %d outside [0, %d)", i, e.Label, o.classes)
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
		o.NewID = func() string { return randid.Hex(16) }
	}
	if o.NewVersion == nil {
		o.NewVersion = func(round int) string { return fmt.Sprintf("r%d-%s", round, randid.Hex(3)) }
	}
	return o, nil
}

func (l *Loop[In]) now() time.Time { return l.opts.Now().UTC() }

// maxRecoveredRound bounds the rounds a store may claim, so that a damaged
// sample cannot make NewLoop allocate a gigantic history.
const maxRecoveredRound = 1 << 20

// recover loads the samples stored by src into the counters and the pool,
// into the rounds of hist if there is a stored history.
func (l *Loop[In]) recover(src SampleSource[In], hist *History) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.RecoverTimeout)
	defer cancel()
	stored, err := src.Samples(ctx)
	if err != nil {
		return fmt.Errorf("dadc: NewLoop: recovering stored samples from the flagger: %w", err)
	}
	if hist != nil {
		stored = slices.Clone(stored)
		slices.SortStableFunc(stored, func(a, b Sample[In]) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		if err := l.checkRecovered(stored); err != nil {
			return err
		}
		l.applyHistory(hist, stored)
		return nil
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
	if err := l.checkRecovered(stored); err != nil {
		return err
	}
	maxRound := 0
	for _, s := range stored {
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
	if err := checkPrediction(p, l.opts.classes); err != nil {
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
	if label < 0 || label >= l.opts.classes {
		return FlagResult[In]{}, fmt.Errorf("%w: got %d, want a class in [0, %d)", ErrInvalidLabel, label, l.opts.classes)
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
		l.historyDirty = true
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
	l.addSampleHeldLocked(s, l.opts.HoldoutEvery > 0 && (len(l.pool)+1)%l.opts.HoldoutEvery == 0)
}

// addSampleHeldLocked counts a stored sample, held out or not, and adds it to the pool.
func (l *Loop[In]) addSampleHeldLocked(s Sample[In], held bool) {
	r := min(s.Round, l.round)
	l.rounds[r].Flags++
	l.newFlags++
	l.flaggedTotal++
	l.perLabel[s.Label]++
	if held {
		l.heldOut++
	}
	l.pool = append(l.pool, pooledSample[In]{s: s, round: r, heldOut: held})
	l.ids[s.ID] = struct{}{}
	l.historyDirty = true
}

// checkRecovered validates samples read back from the flagger.
func (l *Loop[In]) checkRecovered(stored []Sample[In]) error {
	for _, s := range stored {
		if s.ID == "" {
			return errors.New("dadc: NewLoop: a recovered sample has an empty ID; the store is damaged")
		}
		if s.Label < 0 || s.Label >= l.opts.classes {
			return fmt.Errorf("dadc: NewLoop: recovered sample %s has label %d outside [0, %d); is NewLoop's classes argument right?", s.ID, s.Label, l.opts.classes)
		}
		if s.Round < 0 {
			return fmt.Errorf("dadc: NewLoop: recovered sample %s has negative round %d; the store is damaged", s.ID, s.Round)
		}
		if s.Round > maxRecoveredRound {
			return fmt.Errorf("dadc: NewLoop: recovered sample %s has round %d, more than %d; the store is damaged", s.ID, s.Round, maxRecoveredRound)
		}
	}
	return nil
}

// applyHistory restores a stored history and counts the stored samples (in
// creation order) into its rounds. The history's flag counts are replaced by
// the samples' (the flagger is the authority on samples); attempts, retrains
// and decisions come from the history. Rounds that samples name but the
// history lacks (it was saved before they began) are added as recovered.
func (l *Loop[In]) applyHistory(h *History, stored []Sample[In]) {
	serving := l.current.Load().version
	l.rounds = make([]RoundStats, 0, len(h.Rounds))
	for i, r := range h.Rounds {
		r = r.clone()
		r.Round = i
		r.Flags = 0
		l.rounds = append(l.rounds, r)
	}
	if len(l.rounds) == 0 {
		l.rounds = []RoundStats{{Round: 0, ModelVersion: serving, StartedAt: l.now()}}
	}
	for _, s := range stored {
		for s.Round >= len(l.rounds) {
			l.rounds = append(l.rounds, RoundStats{Round: len(l.rounds), ModelVersion: s.ModelVersion, StartedAt: s.CreatedAt.UTC(), Recovered: true})
		}
	}
	l.round = len(l.rounds) - 1
	l.refClean = clonePtr(h.ReferenceCleanAccuracy)
	if l.opts.CleanReference > 0 {
		l.refClean = &l.opts.CleanReference
	}
	l.heldOutSets = nil
	frozen := make(map[string]bool)
	for _, hs := range h.HeldOutSets {
		hs.IDs = slices.Clone(hs.IDs)
		l.heldOutSets = append(l.heldOutSets, hs)
		for _, id := range hs.IDs {
			frozen[id] = true
		}
	}
	l.attempts = 0
	for i := range l.rounds {
		r := &l.rounds[i]
		l.attempts += r.Attempts
		// A retrain that was running when the process stopped never ended.
		for j := range r.Retrains {
			if t := &r.Retrains[j]; t.Decision == DecisionRunning {
				t.Decision, t.Error = DecisionFailed, "interrupted: the process stopped before the retrain ended"
			}
		}
		l.mirrorLastRetrainLocked(r)
	}
	for _, r := range l.rounds {
		for _, t := range r.Retrains {
			if t.StartedAt.After(l.lastRetrain) {
				l.lastRetrain = t.StartedAt
			}
		}
	}
	cur := &l.rounds[l.round]
	duplicates := 0
	for _, s := range stored {
		if _, dup := l.ids[s.ID]; dup {
			duplicates++
			continue
		}
		held := frozen[s.ID] || (l.opts.HoldoutEvery > 0 && (len(l.pool)+1)%l.opts.HoldoutEvery == 0)
		l.addSampleHeldLocked(s, held)
	}
	// newFlags counts the samples collected since the last retrain started.
	l.newFlags = 0
	for _, p := range l.pool {
		if p.s.CreatedAt.After(l.lastRetrain) {
			l.newFlags++
		}
	}
	if cur.ModelVersion != serving {
		if cur.Flags > 0 || cur.Attempts > 0 || len(cur.Retrains) > 0 {
			now := l.now()
			cur.EndedAt = &now
			l.round++
			l.rounds = append(l.rounds, RoundStats{Round: l.round, ModelVersion: serving, StartedAt: now})
		} else {
			cur.ModelVersion = serving
		}
		l.log.Warn("dadc: the history's last round was served by another model; round follows the served model",
			"history_model", cur.ModelVersion, "serving", serving, "round", l.round)
	}
	l.historyDirty = false
	l.log.Info("dadc: restored the round history",
		"rounds", len(l.rounds), "round", l.round, "samples", len(l.pool), "duplicates_skipped", duplicates,
		"attempts", l.attempts, "held_out", l.heldOut, "frozen_sets", len(l.heldOutSets))
}

// openStore decides which model serves: the latest stored model (loaded
// through Options.Loader), or the given one when the store is empty or
// Options.ServeGivenModel is set (then the given model is stored, so that
// the store's latest version is what serves). It returns the model to serve
// and the given model. It sets l.hist.
func (l *Loop[In]) openStore(given Model[In]) (serve, giv Model[In], err error) {
	st := l.opts.Store
	if st == nil {
		return given, given, nil
	}
	if h, ok := st.(HistoryStore); ok {
		l.hist = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.RecoverTimeout)
	defer cancel()
	card, err := st.Latest(ctx)
	switch {
	case errors.Is(err, ErrNoModel):
		if err := l.storeGiven(ctx, given, 0); err != nil {
			return nil, nil, err
		}
		return given, given, nil
	case err != nil:
		return nil, nil, fmt.Errorf("dadc: NewLoop: reading the model store: %w", err)
	}
	if l.opts.ServeGivenModel {
		l.log.Warn("dadc: serving the given model, not the store's latest (Options.ServeGivenModel)",
			"model_version", given.Version(), "stored_latest", card.Version)
		if card.Version != given.Version() {
			if err := l.storeGiven(ctx, given, card.Round); err != nil {
				return nil, nil, err
			}
		}
		return given, given, nil
	}
	if l.opts.Loader == nil {
		return nil, nil, fmt.Errorf("dadc: NewLoop: %w: the store's latest model is %s; set Options.Loader (the model package's loader), or Options.ServeGivenModel to serve the given model",
			ErrNoLoader, card.Version)
	}
	r, card, err := st.Open(ctx, card.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("dadc: NewLoop: opening the stored model: %w", err)
	}
	defer r.Close()
	m, err := l.opts.Loader.Load(ctx, card, r)
	if err != nil {
		return nil, nil, fmt.Errorf("dadc: NewLoop: loading the stored model %s: %w", card.Version, err)
	}
	if m == nil || m.Version() != card.Version {
		got := "nil"
		if m != nil {
			got = m.Version()
		}
		return nil, nil, fmt.Errorf("dadc: NewLoop: the loader returned model %s for stored version %s; it must return the card's version", got, card.Version)
	}
	l.log.Info("dadc: serving the latest stored model", "model_version", card.Version, "round", card.Round,
		"parent", card.Parent, "created_at", card.CreatedAt)
	return m, given, nil
}

// storeGiven saves the given model in the store (first start, or a forced model).
func (l *Loop[In]) storeGiven(ctx context.Context, given Model[In], round int) error {
	ex, ok := given.(Exporter)
	if !ok {
		return fmt.Errorf("dadc: NewLoop: %w: a model store needs the model's own export to save it; use a model that implements it, or no store", ErrNotExportable)
	}
	card := ModelCard{Version: given.Version(), Round: round, CreatedAt: l.now()}
	if err := l.opts.Store.Save(ctx, card, func(w io.Writer) error { return ex.Export(ctx, w) }); err != nil {
		return fmt.Errorf("dadc: NewLoop: storing the given model: %w", err)
	}
	l.log.Info("dadc: stored the given model", "model_version", card.Version)
	return nil
}

// discard closes a loaded stored model when NewLoop fails after loading it
// (the given model stays the caller's).
func (l *Loop[In]) discard(serve, given Model[In]) {
	if serve != given {
		closeModel(serve, serve.Version(), l.log)
	}
}

// historyLocked returns a copy of the durable history.
func (l *Loop[In]) historyLocked() *History {
	h := &History{ReferenceCleanAccuracy: clonePtr(l.refClean), Rounds: make([]RoundStats, len(l.rounds)), SavedAt: l.now()}
	for i, r := range l.rounds {
		h.Rounds[i] = r.clone()
	}
	for _, hs := range l.heldOutSets {
		hs.IDs = slices.Clone(hs.IDs)
		h.HeldOutSets = append(h.HeldOutSets, hs)
	}
	return h
}

// saveHistory writes the history to the HistoryStore, if any. Errors are
// logged (the history stays marked as changed, so the next save retries).
func (l *Loop[In]) saveHistory(ctx context.Context) {
	if l.hist == nil {
		return
	}
	l.histMu.Lock()
	defer l.histMu.Unlock()
	l.mu.Lock()
	h := l.historyLocked()
	l.historyDirty = false
	l.mu.Unlock()
	if err := l.hist.SaveHistory(ctx, h); err != nil {
		l.mu.Lock()
		l.historyDirty = true
		l.mu.Unlock()
		l.log.Error("dadc: saving the round history failed; will retry", "err", err)
	}
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
		NewFlags:     l.newFlags,
		LastRetrain:  l.lastRetrain,
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
		l.log.Debug("dadc: the policy asked for a retrain but no sample may train yet (all held out or not trainable)")
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
			dirty := l.historyDirty && l.hist != nil
			l.mu.Unlock()
			if dirty {
				l.saveHistory(l.baseCtx)
			}
		}
	}
}

// Retrain starts a retrain in the background now, whatever the policy says
// (the round stays open until a candidate is promoted). It returns once the retrain has started;
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
		ModelVersion:           l.current.Load().version,
		Round:                  l.round,
		FlaggedTotal:           l.flaggedTotal,
		Attempts:               l.attempts,
		ModelErrorRate:         errorRate(l.flaggedTotal, l.attempts),
		PerLabel:               slices.Clone(l.perLabel),
		TrainingPool:           len(l.pool) - l.heldOut,
		HeldOut:                l.heldOut,
		Retraining:             l.retraining,
		EventsDropped:          l.events.droppedCount(),
		Rounds:                 make([]RoundStats, len(l.rounds)),
		ReferenceCleanAccuracy: clonePtr(l.refClean),
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
	l.saveHistory(ctx)
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
