package dadctest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

// A scripted flagger fails the calls you choose, so that tests can check
// that nothing is counted when storing fails.
func ExampleNewFlagger() {
	ctx := context.Background()
	f := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{FailCalls: []int{2}})
	for i, id := range []string{"a", "b", "c", "a"} {
		err := f.Flag(ctx, dadc.Sample[int]{SampleMeta: dadc.SampleMeta{ID: id}, Input: i})
		fmt.Printf("flag %s: injected=%v\n", id, errors.Is(err, dadctest.ErrInjected))
	}
	fmt.Println("stored:", f.Len(), "calls:", f.Calls(), "failures:", f.Failures(), "duplicates:", f.Duplicates())
	// Output:
	// flag a: injected=false
	// flag b: injected=true
	// flag c: injected=false
	// flag a: injected=false
	// stored: 2 calls: 4 failures: 1 duplicates: 1
}

// A LookupModel learns the corrections it is trained on, and training
// returns a new model: the old one is unchanged.
func ExampleNewLookupModel() {
	ctx := context.Background()
	m := dadctest.NewLookupModel("v0", 10, nil) // predicts n % 10
	next, _ := m.Train(ctx, dadc.TrainRequest[int]{Version: "v1", Samples: []dadc.Sample[int]{{SampleMeta: dadc.SampleMeta{ID: "x", Label: 7}, Input: 42}}})
	before, _ := m.Predict(ctx, 42)
	after, _ := next.Predict(ctx, 42)
	fmt.Println(before.ModelVersion, before.Label, after.ModelVersion, after.Label)
	// Output:
	// v0 2 v1 7
}

// A FakeModel scripts what training returns, for instance a worse model,
// to test a gate.
func ExampleFakeModel() {
	ctx := context.Background()
	m := dadctest.NewModel("good", 2, func(n int) int { return n % 2 })
	m.TrainFunc = func(_ context.Context, req dadc.TrainRequest[int]) (dadc.Model[int], error) {
		return dadctest.NewModel(req.Version, 2, func(int) int { return 0 }), nil
	}
	worse, _ := m.Train(ctx, dadc.TrainRequest[int]{Version: "worse"})
	examples := []dadc.Example[int]{{Input: 1, Label: 1}, {Input: 2, Label: 0}}
	good, _ := m.Evaluate(ctx, examples)
	bad, _ := dadctest.EvaluateByPredict(ctx, worse, examples)
	fmt.Println(good.Accuracy, bad.Accuracy, len(m.TrainRequests()))
	// Output:
	// 1 0.5 1
}
