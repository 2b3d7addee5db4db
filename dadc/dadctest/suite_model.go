package dadctest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/advspace/advspace/dadc"
)

// ProbabilityTolerance is how far from 1 the sum of a prediction's
// probabilities may be (float32 models round).
const ProbabilityTolerance = 1e-4

// modelCheck is one rule of the dadc.Model contract.
type modelCheck[In any] struct {
	name  string
	check func(ctx context.Context, m dadc.Model[In], inputs []In) error
}

func modelChecks[In any]() []modelCheck[In] {
	return []modelCheck[In]{
		{"Version", checkVersion[In]},
		{"Predict", checkPredict[In]},
		{"Deterministic", checkDeterministic[In]},
		{"Concurrent", checkConcurrentPredict[In]},
		{"CancelledContext", checkPredictCancelled[In]},
		{"BatchPredictor", checkBatch[In]},
		{"Evaluator", checkEvaluator[In]},
		{"Trainer", checkTrainerCancelled[In]},
	}
}

// TestModel checks that the models newModel returns meet the dadc.Model
// contract, and the contracts of the optional capabilities they implement
// (BatchPredictor, Evaluator, Trainer), using inputs (at least one; a few of
// different classes is best). Each rule runs as a subtest on a fresh model:
//
//   - Version is non-empty and stable;
//   - Predict succeeds; Probabilities are finite, in [0,1], sum to 1, and have
//     the same length for every input; Label is their argmax; ModelVersion is
//     Version();
//   - the same input gives the same prediction;
//   - concurrent Predict calls agree with sequential ones (run with -race);
//   - a cancelled context gives ctx's error or a valid prediction, never
//     another error;
//   - PredictBatch agrees with Predict; Evaluate scores predictions as
//     labels at accuracy 1 and other labels at 0; Train with a cancelled
//     context fails with ctx's error and leaves the model unchanged.
//
// Run the test with -race so that the concurrency rule means something.
func TestModel[In any](t *testing.T, newModel func(t *testing.T) dadc.Model[In], inputs []In) {
	t.Helper()
	if len(inputs) == 0 {
		t.Fatal("dadctest.TestModel: no inputs; pass a few inputs the model can classify")
	}
	for _, c := range modelChecks[In]() {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t)
			if m == nil {
				t.Fatal("newModel returned nil")
			}
			if err := c.check(t.Context(), m, inputs); err != nil {
				t.Error(err)
			}
		})
	}
}

// VerifyModel runs the rules of TestModel against m and returns every
// violation, joined, or nil.
func VerifyModel[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	if m == nil {
		return errors.New("dadctest: the model is nil")
	}
	if len(inputs) == 0 {
		return errors.New("dadctest: no inputs; pass a few inputs the model can classify")
	}
	var errs []error
	for _, c := range modelChecks[In]() {
		if err := c.check(ctx, m, inputs); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

func checkVersion[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	v := m.Version()
	if v == "" {
		return errors.New("Version() is empty; a model must name itself")
	}
	for _, in := range inputs {
		_, _ = m.Predict(ctx, in)
	}
	if v2 := m.Version(); v2 != v {
		return fmt.Errorf("Version() changed from %q to %q; a model's version must be stable", v, v2)
	}
	return nil
}

// validPrediction checks one prediction against the contract.
func validPrediction(p dadc.Prediction, version string, classes int) error {
	if len(p.Probabilities) == 0 {
		return errors.New("the prediction has no Probabilities")
	}
	if classes > 0 && len(p.Probabilities) != classes {
		return fmt.Errorf("got %d probabilities, but another input got %d", len(p.Probabilities), classes)
	}
	sum := 0.0
	for i, q := range p.Probabilities {
		if math.IsNaN(q) || math.IsInf(q, 0) || q < 0 || q > 1+ProbabilityTolerance {
			return fmt.Errorf("probability %d is %v, want a number in [0,1]", i, q)
		}
		sum += q
	}
	if math.Abs(sum-1) > ProbabilityTolerance {
		return fmt.Errorf("probabilities sum to %v, want 1", sum)
	}
	if p.Label < 0 || p.Label >= len(p.Probabilities) {
		return fmt.Errorf("the predicted Label %d is outside [0, %d)", p.Label, len(p.Probabilities))
	}
	for i, q := range p.Probabilities {
		if q > p.Probabilities[p.Label] {
			return fmt.Errorf("the predicted Label is %d (p=%v) but class %d has p=%v; Label must be the argmax", p.Label, p.Probabilities[p.Label], i, q)
		}
	}
	if p.ModelVersion != version {
		return fmt.Errorf("ModelVersion is %q, want Version() %q", p.ModelVersion, version)
	}
	return nil
}

// predictAll predicts every input sequentially and checks each prediction.
func predictAll[In any](ctx context.Context, m dadc.Model[In], inputs []In) ([]dadc.Prediction, error) {
	out := make([]dadc.Prediction, len(inputs))
	classes := 0
	for i, in := range inputs {
		p, err := m.Predict(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("Predict(input %d): %w", i, err)
		}
		if err := validPrediction(p, m.Version(), classes); err != nil {
			return nil, fmt.Errorf("Predict(input %d): %w", i, err)
		}
		classes = len(p.Probabilities)
		out[i] = p
	}
	return out, nil
}

func checkPredict[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	_, err := predictAll(ctx, m, inputs)
	return err
}

// samePrediction reports how a differs from b, or nil.
func samePrediction(a, b dadc.Prediction, tol float64) error {
	if a.Label != b.Label {
		return fmt.Errorf("label %d vs %d", a.Label, b.Label)
	}
	if len(a.Probabilities) != len(b.Probabilities) {
		return fmt.Errorf("%d vs %d probabilities", len(a.Probabilities), len(b.Probabilities))
	}
	for i := range a.Probabilities {
		if math.Abs(a.Probabilities[i]-b.Probabilities[i]) > tol {
			return fmt.Errorf("probability %d: %v vs %v", i, a.Probabilities[i], b.Probabilities[i])
		}
	}
	return nil
}

func checkDeterministic[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	first, err := predictAll(ctx, m, inputs)
	if err != nil {
		return err
	}
	second, err := predictAll(ctx, m, inputs)
	if err != nil {
		return err
	}
	for i := range first {
		if err := samePrediction(first[i], second[i], 1e-9); err != nil {
			return fmt.Errorf("input %d predicted twice differs: %w", i, err)
		}
	}
	return nil
}

func checkConcurrentPredict[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	want, err := predictAll(ctx, m, inputs)
	if err != nil {
		return err
	}
	const goroutines, passes = 8, 3
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for pass := range passes {
				for k := range inputs {
					i := (k + g + pass) % len(inputs) // different goroutines on different inputs at once
					p, err := m.Predict(ctx, inputs[i])
					if err != nil {
						errs[g] = fmt.Errorf("concurrent Predict(input %d): %w", i, err)
						return
					}
					if err := samePrediction(p, want[i], 1e-6); err != nil {
						errs[g] = fmt.Errorf("concurrent Predict(input %d) disagrees with a sequential one: %w", i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func checkPredictCancelled[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	p, err := m.Predict(cctx, inputs[0])
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			return fmt.Errorf("Predict with a cancelled context returned %v, want an error wrapping context.Canceled (or a valid prediction)", err)
		}
		return nil
	}
	if err := validPrediction(p, m.Version(), 0); err != nil {
		return fmt.Errorf("Predict with a cancelled context: %w", err)
	}
	return nil
}

func checkBatch[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	bp, ok := m.(dadc.BatchPredictor[In])
	if !ok {
		return nil
	}
	want, err := predictAll(ctx, m, inputs)
	if err != nil {
		return err
	}
	got, err := bp.PredictBatch(ctx, inputs)
	if err != nil {
		return fmt.Errorf("PredictBatch: %w", err)
	}
	if len(got) != len(inputs) {
		return fmt.Errorf("PredictBatch returned %d predictions for %d inputs", len(got), len(inputs))
	}
	for i := range got {
		if err := validPrediction(got[i], m.Version(), len(want[i].Probabilities)); err != nil {
			return fmt.Errorf("PredictBatch, input %d: %w", i, err)
		}
		if err := samePrediction(got[i], want[i], 1e-5); err != nil {
			return fmt.Errorf("PredictBatch, input %d, disagrees with Predict: %w", i, err)
		}
	}
	return nil
}

func checkEvaluator[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	ev, ok := m.(dadc.Evaluator[In])
	if !ok {
		return nil
	}
	preds, err := predictAll(ctx, m, inputs)
	if err != nil {
		return err
	}
	classes := len(preds[0].Probabilities)
	right := make([]dadc.Example[In], len(inputs))
	wrong := make([]dadc.Example[In], len(inputs))
	for i, p := range preds {
		right[i] = dadc.Example[In]{Input: inputs[i], Label: p.Label}
		wrong[i] = dadc.Example[In]{Input: inputs[i], Label: (p.Label + 1) % classes}
	}
	e, err := ev.Evaluate(ctx, right)
	if err != nil {
		return fmt.Errorf("Evaluate: %w", err)
	}
	if e.N != len(right) || math.Abs(e.Accuracy-1) > 1e-9 {
		return fmt.Errorf("Evaluate on examples labelled with the model's own predictions = {N: %d, Accuracy: %v}, want {N: %d, Accuracy: 1}", e.N, e.Accuracy, len(right))
	}
	if err := checkConfusion(e, classes); err != nil {
		return err
	}
	if classes > 1 {
		e, err := ev.Evaluate(ctx, wrong)
		if err != nil {
			return fmt.Errorf("Evaluate: %w", err)
		}
		if e.N != len(wrong) || e.Accuracy > 1e-9 {
			return fmt.Errorf("Evaluate on examples labelled differently from the model's predictions = {N: %d, Accuracy: %v}, want {N: %d, Accuracy: 0}", e.N, e.Accuracy, len(wrong))
		}
	}
	return nil
}

func checkConfusion(e dadc.Evaluation, classes int) error {
	if e.Confusion == nil {
		return nil
	}
	if len(e.Confusion) != classes {
		return fmt.Errorf("Evaluate: Confusion has %d rows, want %d", len(e.Confusion), classes)
	}
	total := 0
	for i, row := range e.Confusion {
		if len(row) != classes {
			return fmt.Errorf("Evaluate: Confusion row %d has %d columns, want %d", i, len(row), classes)
		}
		for _, n := range row {
			total += n
		}
	}
	if total != e.N {
		return fmt.Errorf("Evaluate: Confusion counts %d examples, N is %d", total, e.N)
	}
	return nil
}

func checkTrainerCancelled[In any](ctx context.Context, m dadc.Model[In], inputs []In) error {
	tr, ok := m.(dadc.Trainer[In])
	if !ok {
		return nil
	}
	before, err := predictAll(ctx, m, inputs)
	if err != nil {
		return err
	}
	version := m.Version()
	samples := make([]dadc.Sample[In], len(inputs))
	for i, in := range inputs {
		samples[i] = dadc.Sample[In]{SampleMeta: dadc.SampleMeta{ID: fmt.Sprintf("%032x", i+1), Label: (before[i].Label + 1) % len(before[i].Probabilities)}, Input: in}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	got, err := tr.Train(cctx, dadc.TrainRequest[In]{Round: 0, Version: version + "-conformance", Samples: samples})
	if err == nil {
		return fmt.Errorf("Train with a cancelled context returned model %v and no error; Train must honour ctx", got)
	}
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("Train with a cancelled context returned %v, want an error wrapping context.Canceled", err)
	}
	if m.Version() != version {
		return fmt.Errorf("Train changed the receiver's version from %q to %q; Train must return a new model", version, m.Version())
	}
	after, err := predictAll(ctx, m, inputs)
	if err != nil {
		return fmt.Errorf("after Train: %w", err)
	}
	for i := range before {
		if err := samePrediction(before[i], after[i], 1e-9); err != nil {
			return fmt.Errorf("Train changed the receiver's prediction for input %d: %w", i, err)
		}
	}
	return nil
}
