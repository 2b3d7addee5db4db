package mnist

import (
	"context"
	"fmt"
	"image"

	"github.com/advspace/advspace/dadc"
)

// Evaluate scores weights w on the labelled images of d (accuracy and
// confusion matrix). It builds a temporary Model; to score one model many
// times, use Model.EvaluateDataset.
func Evaluate(ctx context.Context, w *Weights, d *Dataset) (dadc.Evaluation, error) {
	m, err := NewModel(w, &ModelOptions{Version: "evaluate"})
	if err != nil {
		return dadc.Evaluation{}, err
	}
	return m.EvaluateDataset(ctx, d)
}

// EvaluateDataset scores the model on the labelled images of d, one after
// the other on the caller's goroutine.
func (m *Model) EvaluateDataset(ctx context.Context, d *Dataset) (dadc.Evaluation, error) {
	if err := checkDataset(d); err != nil {
		return dadc.Evaluation{}, err
	}
	return m.evaluate(ctx, d.Len(), d.Pixels, func(i int) int { return int(d.Labels[i]) })
}

// Evaluate scores the model on examples (28x28 MNIST-format images), one
// after the other on the caller's goroutine. It implements dadc.Evaluator.
func (m *Model) Evaluate(ctx context.Context, examples []dadc.Example[*image.Gray]) (dadc.Evaluation, error) {
	pixels := make([][]uint8, len(examples))
	for i, ex := range examples {
		px, err := grayPixels(ex.Input)
		if err != nil {
			return dadc.Evaluation{}, fmt.Errorf("example %d: %w", i, err)
		}
		if ex.Label < 0 || ex.Label >= Classes {
			return dadc.Evaluation{}, fmt.Errorf("example %d: %w: %d", i, dadc.ErrInvalidLabel, ex.Label)
		}
		pixels[i] = px
	}
	return m.evaluate(ctx, len(examples), func(i int) []uint8 { return pixels[i] }, func(i int) int { return examples[i].Label })
}

func (m *Model) evaluate(ctx context.Context, n int, pixels func(int) []uint8, label func(int) int) (dadc.Evaluation, error) {
	ev := dadc.Evaluation{N: n, Confusion: make([][]int, Classes)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int, Classes)
	}
	correct := 0
	err := m.forEach(ctx, n, pixels, func(i int, logp *[Classes]float64) {
		pred := argmax(logp)
		ev.Confusion[label(i)][pred]++
		if pred == label(i) {
			correct++
		}
	})
	if err != nil {
		return dadc.Evaluation{}, err
	}
	if n > 0 {
		ev.Accuracy = float64(correct) / float64(n)
	}
	return ev, nil
}

// argmax returns the class with the highest log-probability (the first of
// equals).
func argmax(logp *[Classes]float64) int {
	best := 0
	for i, x := range logp {
		if x > logp[best] {
			best = i
		}
	}
	return best
}
