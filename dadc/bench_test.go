package dadc_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

// BenchmarkFlagDuringRetrain measures Flag latency while a retrain runs the
// whole time: the trainer either sleeps or burns a CPU core until the Loop
// closes. Every flag fools the model and is stored (in memory). It reports
// the median, the 99th percentile and the largest latency (ns/op is the
// mean, which a few slow calls — GC, a busy machine — dominate).
func BenchmarkFlagDuringRetrain(b *testing.B) {
	for _, tc := range []struct {
		name string
		work func(ctx context.Context)
	}{
		{"trainer=sleeps", func(ctx context.Context) { <-ctx.Done() }},
		{"trainer=burns-cpu", func(ctx context.Context) {
			x := 1.0
			for ctx.Err() == nil {
				for range 10_000 {
					x = math.Sqrt(x + 1)
				}
			}
			_ = x
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			training := make(chan struct{})
			m := dadctest.NewModel("m0", 10, accurateOn(0))
			m.TrainFunc = func(ctx context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
				close(training)
				tc.work(ctx)
				return nil, ctx.Err()
			}
			opts := &dadc.Options[int]{HoldoutEvery: -1, CheckInterval: -1}
			l, err := dadc.NewLoop[int](m, dadctest.NewFlagger[int](nil), dadc.Manual(), 10, opts)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := l.Flag(ctx, 1, wrongLabel(1), ""); err != nil {
				b.Fatal(err)
			}
			if err := l.Retrain(ctx); err != nil {
				b.Fatal(err)
			}
			<-training

			var lat []time.Duration
			n := 0
			for b.Loop() {
				n++
				start := time.Now()
				res, err := l.Flag(ctx, n, wrongLabel(n), "bench")
				lat = append(lat, time.Since(start))
				if err != nil || !res.Fooled || !res.Retraining {
					b.Fatalf("flag %d: fooled=%v retraining=%v err=%v", n, res.Fooled, res.Retraining, err)
				}
			}
			b.StopTimer()
			if err := l.Close(ctx); err != nil {
				b.Fatal(err)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
		})
	}
}
