package mnistweb_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist"
)

// BenchmarkPredictHandler measures one /api/predict in process (no network):
// decoding the 280x280 PNG, preprocessing, the model, the answer. The fake
// model separates the handler's cost from the network's.
//
//	go test -run '^$' -bench PredictHandler -benchmem ./mnist/mnistweb
func BenchmarkPredictHandler(b *testing.B) {
	t := &testing.T{}
	w, err := mnist.Pretrained()
	require.NoError(b, err)
	real, err := mnist.NewModel(w, nil)
	require.NoError(b, err)
	for _, m := range []struct {
		name  string
		model dadc.Model[*image.Gray]
	}{{"fake-model", &digitModel{digit: 3, version: "fake"}}, {"mnist-model", real}} {
		b.Run(m.name, func(b *testing.B) {
			f := newFixture(t, &fixtureOptions{model: m.model})
			body := digitDrawings(t)[0]
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("POST", "/api/predict", bytes.NewReader(body))
					req.Header.Set("Content-Type", "image/png")
					rec := httptest.NewRecorder()
					f.space.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
					}
				}
			})
		})
	}
}

// BenchmarkModelPredict is the model alone, for comparison.
func BenchmarkModelPredict(b *testing.B) {
	w, err := mnist.Pretrained()
	require.NoError(b, err)
	m, err := mnist.NewModel(w, nil)
	require.NoError(b, err)
	in := image.NewGray(image.Rect(0, 0, 28, 28))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Predict(context.Background(), in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPreprocess is the drawing → 28x28 step alone, by canvas size.
func BenchmarkPreprocess(b *testing.B) {
	for _, size := range []int{280, 140, 84} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			body := pngBytes(&testing.T{}, drawing(size, size, false))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := mnist.Preprocess(body, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkModelPredictBatch64 is one batch of 64 on the model's batch graph
// (per image: divide by 64), for comparison with BenchmarkModelPredict.
func BenchmarkModelPredictBatch64(b *testing.B) {
	w, err := mnist.Pretrained()
	require.NoError(b, err)
	m, err := mnist.NewModel(w, nil)
	require.NoError(b, err)
	ins := make([]*image.Gray, 64)
	for i := range ins {
		ins[i] = image.NewGray(image.Rect(0, 0, 28, 28))
	}
	for b.Loop() {
		if _, err := m.PredictBatch(context.Background(), ins); err != nil {
			b.Fatal(err)
		}
	}
}
