package mnist_test

import (
	"context"
	"fmt"
	"image"
	"log"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist"
)

// Classify a 28x28 MNIST test image with the embedded pretrained model.
func ExampleNewModel() {
	w, err := mnist.Pretrained()
	if err != nil {
		log.Fatal(err)
	}
	m, err := mnist.NewModel(w, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, test, err := mnist.LoadDataDir("../testdata/mnist")
	if err != nil {
		log.Fatal(err)
	}
	p, err := m.Predict(context.Background(), test.Gray(0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("label %d (true label %d), probability > 0.9: %t\n", p.Label, test.Labels[0], p.Probabilities[p.Label] > 0.9)
	// Output: label 7 (true label 7), probability > 0.9: true
}

// Score a model on a labelled dataset, in batches.
func ExampleModel_EvaluateDataset() {
	w, err := mnist.Pretrained()
	if err != nil {
		log.Fatal(err)
	}
	m, err := mnist.NewModel(w, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, test, err := mnist.LoadDataDir("../testdata/mnist")
	if err != nil {
		log.Fatal(err)
	}
	ev, err := m.EvaluateDataset(context.Background(), test)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d images, accuracy above 98%%: %t\n", ev.N, ev.Accuracy > 0.98)
	// Output: 1000 images, accuracy above 98%: true
}

// Train the network from scratch (here briefly, on a small subset).
func ExampleTrain() {
	train, test, err := mnist.LoadDataDir("../testdata/mnist")
	if err != nil {
		log.Fatal(err)
	}
	w, err := mnist.Train(context.Background(), nil, train, &mnist.TrainConfig{Steps: 25, BatchSize: 32, LearnRate: 3e-3, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	ev, err := mnist.Evaluate(context.Background(), w, test)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("25 steps: better than chance (10%%): %t\n", ev.Accuracy > 0.3)
	// Output: 25 steps: better than chance (10%): true
}

// Fine-tune a model on samples that fooled it (the dadc.Trainer capability),
// mixing in MNIST training images so that it does not forget MNIST.
func ExampleModel_Train() {
	train, test, err := mnist.LoadDataDir("../testdata/mnist")
	if err != nil {
		log.Fatal(err)
	}
	w, err := mnist.Pretrained()
	if err != nil {
		log.Fatal(err)
	}
	m, err := mnist.NewModel(w, &mnist.ModelOptions{Replay: train, FineTune: &mnist.FineTuneConfig{Steps: 10}})
	if err != nil {
		log.Fatal(err)
	}
	// A person drew test image 0 (a 7) and said it is a 1: the model learns what it is told.
	samples := []dadc.Sample[*image.Gray]{{SampleMeta: dadc.SampleMeta{ID: "a", Label: 1}, Input: test.Gray(0)}}
	next, err := m.Train(context.Background(), dadc.TrainRequest[*image.Gray]{Round: 0, Version: "round-1", Samples: samples})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new model:", next.Version(), "old model unchanged:", m.Version() != next.Version())
	// Output: new model: round-1 old model unchanged: true
}
