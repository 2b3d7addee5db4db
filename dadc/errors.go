package dadc

import "errors"

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrInvalidLabel is returned when a flagged label is outside [0, classes).
	ErrInvalidLabel = errors.New("dadc: label out of range")
	// ErrClosed is returned by a Loop after Close.
	ErrClosed = errors.New("dadc: loop closed")
	// ErrRetrainInProgress is returned by Loop.Retrain when a retrain is already running.
	ErrRetrainInProgress = errors.New("dadc: a retrain is already running")
	// ErrNotTrainable is returned when retraining is asked of a model that does not implement Trainer.
	ErrNotTrainable = errors.New("dadc: model does not implement dadc.Trainer")
	// ErrNothingToTrain is returned by Loop.Retrain when no adversarial training samples exist yet.
	ErrNothingToTrain = errors.New("dadc: no adversarial samples to train on")
)
