// Package dadctest provides test doubles and conformance suites for code that
// plugs into package dadc, in the spirit of net/http/httptest and
// testing/slogtest.
//
// Doubles:
//   - FakeModel: a configurable dadc.Model for any input type, with a
//     scriptable Train (func, delay, error), an Evaluate, and checks that it is
//     never used after Close.
//   - LookupModel: a small, genuinely trainable model for ints: it predicts a
//     base rule and memorises the corrections it is trained on.
//   - PredictOnly and WithBatch strip a model down to fewer capabilities.
//   - ScriptedFlagger: an in-memory dadc.Flagger and dadc.SampleSource with
//     fault injection (fail chosen calls, fail at random with a seeded RNG,
//     delay, a hook), deduplication by ID, and accessors for assertions.
//   - Clock: a manual clock for Options.Now.
//
// Conformance suites: TestModel and TestFlagger run the contract of
// dadc.Model and dadc.Flagger (and their optional capabilities) against an
// implementation, as subtests; VerifyModel and VerifyFlagger return the
// violations as an error instead, for use outside a test.
//
// Closing follows the module's rule: whoever constructs a value closes it.
// The suites close (after a Flush) every flagger their New func returns, and
// nothing else; a double never closes what it was given.
//
// Everything here is meant for tests: the doubles keep everything in memory.
package dadctest
