package dadctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/advspace/advspace/dadc"
)

// FlaggerSuite checks a dadc.Flagger implementation against the contract.
// The zero value of every optional field means its default. Run it with Run
// (as subtests) or Verify (returning the violations).
type FlaggerSuite[In any] struct {
	// New returns a fresh flagger storing under dir (an empty directory the
	// suite owns; in-memory flaggers ignore it). Required.
	New func(dir string) (dadc.Flagger[In], error)
	// NewInput returns the i-th test input (i >= 0); different i should
	// give different inputs. Required.
	NewInput func(i int) In
	// EqualInput compares an input given to Flag with the one read back
	// through SampleSource. nil means reflect.DeepEqual.
	EqualInput func(a, b In) bool
	// Persistent says the flagger keeps samples across instances: after the
	// first instance is flushed and closed, a new one on the same dir must
	// list the same samples through SampleSource.
	Persistent bool
	// Classes is the number of classes used in test samples; 0 means 10.
	Classes int
}

type flaggerCheck[In any] struct {
	name  string
	check func(ctx context.Context, fs *FlaggerSuite[In], dir string) error
}

func flaggerChecks[In any]() []flaggerCheck[In] {
	return []flaggerCheck[In]{
		{"FlagAndList", checkFlagAndList[In]},
		{"Idempotent", checkIdempotent[In]},
		{"Concurrent", checkConcurrentFlag[In]},
		{"CancelledContext", checkFlagCancelled[In]},
		{"FlushAndClose", checkFlushClose[In]},
		{"Reopen", checkReopen[In]},
	}
}

// TestFlagger checks that the flaggers newFlagger returns meet the
// dadc.Flagger contract (and SampleSource, Flusher, io.Closer where
// implemented), using inputs from newInput. See FlaggerSuite.Run.
func TestFlagger[In any](t *testing.T, newFlagger func(t *testing.T, dir string) dadc.Flagger[In], newInput func(i int) In) {
	t.Helper()
	fs := &FlaggerSuite[In]{NewInput: newInput}
	for _, c := range flaggerChecks[In]() {
		t.Run(c.name, func(t *testing.T) {
			fs.New = func(dir string) (dadc.Flagger[In], error) { return newFlagger(t, dir), nil }
			if err := fs.validate(); err != nil {
				t.Fatal(err)
			}
			if err := c.check(t.Context(), fs, t.TempDir()); err != nil {
				t.Error(err)
			}
		})
	}
}

// Run runs every rule as a subtest, each on a fresh flagger in a fresh
// directory:
//
//   - Flag stores samples; SampleSource lists them with every field intact
//     (CreatedAt to the second, probabilities to 1e-6, inputs by EqualInput);
//   - flagging an ID again succeeds and stores nothing new;
//   - 8 goroutines flagging 160 samples, and re-flagging 5 shared ones
//     concurrently, all succeed and are stored exactly once (run with -race);
//   - Flag with a cancelled context returns an error wrapping context.Canceled;
//   - Flush (if Flusher) succeeds; Close (if io.Closer) succeeds, later
//     Flag calls fail, and a second Close returns nil;
//   - with Persistent, a new instance on the same directory lists the samples.
func (fs *FlaggerSuite[In]) Run(t *testing.T) {
	t.Helper()
	if err := fs.validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range flaggerChecks[In]() {
		t.Run(c.name, func(t *testing.T) {
			if err := c.check(t.Context(), fs, t.TempDir()); err != nil {
				t.Error(err)
			}
		})
	}
}

// Verify runs every rule of Run and returns the violations, joined, or nil.
// It creates and removes temporary directories.
func (fs *FlaggerSuite[In]) Verify(ctx context.Context) error {
	if err := fs.validate(); err != nil {
		return err
	}
	var errs []error
	for _, c := range flaggerChecks[In]() {
		dir, err := os.MkdirTemp("", "dadctest-flagger-*")
		if err != nil {
			return fmt.Errorf("dadctest: creating a temporary directory: %w", err)
		}
		if err := c.check(ctx, fs, dir); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
		_ = os.RemoveAll(dir)
	}
	return errors.Join(errs...)
}

func (fs *FlaggerSuite[In]) validate() error {
	if fs.New == nil {
		return errors.New("dadctest: FlaggerSuite.New is nil; it must return a fresh flagger")
	}
	if fs.NewInput == nil {
		return errors.New("dadctest: FlaggerSuite.NewInput is nil; it must return test inputs")
	}
	return nil
}

func (fs *FlaggerSuite[In]) classes() int {
	if fs.Classes > 0 {
		return fs.Classes
	}
	return 10
}

// sample returns the i-th test sample: hex ID (safe as a file name), labels
// in range, probabilities summing to 1, CreatedAt whole seconds in UTC.
func (fs *FlaggerSuite[In]) sample(i int) dadc.Sample[In] {
	c := fs.classes()
	probs := make([]float64, c)
	modelLabel := (i + 1) % c
	for k := range probs {
		probs[k] = 0.5 / float64(c)
	}
	probs[modelLabel] += 0.5
	return dadc.Sample[In]{Input: fs.NewInput(i), SampleMeta: dadc.SampleMeta{
		ID:                 fmt.Sprintf("%032x", 0xdadc0000+i),
		Label:              i % c,
		ModelLabel:         modelLabel,
		ModelProbabilities: probs,
		ModelVersion:       "conformance-v1",
		Round:              i % 3,
		CreatedAt:          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Session:            fmt.Sprintf("session-%d", i%4),
	}}
}

func (fs *FlaggerSuite[In]) open(dir string) (dadc.Flagger[In], error) {
	f, err := fs.New(dir)
	if err != nil {
		return nil, fmt.Errorf("creating the flagger: %w", err)
	}
	if f == nil {
		return nil, errors.New("the New func returned a nil flagger")
	}
	return f, nil
}

// shutdown flushes and closes f where it can.
func shutdown[In any](ctx context.Context, f dadc.Flagger[In]) error {
	var errs []error
	if fl, ok := f.(dadc.Flusher); ok {
		if err := fl.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("Flush: %w", err))
		}
	}
	if c, ok := f.(io.Closer); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("Close: %w", err))
		}
	}
	return errors.Join(errs...)
}

// listByID lists f's samples by ID, failing on a duplicate ID. ok is false
// when f is not a SampleSource.
func listByID[In any](ctx context.Context, f dadc.Flagger[In]) (byID map[string]dadc.Sample[In], ok bool, err error) {
	src, ok := f.(dadc.SampleSource[In])
	if !ok {
		return nil, false, nil
	}
	list, err := src.Samples(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("Samples: %w", err)
	}
	byID = make(map[string]dadc.Sample[In], len(list))
	for _, s := range list {
		if _, dup := byID[s.ID]; dup {
			return nil, true, fmt.Errorf("Samples lists ID %s twice; a flagger must store each ID once", s.ID)
		}
		byID[s.ID] = s
	}
	return byID, true, nil
}

func (fs *FlaggerSuite[In]) sameSample(want, got dadc.Sample[In]) error {
	switch {
	case got.Label != want.Label:
		return fmt.Errorf("field Label is %d, want %d", got.Label, want.Label)
	case got.ModelLabel != want.ModelLabel:
		return fmt.Errorf("field ModelLabel is %d, want %d", got.ModelLabel, want.ModelLabel)
	case got.ModelVersion != want.ModelVersion:
		return fmt.Errorf("field ModelVersion is %q, want %q", got.ModelVersion, want.ModelVersion)
	case got.Round != want.Round:
		return fmt.Errorf("field Round is %d, want %d", got.Round, want.Round)
	case !got.CreatedAt.Equal(want.CreatedAt):
		return fmt.Errorf("field CreatedAt is %s, want %s", got.CreatedAt, want.CreatedAt)
	case got.Session != want.Session:
		return fmt.Errorf("field Session is %q, want %q", got.Session, want.Session)
	case len(got.ModelProbabilities) != len(want.ModelProbabilities):
		return fmt.Errorf("field ModelProbabilities has %d values, want %d", len(got.ModelProbabilities), len(want.ModelProbabilities))
	}
	for i := range want.ModelProbabilities {
		if math.Abs(got.ModelProbabilities[i]-want.ModelProbabilities[i]) > 1e-6 {
			return fmt.Errorf("field ModelProbabilities[%d] is %v, want %v", i, got.ModelProbabilities[i], want.ModelProbabilities[i])
		}
	}
	equal := fs.EqualInput
	if equal == nil {
		equal = func(a, b In) bool { return reflect.DeepEqual(a, b) }
	}
	if !equal(want.Input, got.Input) {
		return errors.New("field Input differs from the one flagged")
	}
	return nil
}

// expectStored checks that f lists exactly want (when it is a SampleSource).
func (fs *FlaggerSuite[In]) expectStored(ctx context.Context, f dadc.Flagger[In], want []dadc.Sample[In]) error {
	byID, ok, err := listByID(ctx, f)
	if !ok || err != nil {
		return err
	}
	if len(byID) != len(want) {
		return fmt.Errorf("Samples lists %d samples, want %d", len(byID), len(want))
	}
	for _, w := range want {
		got, ok := byID[w.ID]
		if !ok {
			return fmt.Errorf("Samples does not list flagged sample %s", w.ID)
		}
		if err := fs.sameSample(w, got); err != nil {
			return fmt.Errorf("sample %s read back: %w", w.ID, err)
		}
	}
	return nil
}

func checkFlagAndList[In any](ctx context.Context, fs *FlaggerSuite[In], dir string) error {
	f, err := fs.open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(ctx, f) }()
	var want []dadc.Sample[In]
	for i := range 5 {
		s := fs.sample(i)
		if err := f.Flag(ctx, s); err != nil {
			return fmt.Errorf("Flag(sample %d): %w", i, err)
		}
		want = append(want, s)
	}
	return fs.expectStored(ctx, f, want)
}

func checkIdempotent[In any](ctx context.Context, fs *FlaggerSuite[In], dir string) error {
	f, err := fs.open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(ctx, f) }()
	a, b := fs.sample(0), fs.sample(1)
	for i, s := range []dadc.Sample[In]{a, b, a, a, b} {
		if err := f.Flag(ctx, s); err != nil {
			return fmt.Errorf("Flag call %d (ID %s): %w; flagging a stored ID again must succeed", i, s.ID, err)
		}
	}
	return fs.expectStored(ctx, f, []dadc.Sample[In]{a, b})
}

func checkConcurrentFlag[In any](ctx context.Context, fs *FlaggerSuite[In], dir string) error {
	f, err := fs.open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(ctx, f) }()
	const goroutines, each, shared = 8, 20, 5
	want := make([]dadc.Sample[In], 0, goroutines*each+shared)
	for i := range goroutines*each + shared {
		want = append(want, fs.sample(i))
	}
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for k := range each {
				if err := f.Flag(ctx, want[g*each+k]); err != nil {
					errs[g] = fmt.Errorf("concurrent Flag(sample %d): %w", g*each+k, err)
					return
				}
				if k%4 == 0 { // everyone re-flags the shared samples at about the same time
					s := want[goroutines*each+(k/4)%shared]
					if err := f.Flag(ctx, s); err != nil {
						errs[g] = fmt.Errorf("concurrent Flag(shared sample %s): %w", s.ID, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.expectStored(ctx, f, want)
}

func checkFlagCancelled[In any](ctx context.Context, fs *FlaggerSuite[In], dir string) error {
	f, err := fs.open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(ctx, f) }()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = f.Flag(cctx, fs.sample(0))
	if err == nil {
		return errors.New("Flag with a cancelled context returned nil; it must honour ctx and acknowledge nothing")
	}
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("Flag with a cancelled context returned %v, want an error wrapping context.Canceled", err)
	}
	// The flagger must still work.
	if err := f.Flag(ctx, fs.sample(1)); err != nil {
		return fmt.Errorf("Flag after a cancelled call: %w", err)
	}
	return nil
}

func checkFlushClose[In any](ctx context.Context, fs *FlaggerSuite[In], dir string) error {
	f, err := fs.open(dir)
	if err != nil {
		return err
	}
	_, isFlusher := f.(dadc.Flusher)
	closer, isCloser := f.(io.Closer)
	if !isFlusher && !isCloser {
		return nil
	}
	if err := f.Flag(ctx, fs.sample(0)); err != nil {
		return fmt.Errorf("Flag: %w", err)
	}
	if err := shutdown(ctx, f); err != nil {
		return err
	}
	if isCloser {
		if err := f.Flag(ctx, fs.sample(1)); err == nil {
			return errors.New("Flag after Close returned nil; a closed flagger must refuse samples it cannot store")
		}
		if err := closer.Close(); err != nil {
			return fmt.Errorf("a second Close returned %v; Close must be idempotent", err)
		}
	}
	return nil
}

func checkReopen[In any](ctx context.Context, fs *FlaggerSuite[In], dir string) error {
	if !fs.Persistent {
		return nil
	}
	f, err := fs.open(dir)
	if err != nil {
		return err
	}
	if _, ok := f.(dadc.SampleSource[In]); !ok {
		_ = shutdown(ctx, f)
		return errors.New("FlaggerSuite.Persistent is set but the flagger does not implement dadc.SampleSource, so nothing can be read back")
	}
	want := []dadc.Sample[In]{fs.sample(0), fs.sample(1), fs.sample(2)}
	for _, s := range want {
		if err := f.Flag(ctx, s); err != nil {
			_ = shutdown(ctx, f)
			return fmt.Errorf("Flag: %w", err)
		}
	}
	if err := shutdown(ctx, f); err != nil {
		return err
	}
	g, err := fs.open(dir)
	if err != nil {
		return fmt.Errorf("reopening: %w", err)
	}
	defer func() { _ = shutdown(ctx, g) }()
	if err := fs.expectStored(ctx, g, want); err != nil {
		return fmt.Errorf("after reopening: %w", err)
	}
	// Flagging a stored ID on the new instance must not duplicate it.
	if err := g.Flag(ctx, want[0]); err != nil {
		return fmt.Errorf("re-flagging a stored ID after reopening: %w", err)
	}
	if err := fs.expectStored(ctx, g, want); err != nil {
		return fmt.Errorf("after re-flagging a stored ID on the reopened flagger: %w", err)
	}
	return nil
}
