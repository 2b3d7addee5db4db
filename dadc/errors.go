package dadc

import "errors"

// Sentinel errors of the model store and the gate. (The Loop's own sentinels
// are declared next to the Loop's core types.)
var (
	// ErrNoModel is returned by ModelStore.Latest when the store holds no model yet.
	ErrNoModel = errors.New("dadc: the model store holds no model")
	// ErrModelNotFound is returned by ModelStore.Open for a version the store does not hold.
	ErrModelNotFound = errors.New("dadc: model version not in the store")
	// ErrNotExportable is returned when a model must be stored but does not implement Exporter.
	ErrNotExportable = errors.New("dadc: model does not implement dadc.Exporter")
	// ErrNoLoader is returned by NewLoop when the store holds a model but Options.Loader is nil.
	ErrNoLoader = errors.New("dadc: the model store holds a model but Options.Loader is nil")
)
