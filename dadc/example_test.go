package dadc_test

import (
	"context"
	"fmt"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

// cleanOnly is a Gate for models that memorise their corrections (they can
// never get held-out samples right): it promotes a candidate whose clean
// accuracy does not fall below the reference. The default gate, NewGate,
// also demands a significant gain on the held-out fooling samples and no
// loss on earlier rounds' held-out sets.
var cleanOnly = dadc.GateFunc(func(in dadc.GateInput) dadc.GateDecision {
	if in.Clean != nil && in.Clean.Candidate < in.Clean.Reference {
		return dadc.GateDecision{Reasons: []string{fmt.Sprintf("FAIL clean %.2f < reference %.2f", in.Clean.Candidate, in.Clean.Reference)}}
	}
	return dadc.GateDecision{Promote: true, Reasons: []string{"ok clean accuracy kept"}}
})

// A whole round: a model that guesses "n modulo 10" is fooled by people who
// know better, the third flag starts a retrain in the background, the
// candidate passes the gate on the clean test set and serves from then on,
// opening round 1.
func ExampleNewLoop() {
	ctx := context.Background()
	model := dadctest.NewLookupModel("v0", 10, nil) // predicts n % 10, learns corrections
	flagger := dadctest.NewFlagger[int](nil)        // in memory; use package flag for real storage

	clean := make([]dadc.Example[int], 100)
	for n := range clean {
		clean[n] = dadc.Example[int]{Input: n, Label: n % 10}
	}
	loop, err := dadc.NewLoop[int](model, flagger, dadc.EveryN(3), 10, &dadc.Options[int]{
		CleanTest:    clean,
		Gate:         cleanOnly,
		HoldoutEvery: -1,
		NewVersion:   func(round int) string { return fmt.Sprintf("v%d", round) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer loop.Close(ctx)

	for _, sub := range []struct{ n, label int }{{12, 2}, {113, 7}, {121, 4}, {134, 9}} {
		res, err := loop.Flag(ctx, sub.n, sub.label, "session-1")
		if err != nil {
			fmt.Println(err)
			return
		}
		if res.Fooled {
			fmt.Printf("%d: model said %d, person says %d: stored as sample %d of round %d\n",
				sub.n, res.Prediction.Label, sub.label, res.Count, res.Round)
		} else {
			fmt.Printf("%d: model said %d, correct\n", sub.n, res.Prediction.Label)
		}
	}
	if err := loop.WaitIdle(ctx); err != nil {
		fmt.Println(err)
		return
	}
	p, _ := loop.Predict(ctx, 113)
	fmt.Printf("113 is now %d according to %s\n", p.Label, p.ModelVersion)
	st := loop.Stats()
	r := st.Rounds[0]
	fmt.Printf("round 0: %d flags, %d attempt, candidate %s promoted=%v clean accuracy %.2f (baseline %.2f)\n",
		r.Flags, r.Attempts, r.Candidate, r.Promoted, *r.CleanAccuracy, *r.BaselineCleanAccuracy)
	fmt.Printf("now round %d, error rate so far %.2f\n", st.Round, st.ModelErrorRate)
	// Output:
	// 12: model said 2, correct
	// 113: model said 3, person says 7: stored as sample 1 of round 0
	// 121: model said 1, person says 4: stored as sample 2 of round 0
	// 134: model said 4, person says 9: stored as sample 3 of round 0
	// 113 is now 7 according to v1
	// round 0: 3 flags, 1 attempt, candidate v1 promoted=true clean accuracy 1.00 (baseline 1.00)
	// now round 1, error rate so far 0.75
}

// Events tell a dashboard what happens without polling.
func ExampleLoop_Subscribe() {
	ctx := context.Background()
	loop, err := dadc.NewLoop[int](dadctest.NewLookupModel("v0", 10, nil), dadctest.NewFlagger[int](nil),
		dadc.EveryN(1), 10, &dadc.Options[int]{HoldoutEvery: -1, Gate: cleanOnly})
	if err != nil {
		fmt.Println(err)
		return
	}
	events, cancel := loop.Subscribe(16)
	defer cancel()

	if _, err := loop.Flag(ctx, 5, 6, ""); err != nil {
		fmt.Println(err)
		return
	}
	_ = loop.WaitIdle(ctx)
	_ = loop.Close(ctx) // closes the events channel
	for e := range events {
		fmt.Println(e.Kind, "round", e.Round)
	}
	// Output:
	// flagged round 0
	// retrain_started round 0
	// model_promoted round 0
}

// Policies combine: retrain after 10 new flags, or hourly if anything new was flagged.
func ExampleAny() {
	policy := dadc.Any(dadc.EveryN(10), dadc.EveryInterval(time.Hour))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []dadc.PolicyState{
		{NewFlags: 3, RoundStarted: start, Now: start.Add(10 * time.Minute)},
		{NewFlags: 10, RoundStarted: start, Now: start.Add(10 * time.Minute)},
		{NewFlags: 3, RoundStarted: start, Now: start.Add(2 * time.Hour)},
		{NewFlags: 0, RoundStarted: start, Now: start.Add(2 * time.Hour)},
	} {
		fmt.Printf("%d flags after %s: %v\n", s.NewFlags, s.Now.Sub(s.RoundStarted), policy.ShouldRetrain(s))
	}
	fmt.Println(policy)
	// Output:
	// 3 flags after 10m0s: false
	// 10 flags after 10m0s: true
	// 3 flags after 2h0m0s: true
	// 0 flags after 2h0m0s: false
	// Any(EveryN(10), EveryInterval(1h0m0s))
}

// A misconfigured policy is refused with a clear error.
func ExampleEveryN() {
	_, err := dadc.NewLoop[int](dadctest.NewLookupModel("v0", 10, nil), dadctest.NewFlagger[int](nil),
		dadc.EveryN(0), 10, nil)
	fmt.Println(err)
	// Output:
	// dadc: NewLoop: invalid policy: dadc: EveryN(0): n must be at least 1 (use Manual() to never retrain automatically)
}

// The default gate explains every decision with its numbers.
func ExampleNewGate() {
	gate, err := dadc.NewGate(nil) // 0.3-point clean budget, p < 0.05, 2-point tolerance
	if err != nil {
		fmt.Println(err)
		return
	}
	d := gate.Decide(dadc.GateInput{
		Round: 2, Candidate: "v3", Serving: "v2",
		Clean:   &dadc.CleanScore{N: 10000, Candidate: 0.9890, Serving: 0.9905, Reference: 0.9917},
		HeldOut: dadc.PairedScore{N: 16, Candidate: 9, Serving: 0, CandidateOnly: 9},
		Earlier: []dadc.EarlierScore{{Round: 1, N: 16, Reference: 12, Candidate: 10}},
	})
	fmt.Println("promote:", d.Promote)
	for _, r := range d.Reasons {
		fmt.Println(r)
	}
	// Output:
	// promote: false
	// ok clean: 98.90% >= fixed reference 99.17% - 0.30 points (n=10000; serving 99.05%)
	// ok gain: held-out 9/16 vs serving 0/16; 9 won, 0 lost; one-sided exact McNemar p=0.00195 < 0.05
	// FAIL round 1 held-out: 10/16 (62.5%) < reference 12/16 (75.0%) - 1 sample (2.0 points is less than 1 of 16)
}
