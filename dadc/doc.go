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
// Unless a comment says otherwise, every exported method is safe for
// concurrent use.
package dadc
