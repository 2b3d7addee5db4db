package dadchub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/advspace/advspace/dadc"
)

// DefaultCheckInterval is how often a Follower checks the model repo's head
// by default: one request a minute per replica.
const DefaultCheckInterval = time.Minute

// Adopter serves a model published elsewhere; *dadc.Loop implements it.
// Adopt owns m from the call on (see dadc.Loop.Adopt).
type Adopter[In any] interface {
	Adopt(ctx context.Context, m dadc.Model[In], card dadc.ModelCard, hist *dadc.History) error
}

// FollowerOptions configure NewFollower. nil or zero fields mean the defaults.
type FollowerOptions struct {
	// Interval is the mean time between two checks of the head (default
	// DefaultCheckInterval). Each wait is drawn uniformly from
	// [0.8, 1.2]·Interval, so that replicas started together spread out.
	Interval time.Duration
	// Logger receives what the follower does. Default: discard.
	Logger *slog.Logger
}

// Follower keeps a loop serving the model at the head of a Store's repo.
type Follower[In any] struct {
	store  *Store
	loader dadc.ModelLoader[In]
	target Adopter[In]
	opts   FollowerOptions
	log    *slog.Logger

	mu      sync.Mutex
	commit  string // the head commit last handled
	version string // the version last adopted
}

// NewFollower returns a Follower that adopts, into target, the models
// published in store, turning weights into models with loader. serving is
// the version target serves now (a head holding it is not downloaded).
func NewFollower[In any](store *Store, loader dadc.ModelLoader[In], target Adopter[In], serving string, opts *FollowerOptions) (*Follower[In], error) {
	if store == nil || loader == nil || target == nil {
		return nil, errors.New("dadchub: NewFollower: store, loader and target are required")
	}
	var o FollowerOptions
	if opts != nil {
		o = *opts
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("dadchub: NewFollower: Interval is %s; it must be positive (0 means %s)", o.Interval, DefaultCheckInterval)
	}
	if o.Interval == 0 {
		o.Interval = DefaultCheckInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Follower[In]{store: store, loader: loader, target: target, opts: o, log: o.Logger, version: serving}, nil
}

// Check looks at the head once: if it moved to a model that does not serve
// yet, Check downloads it, verifies it, loads it and adopts it. It reports
// whether a new model was adopted. Checks are serialised.
func (f *Follower[In]) Check(ctx context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sha, err := f.store.HeadCommit(ctx)
	if err != nil {
		return false, err
	}
	if sha == "" || sha == f.commit {
		return false, nil
	}
	h, err := f.store.headAt(ctx, sha)
	if errors.Is(err, dadc.ErrNoModel) {
		f.commit = sha
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if h.Card.Version == f.version {
		f.commit = sha
		return false, nil
	}
	b, err := f.store.Weights(ctx, h)
	if err != nil {
		return false, err
	}
	m, err := f.loader.Load(ctx, h.Card.ModelCard, bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("dadchub: loading model %s: %w", h.Card.Version, err)
	}
	if err := f.target.Adopt(ctx, m, h.Card.ModelCard, h.History); err != nil {
		return false, fmt.Errorf("dadchub: adopting model %s: %w", h.Card.Version, err)
	}
	f.commit, f.version = sha, h.Card.Version
	f.log.Info("dadchub: serving the published model", "model_version", h.Card.Version, "round", h.Card.Round, "commit", sha)
	return true, nil
}

// Run checks the head every Interval (jittered) until ctx is done, logging
// failed checks (the model that serves keeps serving), and returns ctx's
// error. The first check is made right away.
func (f *Follower[In]) Run(ctx context.Context) error {
	for {
		if _, err := f.Check(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("dadchub: checking the published model failed; the serving model stays", "err", err)
		}
		t := time.NewTimer(jitter(f.opts.Interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// jitter returns d scaled by a factor drawn uniformly from [0.8, 1.2].
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
