package flag

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

// flakyHandler is an idempotent next handler that fails a seeded fraction of
// calls, and every call while down.
type flakyHandler struct {
	mu        sync.Mutex
	rng       *rand.Rand
	failRate  float64
	down      atomic.Bool
	calls     int
	stored    map[string]dadc.Sample[*image.Gray]
	order     []string
	successes map[string]int
	flushes   int
	closed    bool
}

var errUnavailable = errors.New("503 service unavailable")

func newFlaky(seed uint64, failRate float64) *flakyHandler {
	return &flakyHandler{
		rng:       rand.New(rand.NewPCG(seed, seed)),
		failRate:  failRate,
		stored:    make(map[string]dadc.Sample[*image.Gray]),
		successes: make(map[string]int),
	}
}

func (f *flakyHandler) Flag(ctx context.Context, s dadc.Sample[*image.Gray]) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down.Load() || f.rng.Float64() < f.failRate {
		return fmt.Errorf("webhook: %w", errUnavailable)
	}
	if _, ok := f.stored[s.ID]; !ok {
		f.stored[s.ID] = s
		f.order = append(f.order, s.ID)
	}
	f.successes[s.ID]++
	return nil
}

func (f *flakyHandler) Flush(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
	return nil
}

func (f *flakyHandler) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *flakyHandler) snapshot() (order []string, successes map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	successes = make(map[string]int, len(f.successes))
	for k, v := range f.successes {
		successes[k] = v
	}
	return append([]string(nil), f.order...), successes
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
			dir := t.TempDir()
			next := newFlaky(42, 0.3)
			next.down.Store(true) // down for a while at the start
			var delivered sync.Map
			o := fastOutbox(t, dir, next, &OutboxOptions{
				Workers:   workers,
				OnDeliver: func(id string) { delivered.Store(id, true) },
			})
			ctx := context.Background()
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
			time.AfterFunc(100*time.Millisecond, func() { next.down.Store(false) })

			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			require.NoError(t, o.Flush(fctx))
			total := goroutines * perGoroutine
			assert.Equal(t, 0, o.Backlog())
			assert.Empty(t, pendingFiles(t, dir))
			order, successes := next.snapshot()
			assert.Len(t, order, total)
			for id, n := range successes {
				assert.Equal(t, 1, n, "sample %s delivered %d times", id, n)
			}
			st := o.Stats()
			assert.Equal(t, int64(total), st.Delivered)
			assert.Positive(t, st.Failed)
			assert.Contains(t, st.LastError, "503")
			n := 0
			delivered.Range(func(any, any) bool { n++; return true })
			assert.Equal(t, total, n, "OnDeliver once per sample")
			assert.Equal(t, 1, next.flushes, "Flush flushes the next handler")
			// Content survives the trip through the pending file.
			got := next.stored["s00123"]
			want := testSample(123)
			assert.Equal(t, want.Input.Pix, got.Input.Pix)
			assert.True(t, want.CreatedAt.Equal(got.CreatedAt))
			assert.Equal(t, want.ModelProbabilities, got.ModelProbabilities)
			assert.Equal(t, want.Session, got.Session)
		})
	}
}

func TestOutboxCloseAndReopenKeepsPendingInOrder(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	down := newFlaky(1, 0)
	down.down.Store(true)
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

	up := newFlaky(2, 0)
	o2 := fastOutbox(t, dir, up, nil)
	assert.Equal(t, 12, o2.Backlog())
	require.NoError(t, o2.Flush(ctx))
	order, _ := up.snapshot()
	assert.Equal(t, want, order, "delivered in enqueue order after a restart")
	assert.Empty(t, pendingFiles(t, dir))
}

func TestOutboxIdempotentEnqueue(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	next := newFlaky(1, 0)
	next.down.Store(true)
	o := fastOutbox(t, dir, next, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { assert.NoError(t, o.Flag(ctx, testSample(7))) })
	}
	wg.Wait()
	assert.Equal(t, 1, o.Backlog())
	assert.Equal(t, []string{"s00007.json"}, pendingFiles(t, dir))
	next.down.Store(false)
	require.NoError(t, o.Flush(ctx))
	_, successes := next.snapshot()
	assert.Equal(t, map[string]int{"s00007": 1}, successes)
}

func TestOutboxRejectsBadSample(t *testing.T) {
	dir := t.TempDir()
	o := fastOutbox(t, dir, newFlaky(1, 0), nil)
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
	next := newFlaky(1, 0)
	o := fastOutbox(t, dir, next, nil)
	assert.Equal(t, 0, o.Backlog())
	assert.Empty(t, pendingFiles(t, dir))
	assert.FileExists(t, filepath.Join(dir, failedDirName, "s00002.json"))
}

func TestOutboxFlushGivesUpWhenContextEnds(t *testing.T) {
	dir := t.TempDir()
	next := newFlaky(1, 0)
	next.down.Store(true)
	o := fastOutbox(t, dir, next, nil)
	require.NoError(t, o.Flag(context.Background(), testSample(1)))
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	err := o.Flush(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, errUnavailable, "the last delivery error is part of the answer")
	assert.Contains(t, err.Error(), "1 samples still pending")
	assert.Equal(t, 1, o.Backlog())
	assert.Positive(t, o.Failed())
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
			next := newFlaky(1, 0)
			o := fastOutbox(t, dir, next, &OutboxOptions{fs: ffs})
			ffs.add(tt.rule)
			err := o.Flag(context.Background(), testSample(1))
			require.ErrorIs(t, err, errInjected)
			assert.Equal(t, 0, o.Backlog())
			assert.Empty(t, pendingFiles(t, dir), "no pending file, no temp file")
			ffs.clear()
			require.NoError(t, o.Flag(context.Background(), testSample(1)))
			require.NoError(t, o.Flush(context.Background()))
			_, successes := next.snapshot()
			assert.Equal(t, map[string]int{"s00001": 1}, successes)
		})
	}
}

// Whoever constructs it closes it: Close leaves the next handler open.
func TestOutboxCloseLeavesNextOpen(t *testing.T) {
	next := newFlaky(1, 0)
	o, err := NewOutbox(t.TempDir(), next, GrayPNG(), nil)
	require.NoError(t, err)
	require.NoError(t, o.Close())
	require.NoError(t, o.Close(), "Close is idempotent")
	assert.False(t, next.closed, "the caller owns next")
}

func TestOutboxLocked(t *testing.T) {
	dir := t.TempDir()
	fastOutbox(t, dir, newFlaky(1, 0), nil)
	_, err := NewOutbox(dir, newFlaky(1, 0), GrayPNG(), nil)
	require.ErrorIs(t, err, ErrLocked)
}

func TestNewOutboxRejectsBadArguments(t *testing.T) {
	next := newFlaky(1, 0)
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

func TestOutboxCloseEndsARunningFlush(t *testing.T) {
	next := newFlaky(1, 0)
	next.down.Store(true)
	o := fastOutbox(t, t.TempDir(), next, nil)
	require.NoError(t, o.Flag(context.Background(), testSample(1)))
	done := make(chan error, 1)
	go func() { done <- o.Flush(context.Background()) }()
	time.Sleep(30 * time.Millisecond)
	var pe *PendingError
	require.ErrorAs(t, o.Close(), &pe)
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrClosed)
		assert.Contains(t, err.Error(), "stay on disk")
	case <-time.After(5 * time.Second):
		t.Fatal("Flush did not return after Close")
	}
}
