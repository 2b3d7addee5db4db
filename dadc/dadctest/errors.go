package dadctest

import "errors"

// Sentinel errors of the doubles. Callers match them with errors.Is.
var (
	// ErrInjected is the error of a fault injected by ScriptedFlagger.
	ErrInjected = errors.New("dadctest: injected fault")
	// ErrFlaggerClosed is returned by ScriptedFlagger.Flag after Close.
	ErrFlaggerClosed = errors.New("dadctest: flagger closed")
	// ErrModelClosed is returned by FakeModel.Predict after Close.
	ErrModelClosed = errors.New("dadctest: model used after Close")
	// ErrNoTrainFunc is returned by FakeModel.Train when TrainFunc is nil.
	ErrNoTrainFunc = errors.New("dadctest: FakeModel.TrainFunc is nil; set it to script training")
)

// errInjected is the write failure StoreSuite injects into a store's file
// system to check that a failed Save leaves no partial version.
var errInjected = errors.New("dadctest: injected write failure")
