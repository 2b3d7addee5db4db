package flag

import (
	"context"
	"errors"
	"image"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

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
			// Every handler waits until all have started: the Flag can only
			// finish if FanOut calls them concurrently.
			var started sync.WaitGroup
			started.Add(len(tt.errs))
			var hs []dadc.Flagger[*image.Gray]
			var raw []*dadctest.ScriptedFlagger[*image.Gray]
			for _, err := range tt.errs {
				h := dadctest.NewFlagger(&dadctest.FlaggerScript[*image.Gray]{Hook: func(context.Context, int, dadc.Sample[*image.Gray]) error {
					started.Done()
					started.Wait()
					return err
				}})
				raw = append(raw, h)
				hs = append(hs, h)
			}
			err := NewFanOut(hs...).Flag(t.Context(), testSample(1))
			for _, h := range raw {
				assert.Equal(t, 1, h.Calls(), "every handler is called, even after a failure")
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
				assert.Equal(t, "*dadctest.ScriptedFlagger[*image.Gray]", f.Name)
				assert.Equal(t, tt.errs[f.Index], f.Err)
				assert.ErrorIs(t, err, tt.errs[f.Index])
			}
			assert.Equal(t, tt.wantFailed, got)
			assert.Contains(t, err.Error(), "handlers failed")
		})
	}
}

func TestFanOutFlushSamplesAndOwnership(t *testing.T) {
	ctx := t.Context()
	a := dadctest.NewFlagger[*image.Gray](nil)
	b := dadctest.NewFlagger(&dadctest.FlaggerScript[*image.Gray]{FlushErr: errors.New("boom")})
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
	assert.Equal(t, 1, a.Flushes())

	_, isCloser := any(f).(io.Closer)
	assert.False(t, isCloser, "a FanOut holds nothing to close; whoever built the handlers closes them")
	assert.False(t, a.Closed())
	assert.False(t, b.Closed())
	require.NoError(t, d.Flag(ctx, testSample(4)), "the Dir stays open")
}

func TestFanOutWithoutHandlers(t *testing.T) {
	err := NewFanOut[*image.Gray]().Flag(context.Background(), testSample(1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no handlers")
}
