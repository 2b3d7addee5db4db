package flag

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

var errUnavailable = errors.New("503 service unavailable")

// webhook is the next handler of most Outbox tests: dadctest's scripted
// flagger, down (failing with errUnavailable) while down is set, and failing
// a seeded fraction of calls.
func webhook(seed uint64, failRate float64, down *atomic.Bool) *dadctest.ScriptedFlagger[*image.Gray] {
	return dadctest.NewFlagger(&dadctest.FlaggerScript[*image.Gray]{
		FailProbability: failRate, Seed: seed,
		Hook: func(context.Context, int, dadc.Sample[*image.Gray]) error {
			if down != nil && down.Load() {
				return fmt.Errorf("webhook: %w", errUnavailable)
			}
			return nil
		},
	})
}

func storedIDs(f *dadctest.ScriptedFlagger[*image.Gray]) []string {
	var out []string
	for _, s := range f.Stored() {
		out = append(out, s.ID)
	}
	return out
}

func fastOutbox(t *testing.T, dir string, next dadc.Flagger[*image.Gray], opts *OutboxOptions) *Outbox[*image.Gray] {
	t.Helper()
	if opts == nil {
		opts = &OutboxOptions{}
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 20 * time.Millisecond
	}
	o, err := NewOutbox(dir, next, GrayPNG(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = o.Close() })
	return o
}

func pendingFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, pendingDirName))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOutboxDeliversExactlyOnceThroughFailures(t *testing.T) {
	const goroutines, perGoroutine = 10, 20
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				var down atomic.Bool
				down.Store(true) // down for a while at the start
				next := webhook(42, 0.3, &down)
				var delivered sync.Map
				o := fastOutbox(t, dir, next, &OutboxOptions{
					Workers:   workers,
					OnDeliver: func(id string) { delivered.Store(id, true) },
				})
				ctx := t.Context()
				var wg sync.WaitGroup
				for g := range goroutines {
					wg.Go(func() {
						for i := range perGoroutine {
							assert.NoError(t, o.Flag(ctx, testSample(g*perGoroutine+i)))
						}
					})
				}
				wg.Wait()
				assert.Positive(t, o.Backlog(), "nothing can be delivered while the handler is down")
				time.AfterFunc(100*time.Millisecond, func() { down.Store(false) })

				require.NoError(t, o.Flush(ctx))
				total := goroutines * perGoroutine
				assert.Equal(t, 0, o.Backlog())
				assert.Empty(t, pendingFiles(t, dir))
				assert.Equal(t, total, next.Len())
				assert.Zero(t, next.Duplicates(), "each sample delivered once")
				st := o.Stats()
				assert.Equal(t, int64(total), st.Delivered)
				assert.Positive(t, st.Failed)
				assert.NotEmpty(t, st.LastError)
				n := 0
				delivered.Range(func(any, any) bool { n++; return true })
				assert.Equal(t, total, n, "OnDeliver once per sample")
				assert.Equal(t, 1, next.Flushes(), "Flush flushes the next handler")
				// Content survives the trip through the pending file.
				var got dadc.Sample[*image.Gray]
				for _, s := range next.Stored() {
					if s.ID == "s00123" {
						got = s
					}
				}
				want := testSample(123)
				assert.Equal(t, want.Input.Pix, got.Input.Pix)
				assert.Equal(t, want.SampleMeta, got.SampleMeta)
				require.NoError(t, o.Close())
			})
		})
	}
}

// The backoff after consecutive failures doubles from MinBackoff up to
// MaxBackoff, less up to half of it as jitter; it is measured on the bubble's
// fake clock, so the bounds are exact.
func TestOutboxBackoffBetweenAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var at []time.Time
		next := dadctest.NewFlagger(&dadctest.FlaggerScript[*image.Gray]{
			Hook: func(context.Context, int, dadc.Sample[*image.Gray]) error {
				mu.Lock()
				defer mu.Unlock()
				at = append(at, time.Now())
				if len(at) <= 6 {
					return errUnavailable
				}
				return nil
			},
		})
		o := fastOutbox(t, t.TempDir(), next, &OutboxOptions{MinBackoff: time.Second, MaxBackoff: 8 * time.Second})
		require.NoError(t, o.Flag(t.Context(), testSample(1)))
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, 0, o.Backlog(), "delivered once the handler recovered")
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, at, 7)
		for i, full := range []time.Duration{1, 2, 4, 8, 8, 8} {
			gap := at[i+1].Sub(at[i])
			assert.GreaterOrEqual(t, gap, full*time.Second/2, "pause %d", i+1)
			assert.LessOrEqual(t, gap, full*time.Second, "pause %d", i+1)
		}
		require.NoError(t, o.Close())
	})
}

func TestOutboxCloseAndReopenKeepsPendingInOrder(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var isDown atomic.Bool
	isDown.Store(true)
	down := webhook(1, 0, &isDown)
	o := fastOutbox(t, dir, down, nil)
	var want []string
	for i := range 12 {
		s := testSample(100 - i) // IDs in reverse so that name order != enqueue order
		want = append(want, s.ID)
		require.NoError(t, o.Flag(ctx, s))
	}
	var pe *PendingError
	require.ErrorAs(t, o.Close(), &pe, "Close says what stays undelivered")
	assert.Equal(t, 12, pe.Samples)
	assert.Equal(t, filepath.Join(dir, pendingDirName), pe.Where)
	require.ErrorIs(t, pe, errUnavailable)
	require.NoError(t, o.Close(), "a second Close is a no-op")
	require.ErrorIs(t, o.Flag(ctx, testSample(1)), ErrClosed)
	require.ErrorIs(t, o.Flush(ctx), ErrClosed)
	assert.Len(t, pendingFiles(t, dir), 12, "pending samples stay on disk")

	up := webhook(2, 0, nil)
	o2 := fastOutbox(t, dir, up, nil)
	assert.Equal(t, 12, o2.Backlog())
	require.NoError(t, o2.Flush(ctx))
	assert.Equal(t, want, storedIDs(up), "delivered in enqueue order after a restart")
	assert.Empty(t, pendingFiles(t, dir))
}

func TestOutboxIdempotentEnqueue(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var down atomic.Bool
	down.Store(true)
	next := webhook(1, 0, &down)
	o := fastOutbox(t, dir, next, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { assert.NoError(t, o.Flag(ctx, testSample(7))) })
	}
	wg.Wait()
	assert.Equal(t, 1, o.Backlog())
	assert.Equal(t, []string{"s00007.json"}, pendingFiles(t, dir))
	down.Store(false)
	require.NoError(t, o.Flush(ctx))
	assert.Equal(t, []string{"s00007"}, storedIDs(next))
	assert.Zero(t, next.Duplicates())
}

func TestOutboxRejectsBadSample(t *testing.T) {
	dir := t.TempDir()
	o := fastOutbox(t, dir, webhook(1, 0, nil), nil)
	s := testSample(1)
	s.ID = "../../etc/passwd"
	require.ErrorIs(t, o.Flag(context.Background(), s), ErrInvalidSample)
	s = testSample(1)
	s.Input = nil
	require.ErrorIs(t, o.Flag(context.Background(), s), ErrInvalidSample)
	assert.Empty(t, pendingFiles(t, dir))
	assert.Equal(t, 0, o.Backlog())
}

func TestOutboxDeadLettersPermanentFailures(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var delivered []string
	var mu sync.Mutex
	next := Func[*image.Gray](func(_ context.Context, s dadc.Sample[*image.Gray]) error {
		if s.ID == "s00002" {
			return fmt.Errorf("%w: label 12 is outside 0-9", dadc.ErrInvalidLabel)
		}
		mu.Lock()
		defer mu.Unlock()
		delivered = append(delivered, s.ID)
		return nil
	})
	o := fastOutbox(t, dir, next, nil)
	for i := 1; i <= 3; i++ {
		require.NoError(t, o.Flag(ctx, testSample(i)))
	}
	require.NoError(t, o.Flush(ctx))
	assert.Equal(t, []string{"s00001", "s00003"}, delivered)
	assert.Equal(t, int64(1), o.DeadLettered())
	assert.FileExists(t, filepath.Join(dir, failedDirName, "s00002.json"), "kept on disk, not dropped")
}

func TestOutboxRecoversDamagedQueueFolder(t *testing.T) {
	dir := t.TempDir()
	pend := filepath.Join(dir, pendingDirName)
	require.NoError(t, os.MkdirAll(pend, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pend, ".tmp-s00001.json-99"), []byte(`{"vers`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(pend, "s00002.json"), []byte("garbage"), 0o644))
	next := webhook(1, 0, nil)
	o := fastOutbox(t, dir, next, nil)
	assert.Equal(t, 0, o.Backlog())
	assert.Empty(t, pendingFiles(t, dir))
	assert.FileExists(t, filepath.Join(dir, failedDirName, "s00002.json"))
}

func TestOutboxFlushGivesUpWhenContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		o := fastOutbox(t, t.TempDir(), webhook(1, 0, &down), nil)
		require.NoError(t, o.Flag(t.Context(), testSample(1)))
		ctx, cancel := context.WithTimeout(t.Context(), 80*time.Millisecond)
		defer cancel()
		err := o.Flush(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, errUnavailable, "the last delivery error is part of the answer")
		assert.Contains(t, err.Error(), "1 samples still pending")
		assert.Equal(t, 1, o.Backlog())
		assert.Positive(t, o.Failed())
		var pe *PendingError
		require.ErrorAs(t, o.Close(), &pe)
	})
}

func TestOutboxEnqueueFaults(t *testing.T) {
	tests := []struct {
		name string
		rule faultRule
	}{
		{"temp file cannot be created", faultRule{op: "createtemp", match: pendingDirName}},
		{"write fails half way", faultRule{op: "write", match: ".tmp-", partial: true}},
		{"sync fails", faultRule{op: "sync", match: ".tmp-"}},
		{"rename fails", faultRule{op: "rename", match: "s00001"}},
		{"folder sync fails", faultRule{op: "syncdir", match: pendingDirName}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			next := webhook(1, 0, nil)
			o := fastOutbox(t, dir, next, &OutboxOptions{fs: ffs})
			ffs.add(tt.rule)
			err := o.Flag(context.Background(), testSample(1))
			require.ErrorIs(t, err, errInjected)
			assert.Equal(t, 0, o.Backlog())
			assert.Empty(t, pendingFiles(t, dir), "no pending file, no temp file")
			ffs.clear()
			require.NoError(t, o.Flag(context.Background(), testSample(1)))
			require.NoError(t, o.Flush(context.Background()))
			assert.Equal(t, []string{"s00001"}, storedIDs(next))
			assert.Zero(t, next.Duplicates())
		})
	}
}

// Whoever constructs it closes it: Close leaves the next handler open.
func TestOutboxCloseLeavesNextOpen(t *testing.T) {
	next := webhook(1, 0, nil)
	o, err := NewOutbox(t.TempDir(), next, GrayPNG(), nil)
	require.NoError(t, err)
	require.NoError(t, o.Close())
	require.NoError(t, o.Close(), "Close is idempotent")
	assert.False(t, next.Closed(), "the caller owns next")
}

func TestOutboxLocked(t *testing.T) {
	dir := t.TempDir()
	fastOutbox(t, dir, webhook(1, 0, nil), nil)
	_, err := NewOutbox(dir, webhook(1, 0, nil), GrayPNG(), nil)
	require.ErrorIs(t, err, ErrLocked)
}

func TestNewOutboxRejectsBadArguments(t *testing.T) {
	next := webhook(1, 0, nil)
	tests := []struct {
		name  string
		dir   string
		next  dadc.Flagger[*image.Gray]
		codec Codec[*image.Gray]
		opts  *OutboxOptions
		want  string
	}{
		{"empty dir", "", next, GrayPNG(), nil, "folder"},
		{"nil next", t.TempDir(), nil, GrayPNG(), nil, "next"},
		{"nil codec", t.TempDir(), next, nil, nil, "codec"},
		{"negative backoff", t.TempDir(), next, GrayPNG(), &OutboxOptions{MinBackoff: -1}, "negative"},
		{"max below min", t.TempDir(), next, GrayPNG(), &OutboxOptions{MinBackoff: time.Minute, MaxBackoff: time.Second}, "MaxBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewOutbox(tt.dir, tt.next, tt.codec, tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestOutboxBackoff(t *testing.T) {
	o := &Outbox[*image.Gray]{minBackoff: time.Second, maxBackoff: 5 * time.Minute}
	tests := []struct {
		failures int
		full     time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {9, 256 * time.Second}, {10, 5 * time.Minute}, {1000, 5 * time.Minute},
	}
	for _, tt := range tests {
		for range 50 {
			d := o.backoff(tt.failures)
			assert.LessOrEqual(t, d, tt.full)
			assert.GreaterOrEqual(t, d, tt.full/2)
		}
	}
}

// Flush versus Close: a Flush waiting on a handler that is down returns
// ErrClosed as soon as Close runs, and Close reports the sample that stays.
func TestOutboxCloseEndsARunningFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		o := fastOutbox(t, t.TempDir(), webhook(1, 0, &down), nil)
		require.NoError(t, o.Flag(t.Context(), testSample(1)))
		done := make(chan error, 1)
		go func() { done <- o.Flush(context.Background()) }()
		synctest.Wait() // Flush waits; the worker sits in its backoff pause
		select {
		case err := <-done:
			t.Fatalf("Flush returned before Close: %v", err)
		default:
		}
		var pe *PendingError
		require.ErrorAs(t, o.Close(), &pe)
		assert.Equal(t, 1, pe.Samples)
		err := <-done
		require.ErrorIs(t, err, ErrClosed)
		assert.Contains(t, err.Error(), "stay on disk")
	})
}
