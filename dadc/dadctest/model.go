package dadctest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/internal/backoff"
)

// FakeModel is a configurable dadc.Model for any input type. It also
// implements dadc.Trainer, dadc.Evaluator and io.Closer; wrap it with
// PredictOnly or WithBatch to hide those.
//
// Set the fields before first use and do not change them afterwards; the
// methods are then safe for concurrent use. Use a *FakeModel (it holds
// counters).
type FakeModel[In any] struct {
	// Name is what Version returns.
	Name string
	// Classes is the number of classes, the length of every Probabilities.
	Classes int
	// Classify returns the predicted label; the probabilities then put 0.9 on
	// it and share 0.1 among the others. Required unless Scores is set.
	Classify func(in In) int
	// Scores, if set, returns one non-negative score per class; they are
	// normalised into the probabilities and the label is their argmax.
	Scores func(in In) []float64
	// PredictDelay makes every Predict wait that long (honouring ctx).
	PredictDelay time.Duration
	// PredictErr, if set, is returned by every Predict.
	PredictErr error

	// TrainFunc is what Train calls after TrainDelay. nil: Train fails with ErrNoTrainFunc.
	TrainFunc func(ctx context.Context, req dadc.TrainRequest[In]) (dadc.Model[In], error)
	// TrainDelay makes Train wait that long first (honouring ctx).
	TrainDelay time.Duration
	// TrainErr, if set, is returned by Train after TrainDelay.
	TrainErr error

	// EvaluateFunc, if set, is what Evaluate returns; otherwise Evaluate
	// scores the examples with Predict.
	EvaluateFunc func(ctx context.Context, examples []dadc.Example[In]) (dadc.Evaluation, error)

	predicts       atomic.Int64
	inFlight       atomic.Int64
	evaluates      atomic.Int64
	closed         atomic.Bool
	usedAfterClose atomic.Int64
	closedInUse    atomic.Bool

	mu       sync.Mutex
	requests []dadc.TrainRequest[In]
}

// NewModel returns a FakeModel named name that predicts classify(in).
func NewModel[In any](name string, classes int, classify func(In) int) *FakeModel[In] {
	return &FakeModel[In]{Name: name, Classes: classes, Classify: classify}
}

var (
	_ dadc.Model[int]     = (*FakeModel[int])(nil)
	_ dadc.Trainer[int]   = (*FakeModel[int])(nil)
	_ dadc.Evaluator[int] = (*FakeModel[int])(nil)
)

// Version returns m.Name.
func (m *FakeModel[In]) Version() string { return m.Name }

// Predict answers with Scores or Classify after PredictDelay, or PredictErr.
// After Close it returns ErrModelClosed and counts the misuse (UsedAfterClose).
func (m *FakeModel[In]) Predict(ctx context.Context, in In) (dadc.Prediction, error) {
	m.inFlight.Add(1)
	defer m.inFlight.Add(-1)
	m.predicts.Add(1)
	if m.closed.Load() {
		m.usedAfterClose.Add(1)
		return dadc.Prediction{}, ErrModelClosed
	}
	if err := backoff.Sleep(ctx, m.PredictDelay); err != nil {
		return dadc.Prediction{}, err
	}
	if m.PredictErr != nil {
		return dadc.Prediction{}, m.PredictErr
	}
	if m.Classes <= 0 {
		return dadc.Prediction{}, fmt.Errorf("dadctest: FakeModel %q has Classes %d; set it to the number of classes", m.Name, m.Classes)
	}
	switch {
	case m.Scores != nil:
		p, err := fromScores(m.Scores(in), m.Classes)
		if err != nil {
			return dadc.Prediction{}, fmt.Errorf("dadctest: FakeModel %q: %w", m.Name, err)
		}
		p.ModelVersion = m.Name
		return p, nil
	case m.Classify != nil:
		label := m.Classify(in)
		if label < 0 || label >= m.Classes {
			return dadc.Prediction{}, fmt.Errorf("dadctest: FakeModel %q: Classify returned %d, outside [0, %d)", m.Name, label, m.Classes)
		}
		return Peaked(label, m.Classes, m.Name), nil
	default:
		return dadc.Prediction{}, fmt.Errorf("dadctest: FakeModel %q has neither Classify nor Scores", m.Name)
	}
}

// Peaked returns a prediction of label with probability 0.9 (1 when there is
// one class) and the rest shared evenly.
func Peaked(label, classes int, version string) dadc.Prediction {
	probs := make([]float64, classes)
	if classes == 1 {
		probs[0] = 1
	} else {
		for i := range probs {
			probs[i] = 0.1 / float64(classes-1)
		}
		probs[label] = 0.9
	}
	return dadc.Prediction{Label: label, Probabilities: probs, ModelVersion: version}
}

func fromScores(scores []float64, classes int) (dadc.Prediction, error) {
	if len(scores) != classes {
		return dadc.Prediction{}, fmt.Errorf("the Scores func returned %d values, want %d", len(scores), classes)
	}
	sum := 0.0
	for _, s := range scores {
		if s < 0 || s != s {
			return dadc.Prediction{}, fmt.Errorf("the Scores func returned %v; scores must be non-negative", scores)
		}
		sum += s
	}
	if sum == 0 {
		return dadc.Prediction{}, errors.New("the Scores func returned all zeros")
	}
	p := dadc.Prediction{Probabilities: make([]float64, classes)}
	for i, s := range scores {
		p.Probabilities[i] = s / sum
		if p.Probabilities[i] > p.Probabilities[p.Label] {
			p.Label = i
		}
	}
	return p, nil
}

// Train records req, waits TrainDelay, then returns TrainErr or calls TrainFunc.
func (m *FakeModel[In]) Train(ctx context.Context, req dadc.TrainRequest[In]) (dadc.Model[In], error) {
	m.mu.Lock()
	m.requests = append(m.requests, req)
	m.mu.Unlock()
	if err := backoff.Sleep(ctx, m.TrainDelay); err != nil {
		return nil, err
	}
	if m.TrainErr != nil {
		return nil, m.TrainErr
	}
	if m.TrainFunc == nil {
		return nil, ErrNoTrainFunc
	}
	return m.TrainFunc(ctx, req)
}

// Evaluate returns EvaluateFunc's result, or scores examples with Predict.
func (m *FakeModel[In]) Evaluate(ctx context.Context, examples []dadc.Example[In]) (dadc.Evaluation, error) {
	m.evaluates.Add(1)
	if m.EvaluateFunc != nil {
		return m.EvaluateFunc(ctx, examples)
	}
	return EvaluateByPredict[In](ctx, m, examples)
}

// Close marks the model closed: later Predict calls fail with ErrModelClosed.
// Closing while a Predict runs is recorded (ClosedWhileInUse).
func (m *FakeModel[In]) Close() error {
	if m.inFlight.Load() > 0 {
		m.closedInUse.Store(true)
	}
	m.closed.Store(true)
	return nil
}

// Predicts counts Predict calls.
func (m *FakeModel[In]) Predicts() int { return int(m.predicts.Load()) }

// Evaluates counts Evaluate calls.
func (m *FakeModel[In]) Evaluates() int { return int(m.evaluates.Load()) }

// Closed reports whether Close was called.
func (m *FakeModel[In]) Closed() bool { return m.closed.Load() }

// UsedAfterClose counts Predict calls made after Close (a bug in the caller).
func (m *FakeModel[In]) UsedAfterClose() int { return int(m.usedAfterClose.Load()) }

// ClosedWhileInUse reports whether Close was called while a Predict ran (a bug in the caller).
func (m *FakeModel[In]) ClosedWhileInUse() bool { return m.closedInUse.Load() }

// TrainRequests returns the requests Train received, oldest first.
func (m *FakeModel[In]) TrainRequests() []dadc.TrainRequest[In] {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]dadc.TrainRequest[In](nil), m.requests...)
}

// EvaluateByPredict scores m on examples by calling Predict for each.
func EvaluateByPredict[In any](ctx context.Context, m dadc.Model[In], examples []dadc.Example[In]) (dadc.Evaluation, error) {
	correct := 0
	for _, e := range examples {
		p, err := m.Predict(ctx, e.Input)
		if err != nil {
			return dadc.Evaluation{}, err
		}
		if p.Label == e.Label {
			correct++
		}
	}
	ev := dadc.Evaluation{N: len(examples)}
	if len(examples) > 0 {
		ev.Accuracy = float64(correct) / float64(len(examples))
	}
	return ev, nil
}

// PredictOnly returns a model with only m's Predict and Version: no Trainer,
// Evaluator, BatchPredictor or io.Closer.
func PredictOnly[In any](m dadc.Model[In]) dadc.Model[In] { return predictOnly[In]{m} }

type predictOnly[In any] struct{ m dadc.Model[In] }

func (p predictOnly[In]) Predict(ctx context.Context, in In) (dadc.Prediction, error) {
	return p.m.Predict(ctx, in)
}
func (p predictOnly[In]) Version() string { return p.m.Version() }

// BatchModel is a Model with PredictBatch (one Predict per input) and nothing
// else; see WithBatch.
type BatchModel[In any] struct {
	m       dadc.Model[In]
	batches atomic.Int64
}

var _ dadc.BatchPredictor[int] = (*BatchModel[int])(nil)

// WithBatch returns m with PredictBatch added and every other capability hidden.
func WithBatch[In any](m dadc.Model[In]) *BatchModel[In] { return &BatchModel[In]{m: m} }

// Predict calls the wrapped model.
func (b *BatchModel[In]) Predict(ctx context.Context, in In) (dadc.Prediction, error) {
	return b.m.Predict(ctx, in)
}

// Version returns the wrapped model's version.
func (b *BatchModel[In]) Version() string { return b.m.Version() }

// PredictBatch predicts every input in order.
func (b *BatchModel[In]) PredictBatch(ctx context.Context, ins []In) ([]dadc.Prediction, error) {
	b.batches.Add(1)
	out := make([]dadc.Prediction, len(ins))
	for i, in := range ins {
		p, err := b.m.Predict(ctx, in)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// Batches counts PredictBatch calls.
func (b *BatchModel[In]) Batches() int { return int(b.batches.Load()) }

// LookupModel is a small, genuinely trainable model for ints: it predicts
// Base(n) unless it has learned a label for n, and training on samples
// returns a new model that has learned each sample's input → label. It is
// immutable, hence safe for concurrent use.
type LookupModel struct {
	name    string
	classes int
	base    func(int) int
	learned map[int]int
}

var (
	_ dadc.Model[int]   = (*LookupModel)(nil)
	_ dadc.Trainer[int] = (*LookupModel)(nil)
)

// NewLookupModel returns a LookupModel named name over classes classes that
// predicts base(n) (nil: n modulo classes, non-negative). base must return
// labels in [0, classes).
func NewLookupModel(name string, classes int, base func(int) int) *LookupModel {
	if base == nil {
		base = func(n int) int { return ((n % classes) + classes) % classes }
	}
	return &LookupModel{name: name, classes: classes, base: base, learned: map[int]int{}}
}

// Version returns the model's name.
func (m *LookupModel) Version() string { return m.name }

// Predict returns the learned label for n, else Base(n).
func (m *LookupModel) Predict(ctx context.Context, n int) (dadc.Prediction, error) {
	if err := ctx.Err(); err != nil {
		return dadc.Prediction{}, err
	}
	if m.classes <= 0 {
		return dadc.Prediction{}, fmt.Errorf("dadctest: LookupModel %q has %d classes", m.name, m.classes)
	}
	label, ok := m.learned[n]
	if !ok {
		label = m.base(n)
	}
	if label < 0 || label >= m.classes {
		return dadc.Prediction{}, fmt.Errorf("dadctest: LookupModel %q: base(%d) = %d, outside [0, %d)", m.name, n, label, m.classes)
	}
	return Peaked(label, m.classes, m.name), nil
}

// Train returns a new LookupModel named req.Version that has also learned
// every sample's Input → Label. The receiver does not change.
func (m *LookupModel) Train(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	next := &LookupModel{name: req.Version, classes: m.classes, base: m.base, learned: maps.Clone(m.learned)}
	for i, s := range req.Samples {
		next.learned[s.Input] = s.Label
		if req.Progress != nil {
			req.Progress(float64(i+1) / float64(len(req.Samples)))
		}
	}
	return next, nil
}

// Learned returns a copy of the learned input → label table.
func (m *LookupModel) Learned() map[int]int { return maps.Clone(m.learned) }
