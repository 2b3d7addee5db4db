package main

import (
	"image"
	"log/slog"
	"os"
	"strings"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist"
)

// newSimLoop builds the loop the simulator plays against: the real model
// store in a temporary folder (removed by the returned cleanup), the default
// gate, the mnist loader, and a Manual policy (the simulator retrains after
// each round's flags).
func newSimLoop(model *mnist.Model, clean *mnist.Dataset, cfg simConfig, logger *slog.Logger) (*dadc.Loop[*image.Gray], func(), error) {
	dir, err := os.MkdirTemp("", "mnist-dadc-sim-store-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	store, err := dadc.NewLocalStore(dir, &dadc.LocalStoreOptions{WeightsName: "model.safetensors", Logger: logger})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	var gate dadc.Gate // nil: the default gate
	if cfg.NoGate {
		gate = dadc.GateFunc(func(dadc.GateInput) dadc.GateDecision {
			return dadc.GateDecision{Promote: true, Reasons: []string{"ok -no-gate: every candidate is promoted"}}
		})
	}
	l, err := dadc.NewLoop[*image.Gray](model, &memFlagger{}, dadc.Manual(), mnist.Classes, &dadc.Options[*image.Gray]{
		Gate:          gate,
		CleanTest:     clean.Examples(),
		Store:         store,
		Loader:        mnist.Loader(nil),
		Logger:        logger,
		CheckInterval: -1,
	})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return l, cleanup, nil
}

// lastDecision returns the decision and the reasons of the latest retrain.
func lastDecision(st dadc.Stats) (decision, reason string) {
	var last *dadc.RetrainStats
	for i := range st.Rounds {
		for j := range st.Rounds[i].Retrains {
			t := &st.Rounds[i].Retrains[j]
			if last == nil || !t.StartedAt.Before(last.StartedAt) {
				last = t
			}
		}
	}
	if last == nil {
		return "", ""
	}
	reason = strings.Join(last.Reasons, "; ")
	if last.Error != "" {
		reason = last.Error
	}
	return last.Decision, reason
}
