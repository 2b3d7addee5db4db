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
	// ErrNothingToTrain is returned by Loop.Retrain when no stored sample may train yet
	// (none stored, all held out, or none that Options.Trainable accepts).
	ErrNothingToTrain = errors.New("dadc: no adversarial samples to train on")

	// ErrNoModel is returned by ModelStore.Latest when the store holds no model yet.
	ErrNoModel = errors.New("dadc: the model store holds no model")
	// ErrModelNotFound is returned by ModelStore.Open for a version the store does not hold.
	ErrModelNotFound = errors.New("dadc: model version not in the store")
	// ErrNotExportable is returned when a model must be stored but does not implement Exporter.
	ErrNotExportable = errors.New("dadc: model does not implement dadc.Exporter")
	// ErrNoLoader is returned by NewLoop when the store holds a model but Options.Loader is nil.
	ErrNoLoader = errors.New("dadc: the model store holds a model but Options.Loader is nil")

	// ErrUnknownSample: no stored sample has this ID (Validations).
	ErrUnknownSample = errors.New("dadc: no sample with this id")
	// ErrOwnSample: a session tried to validate its own sample.
	ErrOwnSample = errors.New("dadc: you cannot validate your own sample")
	// ErrNotOwner: a session tried to retract a sample it did not write.
	ErrNotOwner = errors.New("dadc: only the session that flagged a sample can retract it")
	// ErrAlreadyValidated: a session gave a second verdict on the same sample, or retracted twice.
	ErrAlreadyValidated = errors.New("dadc: you already validated this sample")
	// ErrInvalidRecord: a validation record is malformed (unknown kind or verdict, no session, label out of range).
	ErrInvalidRecord = errors.New("dadc: invalid validation record")
)
