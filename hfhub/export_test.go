package hfhub

import (
	"context"
	"sync"
	"time"
)

// Test helpers shared by the internal (package hfhub) and external (package
// hfhub_test) tests; being in a _test.go file, they exist only in test builds.

// WaitRecorder replaces real waits in tests: its Sleep method, given as
// Options.Sleep, records each wait and returns at once. It is safe for
// concurrent use.
type WaitRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

// Sleep records d and returns ctx.Err().
func (w *WaitRecorder) Sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.waits = append(w.waits, d)
	w.mu.Unlock()
	return ctx.Err()
}

// Waits returns a copy of the waits recorded so far, in order.
func (w *WaitRecorder) Waits() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.waits...)
}
