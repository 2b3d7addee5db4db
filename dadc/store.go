package dadc

import (
	"context"
	"io"
	"time"
)

// ModelCard describes a stored model: where it comes from and why it was
// promoted. It is written next to the model's weights.
type ModelCard struct {
	// Version is the model's version (Model.Version).
	Version string `json:"version"`
	// Round is the first round the model serves (0 for the first model).
	Round int `json:"round"`
	// Parent is the version of the model it was trained from; empty for the first model.
	Parent string `json:"parent,omitempty"`
	// TrainSamples is how many adversarial samples it was trained on.
	TrainSamples int `json:"train_samples"`
	// HeldOutSamples is how many held-out adversarial samples the gate scored it on.
	HeldOutSamples int `json:"held_out_samples"`
	// CleanAccuracy is its accuracy on the clean test set (nil when not measured).
	CleanAccuracy *float64 `json:"clean_accuracy,omitempty"`
	// ReferenceCleanAccuracy is the fixed clean reference the gate compared against.
	ReferenceCleanAccuracy *float64 `json:"reference_clean_accuracy,omitempty"`
	// AdversarialAccuracy is its accuracy on the held-out adversarial samples
	// of the round it closed (nil when none were held out).
	AdversarialAccuracy *float64 `json:"adversarial_accuracy,omitempty"`
	// Reasons are the gate's reasons for promoting it, with their numbers.
	Reasons []string `json:"reasons,omitempty"`
	// CreatedAt is when it was promoted (UTC).
	CreatedAt time.Time `json:"created_at"`
}

// ModelStore keeps promoted models durably, so that a restarted Loop serves
// the latest one, and keeps older versions for rollback (as raft's
// SnapshotStore keeps snapshots).
//
// Concurrency: all methods are safe for concurrent use. The Loop calls Save
// from one goroutine at a time; Latest, Open and List may run at any time
// (for instance an HTTP handler serving the current model) and see either
// the state before a Save or after it, never a partly written model.
type ModelStore interface {
	// Save stores a model: write is called once with a writer for the
	// model's weights (typically Exporter.Export), and card is stored with
	// them. Save returns nil only once both are durable; on error (from
	// write, ctx or the storage) nothing is stored. Saving a version that is
	// already stored is an error.
	Save(ctx context.Context, card ModelCard, write func(w io.Writer) error) error
	// Latest returns the card of the most recently saved model, or an error
	// wrapping ErrNoModel when the store is empty.
	Latest(ctx context.Context) (ModelCard, error)
	// Open returns the weights and card of a stored version, or an error
	// wrapping ErrModelNotFound. The caller closes the reader.
	Open(ctx context.Context, version string) (io.ReadCloser, ModelCard, error)
	// List returns the cards of the stored models, oldest first.
	List(ctx context.Context) ([]ModelCard, error)
}

// History is the Loop's durable round history: what Stats shows, plus the
// frozen held-out sets the gate checks later candidates against.
type History struct {
	// ReferenceCleanAccuracy is the gate's fixed clean reference (nil until measured).
	ReferenceCleanAccuracy *float64 `json:"reference_clean_accuracy,omitempty"`
	// Rounds is the round history, oldest first.
	Rounds []RoundStats `json:"rounds"`
	// HeldOutSets are the held-out sets of closed rounds, frozen at promotion.
	HeldOutSets []HeldOutSet `json:"held_out_sets,omitempty"`
	// SavedAt is when the history was written (UTC).
	SavedAt time.Time `json:"saved_at"`
}

// HeldOutSet is a closed round's held-out adversarial samples, frozen when
// the round's retrain was promoted, with the promoted model's score on them:
// the fixed reference that later candidates must not fall below (by more
// than the gate's tolerance).
type HeldOutSet struct {
	// Round is the round the samples were collected in.
	Round int `json:"round"`
	// IDs are the samples' IDs.
	IDs []string `json:"ids"`
	// Correct is how many of them the promoted model got right.
	Correct int `json:"correct"`
}

// HistoryStore is an optional ModelStore capability: keeping the Loop's
// round history. SaveHistory replaces the stored history atomically and
// returns once it is durable; LoadHistory returns (nil, nil) when none is
// stored. Safe for concurrent use; the Loop calls SaveHistory from one
// goroutine at a time.
type HistoryStore interface {
	SaveHistory(ctx context.Context, h *History) error
	LoadHistory(ctx context.Context) (*History, error)
}

// ModelLoader turns stored weights back into a Model (the inverse of
// Exporter); the model package provides one. Load must return a model whose
// Version is card.Version. Safe for concurrent use.
type ModelLoader[In any] interface {
	Load(ctx context.Context, card ModelCard, r io.Reader) (Model[In], error)
}

// LoaderFunc adapts a function to the ModelLoader interface.
type LoaderFunc[In any] func(ctx context.Context, card ModelCard, r io.Reader) (Model[In], error)

// Load calls f(ctx, card, r).
func (f LoaderFunc[In]) Load(ctx context.Context, card ModelCard, r io.Reader) (Model[In], error) {
	return f(ctx, card, r)
}
