package main

import (
	"context"
	"fmt"
	"image"
	"slices"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist"
)

// trainableOnly is the model the loop serves and retrains, with a retrain
// that learns only from the samples keep accepts (verified, not retracted,
// not rejected). It stands in for the Loop's own training filter
// (dadc.Options.Trainable) until the Loop has one; with it the wrapper
// changes nothing, since the Loop then hands over only trainable samples.
type trainableOnly struct {
	*mnist.Model
	keep func(dadc.SampleMeta) bool
}

// Train trains on the kept samples only; with none it fails with
// dadc.ErrNothingToTrain, so the serving model stays.
func (m trainableOnly) Train(ctx context.Context, req dadc.TrainRequest[*image.Gray]) (dadc.Model[*image.Gray], error) {
	req.Samples = slices.DeleteFunc(slices.Clone(req.Samples), func(s dadc.Sample[*image.Gray]) bool { return !m.keep(s.SampleMeta) })
	if len(req.Samples) == 0 {
		return nil, fmt.Errorf("%w: none of the flagged samples is verified by other people yet", dadc.ErrNothingToTrain)
	}
	next, err := m.Model.Train(ctx, req)
	if err != nil {
		return nil, err
	}
	if nm, ok := next.(*mnist.Model); ok {
		return trainableOnly{Model: nm, keep: m.keep}, nil
	}
	return next, nil
}
