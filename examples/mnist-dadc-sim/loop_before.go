package main

import (
	"image"
	"log/slog"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist"
)

func newSimLoop(model *mnist.Model, clean *mnist.Dataset, cfg simConfig, logger *slog.Logger) (*dadc.Loop[*image.Gray], error) {
	return dadc.NewLoop[*image.Gray](model, &memFlagger{}, dadc.Manual(), &dadc.Options[*image.Gray]{
		Classes: mnist.Classes, CleanTest: clean.Examples(), Logger: logger, CheckInterval: -1,
	})
}

func lastDecision(st dadc.Stats) (decision, reason string) {
	for i := len(st.Rounds) - 1; i >= 0; i-- {
		r := st.Rounds[i]
		if r.Candidate == "" {
			continue
		}
		switch {
		case r.Promoted:
			return "promoted", r.Error
		case r.CleanAccuracy != nil:
			return "rejected", r.Error
		default:
			return "failed", r.Error
		}
	}
	return "", ""
}
