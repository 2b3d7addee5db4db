package dadc

import (
	"slices"
	"time"
)

// Stats is a snapshot of a Loop's counters and round history, taken by
// Loop.Stats. It is a copy: changing it changes nothing in the Loop. The JSON
// form is what a web app serves (for instance as /api/stats).
type Stats struct {
	// ModelVersion is the version of the model currently served.
	ModelVersion string `json:"model_version"`
	// Round is the current round (0 for the first model).
	Round int `json:"round"`
	// FlaggedTotal counts adversarial samples stored, in all rounds.
	FlaggedTotal int `json:"flagged_total"`
	// Attempts counts submissions the model classified correctly, in all rounds.
	Attempts int `json:"attempts"`
	// ModelErrorRate is FlaggedTotal / (FlaggedTotal + Attempts), 0 when both are 0.
	ModelErrorRate float64 `json:"model_error_rate"`
	// PerLabel[c] counts adversarial samples whose correct label is c; its length is the classes argument of NewLoop.
	PerLabel []int `json:"per_label"`
	// TrainingPool counts the adversarial samples a retrain would learn from.
	TrainingPool int `json:"training_pool"`
	// HeldOut counts the adversarial samples held out of training (see Options.HoldoutEvery).
	HeldOut int `json:"held_out"`
	// Retraining reports whether a retrain is running.
	Retraining bool `json:"retraining"`
	// RetrainProgress is the running retrain's last reported progress in [0,1]
	// (see TrainRequest.Progress); 0 when none runs or the trainer reports nothing.
	RetrainProgress float64 `json:"retrain_progress"`
	// EventsDropped counts events that subscribers missed because their buffer was full.
	EventsDropped uint64 `json:"events_dropped"`
	// ReferenceCleanAccuracy is the gate's fixed clean reference: the
	// configured figure, or the first model's measured accuracy (nil until
	// the first retrain measures it, or without a clean test set).
	ReferenceCleanAccuracy *float64 `json:"reference_clean_accuracy,omitempty"`
	// Rounds is the round history, oldest first; Rounds[i].Round == i.
	Rounds []RoundStats `json:"rounds"`
}

// RoundStats describes one round: the time one model served. A round
// closes only when a retrain's candidate is promoted; a rejected or failed
// retrain leaves the round open and its flags keep counting.
type RoundStats struct {
	// Round is the round number.
	Round int `json:"round"`
	// ModelVersion is the model that served the round.
	ModelVersion string `json:"model_version"`
	// Flags counts adversarial samples collected in the round.
	Flags int `json:"flags"`
	// Attempts counts correctly classified submissions in the round.
	Attempts int `json:"attempts"`
	// ModelErrorRate is Flags / (Flags + Attempts), 0 when both are 0.
	ModelErrorRate float64 `json:"model_error_rate"`
	// Retrains lists the round's retrains, oldest first; only the last can
	// have been promoted (which closed the round).
	Retrains []RetrainStats `json:"retrains,omitempty"`

	// The fields below repeat the round's last retrain (see Retrains).

	// Candidate is the version of the round's last trained candidate.
	Candidate string `json:"candidate,omitempty"`
	// TrainSamples is how many adversarial samples it was trained on (all
	// rounds so far, held-out samples excluded).
	TrainSamples int `json:"train_samples,omitempty"`
	// HeldOutSamples is how many of the round's held-out adversarial samples scored it.
	HeldOutSamples int `json:"held_out_samples,omitempty"`
	// CleanAccuracy is its accuracy on the clean test set; nil until
	// evaluated or when there is no clean test set.
	CleanAccuracy *float64 `json:"clean_accuracy"`
	// AdversarialAccuracy is its accuracy on the round's held-out
	// adversarial samples; nil until evaluated or when none are held out.
	AdversarialAccuracy *float64 `json:"adversarial_accuracy"`
	// BaselineCleanAccuracy is the serving model's clean accuracy (for
	// comparison; the default gate compares with the fixed reference).
	BaselineCleanAccuracy *float64 `json:"baseline_clean_accuracy,omitempty"`
	// Promoted reports whether the candidate passed the gate and serves the next round.
	Promoted bool `json:"promoted"`
	// Error says why the last retrain failed or its candidate was rejected; empty otherwise.
	Error string `json:"error,omitempty"`

	// HeldOutReference is, once the round has closed, the promoted model's
	// accuracy on the round's frozen held-out set: later candidates must
	// not fall more than the gate's tolerance below it.
	HeldOutReference *float64 `json:"held_out_reference,omitempty"`
	// Recovered marks a round reconstructed from stored samples (no stored
	// history): only its Flags, ModelVersion and times are known.
	Recovered bool `json:"recovered,omitempty"`
	// StartedAt is when the round opened.
	StartedAt time.Time `json:"started_at"`
	// EndedAt is when the round closed (its candidate was promoted); nil while open.
	EndedAt *time.Time `json:"ended_at,omitempty"`
}

// Retrain decisions (RetrainStats.Decision).
const (
	DecisionRunning  = "running"
	DecisionPromoted = "promoted"
	DecisionRejected = "rejected"
	DecisionFailed   = "failed"
)

// RetrainStats describes one retrain: the candidate, its figures and the
// gate's decision with its reasons.
type RetrainStats struct {
	// Candidate is the trained model's version.
	Candidate string `json:"candidate"`
	// Parent is the serving model it was trained from.
	Parent string `json:"parent"`
	// StartedAt and EndedAt bound the retrain (training, scoring, storing).
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// TrainSamples is how many adversarial samples it was trained on.
	TrainSamples int `json:"train_samples"`
	// HeldOutSamples is how many of the round's held-out samples scored it.
	HeldOutSamples int `json:"held_out_samples"`
	// CleanAccuracy is the candidate's clean accuracy (nil: not measured).
	CleanAccuracy *float64 `json:"clean_accuracy,omitempty"`
	// AdversarialAccuracy is the candidate's accuracy on the round's held-out samples.
	AdversarialAccuracy *float64 `json:"adversarial_accuracy,omitempty"`
	// Gate holds every figure the gate saw (nil when the retrain failed before the gate).
	Gate *GateInput `json:"gate,omitempty"`
	// Decision is DecisionRunning, DecisionPromoted, DecisionRejected or DecisionFailed.
	Decision string `json:"decision"`
	// Reasons are the gate's reasons, with numbers.
	Reasons []string `json:"reasons,omitempty"`
	// Error says why a failed retrain failed.
	Error string `json:"error,omitempty"`
}

// errorRate returns flags/(flags+attempts), or 0 when both are 0.
func errorRate(flags, attempts int) float64 {
	if flags+attempts == 0 {
		return 0
	}
	return float64(flags) / float64(flags+attempts)
}

// clone returns a deep copy of r (its pointers point to fresh values).
func (r RoundStats) clone() RoundStats {
	r.CleanAccuracy = clonePtr(r.CleanAccuracy)
	r.AdversarialAccuracy = clonePtr(r.AdversarialAccuracy)
	r.BaselineCleanAccuracy = clonePtr(r.BaselineCleanAccuracy)
	r.EndedAt = clonePtr(r.EndedAt)
	r.HeldOutReference = clonePtr(r.HeldOutReference)
	if r.Retrains != nil {
		rs := make([]RetrainStats, len(r.Retrains))
		for i, t := range r.Retrains {
			rs[i] = t.clone()
		}
		r.Retrains = rs
	}
	r.ModelErrorRate = errorRate(r.Flags, r.Attempts)
	return r
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// clone returns a deep copy of t.
func (t RetrainStats) clone() RetrainStats {
	t.EndedAt = clonePtr(t.EndedAt)
	t.CleanAccuracy = clonePtr(t.CleanAccuracy)
	t.AdversarialAccuracy = clonePtr(t.AdversarialAccuracy)
	if t.Gate != nil {
		g := *t.Gate
		g.Clean = clonePtr(g.Clean)
		g.Earlier = slices.Clone(g.Earlier)
		t.Gate = &g
	}
	t.Reasons = slices.Clone(t.Reasons)
	return t
}
