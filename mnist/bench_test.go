package mnist

import (
	"context"
	"image"
	"math/rand"
	"runtime"
	"testing"
)

// Run with: go test ./mnist -run '^$' -bench . -benchtime 3s. For the ratio
// table against PyTorch in the same run: go run ./examples/mnist-bench.

// BenchmarkTrainStep times one training step (batch 64: forward, backward,
// Adam update, dropout masks) and reports samples/s.
func BenchmarkTrainStep(b *testing.B) {
	train, _ := loadSubset(b)
	const batch = 64
	s, err := newTrainSession(InitWeights(1), batch, rand.New(rand.NewSource(1)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	imgs := make([][]uint8, batch)
	labels := make([]int, batch)
	for i := range imgs {
		imgs[i], labels[i] = train.Pixels(i), int(train.Labels[i])
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.step(imgs, labels, 1e-3, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkPredict times one single-image prediction (the web app's path)
// and reports the live-heap growth per prediction.
func BenchmarkPredict(b *testing.B) {
	_, test := loadSubset(b)
	m, err := NewModel(InitWeights(1), nil)
	if err != nil {
		b.Fatal(err)
	}
	in := test.Gray(0)
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Predict(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap-growth-B/op")
}

// BenchmarkPredictParallel runs single-image predictions from GOMAXPROCS
// goroutines on one Model.
func BenchmarkPredictParallel(b *testing.B) {
	_, test := loadSubset(b)
	m, err := NewModel(InitWeights(1), nil)
	if err != nil {
		b.Fatal(err)
	}
	in := test.Gray(0)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Predict(context.Background(), in); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkPredictBatch classifies 1,000 images per op and reports images/s.
func BenchmarkPredictBatch(b *testing.B) {
	_, test := loadSubset(b)
	m, err := NewModel(InitWeights(1), nil)
	if err != nil {
		b.Fatal(err)
	}
	ins := make([]*image.Gray, test.Len())
	for i := range ins {
		ins[i] = test.Gray(i)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.PredictBatch(context.Background(), ins); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(ins))/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkNewModel times building a model (copying and hashing the weights).
func BenchmarkNewModel(b *testing.B) {
	w := InitWeights(1)
	for b.Loop() {
		if _, err := NewModel(w, nil); err != nil {
			b.Fatal(err)
		}
	}
}
