// Package dadc is the generic core of dynamic adversarial data collection:
// people try to fool a Model; every input that fools it becomes a Sample that a
// Flagger stores durably; a RetrainPolicy decides when enough samples have
// arrived; the Loop then retrains the model in the background (through the
// optional Trainer capability), scores the candidate on a clean test set and on
// held-out adversarial samples, promotes it only when it passes the gate, and
// swaps it in atomically.
//
// The package is generic over the model's input type, so an image classifier,
// a text classifier or a tabular model fit alike. It imports only the standard
// library. Implementations of its interfaces live elsewhere: package mnist
// provides a Model, package flag provides Flaggers, and package dadctest
// provides test doubles and conformance suites for people who write their own.
//
// # Using the Loop
//
// A Loop takes its parts explicitly, with options where the zero value means
// the default:
//
//	loop, err := dadc.NewLoop[*image.Gray](model, flagger, dadc.EveryN(10), &dadc.Options[*image.Gray]{
//		Classes:   10,
//		CleanTest: clean, // the gate's clean test set
//		Logger:    logger,
//	})
//	if err != nil { ... }
//	defer loop.Close(ctx)
//
//	res, err := loop.Flag(ctx, img, label, session) // predicts, stores if fooled, may start a retrain
//	stats := loop.Stats()                           // counters and round history, JSON-ready
//
// Flag never waits for a retrain: retrains run in the background, one at a
// time, and a candidate serves only after it passes the gate (see Loop for
// rounds, coalescing and model ownership). Retrain policies: EveryN,
// EveryInterval, Any, All, Manual, or any PolicyFunc. Progress is observable
// through Stats and through events (Loop.Subscribe).
//
// # Writing your own parts
//
// A Model needs only Predict and Version; the Loop detects the optional
// capabilities Trainer, Evaluator and BatchPredictor by type assertion
// (Exporter is for applications that save or publish weights). A Flagger needs only Flag (FlaggerFunc adapts a function);
// SampleSource lets a restarted Loop recover its counts and training data,
// Flusher and io.Closer let Loop.Close push and release what it holds.
// Package dadctest has test doubles and the conformance suites TestModel and
// TestFlagger to check an implementation against these contracts;
// examples/custom-model plugs a non-image model into the whole loop.
//
// Unless a comment says otherwise, every exported method is safe for
// concurrent use.
package dadc
