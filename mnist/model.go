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

// DefaultEvalBatch is the batch size of the Model's batch graphs (PredictBatch,
// Evaluate, EvaluateDataset). Larger batches amortise gorgonia's per-run
// overhead; 64 measured well on 2 cores.
const DefaultEvalBatch = 64

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
	// Replicas is the number of single-image and of batch inference graphs
	// (each pool has this many), i.e. how many predictions run at once
	// (default GOMAXPROCS).
	Replicas int
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
// after NewModel; all methods are safe for concurrent use. Inference runs on
// a fixed pool of replicas (graph + tape machine each, built once); a call
// checks one out, so at most Replicas predictions run at once and the others
// wait (honouring their ctx).
type Model struct {
	weights  *Weights // private copy, never mutated
	version  string
	opts     ModelOptions
	logger   *slog.Logger
	single   chan *replica // batch-1 replicas
	batch    chan *replica // DefaultEvalBatch replicas
	replicas int
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
	m.replicas = m.opts.Replicas
	if m.replicas <= 0 {
		m.replicas = runtime.GOMAXPROCS(0)
	}
	m.version = m.opts.Version
	if m.version == "" {
		v, err := weightsVersion(m.weights)
		if err != nil {
			return nil, err
		}
		m.version = v
	}
	m.single = make(chan *replica, m.replicas)
	m.batch = make(chan *replica, m.replicas)
	for i := 0; i < m.replicas; i++ {
		r, err := newReplica(m.weights, 1)
		if err != nil {
			return nil, err
		}
		m.single <- r
	}
	for i := 0; i < m.replicas; i++ {
		r, err := newReplica(m.weights, DefaultEvalBatch)
		if err != nil {
			return nil, err
		}
		m.batch <- r
	}
	m.logger.Debug("mnist: model ready", "version", m.version, "replicas", m.replicas)
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

func (m *Model) get(ctx context.Context, pool chan *replica) (*replica, error) {
	select {
	case r := <-pool:
		return r, nil
	default:
	}
	select {
	case r := <-pool:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
	r, err := m.get(ctx, m.single)
	if err != nil {
		return dadc.Prediction{}, err
	}
	defer func() { m.single <- r }()
	normalizeInto(r.buf, pixels)
	var logp [Classes]float32
	if err := r.run(logp[:]); err != nil {
		return dadc.Prediction{}, err
	}
	return m.prediction(logp[:]), nil
}

// prediction turns one row of log-probabilities into a Prediction.
func (m *Model) prediction(logp []float32) dadc.Prediction {
	p := dadc.Prediction{Probabilities: make([]float64, Classes), ModelVersion: m.version}
	for i, lp := range logp {
		p.Probabilities[i] = math.Exp(float64(lp))
		if lp > logp[p.Label] {
			p.Label = i
		}
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

// PredictBatch classifies many 28x28 images, in batches on the batch graphs
// (the last partial batch is padded). The answer has one Prediction per input.
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
	err := m.forEachBatch(ctx, len(pixels), func(i int) []uint8 { return pixels[i] }, func(i int, logp []float32) {
		out[i] = m.prediction(logp)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forEachBatch runs the network over n inputs (pixels(i) gives input i) in
// batches of DefaultEvalBatch on one checked-out batch replica, and calls
// visit with each input's log-probabilities (valid only during the call).
func (m *Model) forEachBatch(ctx context.Context, n int, pixels func(i int) []uint8, visit func(i int, logp []float32)) error {
	if n == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := m.get(ctx, m.batch)
	if err != nil {
		return err
	}
	defer func() { m.batch <- r }()
	bs := r.net.batch
	out := make([]float32, bs*Classes)
	for start := 0; start < n; start += bs {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(bs, n-start)
		for j := 0; j < k; j++ {
			px := pixels(start + j)
			if len(px) != InputSize {
				return fmt.Errorf("%w: input %d has %d pixels, want %d", ErrBadInput, start+j, len(px), InputSize)
			}
			normalizeInto(r.buf[j*InputSize:(j+1)*InputSize], px)
		}
		// Pad the last partial batch with background; its outputs are ignored.
		for j := k * InputSize; j < bs*InputSize; j++ {
			r.buf[j] = pixelLUT[0]
		}
		if err := r.run(out); err != nil {
			return err
		}
		for j := 0; j < k; j++ {
			visit(start+j, out[j*Classes:(j+1)*Classes])
		}
	}
	return nil
}
