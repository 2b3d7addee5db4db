package dadc

import "time"

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
	// PerLabel[c] counts adversarial samples whose correct label is c; its length is Options.Classes.
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
	// Rounds is the round history, oldest first; Rounds[i].Round == i.
	Rounds []RoundStats `json:"rounds"`
}

// RoundStats describes one round: the flags collected while it was open and,
// once it has closed, the retrain that its closing started.
type RoundStats struct {
	// Round is the round number.
	Round int `json:"round"`
	// ModelVersion is the model that served the round. A round opens when a
	// retrain starts, while the previous model still serves; if that retrain's
	// candidate is promoted, ModelVersion becomes the candidate's version.
	// Samples record the exact model that each of them fooled.
	ModelVersion string `json:"model_version"`
	// Flags counts adversarial samples collected in the round.
	Flags int `json:"flags"`
	// Attempts counts correctly classified submissions in the round.
	Attempts int `json:"attempts"`
	// ModelErrorRate is Flags / (Flags + Attempts), 0 when both are 0.
	ModelErrorRate float64 `json:"model_error_rate"`
	// Candidate is the version of the model trained when the round closed.
	Candidate string `json:"candidate,omitempty"`
	// TrainSamples is how many adversarial samples the candidate was trained on
	// (all rounds up to and including this one, held-out samples excluded).
	TrainSamples int `json:"train_samples,omitempty"`
	// HeldOutSamples is how many held-out adversarial samples scored the candidate.
	HeldOutSamples int `json:"held_out_samples,omitempty"`
	// CleanAccuracy is the candidate's accuracy on the clean test set; nil
	// until evaluated or when there is no clean test set.
	CleanAccuracy *float64 `json:"clean_accuracy"`
	// AdversarialAccuracy is the candidate's accuracy on the held-out
	// adversarial samples; nil until evaluated or when none are held out.
	AdversarialAccuracy *float64 `json:"adversarial_accuracy"`
	// BaselineCleanAccuracy is the serving model's clean accuracy the gate compared against.
	BaselineCleanAccuracy *float64 `json:"baseline_clean_accuracy,omitempty"`
	// Promoted reports whether the candidate passed the gate and now serves.
	Promoted bool `json:"promoted"`
	// Error says why the retrain failed or the candidate was rejected; empty otherwise.
	Error string `json:"error,omitempty"`
	// Recovered marks a round reconstructed from stored samples when the Loop
	// started: only its Flags, ModelVersion and times are known.
	Recovered bool `json:"recovered,omitempty"`
	// StartedAt is when the round opened.
	StartedAt time.Time `json:"started_at"`
	// EndedAt is when the round closed (its retrain started); nil while open.
	EndedAt *time.Time `json:"ended_at,omitempty"`
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
