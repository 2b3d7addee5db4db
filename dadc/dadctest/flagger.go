package dadctest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/internal/backoff"
)

// FlaggerScript scripts a ScriptedFlagger's faults. The zero value injects none.
type FlaggerScript[In any] struct {
	// FailCalls lists Flag calls (1-based, in the order they start) that fail with ErrInjected.
	FailCalls []int
	// FailProbability is the chance in [0,1] that a call fails with
	// ErrInjected, drawn from a RNG seeded with Seed (reproducible for a
	// given order of calls).
	FailProbability float64
	Seed            uint64
	// Delay makes every Flag wait that long before storing (honouring ctx).
	Delay time.Duration
	// Hook, if set, runs at the start of every Flag with the call number; an
	// error fails the call (nothing stored). It may block, to hold a flag in flight.
	Hook func(ctx context.Context, call int, s dadc.Sample[In]) error
	// Preload is stored before any call, as if flagged by an earlier process.
	Preload []dadc.Sample[In]
	// SamplesErr, if set, is returned by Samples (a store that cannot be read).
	SamplesErr error
	// FlushErr, if set, is returned by Flush.
	FlushErr error
}

// ScriptedFlagger is an in-memory dadc.Flagger and dadc.SampleSource (and
// dadc.Flusher and io.Closer) with fault injection. It stores each ID once and
// records every call for assertions. Safe for concurrent use.
type ScriptedFlagger[In any] struct {
	script FlaggerScript[In]

	mu         sync.Mutex
	rng        *rand.Rand
	calls      int
	failures   int
	duplicates int
	stored     []dadc.Sample[In]
	index      map[string]int
	flushes    int
	closed     bool
}

var (
	_ dadc.Flagger[int]      = (*ScriptedFlagger[int])(nil)
	_ dadc.SampleSource[int] = (*ScriptedFlagger[int])(nil)
	_ dadc.Flusher           = (*ScriptedFlagger[int])(nil)
)

// NewFlagger returns a ScriptedFlagger following script (nil: no faults).
func NewFlagger[In any](script *FlaggerScript[In]) *ScriptedFlagger[In] {
	f := &ScriptedFlagger[In]{index: map[string]int{}}
	if script != nil {
		f.script = *script
		f.script.FailCalls = slices.Clone(script.FailCalls)
	}
	f.rng = rand.New(rand.NewPCG(f.script.Seed, 0x9e3779b97f4a7c15))
	for _, s := range f.script.Preload {
		f.storeLocked(s)
	}
	return f
}

// Flag stores s unless a fault is injected or ctx is done. Storing an ID
// already stored succeeds without duplicating it.
func (f *ScriptedFlagger[In]) Flag(ctx context.Context, s dadc.Sample[In]) error {
	f.mu.Lock()
	f.calls++
	call := f.calls
	closed := f.closed
	fail := slices.Contains(f.script.FailCalls, call) ||
		(f.script.FailProbability > 0 && f.rng.Float64() < f.script.FailProbability)
	f.mu.Unlock()

	err := func() error {
		if closed {
			return ErrFlaggerClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.script.Hook != nil {
			if err := f.script.Hook(ctx, call, s); err != nil {
				return err
			}
		}
		if err := backoff.Sleep(ctx, f.script.Delay); err != nil {
			return err
		}
		if fail {
			return fmt.Errorf("flag call %d: %w", call, ErrInjected)
		}
		if s.ID == "" {
			return errors.New("dadctest: sample has an empty ID")
		}
		return nil
	}()

	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.failures++
		return err
	}
	if f.closed {
		f.failures++
		return ErrFlaggerClosed
	}
	f.storeLocked(s)
	return nil
}

func (f *ScriptedFlagger[In]) storeLocked(s dadc.Sample[In]) {
	if _, ok := f.index[s.ID]; ok {
		f.duplicates++
		return
	}
	s.ModelProbabilities = slices.Clone(s.ModelProbabilities)
	f.index[s.ID] = len(f.stored)
	f.stored = append(f.stored, s)
}

// Samples returns every stored sample in storage order (SamplesErr if scripted).
func (f *ScriptedFlagger[In]) Samples(ctx context.Context) ([]dadc.Sample[In], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.script.SamplesErr != nil {
		return nil, f.script.SamplesErr
	}
	return f.Stored(), nil
}

// Flush counts the call and returns FlushErr.
func (f *ScriptedFlagger[In]) Flush(ctx context.Context) error {
	f.mu.Lock()
	f.flushes++
	f.mu.Unlock()
	if f.script.FlushErr != nil {
		return f.script.FlushErr
	}
	return ctx.Err()
}

// Close makes later Flag calls fail with ErrFlaggerClosed. It is idempotent.
func (f *ScriptedFlagger[In]) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Stored returns a copy of the stored samples, in storage order.
func (f *ScriptedFlagger[In]) Stored() []dadc.Sample[In] {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]dadc.Sample[In], len(f.stored))
	for i, s := range f.stored {
		s.ModelProbabilities = slices.Clone(s.ModelProbabilities)
		out[i] = s
	}
	return out
}

// Len returns the number of stored samples.
func (f *ScriptedFlagger[In]) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored)
}

// Has reports whether a sample with id is stored.
func (f *ScriptedFlagger[In]) Has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.index[id]
	return ok
}

// Calls counts Flag calls, failed or not.
func (f *ScriptedFlagger[In]) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Failures counts Flag calls that returned an error.
func (f *ScriptedFlagger[In]) Failures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures
}

// Duplicates counts successful Flag calls whose ID was already stored.
func (f *ScriptedFlagger[In]) Duplicates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.duplicates
}

// Flushes counts Flush calls.
func (f *ScriptedFlagger[In]) Flushes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flushes
}

// Closed reports whether Close was called.
func (f *ScriptedFlagger[In]) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Clock is a manual clock for dadc.Options.Now. Safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock showing start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Sequence returns a concurrency-safe generator of IDs prefix-000001,
// prefix-000002, ..., for dadc.Options.NewID in deterministic tests.
func Sequence(prefix string) func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("%s-%06d", prefix, n)
	}
}
