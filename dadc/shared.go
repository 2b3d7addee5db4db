package dadc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Ingest counts samples that were flagged elsewhere (on other servers that
// share a dataset, read back from it) as if they had been flagged here: the
// way a trainer collects the union of every writer's samples.
//
// Samples whose ID the Loop already knows are skipped, so reading the same
// samples twice (after a restart, or an overlapping read) counts nothing
// twice. Every new sample is first stored with the flagger (so that a
// restarted Loop recovers it, if the flagger is a SampleSource), then counted
// in min(sample.Round, current round) and added to the training pool, in the
// order given; then the policy is asked once, which may start a retrain in
// the background. Ingest returns how many samples were new.
//
// A sample with an empty ID or a label outside [0, Classes) is refused: the
// error wraps ErrInvalidLabel (or says the ID is empty) and nothing of the
// batch from that sample on is counted. A flagger error stops the batch
// likewise; samples before it stay counted. After Close it returns ErrClosed.
func (l *Loop[In]) Ingest(ctx context.Context, samples []Sample[In]) (added int, err error) {
	if err := l.enter(); err != nil {
		return 0, err
	}
	defer l.ops.Done()
	defer func() {
		if added > 0 {
			l.mu.Lock()
			l.publishLocked(Event{Kind: EventFlagged, Round: l.round,
				Message: fmt.Sprintf("%d samples flagged on other servers were read", added)})
			l.maybeRetrainLocked()
			l.mu.Unlock()
		}
	}()
	for _, s := range samples {
		if s.ID == "" {
			return added, errors.New("dadc: Ingest: a sample has an empty ID; every sample needs the ID it was stored under")
		}
		if s.Label < 0 || s.Label >= l.opts.classes {
			return added, fmt.Errorf("dadc: Ingest: sample %s: %w: got %d, want a class in [0, %d)", s.ID, ErrInvalidLabel, s.Label, l.opts.classes)
		}
		if s.Round < 0 || s.Round > maxRecoveredRound {
			return added, fmt.Errorf("dadc: Ingest: sample %s has round %d, outside [0, %d]; the source is damaged", s.ID, s.Round, maxRecoveredRound)
		}
		l.mu.Lock()
		_, dup := l.ids[s.ID]
		l.mu.Unlock()
		if dup {
			continue
		}
		s.ModelProbabilities = slices.Clone(s.ModelProbabilities)
		if err := l.flagger.Flag(ctx, s); err != nil {
			return added, fmt.Errorf("dadc: Ingest: storing sample %s: %w", s.ID, err)
		}
		l.mu.Lock()
		if _, dup := l.ids[s.ID]; !dup { // a concurrent Ingest of the same sample
			l.addSampleLocked(s)
			added++
		}
		l.mu.Unlock()
	}
	return added, nil
}

// Adopt serves a model that was trained and promoted elsewhere (by a
// trainer that publishes to a shared model store), the way a replica
// follows it. It swaps m in atomically (calls running on the old model
// finish on it; the old model is released as after a promotion), sets the
// round to card.Round, and, when hist is not nil, replaces the round
// history with the publisher's (as published), so that Stats shows the
// rounds it says; the Loop's flagged total, attempts and pool stay its own.
//
// m must have card.Version as its Version. Adopting the version that
// already serves does nothing. The Loop owns m from the call on, also when
// Adopt fails (m is then closed if it implements io.Closer). Errors:
// ErrClosed, ErrRetrainInProgress (a follower does not retrain: use the
// Manual policy), or a version mismatch.
func (l *Loop[In]) Adopt(ctx context.Context, m Model[In], card ModelCard, hist *History) error {
	if m == nil {
		return errors.New("dadc: Adopt: model is nil")
	}
	if m.Version() != card.Version {
		closeModel(m, m.Version(), l.log)
		return fmt.Errorf("dadc: Adopt: the model's version is %s but the card says %s; load the weights the card describes", m.Version(), card.Version)
	}
	if card.Round < 0 || card.Round > maxRecoveredRound {
		closeModel(m, m.Version(), l.log)
		return fmt.Errorf("dadc: Adopt: card round %d is outside [0, %d]", card.Round, maxRecoveredRound)
	}
	if err := ctx.Err(); err != nil {
		closeModel(m, m.Version(), l.log)
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		closeModel(m, m.Version(), l.log)
		return ErrClosed
	}
	if l.retraining {
		l.mu.Unlock()
		closeModel(m, m.Version(), l.log)
		return fmt.Errorf("dadc: Adopt: %w; a Loop that follows published models must not retrain itself", ErrRetrainInProgress)
	}
	if l.current.Load().version == card.Version {
		l.mu.Unlock()
		closeModel(m, m.Version(), l.log)
		return nil
	}
	now := l.now()
	replaced := l.current.Swap(newModelRef(m, card.Version, l.log))
	if hist != nil {
		l.adoptHistoryLocked(hist, card, now)
	} else {
		cur := &l.rounds[l.round]
		cur.EndedAt = &now
		for len(l.rounds) <= card.Round {
			l.rounds = append(l.rounds, RoundStats{Round: len(l.rounds), ModelVersion: card.Version, StartedAt: now})
		}
		l.round = len(l.rounds) - 1
		l.rounds[l.round].ModelVersion = card.Version
	}
	l.historyDirty = true
	l.publishLocked(Event{Kind: EventModelPromoted, Round: l.round, ModelVersion: card.Version,
		Message: fmt.Sprintf("model %s (published for round %d) replaces %s", card.Version, card.Round, replaced.version)})
	l.log.Info("dadc: adopted a published model", "model_version", card.Version, "round", card.Round,
		"parent", card.Parent, "replaced", replaced.version)
	l.mu.Unlock()
	replaced.release()
	return nil
}

// adoptHistoryLocked takes the publisher's rounds up to card.Round, as
// published (their counts are the publisher's: a trainer's are the union
// of every server's), and makes card.Round the current round, served by
// card.Version; this Loop's own later flags and attempts count in it.
func (l *Loop[In]) adoptHistoryLocked(h *History, card ModelCard, now time.Time) {
	rounds := make([]RoundStats, 0, card.Round+1)
	for i, r := range h.Rounds {
		if i > card.Round {
			break
		}
		r = r.clone()
		r.Round = i
		rounds = append(rounds, r)
	}
	for len(rounds) <= card.Round {
		rounds = append(rounds, RoundStats{Round: len(rounds), StartedAt: now})
	}
	last := &rounds[card.Round]
	last.ModelVersion = card.Version
	last.EndedAt = nil
	if card.Round > 0 && rounds[card.Round-1].EndedAt == nil {
		rounds[card.Round-1].EndedAt = &now
	}
	for i := range l.pool {
		l.pool[i].round = min(l.pool[i].round, card.Round)
	}
	l.rounds = rounds
	l.round = card.Round
	l.refClean = clonePtr(h.ReferenceCleanAccuracy)
}
