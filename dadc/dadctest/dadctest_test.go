package dadctest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

func intInputs() []int { return []int{0, 1, 2, 3, 7, 10, 11, 42} }

func TestModelSuite_FakeModel(t *testing.T) {
	dadctest.TestModel(t, func(t *testing.T) dadc.Model[int] {
		m := dadctest.NewModel("fake-v1", 3, func(n int) int { return n % 3 })
		m.TrainFunc = func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
			return dadctest.NewModel(req.Version, 3, func(n int) int { return 0 }), nil
		}
		return m
	}, intInputs())
}

func TestModelSuite_Scores(t *testing.T) {
	dadctest.TestModel(t, func(t *testing.T) dadc.Model[string] {
		return &dadctest.FakeModel[string]{Name: "len", Classes: 4, Scores: func(s string) []float64 {
			sc := []float64{1, 1, 1, 1}
			sc[len(s)%4] = 5
			return sc
		}}
	}, []string{"", "a", "ab", "abc", "abcd"})
}

func TestModelSuite_LookupModel(t *testing.T) {
	dadctest.TestModel(t, func(t *testing.T) dadc.Model[int] {
		return dadctest.NewLookupModel("lookup-v1", 10, nil)
	}, intInputs())
}

func TestModelSuite_Wrappers(t *testing.T) {
	base := func() *dadctest.FakeModel[int] {
		return dadctest.NewModel("w", 2, func(n int) int { return n % 2 })
	}
	t.Run("PredictOnly", func(t *testing.T) {
		dadctest.TestModel(t, func(t *testing.T) dadc.Model[int] { return dadctest.PredictOnly[int](base()) }, intInputs())
	})
	t.Run("WithBatch", func(t *testing.T) {
		dadctest.TestModel(t, func(t *testing.T) dadc.Model[int] { return dadctest.WithBatch[int](base()) }, intInputs())
	})
}

// brokenModel breaks one rule of the Model contract at a time.
type brokenModel struct {
	rule  string
	mu    sync.Mutex
	calls int
}

func (b *brokenModel) Version() string {
	if b.rule == "unstable-version" {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.calls++
		return fmt.Sprintf("v%d", b.calls)
	}
	return "broken"
}

func (b *brokenModel) Predict(ctx context.Context, n int) (dadc.Prediction, error) {
	p := dadctest.Peaked(n%3, 3, "broken")
	switch b.rule {
	case "sum":
		for i := range p.Probabilities {
			p.Probabilities[i] /= 2
		}
	case "argmax":
		p.Label = (p.Label + 1) % 3
	case "version":
		p.ModelVersion = "someone-else"
	case "error":
		return dadc.Prediction{}, errors.New("boom")
	case "cancel-error":
		if ctx.Err() != nil {
			return dadc.Prediction{}, errors.New("not the context error")
		}
	case "nondeterministic":
		b.mu.Lock()
		b.calls++
		p = dadctest.Peaked(b.calls%3, 3, "broken")
		b.mu.Unlock()
	case "unstable-version":
		p.ModelVersion = ""
	}
	return p, nil
}

// TestVerifyModel_FindsViolations shows the suite fails for each broken rule.
func TestVerifyModel_FindsViolations(t *testing.T) {
	tests := []struct {
		rule, want string
	}{
		{"sum", "sum to"},
		{"argmax", "argmax"},
		{"version", "ModelVersion"},
		{"error", "boom"},
		{"cancel-error", "context.Canceled"},
		{"nondeterministic", "differs"},
		{"unstable-version", "Version"},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			err := dadctest.VerifyModel[int](t.Context(), &brokenModel{rule: tt.rule}, intInputs())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	require.NoError(t, dadctest.VerifyModel[int](t.Context(), &brokenModel{rule: "none"}, intInputs()))
}

func TestVerifyModel_TrainerIgnoringContext(t *testing.T) {
	m := dadctest.NewModel("ignores-ctx", 2, func(n int) int { return n % 2 })
	m.TrainFunc = func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		return dadctest.NewModel(req.Version, 2, func(int) int { return 0 }), nil
	}
	m.TrainDelay = 0 // sleep(0) still reports ctx; bypass it with a wrapper that ignores ctx:
	err := dadctest.VerifyModel[int](t.Context(), ignoringTrainer{m}, intInputs())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must honour ctx")
}

type ignoringTrainer struct{ *dadctest.FakeModel[int] }

func (i ignoringTrainer) Train(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
	return i.TrainFunc(context.Background(), req)
}

func TestFlaggerSuite_ScriptedFlagger(t *testing.T) {
	dadctest.TestFlagger(t, func(t *testing.T, dir string) dadc.Flagger[int] {
		return dadctest.NewFlagger[int](nil)
	}, func(i int) int { return i * 7 })
}

func TestFlaggerSuite_FlaggerFunc(t *testing.T) {
	// A FlaggerFunc over a map: no SampleSource, so only the call rules apply.
	dadctest.TestFlagger(t, func(t *testing.T, dir string) dadc.Flagger[string] {
		var mu sync.Mutex
		m := map[string]string{}
		return dadc.FlaggerFunc[string](func(ctx context.Context, s dadc.Sample[string]) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			m[s.ID] = s.Input
			return nil
		})
	}, func(i int) string { return fmt.Sprint("input-", i) })
}

// forgetful loses everything on reopen; duplicating stores every call.
type duplicating struct {
	*dadctest.ScriptedFlagger[int]
	mu  sync.Mutex
	all []dadc.Sample[int]
}

func (d *duplicating) Flag(ctx context.Context, s dadc.Sample[int]) error {
	if err := d.ScriptedFlagger.Flag(ctx, s); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, s)
	return nil
}

func (d *duplicating) Samples(ctx context.Context) ([]dadc.Sample[int], error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dadc.Sample[int](nil), d.all...), nil
}

type ignoresCtx struct{ *dadctest.ScriptedFlagger[int] }

func (i ignoresCtx) Flag(_ context.Context, s dadc.Sample[int]) error {
	return i.ScriptedFlagger.Flag(context.Background(), s)
}

type lossy struct{ *dadctest.ScriptedFlagger[int] }

func (l lossy) Samples(ctx context.Context) ([]dadc.Sample[int], error) {
	all, err := l.ScriptedFlagger.Samples(ctx)
	if len(all) > 0 {
		all[0].Round += 10
	}
	return all, err
}

// closesOnce fails a second Close, breaking the closing rule's idempotence.
type closesOnce struct {
	*dadctest.ScriptedFlagger[int]
	closed bool
}

func (c *closesOnce) Close() error {
	if c.closed {
		return errors.New("already closed")
	}
	c.closed = true
	return c.ScriptedFlagger.Close()
}

func TestVerifyFlagger_FindsViolations(t *testing.T) {
	tests := []struct {
		name       string
		newF       func(dir string) (dadc.Flagger[int], error)
		persistent bool
		want       string
	}{
		{"duplicates", func(string) (dadc.Flagger[int], error) {
			return &duplicating{ScriptedFlagger: dadctest.NewFlagger[int](nil)}, nil
		}, false, "twice"},
		{"ignores ctx", func(string) (dadc.Flagger[int], error) {
			return ignoresCtx{dadctest.NewFlagger[int](nil)}, nil
		}, false, "honour ctx"},
		{"alters fields", func(string) (dadc.Flagger[int], error) {
			return lossy{dadctest.NewFlagger[int](nil)}, nil
		}, false, "field Round is"},
		{"forgets on reopen", func(string) (dadc.Flagger[int], error) {
			return dadctest.NewFlagger[int](nil), nil
		}, true, "after reopening"},
		{"second Close fails", func(string) (dadc.Flagger[int], error) {
			return &closesOnce{ScriptedFlagger: dadctest.NewFlagger[int](nil)}, nil
		}, false, "Close must be idempotent"},
		{"fails", func(string) (dadc.Flagger[int], error) {
			return dadctest.NewFlagger(&dadctest.FlaggerScript[int]{FailCalls: []int{2}}), nil
		}, false, "injected"},
		{"constructor error", func(string) (dadc.Flagger[int], error) {
			return nil, errors.New("cannot open")
		}, false, "cannot open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &dadctest.FlaggerSuite[int]{New: tt.newF, NewInput: func(i int) int { return i }, Persistent: tt.persistent}
			err := fs.Verify(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	fs := &dadctest.FlaggerSuite[int]{
		New:      func(string) (dadc.Flagger[int], error) { return dadctest.NewFlagger[int](nil), nil },
		NewInput: func(i int) int { return i },
	}
	require.NoError(t, fs.Verify(t.Context()))
	require.ErrorContains(t, (&dadctest.FlaggerSuite[int]{}).Verify(t.Context()), "New is nil")
}

func TestScriptedFlagger_Faults(t *testing.T) {
	ctx := t.Context()
	sample := func(id string) dadc.Sample[int] {
		return dadc.Sample[int]{SampleMeta: dadc.SampleMeta{ID: id, Label: 1}}
	}

	t.Run("FailCalls", func(t *testing.T) {
		f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{FailCalls: []int{2, 4}})
		results := make([]error, 5)
		for i := range results {
			results[i] = f.Flag(ctx, sample(fmt.Sprint(i)))
		}
		for i, err := range results {
			if i == 1 || i == 3 {
				assert.ErrorIs(t, err, dadctest.ErrInjected, "call %d", i+1)
			} else {
				assert.NoError(t, err, "call %d", i+1)
			}
		}
		assert.Equal(t, 3, f.Len())
		assert.Equal(t, 5, f.Calls())
		assert.Equal(t, 2, f.Failures())
		assert.False(t, f.Has("1"))
	})

	t.Run("FailProbability is seeded", func(t *testing.T) {
		run := func() []bool {
			f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{FailProbability: 0.3, Seed: 7})
			out := make([]bool, 200)
			for i := range out {
				out[i] = f.Flag(ctx, sample(fmt.Sprint(i))) != nil
			}
			return out
		}
		a, b := run(), run()
		assert.Equal(t, a, b)
		fails := 0
		for _, failed := range a {
			if failed {
				fails++
			}
		}
		assert.InDelta(t, 60, fails, 25)
	})

	t.Run("Delay honours ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{Delay: time.Hour})
			cctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			err := f.Flag(cctx, sample("a"))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Zero(t, f.Len())
		})
	})

	t.Run("Hook", func(t *testing.T) {
		f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{Hook: func(ctx context.Context, call int, s dadc.Sample[int]) error {
			if s.Label == 9 {
				return errors.New("no nines")
			}
			return nil
		}})
		require.NoError(t, f.Flag(ctx, sample("a")))
		require.ErrorContains(t, f.Flag(ctx, dadc.Sample[int]{SampleMeta: dadc.SampleMeta{ID: "b", Label: 9}}), "no nines")
		assert.Equal(t, 1, f.Len())
	})

	t.Run("Dedup, preload, flush, close", func(t *testing.T) {
		f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{Preload: []dadc.Sample[int]{sample("p")}})
		require.NoError(t, f.Flag(ctx, sample("p")))
		require.NoError(t, f.Flag(ctx, sample("q")))
		assert.Equal(t, 2, f.Len())
		assert.Equal(t, 1, f.Duplicates())
		require.NoError(t, f.Flush(ctx))
		assert.Equal(t, 1, f.Flushes())
		require.NoError(t, f.Close())
		assert.ErrorIs(t, f.Flag(ctx, sample("r")), dadctest.ErrFlaggerClosed)
		assert.True(t, f.Closed())
	})

	t.Run("SamplesErr", func(t *testing.T) {
		f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{SamplesErr: errors.New("disk gone")})
		_, err := f.Samples(ctx)
		assert.ErrorContains(t, err, "disk gone")
	})
}

func TestFakeModel(t *testing.T) {
	ctx := t.Context()
	m := dadctest.NewModel("m", 3, func(n int) int { return n })
	p, err := m.Predict(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, 2, p.Label)
	assert.InDeltaSlice(t, []float64{0.05, 0.05, 0.9}, p.Probabilities, 1e-12)

	_, err = m.Predict(ctx, 3)
	assert.ErrorContains(t, err, "outside [0, 3)")

	_, err = m.Train(ctx, dadc.TrainRequest[int]{Version: "x"})
	assert.ErrorIs(t, err, dadctest.ErrNoTrainFunc)
	m.TrainErr = errors.New("no gpu")
	_, err = m.Train(ctx, dadc.TrainRequest[int]{Version: "y"})
	assert.ErrorContains(t, err, "no gpu")
	assert.Len(t, m.TrainRequests(), 2)

	require.NoError(t, m.Close())
	_, err = m.Predict(ctx, 1)
	assert.ErrorIs(t, err, dadctest.ErrModelClosed)
	assert.Equal(t, 1, m.UsedAfterClose())
	assert.Equal(t, 3, m.Predicts())
}

func TestLookupModel_LearnsWithoutChangingReceiver(t *testing.T) {
	ctx := t.Context()
	m := dadctest.NewLookupModel("v0", 10, nil)
	var progress []float64
	next, err := m.Train(ctx, dadc.TrainRequest[int]{Version: "v1", Samples: []dadc.Sample[int]{
		{SampleMeta: dadc.SampleMeta{ID: "a", Label: 7}, Input: 13}, {SampleMeta: dadc.SampleMeta{ID: "b", Label: 0}, Input: -4},
	}, Progress: func(f float64) { progress = append(progress, f) }})
	require.NoError(t, err)
	assert.Equal(t, "v1", next.Version())
	for _, tt := range []struct {
		model dadc.Model[int]
		in    int
		want  int
	}{{m, 13, 3}, {m, -4, 6}, {next, 13, 7}, {next, -4, 0}, {next, 5, 5}} {
		p, err := tt.model.Predict(ctx, tt.in)
		require.NoError(t, err)
		assert.Equal(t, tt.want, p.Label, "%s(%d)", tt.model.Version(), tt.in)
	}
	assert.Empty(t, m.Learned())
	assert.Equal(t, []float64{0.5, 1}, progress)
}

func TestClockAndSequence(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := dadctest.NewClock(start)
	c.Advance(time.Minute)
	assert.Equal(t, start.Add(time.Minute), c.Now())
	next := dadctest.Sequence("id")
	assert.Equal(t, "id-000001", next())
	assert.Equal(t, "id-000002", next())
}
