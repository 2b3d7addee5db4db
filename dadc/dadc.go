package dadc

import (
	"context"
	"io"
	"time"
)

// Prediction is a model's answer for one input.
type Prediction struct {
	// Label is the predicted class, the argmax of Probabilities.
	Label int `json:"label"`
	// Probabilities holds one probability per class; they sum to 1.
	Probabilities []float64 `json:"probabilities"`
	// ModelVersion names the model that answered.
	ModelVersion string `json:"model_version"`
}

// Model classifies inputs of type In.
//
// Predict must be safe for concurrent use by many goroutines. Version must
// return the same string for the life of the model: a retrained model is a new
// Model value with a new version, never an old one mutated in place.
type Model[In any] interface {
	Predict(ctx context.Context, in In) (Prediction, error)
	Version() string
}

// BatchPredictor is an optional Model capability: predicting many inputs at
// once, faster than one by one. Safe for concurrent use.
type BatchPredictor[In any] interface {
	PredictBatch(ctx context.Context, ins []In) ([]Prediction, error)
}

// Example is a labelled input, for instance from a clean test set.
type Example[In any] struct {
	Input In
	Label int
}

// Evaluation is the result of scoring a model on labelled examples.
type Evaluation struct {
	// N is the number of examples scored.
	N int `json:"n"`
	// Accuracy is the fraction of examples whose prediction equals the label.
	Accuracy float64 `json:"accuracy"`
	// Confusion[label][predicted] counts examples; nil when the evaluator does not compute it.
	Confusion [][]int `json:"confusion,omitempty"`
}

// Evaluator is an optional Model capability: scoring the model on examples
// faster than the Loop could by calling Predict for each. Safe for concurrent use.
type Evaluator[In any] interface {
	Evaluate(ctx context.Context, examples []Example[In]) (Evaluation, error)
}

// TrainRequest is what the Loop asks of a Trainer at the end of a round.
type TrainRequest[In any] struct {
	// Round is the current round; the model it returns serves Round+1 if promoted.
	Round int
	// Version is the version string the trained model must report.
	Version string
	// Samples are the adversarial samples to learn from (held-out samples excluded).
	Samples []Sample[In]
	// Progress, if not nil, may be called from the training goroutine with a fraction in [0,1].
	Progress func(done float64)
}

// Trainer is an optional Model capability: producing a new, retrained model.
//
// Train must not change the receiver, which keeps serving predictions while
// Train runs; it returns a new Model. It must honour ctx cancellation. The Loop
// calls Train from one goroutine at a time.
type Trainer[In any] interface {
	Train(ctx context.Context, req TrainRequest[In]) (Model[In], error)
}

// Exporter is an optional Model capability: writing the model's weights in its
// native format (for instance safetensors), to save or publish them.
type Exporter interface {
	Export(ctx context.Context, w io.Writer) error
}

// SampleMeta is everything stored about a flagged sample except its input:
// the one record that metadata rows, log lines, queue records, API answers and
// webhook payloads share. Its JSON form (the tags below, in this order) is the
// on-disk metadata format; CreatedAt is written in RFC 3339 with sub-second
// digits when non-zero, and stores write it in UTC.
type SampleMeta struct {
	// ID is unique and stable; flag handlers use it to store the sample exactly once.
	ID string `json:"id"`
	// Label is the correct class, given by the person.
	Label int `json:"label"`
	// ModelLabel is the class the model predicted.
	ModelLabel int `json:"model_label"`
	// ModelProbabilities are the model's class probabilities for the input,
	// one per class.
	ModelProbabilities []float64 `json:"model_probabilities"`
	// ModelVersion names the model that was fooled.
	ModelVersion string `json:"model_version"`
	// Round is the round during which the sample was collected.
	Round int `json:"round"`
	// CreatedAt is when the sample was flagged (UTC).
	CreatedAt time.Time `json:"created_at"`
	// Session is an anonymous identifier of the person's session; may be empty.
	Session string `json:"session"`
}

// Sample is one adversarial example: an input that fooled the model, with the
// correct label a person gave and what the model said (the embedded
// SampleMeta). Its JSON form is the SampleMeta's; the input is left out
// because only a codec knows how to write it.
type Sample[In any] struct {
	SampleMeta
	// Input is what the model saw.
	Input In `json:"-"`
}

// Flagger persists flagged samples.
//
// Flag returns nil only once the sample is durable (for a local store: written
// and synced), so that nothing acknowledged is ever lost. It must be safe for
// concurrent use, and storing a sample whose ID is already stored must not
// duplicate it. Flag honours ctx; on error nothing is acknowledged.
type Flagger[In any] interface {
	Flag(ctx context.Context, s Sample[In]) error
}

// FlaggerFunc adapts a function to the Flagger interface.
type FlaggerFunc[In any] func(ctx context.Context, s Sample[In]) error

// Flag calls f(ctx, s).
func (f FlaggerFunc[In]) Flag(ctx context.Context, s Sample[In]) error { return f(ctx, s) }

// SampleSource is an optional Flagger capability: listing the samples already
// stored, so that a restarted Loop recovers its counts and training data.
type SampleSource[In any] interface {
	Samples(ctx context.Context) ([]Sample[In], error)
}

// Flusher is an optional Flagger capability: pushing anything buffered (for
// instance pending Hub uploads) before returning. Loop.Close calls it.
type Flusher interface {
	Flush(ctx context.Context) error
}

// PolicyState is what a RetrainPolicy sees when asked whether to retrain.
type PolicyState struct {
	// Round is the current round (0 for the first model).
	Round int
	// Flags is the number of adversarial samples collected in the current round.
	Flags int
	// Attempts is the number of non-fooling submissions in the current round.
	Attempts int
	// NewFlags is the number of adversarial samples collected since the
	// last retrain started (so not in its training set), or since the Loop
	// started when none has.
	NewFlags int
	// FlagsTotal is the number of adversarial samples collected in all rounds.
	FlagsTotal int
	// RoundStarted is when the current round began.
	RoundStarted time.Time
	// LastRetrain is when the last retrain started; zero if none has.
	LastRetrain time.Time
	// Now is the current time (from the Loop's clock).
	Now time.Time
}

// RetrainPolicy decides when the Loop starts a retrain. The Loop asks it after
// every flag and on a periodic tick, from one goroutine at a time, and never
// while a retrain runs. ShouldRetrain must not block.
type RetrainPolicy interface {
	ShouldRetrain(s PolicyState) bool
}

// PolicyFunc adapts a function to the RetrainPolicy interface.
type PolicyFunc func(s PolicyState) bool

// ShouldRetrain calls f(s).
func (f PolicyFunc) ShouldRetrain(s PolicyState) bool { return f(s) }
