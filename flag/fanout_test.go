package flag

import (
	"context"
	"errors"
	"image"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

type countingHandler struct {
	name    string
	err     error
	delay   time.Duration
	flags   atomic.Int32
	flushed atomic.Int32
	closed  atomic.Int32
	order   *[]string
	mu      *sync.Mutex
}

func (h *countingHandler) Flag(ctx context.Context, _ dadc.Sample[*image.Gray]) error {
	h.flags.Add(1)
	select {
	case <-time.After(h.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.err
}
func (h *countingHandler) Flush(context.Context) error { h.flushed.Add(1); return h.err }
func (h *countingHandler) Close() error {
	h.closed.Add(1)
	if h.order != nil {
		h.mu.Lock()
		*h.order = append(*h.order, h.name)
		h.mu.Unlock()
	}
	return h.err
}
func (h *countingHandler) String() string { return h.name }

func TestFanOutFlag(t *testing.T) {
	errA := errors.New("disk full")
	errB := errors.New("webhook down")
	tests := []struct {
		name       string
		errs       []error
		wantFailed []int
	}{
		{"all succeed", []error{nil, nil, nil}, nil},
		{"one fails", []error{nil, errA, nil}, []int{1}},
		{"two fail", []error{errA, nil, errB}, []int{0, 2}},
		{"all fail", []error{errA, errB, errA}, []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hs []dadc.Flagger[*image.Gray]
			var raw []*countingHandler
			for i, err := range tt.errs {
				h := &countingHandler{name: string(rune('a' + i)), err: err, delay: 30 * time.Millisecond}
				raw = append(raw, h)
				hs = append(hs, h)
			}
			f := NewFanOut(hs...)
			start := time.Now()
			err := f.Flag(context.Background(), testSample(1))
			assert.Less(t, time.Since(start), 85*time.Millisecond, "handlers run concurrently")
			for _, h := range raw {
				assert.Equal(t, int32(1), h.flags.Load(), "every handler is called, even after a failure")
			}
			if tt.wantFailed == nil {
				require.NoError(t, err)
				return
			}
			var pe *PartialError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "flag", pe.Op)
			assert.Equal(t, 3, pe.Total)
			var got []int
			for _, f := range pe.Failed {
				got = append(got, f.Index)
				assert.Equal(t, raw[f.Index].name, f.Name)
				assert.Equal(t, tt.errs[f.Index], f.Err)
				assert.ErrorIs(t, err, tt.errs[f.Index])
			}
			assert.Equal(t, tt.wantFailed, got)
			assert.Contains(t, err.Error(), "handlers failed")
		})
	}
}

func TestFanOutFlushCloseSamples(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var order []string
	a := &countingHandler{name: "a", order: &order, mu: &mu}
	b := &countingHandler{name: "b", err: errors.New("boom"), order: &order, mu: &mu}
	d := openTestDir(t, t.TempDir(), nil)
	plain := Func[*image.Gray](func(context.Context, dadc.Sample[*image.Gray]) error { return nil })
	f := NewFanOut[*image.Gray](plain, d, nil, a, b)
	require.NoError(t, d.Flag(ctx, testSample(3)))

	got, err := f.Samples(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1, "samples come from the first SampleSource, the Dir")

	err = f.Flush(ctx)
	var pe *PartialError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.Total, "only Flushers are flushed")
	require.Len(t, pe.Failed, 1)
	assert.Equal(t, 3, pe.Failed[0].Index)
	assert.Equal(t, int32(1), a.flushed.Load())

	_, isCloser := any(f).(io.Closer)
	assert.False(t, isCloser, "a FanOut holds nothing to close; whoever built the handlers closes them")
	assert.Empty(t, order, "nothing was closed")
	require.NoError(t, d.Flag(ctx, testSample(4)), "the Dir stays open")
}

func TestFanOutWithoutHandlers(t *testing.T) {
	err := NewFanOut[*image.Gray]().Flag(context.Background(), testSample(1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no handlers")
}
