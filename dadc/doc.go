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
// A Loop takes its parts and the number of classes explicitly, with options
// where nil and every zero field mean the defaults:
//
//	store, err := dadc.NewLocalStore(filepath.Join(dataDir, "models"), &dadc.LocalStoreOptions{WeightsName: "model.safetensors"})
//	if err != nil { ... }
//	loop, err := dadc.NewLoop[*image.Gray](model, flagger, dadc.EveryN(25), 10, &dadc.Options[*image.Gray]{
//		CleanTest: clean,              // the gate's clean test set
//		Store:     store,              // promoted models and the round history survive restarts
//		Loader:    mnist.Loader(opts), // how a stored model comes back
//		Logger:    logger,
//	})
//	if err != nil { ... }
//	defer flagger.Close() // runs second: the flagger outlives the Loop
//	defer loop.Close(ctx) // runs first: stops the Loop and flushes the flagger
//
//	res, err := loop.Flag(ctx, img, label, session) // predicts, stores if fooled, may start a retrain
//	stats := loop.Stats()                           // counters and round history, JSON-ready
//
// Flag never waits for a retrain: retrains run in the background, one at a
// time, and a candidate serves only after it passes the gate and is stored
// (see Loop for rounds, coalescing and model ownership). A round is the time
// one model serves: only a promotion starts the next one.
//
// # The gate
//
// NewGate, the default Gate, promotes a candidate only when its clean
// accuracy stays within a budget of a fixed reference (never ratcheting), it
// beats the serving model on the round's held-out fooling samples by more
// than noise (a one-sided exact McNemar test), and no earlier round's frozen
// held-out set falls by more than a tolerance. Every decision carries its
// reasons with numbers, in Stats, in events and in the log. Any GateFunc can
// replace it.
//
// # Durability
//
// A ModelStore (LocalStore, a folder, by default) keeps every promoted model,
// written through the model's Exporter atomically before it serves, with a
// ModelCard, and keeps older versions for rollback; if it is also a
// HistoryStore it keeps the round history. A restarted Loop serves the latest
// stored model (through Options.Loader) and shows the same Stats. Retrain policies: EveryN,
// EveryInterval, Any, All, Manual, or any PolicyFunc. Progress is observable
// through Stats and through events (Loop.Subscribe).
//
// # Writing your own parts
//
// A Model needs only Predict and Version; the Loop detects the optional
// capabilities Trainer, Evaluator and BatchPredictor by type assertion
// (Exporter is for applications that save or publish weights). A Flagger
// needs only Flag (FlaggerFunc adapts a function); SampleSource lets a
// restarted Loop recover its counts and training data, and Flusher lets
// Loop.Close push what it buffers. A ModelStore keeps promoted models and,
// as a HistoryStore, the round history. Package dadctest has test doubles and
// the conformance suites TestModel, TestFlagger and TestModelStore to check
// an implementation against these contracts;
// examples/custom-model plugs a non-image model into the whole loop.
//
// # Closing
//
// One rule holds across the module: whoever constructs a value closes it,
// after everything that uses it, so a program closes in the reverse order of
// construction. Giving a value to a constructor lends it; it never transfers
// ownership of something that has a Close method, with one exception stated
// here: models. Loop.Close stops the Loop and flushes its Flagger (if it is a
// Flusher) but does not close it; the caller that built the Flagger closes it
// after Loop.Close. Close methods are idempotent: a second call returns nil.
//
// Models are handed over, because only the Loop knows when the last call on
// a replaced model has returned: the Loop closes (if it is an io.Closer) the
// model given to NewLoop and every model its Trainer returns, once no call
// runs on it (see Loop).
//
// Unless a comment says otherwise, every exported method is safe for
// concurrent use.
package dadc
