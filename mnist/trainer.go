package mnist

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand"
	"time"

	"github.com/advspace/advspace/dadc"
)

// FineTuneConfig configures Model.Train, the retrain recipe: fine-tuning
// on adversarial samples mixed with replayed MNIST training images, with
// distillation toward the old model on the replayed images, an L2-SP pull
// toward the old weights, and finally an interpolation between the old and
// the fine-tuned weights. Zero fields (or a nil pointer) take
// DefaultFineTune's values; a negative Distill, Anchor or Interpolate turns
// that part off.
type FineTuneConfig struct {
	// Steps is the number of Adam steps (default 1000).
	Steps int
	// MaxDuration bounds the wall time of fine-tuning; it stops early (keeping
	// the steps done, and then the result depends on the machine's speed, not
	// only on the seed) when exceeded (default 3 minutes: a safety bound far
	// above the 10-25 s the default 1000 steps take on 2 busy cores).
	MaxDuration time.Duration
	// BatchSize is the number of images per step (default 64).
	BatchSize int
	// SamplesPerBatch is how many adversarial samples go into each batch
	// (drawn round-robin from a shuffled list, so they are oversampled); the
	// rest of the batch is replayed MNIST training data. Without replay data
	// the whole batch is adversarial samples.
	SamplesPerBatch int
	// LearnRate is the initial learning rate, decaying on a cosine schedule to
	// a tenth of it.
	LearnRate float64
	// Distill is the weight of the old model's probabilities in the targets
	// of replayed images: target = (1−Distill)·onehot(label) + Distill·p_old
	// (Learning without Forgetting / Dark Experience Replay). In [0, 1];
	// negative turns it off (plain one-hot targets).
	Distill float64
	// Anchor is the L2-SP strength: every step adds Anchor·(w − w_old) to the
	// gradient (Li et al. 2018). Negative turns it off.
	Anchor float64
	// Interpolate is α in the returned weights (1−α)·w_old + α·w_tuned
	// (WiSE-FT, Wortsman et al. 2021). In (0, 1]; negative means 1 (the
	// fine-tuned weights as they are).
	Interpolate float64
	// Seed seeds batch composition, dropout and augmentation; the same seed,
	// weights and samples give the same model.
	Seed int64
	// Soup is how many fine-tunes, with seeds Seed, Seed+1, …, are averaged
	// weight by weight before the interpolation (a uniform model soup,
	// Wortsman et al. 2022); it multiplies the time by Soup (default 1).
	Soup int
	// AnchorToFirst makes distillation and the L2-SP anchor pull toward the
	// first model of a chain of retrains (the model whose Train was called
	// first; Train hands it on to the models it returns) instead of toward
	// the model being fine-tuned, so that clean accuracy cannot drift round
	// after round. Interpolation stays toward the model being fine-tuned. A
	// model loaded from a file starts a new chain.
	AnchorToFirst bool
	// first is the chain's first model (set by Train on the models it returns).
	first *Model
	// NoAugment turns off the random shifts and rotations, which are applied
	// by default so that the model learns the samples, not their exact pixels.
	NoAugment bool
	// Dropout is the dropout probability while fine-tuning (default 0.2,
	// the rate the embedded model was trained with: fine-tuning a model at
	// another rate than its own moves it away from what it learned; negative
	// turns dropout off; it must be below 1).
	Dropout float64
}

// DefaultFineTune returns the retrain recipe's defaults (a function, not a
// variable, so that no caller can change them for everyone).
//
// They were chosen with the mnist-dadc-sim example (one pass of 80 fooling
// drawings of a family, 1 in 5 held out, seed 1, the 99.29% embedded model,
// 10,000 MNIST test images, 1,000 unseen drawings per family). With 1000
// steps, accuracy on unseen rotated digits rose 45.8% → 70.7% (+24.9) while
// MNIST test went 99.29% → 99.02% (−0.27); on thick-stroke digits 67.5% →
// 89.4% (+21.9) for −0.11. The retrain took 10-12 s on 2 cores (load 4-5;
// 22-24 s at load 15-19). A naive fine-tune (replay with one-hot targets, no
// distillation, anchor or interpolation, same rate and batches) gained
// +23.5 for −0.59 (rotated) and +19.0 for −0.24 (thick) in 300 steps, and
// +29.9 for −0.51 and +17.8 for −0.23 in 1000 steps: at the same steps on
// rotated digits naive gains more on the family but loses 0.5 points of
// MNIST, past the 0.3-point budget, at either length.
//
// Variants on rotated digits, 1000 steps unless said, unseen/MNIST change
// in points: α 0.9 +27.5/−0.37; α 1 +28.3/−0.48; α 0.6 +19.2/−0.17; 300
// steps (the former default) +19.1/−0.35; 2000 steps +27.2/−0.34; lr 5e-4
// +21.6/−0.28; lr 2e-3 +26.9/−0.33; 24 samples per batch +27.9/−0.46; 8 per
// batch and α 1 +23.5/−0.29; batch 128 with 32 samples and α 0.9
// +27.3/−0.43; distillation only (no anchor) with α 0.9 +29.0/−0.47;
// interpolation only (α 0.9) +28.5/−0.41; a soup of 3 fine-tunes of 600
// steps +23.1/−0.32 (α 0.8) and +27.2/−0.54 (α 1). None beat naive on both
// numbers at the same steps; all lie near one trade-off line, on which
// interpolation picks the point within the clean budget.
//
// Five passes over rotated, offcentre, thick, slanted and gap digits with the
// default gate: passes 1 and 5 promoted, MNIST test 99.29% → 99.07%, round
// 0's held-out set kept its reference, unseen rotated 70.7% → 68.9%; the
// rejected passes fell 0.02-0.19 points short of the clean budget (offcentre
// also showed no significant gain). Distill 0.8 with Anchor 0.05 promoted 3
// of 5 (MNIST −0.23) but gained only +20.7 on one rotated pass;
// AnchorToFirst promoted 3 of 5 but unseen rotated fell 7.6 points.
//
// With the 99.52% embedded model that replaced it (same simulation, the
// recipe unchanged but for Dropout, which follows the new model's training
// rate of 0.2): one rotated pass 50.3% → 79.0% (+28.7) unseen for MNIST
// 99.52% → 99.22% (−0.30), promoted; one thick pass 70.5% → 90.3% (+19.8)
// for −0.09, promoted; five passes: pass 1 promoted, passes 2-5 fell
// 0.07-0.19 points short of the clean budget. Fine-tuning it at dropout 0.5
// instead lost 0.40-0.42 points on the rotated and offcentre passes
// (rejected) and promoted only the thick pass (70.8% → 89.5% unseen thick,
// −0.25).
func DefaultFineTune() FineTuneConfig {
	return FineTuneConfig{Steps: 1000, MaxDuration: 3 * time.Minute, BatchSize: 64, SamplesPerBatch: 16,
		LearnRate: 1e-3, Distill: 0.5, Anchor: 0.01, Interpolate: 0.8, Soup: 1, Dropout: 0.2}
}

func (c *FineTuneConfig) withDefaults() FineTuneConfig {
	var d FineTuneConfig
	if c != nil {
		d = *c
	}
	def := DefaultFineTune()
	if d.Steps <= 0 {
		d.Steps = def.Steps
	}
	if d.MaxDuration <= 0 {
		d.MaxDuration = def.MaxDuration
	}
	if d.BatchSize <= 0 {
		d.BatchSize = def.BatchSize
	}
	if d.SamplesPerBatch <= 0 {
		d.SamplesPerBatch = def.SamplesPerBatch
	}
	d.SamplesPerBatch = min(d.SamplesPerBatch, d.BatchSize)
	if d.Soup <= 0 {
		d.Soup = def.Soup
	}
	if d.LearnRate <= 0 {
		d.LearnRate = def.LearnRate
	}
	d.Distill = min(orDefault(d.Distill, def.Distill), 1)
	d.Anchor = orDefault(d.Anchor, def.Anchor)
	switch {
	case d.Interpolate == 0:
		d.Interpolate = def.Interpolate
	case d.Interpolate < 0 || d.Interpolate > 1:
		d.Interpolate = 1
	}
	d.Dropout = orDefault(d.Dropout, def.Dropout)
	return d
}

// Train fine-tunes a copy of the model's weights on req.Samples mixed with
// the replay data of ModelOptions.Replay, and returns a new Model reporting
// req.Version (with the same options). It never changes the receiver, which
// keeps serving. It honours ctx between steps, reports progress through
// req.Progress, and stops after FineTuneConfig.Steps steps or MaxDuration,
// whichever comes first. It implements dadc.Trainer.
func (m *Model) Train(ctx context.Context, req dadc.TrainRequest[*image.Gray]) (dadc.Model[*image.Gray], error) {
	if len(req.Samples) == 0 {
		return nil, dadc.ErrNothingToTrain
	}
	c := m.opts.FineTune.withDefaults()
	if err := checkDropout("FineTuneConfig", c.Dropout); err != nil {
		return nil, err
	}
	samples := make([][]uint8, len(req.Samples))
	labels := make([]int, len(req.Samples))
	for i, s := range req.Samples {
		px, err := grayPixels(s.Input)
		if err != nil {
			return nil, fmt.Errorf("mnist: sample %q: %w", s.ID, err)
		}
		if s.Label < 0 || s.Label >= Classes {
			return nil, fmt.Errorf("mnist: sample %q: %w: %d", s.ID, dadc.ErrInvalidLabel, s.Label)
		}
		samples[i], labels[i] = px, s.Label
	}
	replay := m.opts.Replay
	if replay != nil {
		if err := checkDataset(replay); err != nil {
			return nil, fmt.Errorf("mnist: replay data: %w", err)
		}
	}
	ref := m
	if c.AnchorToFirst && c.first != nil {
		ref = c.first
	}
	start := time.Now()
	soup := c.Soup
	var tunedW *Weights
	steps := 0
	for k := range soup {
		progress := func(done float64) {
			if req.Progress != nil {
				req.Progress((float64(k) + done) / float64(soup))
			}
		}
		w, n, err := m.fineTune(ctx, c, ref, c.Seed+int64(k), samples, labels, replay, start, progress)
		if err != nil {
			return nil, err
		}
		steps += n
		if tunedW == nil {
			tunedW = w
			continue
		}
		// A running mean of the ingredients: tunedW = tunedW + (w − tunedW)/(k+1).
		interpolateWeights(tunedW, w, 1-1/float64(k+1))
	}
	if c.Interpolate < 1 {
		interpolateWeights(tunedW, m.weights, c.Interpolate)
	}
	opts := m.opts
	opts.Version = req.Version
	if c.AnchorToFirst {
		var next FineTuneConfig
		if m.opts.FineTune != nil {
			next = *m.opts.FineTune
		}
		next.first = ref
		opts.FineTune = &next
	}
	tuned, err := NewModel(tunedW, &opts)
	if err != nil {
		return nil, err
	}
	m.logger.Info("mnist: fine-tuned", "round", req.Round, "version", tuned.Version(), "samples", len(samples), "steps", steps, "seconds", time.Since(start).Seconds())
	if req.Progress != nil {
		req.Progress(1)
	}
	return tuned, nil
}

// interpolateWeights sets w to (1−alpha)·old + alpha·w, tensor by tensor
// (both hold every tensor of Layout).
func interpolateWeights(w, old *Weights, alpha float64) {
	a := float32(alpha)
	for name, t := range w.Tensors {
		o := old.Tensors[name]
		for i := range t {
			t[i] = (1-a)*o[i] + a*t[i]
		}
	}
}

// fineTune runs one fine-tune of a copy of the model's weights with the
// given seed, distilling toward and anchored at ref, and returns the tuned
// weights and the steps done. start is when
// the whole retrain started (MaxDuration bounds all the soup's ingredients
// together).
func (m *Model) fineTune(ctx context.Context, c FineTuneConfig, ref *Model, seed int64, samples [][]uint8, labels []int, replay *Dataset, start time.Time, progress func(float64)) (*Weights, int, error) {
	rng := rand.New(rand.NewSource(seed))
	s, err := newTrainSession(m.weights, c.BatchSize, rng)
	if err != nil {
		return nil, 0, err
	}
	defer s.close()
	s.dropP = c.Dropout

	if c.Anchor > 0 {
		if err := s.setAnchor(ref.weights, c.Anchor); err != nil {
			return nil, 0, err
		}
	}

	order := rng.Perm(len(samples))
	next := 0
	imgs := make([][]uint8, c.BatchSize)
	targets := make([]float32, c.BatchSize*Classes)
	sched := TrainConfig{LearnRate: c.LearnRate, MinLearnRate: c.LearnRate / 10}
	steps := 0
	for ; steps < c.Steps; steps++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if steps > 0 && time.Since(start) > c.MaxDuration {
			m.logger.Warn("mnist: fine-tuning stopped at its time limit; the result is not the seed's full recipe", "steps", steps, "of", c.Steps, "limit", c.MaxDuration)
			break
		}
		clear(targets)
		for k := range imgs {
			row := targets[k*Classes : (k+1)*Classes]
			if replay == nil || k < c.SamplesPerBatch {
				if next == len(order) {
					rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
					next = 0
				}
				imgs[k] = samples[order[next]]
				row[labels[order[next]]] = 1
				next++
				continue
			}
			i := rng.Intn(replay.Len())
			imgs[k] = replay.Pixels(i)
			row[replay.Labels[i]] = float32(1 - c.Distill)
			if c.Distill > 0 {
				// The reference model's probabilities on the un-augmented image.
				logp := ref.fwd.logProbs((*[InputSize]uint8)(imgs[k]))
				for j, lp := range logp {
					row[j] += float32(c.Distill * math.Exp(lp))
				}
			}
		}
		loss, err := s.stepTargets(imgs, targets, sched.learnRate(steps, c.Steps), !c.NoAugment)
		if err != nil {
			return nil, 0, fmt.Errorf("mnist: fine-tuning step %d: %w", steps+1, err)
		}
		progress(float64(steps+1) / float64(c.Steps))
		if steps%50 == 0 {
			m.logger.Debug("mnist: fine-tuning", "step", steps+1, "loss", loss)
		}
	}
	return s.weights(), steps, nil
}
