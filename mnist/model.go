package mnist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"runtime"

	"github.com/advspace/advspace/dadc"
)

// ctxCheckEvery is how many images PredictBatch and the evaluations
// classify between checks of their context.
const ctxCheckEvery = 64

// Compile-time checks of the dadc capabilities a Model offers.
var (
	_ dadc.Model[*image.Gray]          = (*Model)(nil)
	_ dadc.BatchPredictor[*image.Gray] = (*Model)(nil)
	_ dadc.Evaluator[*image.Gray]      = (*Model)(nil)
	_ dadc.Trainer[*image.Gray]        = (*Model)(nil)
	_ dadc.Exporter                    = (*Model)(nil)
)

// ModelOptions configures NewModel. A nil pointer or zero fields mean the defaults.
type ModelOptions struct {
	// Version names the model (default "sha256:" + the first 12 hex digits of
	// the SHA-256 of the weights' safetensors encoding).
	Version string
	// Replay is MNIST training data mixed into fine-tuning batches (Train), so
	// that the model learns the adversarial samples without forgetting MNIST.
	// Nil means fine-tuning on the adversarial samples alone, which risks
	// overfitting them and losing clean accuracy.
	Replay *Dataset
	// FineTune configures fine-tuning by Train (nil = DefaultFineTune()).
	FineTune *FineTuneConfig
	// Logger receives the model's log lines (default: discard).
	Logger *slog.Logger
}

// Model is the MNIST network ready for inference. Its weights never change
// after NewModel; all methods are safe for concurrent use. Inference is a
// direct float32 forward pass over an immutable copy of the weights: it runs
// on the caller's goroutine, never waits for other callers and allocates only
// its answer. Training (Train) uses the gorgonia graph, which computes the
// same function.
type Model struct {
	weights *Weights    // private copy, never mutated
	fwd     *forwardNet // the same weights, laid out for inference
	version string
	opts    ModelOptions
	logger  *slog.Logger
}

// NewModel builds a Model from w (copied; the caller may reuse w).
func NewModel(w *Weights, opts *ModelOptions) (*Model, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	m := &Model{weights: w.Clone()}
	if opts != nil {
		m.opts = *opts
	}
	m.logger = m.opts.Logger
	if m.logger == nil {
		m.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m.version = m.opts.Version
	if m.version == "" {
		v, err := weightsVersion(m.weights)
		if err != nil {
			return nil, err
		}
		m.version = v
	}
	fwd, err := newForwardNet(m.weights)
	if err != nil {
		return nil, err
	}
	m.fwd = fwd
	m.logger.Debug("mnist: model ready", "version", m.version)
	return m, nil
}

// weightsVersion returns "sha256:" + the first 12 hex digits of the SHA-256
// of w's safetensors encoding, so a version names the exact weights file.
func weightsVersion(w *Weights) (string, error) {
	h := sha256.New()
	if err := w.Encode(h); err != nil {
		return "", fmt.Errorf("mnist: hashing the weights: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Version returns the model's version string.
func (m *Model) Version() string { return m.version }

// Weights returns a copy of the model's weights.
func (m *Model) Weights() *Weights { return m.weights.Clone() }

// Export writes the model's weights as safetensors (PyTorch state_dict names).
func (m *Model) Export(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.weights.Encode(w)
}

// Predict classifies one 28x28 MNIST-format image (ink bright on dark; see
// Preprocess for drawings). Other sizes are an error wrapping ErrBadInput.
func (m *Model) Predict(ctx context.Context, in *image.Gray) (dadc.Prediction, error) {
	px, err := grayPixels(in)
	if err != nil {
		return dadc.Prediction{}, err
	}
	return m.PredictPixels(ctx, px)
}

// PredictPixels classifies one image given as 784 row-major MNIST-format bytes.
func (m *Model) PredictPixels(ctx context.Context, pixels []uint8) (dadc.Prediction, error) {
	if len(pixels) != InputSize {
		return dadc.Prediction{}, fmt.Errorf("%w: got %d pixels, want %d", ErrBadInput, len(pixels), InputSize)
	}
	if err := ctx.Err(); err != nil {
		return dadc.Prediction{}, err
	}
	logp := m.fwd.logProbs((*[InputSize]uint8)(pixels))
	return m.prediction(&logp), nil
}

// prediction turns log-probabilities into a Prediction.
func (m *Model) prediction(logp *[Classes]float64) dadc.Prediction {
	p := dadc.Prediction{Label: argmax(logp), Probabilities: make([]float64, Classes), ModelVersion: m.version}
	for i, lp := range logp {
		p.Probabilities[i] = math.Exp(lp)
	}
	return p
}

// grayPixels checks that g is a 28x28 image and returns its pixels row by row.
func grayPixels(g *image.Gray) ([]uint8, error) {
	if g == nil {
		return nil, fmt.Errorf("%w: nil image", ErrBadInput)
	}
	b := g.Bounds()
	if b.Dx() != Side || b.Dy() != Side {
		return nil, fmt.Errorf("%w: got %dx%d; preprocess drawings to 28x28 first", ErrBadInput, b.Dx(), b.Dy())
	}
	if g.Stride == Side && len(g.Pix) >= InputSize {
		return g.Pix[:InputSize], nil
	}
	px := make([]uint8, 0, InputSize)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		off := g.PixOffset(b.Min.X, y)
		px = append(px, g.Pix[off:off+Side]...)
	}
	return px, nil
}

// PredictBatch classifies many 28x28 images, on GOMAXPROCS goroutines. The answer has one Prediction per input.
func (m *Model) PredictBatch(ctx context.Context, ins []*image.Gray) ([]dadc.Prediction, error) {
	pixels := make([][]uint8, len(ins))
	for i, in := range ins {
		px, err := grayPixels(in)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		pixels[i] = px
	}
	out := make([]dadc.Prediction, len(ins))
	err := m.forEach(ctx, len(pixels), func(i int) []uint8 { return pixels[i] }, func(i int, logp *[Classes]float64) {
		out[i] = m.prediction(logp)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forEach runs the network over n inputs (pixels(i) gives input i) and calls
// visit with each input's log-probabilities (valid only during the call), in
// order, on the caller's goroutine. The forward passes run on GOMAXPROCS
// goroutines, ctxCheckEvery images each between checks of ctx.
func (m *Model) forEach(ctx context.Context, n int, pixels func(i int) []uint8, visit func(i int, logp *[Classes]float64)) error {
	chunk := min(n, ctxCheckEvery*runtime.GOMAXPROCS(0))
	in := make([][]uint8, chunk)
	out := make([][Classes]float64, chunk)
	for start := 0; start < n; start += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(chunk, n-start)
		for j := range k {
			px := pixels(start + j)
			if len(px) != InputSize {
				return fmt.Errorf("%w: input %d has %d pixels, want %d", ErrBadInput, start+j, len(px), InputSize)
			}
			in[j] = px
		}
		m.fwd.logProbsMany(out[:k], in[:k])
		for j := range k {
			visit(start+j, &out[j])
		}
	}
	return nil
}
