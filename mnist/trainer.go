package mnist

import (
	"context"
	"fmt"
	"image"
	"math/rand"
	"time"

	"github.com/advspace/advspace/dadc"
)

// FineTuneConfig configures Model.Train (fine-tuning on adversarial samples).
// Zero fields (or a nil pointer) take DefaultFineTune's values.
type FineTuneConfig struct {
	// Steps is the number of Adam steps (default 300).
	Steps int
	// MaxDuration bounds the wall time of fine-tuning; it stops early (keeping
	// the steps done) when exceeded (default 40s).
	MaxDuration time.Duration
	// BatchSize is the number of images per step (default 64).
	BatchSize int
	// SamplesPerBatch is how many adversarial samples go into each batch
	// (drawn round-robin from a shuffled list, so they are oversampled); the
	// rest of the batch is replayed MNIST training data (default 8). Without
	// replay data the whole batch is adversarial samples.
	SamplesPerBatch int
	// LearnRate is the initial learning rate, decaying on a cosine schedule to
	// a tenth of it (default 1e-4: the model is already trained).
	LearnRate float64
	// Seed seeds batch composition, dropout and augmentation.
	Seed int64
	// NoAugment turns off the random shifts and rotations, which are applied
	// by default so that the model learns the samples, not their exact pixels.
	NoAugment bool
}

// DefaultFineTune returns the fine-tuning defaults (a function, not a
// variable, so that no caller can change them for everyone).
//
// They were chosen so that a retrain of the pretrained model passes the dadc
// gate (at most 0.5 points of clean accuracy lost): fine-tuning it on 10 and
// on 20 misclassified MNIST training images cost 0.17 points of clean test
// accuracy (99.17% -> 99.00%), while the former defaults (lr 2e-4, 16
// samples per batch) cost 0.6 points and were rejected. The same runs got
// 5 and 8 of 40 other misclassified images right (0 before).
func DefaultFineTune() FineTuneConfig {
	return FineTuneConfig{Steps: 300, MaxDuration: 40 * time.Second, BatchSize: 64, SamplesPerBatch: 8, LearnRate: 1e-4}
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
	if d.LearnRate <= 0 {
		d.LearnRate = def.LearnRate
	}
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
	rng := rand.New(rand.NewSource(c.Seed))
	s, err := newTrainSession(m.weights, c.BatchSize, rng)
	if err != nil {
		return nil, err
	}
	defer s.close()

	order := rng.Perm(len(samples))
	next := 0
	imgs := make([][]uint8, c.BatchSize)
	lbls := make([]int, c.BatchSize)
	sched := TrainConfig{LearnRate: c.LearnRate, MinLearnRate: c.LearnRate / 10}
	start := time.Now()
	steps := 0
	for ; steps < c.Steps; steps++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if steps > 0 && time.Since(start) > c.MaxDuration {
			m.logger.Info("mnist: fine-tuning stopped at its time limit", "steps", steps, "limit", c.MaxDuration)
			break
		}
		for k := range imgs {
			if replay == nil || k < c.SamplesPerBatch {
				if next == len(order) {
					rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
					next = 0
				}
				imgs[k], lbls[k] = samples[order[next]], labels[order[next]]
				next++
				continue
			}
			i := rng.Intn(replay.Len())
			imgs[k], lbls[k] = replay.Pixels(i), int(replay.Labels[i])
		}
		loss, err := s.step(imgs, lbls, sched.learnRate(steps, c.Steps), !c.NoAugment)
		if err != nil {
			return nil, fmt.Errorf("mnist: fine-tuning step %d: %w", steps+1, err)
		}
		if req.Progress != nil {
			req.Progress(float64(steps+1) / float64(c.Steps))
		}
		if steps%50 == 0 {
			m.logger.Debug("mnist: fine-tuning", "step", steps+1, "loss", loss)
		}
	}
	opts := m.opts
	opts.Version = req.Version
	tuned, err := NewModel(s.weights(), &opts)
	if err != nil {
		return nil, err
	}
	m.logger.Info("mnist: fine-tuned", "round", req.Round, "version", tuned.Version(), "samples", len(samples), "steps", steps, "seconds", time.Since(start).Seconds())
	if req.Progress != nil {
		req.Progress(1)
	}
	return tuned, nil
}
