package mnist

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"slices"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Training defaults, used where a TrainConfig field is zero.
const (
	DefaultBatchSize    = 64
	DefaultLearnRate    = 1e-3
	DefaultMinLearnRate = 1e-5
	DefaultEpochs       = 1
	DefaultDropout      = dropP

	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8

	augmentMaxShift  = 2.0  // pixels, each axis
	augmentMaxDegree = 10.0 // rotation, either way
)

// TrainConfig configures Train. The zero value (or a nil pointer) means the
// defaults: one epoch, batches of 64, Adam with a learning rate decaying from
// 1e-3 to 1e-5 on a cosine schedule, dropout 0.5, seed 0, no augmentation,
// all images, no weight averaging.
type TrainConfig struct {
	// Epochs is the number of passes over the data (default 1). Ignored when Steps > 0.
	Epochs int
	// Steps, when > 0, trains exactly this many batches instead of whole epochs.
	Steps int
	// BatchSize is the number of images per step (default 64). The last partial
	// batch of each epoch is dropped: the graph has a fixed batch size, and
	// because the data is reshuffled every epoch, every image still gets used.
	BatchSize int
	// LearnRate is Adam's initial learning rate (default 1e-3).
	LearnRate float64
	// MinLearnRate is the learning rate reached at the end of training on the
	// cosine schedule (default 1e-5). Set it equal to LearnRate for a constant rate.
	MinLearnRate float64
	// Seed seeds the shuffling, the dropout masks and the augmentation, so that
	// training with the same seed, data and config gives the same weights.
	Seed int64
	// Augment applies small random affine distortions to each training image:
	// shifts of up to ±2 px on each axis and rotations of up to ±10°.
	Augment bool
	// Limit, when > 0, trains on the first Limit images only.
	Limit int
	// Dropout is the probability with which the two dropout layers drop a
	// value during training: whole channels after the second convolution,
	// single units after the first fully connected layer (kept values are
	// scaled by 1/(1−Dropout), as PyTorch does). 0 means DefaultDropout, the
	// 0.5 of the PyTorch example the network mirrors; a negative value turns
	// dropout off; 1 or more is an error. Inference never drops anything.
	Dropout float64
	// EMADecay, when in (0, 1), makes Train keep an exponential moving
	// average of the weights (Polyak averaging): after step t (from 1) the
	// average becomes d·avg + (1−d)·w with d = min(EMADecay, (1+t)/(10+t)),
	// so the first steps are not held back by the initial weights. Train then
	// returns the average, and OnEpoch receives it, instead of the raw
	// weights; training itself is unchanged (same steps, same random draws).
	// 0.999 averages over about the last 1,000 steps. 0 (the default) turns
	// it off; values outside [0, 1) are an error.
	EMADecay float64
	// Progress, if not nil, is called from the training goroutine after every
	// batch (and once more at the end of each epoch, with EpochDone set).
	Progress func(TrainProgress)
	// OnEpoch, if not nil, is called after each epoch with a copy of the
	// current weights (the average when EMADecay is set), for instance to
	// evaluate them. An error stops training.
	OnEpoch func(ctx context.Context, epoch int, w *Weights) error
	// Logger receives per-epoch log lines (default: discard).
	Logger *slog.Logger
}

// TrainProgress reports training progress to TrainConfig.Progress.
type TrainProgress struct {
	// Epoch is the current epoch, from 1 (1 when training by Steps).
	Epoch, Epochs int
	// Batch is the number of batches done in this epoch; Batches is their total.
	Batch, Batches int
	// Step is the number of batches done overall; Steps is their total.
	Step, Steps int
	// Loss is the mean training loss over this epoch's batches so far.
	Loss float64
	// LearnRate is the learning rate of the last step.
	LearnRate float64
	// SamplesPerSec is the training throughput over this epoch so far.
	SamplesPerSec float64
	// EpochDone is set on the report made at the end of an epoch.
	EpochDone bool
}

func (c *TrainConfig) withDefaults() TrainConfig {
	var d TrainConfig
	if c != nil {
		d = *c
	}
	if d.Epochs <= 0 {
		d.Epochs = DefaultEpochs
	}
	if d.BatchSize <= 0 {
		d.BatchSize = DefaultBatchSize
	}
	if d.LearnRate <= 0 {
		d.LearnRate = DefaultLearnRate
	}
	if d.MinLearnRate <= 0 {
		d.MinLearnRate = math.Min(DefaultMinLearnRate, d.LearnRate)
	}
	d.Dropout = orDefault(d.Dropout, DefaultDropout)
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return d
}

// learnRate returns the cosine-annealed learning rate for step (0-based) of total.
func (c *TrainConfig) learnRate(step, total int) float64 {
	if total <= 1 {
		return c.LearnRate
	}
	frac := float64(step) / float64(total-1)
	return c.MinLearnRate + (c.LearnRate-c.MinLearnRate)*0.5*(1+math.Cos(math.Pi*frac))
}

// Train trains the network on train and returns the new weights. init is the
// starting point (nil = fresh weights from InitWeights(cfg.Seed)); it is not
// modified. Train honours ctx between batches and returns ctx's error (with
// no weights) when cancelled.
func Train(ctx context.Context, init *Weights, train *Dataset, cfg *TrainConfig) (*Weights, error) {
	c := cfg.withDefaults()
	if err := checkDropout("TrainConfig", c.Dropout); err != nil {
		return nil, err
	}
	if !(c.EMADecay >= 0 && c.EMADecay < 1) {
		return nil, fmt.Errorf("mnist: TrainConfig.EMADecay %v is outside [0, 1): use 0 for no averaging or a decay such as 0.999", c.EMADecay)
	}
	if err := checkDataset(train); err != nil {
		return nil, err
	}
	n := train.Len()
	if c.Limit > 0 && c.Limit < n {
		n = c.Limit
	}
	if n < c.BatchSize {
		return nil, fmt.Errorf("%w: %d training images is fewer than one batch of %d", ErrNoData, n, c.BatchSize)
	}
	if init == nil {
		init = InitWeights(c.Seed)
	}
	rng := rand.New(rand.NewSource(c.Seed))
	s, err := newTrainSession(init, c.BatchSize, rng)
	if err != nil {
		return nil, err
	}
	defer s.close()
	s.dropP = c.Dropout
	var avg *emaWeights
	if c.EMADecay > 0 {
		avg = newEMAWeights(s.adam.params, c.EMADecay)
	}
	result := func() *Weights {
		if avg != nil {
			return avg.weights()
		}
		return s.weights()
	}

	batches := n / c.BatchSize
	epochs, total := c.Epochs, c.Epochs*batches
	if c.Steps > 0 {
		epochs, total = (c.Steps+batches-1)/batches, c.Steps
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	imgs := make([][]uint8, c.BatchSize)
	labels := make([]int, c.BatchSize)
	step := 0
	for epoch := 1; epoch <= epochs && step < total; epoch++ {
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		start := time.Now()
		var lossSum float64
		var lr float64
		done := 0
		progress := func() TrainProgress {
			return TrainProgress{Epoch: epoch, Epochs: epochs, Batch: done, Batches: batches, Step: step, Steps: total,
				Loss: lossSum / float64(done), LearnRate: lr, SamplesPerSec: float64(done*c.BatchSize) / time.Since(start).Seconds()}
		}
		for b := 0; b < batches && step < total; b++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for k := range imgs {
				i := perm[b*c.BatchSize+k]
				imgs[k], labels[k] = train.Pixels(i), int(train.Labels[i])
			}
			lr = c.learnRate(step, total)
			loss, err := s.step(imgs, labels, lr, c.Augment)
			if err != nil {
				return nil, fmt.Errorf("mnist: epoch %d batch %d: %w", epoch, b+1, err)
			}
			lossSum += loss
			if avg != nil {
				avg.update(s.adam.params)
			}
			step++
			done++
			if c.Progress != nil {
				c.Progress(progress())
			}
		}
		p := progress()
		p.EpochDone = true
		c.Logger.Info("mnist: epoch done", "epoch", epoch, "epochs", epochs, "loss", p.Loss, "learn_rate", lr, "samples_per_sec", p.SamplesPerSec)
		if c.Progress != nil {
			c.Progress(p)
		}
		if c.OnEpoch != nil {
			if err := c.OnEpoch(ctx, epoch, result()); err != nil {
				return nil, fmt.Errorf("mnist: after epoch %d: %w", epoch, err)
			}
		}
	}
	return result(), nil
}

// orDefault is the rule of the options whose zero means a default and
// whose negative values turn the feature off: 0 gives def, a negative
// value 0, anything else itself.
func orDefault(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// checkDropout refuses a dropout probability of 1 or more (or NaN), which
// would drop everything; config names the options struct for the message.
func checkDropout(config string, p float64) error {
	if !(p < 1) {
		return fmt.Errorf("mnist: %s.Dropout %v is not below 1: give a probability such as 0.2, 0 for the default, or a negative value for no dropout", config, p)
	}
	return nil
}

// emaWeights is an exponential moving average of the parameters, in
// gorgonia layout (see TrainConfig.EMADecay).
type emaWeights struct {
	decay float64
	t     int
	avg   [][]float32
}

// newEMAWeights starts an average at the current parameters.
func newEMAWeights(params [][]float32, decay float64) *emaWeights {
	e := &emaWeights{decay: decay, avg: make([][]float32, len(params))}
	for i, p := range params {
		e.avg[i] = slices.Clone(p)
	}
	return e
}

// update folds the parameters after one more step into the average.
func (e *emaWeights) update(params [][]float32) {
	e.t++
	d := float32(min(e.decay, float64(1+e.t)/float64(10+e.t)))
	for i, p := range params {
		a := e.avg[i]
		for j, w := range p {
			a[j] = d*a[j] + (1-d)*w
		}
	}
}

// weights returns a copy of the average in PyTorch layout.
func (e *emaWeights) weights() *Weights {
	var p params
	for i := range p {
		p[i] = tensor.New(tensor.WithShape(gorgoniaShape(i)...), tensor.WithBacking(slices.Clone(e.avg[i])))
	}
	return p.toWeights()
}

func checkDataset(d *Dataset) error {
	if d == nil || d.Len() == 0 {
		return fmt.Errorf("%w: empty dataset", ErrNoData)
	}
	if d.Rows != Side || d.Cols != Side {
		return fmt.Errorf("%w: dataset images are %dx%d", ErrBadInput, d.Cols, d.Rows)
	}
	if len(d.Images) != d.Len()*InputSize {
		return fmt.Errorf("mnist: dataset has %d labels but %d image bytes (want %d)", d.Len(), len(d.Images), d.Len()*InputSize)
	}
	for i, l := range d.Labels {
		if l >= Classes {
			return fmt.Errorf("mnist: dataset label %d at index %d is outside 0-9", l, i)
		}
	}
	return nil
}

// trainSession is a training graph with its VM, Adam state and input
// buffers. Not safe for concurrent use.
type trainSession struct {
	net   *network
	vm    G.VM
	rng   *rand.Rand
	batch int
	adam  adam
	// dropP is the dropout probability of both dropout layers.
	dropP float64
	// noDropout turns dropout off (all-ones masks), for tests that need a
	// deterministic function of the weights (gradient check, overfitting).
	noDropout bool

	x, y, m1, m2 *tensor.Dense
	xb, yb       []float32
	m1b, m2b     []float32
}

func newTrainSession(init *Weights, batch int, rng *rand.Rand) (*trainSession, error) {
	return newTrainSessionWith(init, batch, rng, false)
}

// newTrainSessionWith is newTrainSession on the graph of gorgonia's own
// convolution operations when builtin is set (the reference for the fused
// ops' gradients).
func newTrainSessionWith(init *Weights, batch int, rng *rand.Rand, builtin bool) (*trainSession, error) {
	p, err := toParams(init)
	if err != nil {
		return nil, err
	}
	net, err := buildNetworkWith(batch, p, true, builtin)
	if err != nil {
		return nil, err
	}
	vm, err := net.newVM()
	if err != nil {
		return nil, err
	}
	s := &trainSession{net: net, vm: vm, rng: rng, batch: batch, dropP: dropP,
		xb: make([]float32, batch*InputSize), yb: make([]float32, batch*Classes),
		m1b: make([]float32, batch*hidden), m2b: make([]float32, batch*flatSize)}
	s.x = tensor.New(tensor.WithShape(batch, 1, Side, Side), tensor.WithBacking(s.xb))
	s.y = tensor.New(tensor.WithShape(batch, Classes), tensor.WithBacking(s.yb))
	s.m1 = tensor.New(tensor.WithShape(batch, hidden), tensor.WithBacking(s.m1b))
	s.m2 = tensor.New(tensor.WithShape(batch, flatSize), tensor.WithBacking(s.m2b))
	s.adam.init(p)
	return s, nil
}

// fillMasks draws fresh dropout masks: one keep/drop decision per (image,
// channel) after conv2 (Dropout2d) and per (image, unit) after fc1, scaled by
// 1/(1-p) like PyTorch's inverted dropout.
func (s *trainSession) fillMasks() {
	if s.noDropout {
		s.setDropoutOff()
		return
	}
	p := s.dropP
	keep := float32(1 / (1 - p))
	for b := 0; b < s.batch; b++ {
		for c := 0; c < conv2Chans; c++ {
			v := float32(0)
			if s.rng.Float64() >= p {
				v = keep
			}
			row := s.m2b[b*flatSize+c*conv2Plane : b*flatSize+(c+1)*conv2Plane]
			for i := range row {
				row[i] = v
			}
		}
	}
	for i := range s.m1b {
		if s.rng.Float64() >= p {
			s.m1b[i] = keep
		} else {
			s.m1b[i] = 0
		}
	}
}

// setDropoutOff sets the masks to all ones (dropout off), for gradient checks.
func (s *trainSession) setDropoutOff() {
	for i := range s.m1b {
		s.m1b[i] = 1
	}
	for i := range s.m2b {
		s.m2b[i] = 1
	}
}

// load writes a batch of images and labels (as one-hot targets) into the
// input buffers.
func (s *trainSession) load(imgs [][]uint8, labels []int, augment bool) error {
	if len(labels) != s.batch {
		return fmt.Errorf("mnist: batch of %d labels, want %d", len(labels), s.batch)
	}
	clear(s.yb)
	for k, l := range labels {
		if l < 0 || l >= Classes {
			return fmt.Errorf("mnist: training label %d is outside 0-9", l)
		}
		s.yb[k*Classes+l] = 1
	}
	return s.loadImages(imgs, augment)
}

// loadTargets writes a batch of images and soft targets into the input
// buffers. targets holds batch×Classes values, row-major, each row a
// probability distribution (for instance a mix of the one-hot label and a
// teacher model's probabilities, for distillation); the loss is then the
// cross-entropy −Σ target·log p averaged over the batch.
func (s *trainSession) loadTargets(imgs [][]uint8, targets []float32, augment bool) error {
	if len(targets) != s.batch*Classes {
		return fmt.Errorf("mnist: %d target values, want %d (batch %d × %d classes)", len(targets), s.batch*Classes, s.batch, Classes)
	}
	copy(s.yb, targets)
	return s.loadImages(imgs, augment)
}

func (s *trainSession) loadImages(imgs [][]uint8, augment bool) error {
	if len(imgs) != s.batch {
		return fmt.Errorf("mnist: batch of %d images, want %d", len(imgs), s.batch)
	}
	for k, img := range imgs {
		if len(img) != InputSize {
			return fmt.Errorf("%w: training image %d has %d pixels", ErrBadInput, k, len(img))
		}
		dst := s.xb[k*InputSize : (k+1)*InputSize]
		if augment {
			augmentInto(dst, img, s.rng)
		} else {
			normalizeInto(dst, img)
		}
	}
	return nil
}

// forwardBackward runs the graph once on the loaded inputs, leaving the
// gradients in the parameters' dual values, and returns the loss.
func (s *trainSession) forwardBackward() (loss float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("mnist: training step: %v", p)
		}
	}()
	defer s.vm.Reset()
	for _, b := range []struct {
		n *G.Node
		v *tensor.Dense
	}{{s.net.x, s.x}, {s.net.train.y, s.y}, {s.net.train.mask1, s.m1}, {s.net.train.mask2, s.m2}} {
		if err := G.Let(b.n, b.v); err != nil {
			return 0, fmt.Errorf("mnist: binding %s: %w", b.n.Name(), err)
		}
	}
	if err := s.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("mnist: training step: %w", err)
	}
	c, ok := s.net.train.cost.Value().Data().(float32)
	if !ok {
		return 0, fmt.Errorf("mnist: unexpected loss value %T", s.net.train.cost.Value().Data())
	}
	return float64(c), nil
}

// grads returns the gradient buffers of the parameters (Layout order).
func (s *trainSession) grads() ([][]float32, error) {
	out := make([][]float32, len(s.net.learn))
	for i, n := range s.net.learn {
		g, err := n.Grad()
		if err != nil {
			return nil, fmt.Errorf("mnist: gradient of %s: %w", n.Name(), err)
		}
		d, ok := g.Data().([]float32)
		if !ok {
			return nil, fmt.Errorf("mnist: gradient of %s is %T", n.Name(), g.Data())
		}
		out[i] = d
	}
	return out, nil
}

// zeroGrads clears the gradients after a step: gorgonia accumulates them in
// the dual values across runs (reference/gorgonia.md §1.4), so each step must
// start from zero. Gradients not allocated yet (before the first run) are skipped.
func (s *trainSession) zeroGrads() {
	for _, n := range s.net.learn {
		g, err := n.Grad()
		if err != nil || g == nil {
			continue
		}
		if d, ok := g.Data().([]float32); ok {
			clear(d)
		}
	}
}

// step does one Adam update on a batch and returns the batch's loss.
func (s *trainSession) step(imgs [][]uint8, labels []int, lr float64, augment bool) (float64, error) {
	if err := s.load(imgs, labels, augment); err != nil {
		return 0, err
	}
	return s.update(lr)
}

// stepTargets does one Adam update on a batch with soft targets (see
// loadTargets) and returns the batch's loss.
func (s *trainSession) stepTargets(imgs [][]uint8, targets []float32, lr float64, augment bool) (float64, error) {
	if err := s.loadTargets(imgs, targets, augment); err != nil {
		return 0, err
	}
	return s.update(lr)
}

// setAnchor turns on L2-SP regularisation (Li et al., 2018, "Explicit
// inductive bias for transfer learning"): every step adds strength·(w − w0)
// to the gradient of each weight w, where w0 is anchor's value, pulling the
// fine-tuned weights toward the model they started from. strength 0 turns it off.
func (s *trainSession) setAnchor(anchor *Weights, strength float64) error {
	if strength == 0 {
		s.adam.anchor, s.adam.l2sp = nil, 0
		return nil
	}
	p, err := toParams(anchor)
	if err != nil {
		return err
	}
	s.adam.anchor = make([][]float32, len(p))
	for i, d := range p {
		s.adam.anchor[i] = d.Data().([]float32)
	}
	s.adam.l2sp = float32(strength)
	return nil
}

// update runs forward and backward on the loaded batch and applies one Adam step.
func (s *trainSession) update(lr float64) (float64, error) {
	s.fillMasks()
	loss, err := s.forwardBackward()
	if err != nil {
		s.zeroGrads()
		return 0, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		s.zeroGrads()
		return 0, fmt.Errorf("mnist: training diverged (loss %v); lower the learning rate", loss)
	}
	gs, err := s.grads()
	if err != nil {
		return 0, err
	}
	s.adam.update(gs, lr)
	s.zeroGrads()
	return loss, nil
}

func (s *trainSession) weights() *Weights { return s.net.values.toWeights() }

func (s *trainSession) close() { _ = s.vm.Close() }

// adam is the Adam optimiser (Kingma & Ba, as in torch.optim.Adam without
// weight decay). It is written here rather than taken from gorgonia because
// gorgonia's AdamSolver cannot change its learning rate after construction
// (the schedule needs that) and keeps its moments unexported.
type adam struct {
	params [][]float32
	m, v   [][]float32
	t      int
	// anchor and l2sp, when set, add l2sp·(w − anchor) to each gradient (L2-SP).
	anchor [][]float32
	l2sp   float32
}

func (a *adam) init(p params) {
	for _, d := range p {
		data := d.Data().([]float32)
		a.params = append(a.params, data)
		a.m = append(a.m, make([]float32, len(data)))
		a.v = append(a.v, make([]float32, len(data)))
	}
}

func (a *adam) update(grads [][]float32, lr float64) {
	a.t++
	c1 := 1 - math.Pow(adamBeta1, float64(a.t))
	c2 := 1 - math.Pow(adamBeta2, float64(a.t))
	stepSize := float32(lr / c1)
	sqrtC2 := float32(math.Sqrt(c2))
	for i, w := range a.params {
		g, m, v := grads[i], a.m[i], a.v[i]
		if a.anchor != nil {
			w0 := a.anchor[i]
			for j := range g {
				g[j] += a.l2sp * (w[j] - w0[j])
			}
		}
		for j := range w {
			m[j] = adamBeta1*m[j] + (1-adamBeta1)*g[j]
			v[j] = adamBeta2*v[j] + (1-adamBeta2)*g[j]*g[j]
			denom := float32(math.Sqrt(float64(v[j])))/sqrtC2 + adamEps
			w[j] -= stepSize * m[j] / denom
		}
	}
}

// augmentInto writes a randomly shifted and rotated copy of the 28x28 image
// src into dst as normalised network input. It samples the source bilinearly
// at the inverse-transformed position of each output pixel; outside the
// image is background (0).
func augmentInto(dst []float32, src []uint8, rng *rand.Rand) {
	theta := (rng.Float64()*2 - 1) * augmentMaxDegree * math.Pi / 180
	dx := (rng.Float64()*2 - 1) * augmentMaxShift
	dy := (rng.Float64()*2 - 1) * augmentMaxShift
	affineInto(dst, src, theta, dx, dy)
}

// affineInto writes src rotated by theta (radians, about the image centre)
// and then shifted by (dx, dy) pixels into dst, as normalised network input.
func affineInto(dst []float32, src []uint8, theta, dx, dy float64) {
	cos, sin := math.Cos(theta), math.Sin(theta)
	const c = (Side - 1) / 2.0
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= Side || y >= Side {
			return 0
		}
		return float64(src[y*Side+x])
	}
	for oy := 0; oy < Side; oy++ {
		for ox := 0; ox < Side; ox++ {
			// Inverse map: undo the shift, then rotate by -theta about the centre.
			px, py := float64(ox)-c-dx, float64(oy)-c-dy
			sx := cos*px + sin*py + c
			sy := -sin*px + cos*py + c
			x0, y0 := math.Floor(sx), math.Floor(sy)
			fx, fy := sx-x0, sy-y0
			ix, iy := int(x0), int(y0)
			v := (1-fx)*(1-fy)*at(ix, iy) + fx*(1-fy)*at(ix+1, iy) + (1-fx)*fy*at(ix, iy+1) + fx*fy*at(ix+1, iy+1)
			dst[oy*Side+ox] = normalized(v)
		}
	}
}
