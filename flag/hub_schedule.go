package flag

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/internal/backoff"
)

// hubSchedule is the scheduler's own state, touched only by its goroutine
// (and by NewHub before it starts).
type hubSchedule struct {
	st          hubState  // the push record, as on disk
	repoReady   bool      // the repo exists (created or found)
	needCheck   bool      // check the record against the repo before pushing
	lastAttempt time.Time // when the last push began
	nextTry     time.Time // after a failure: not before then
	failures    int       // consecutive failed attempts
	lastErr     error     // the last failure, for Close's report
}

// run is the scheduler goroutine. It ends when the base context is cancelled.
func (h *Hub[In]) run() {
	defer close(h.done)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var fire <-chan time.Time
		if at, ok := h.dueAt(); ok {
			d := time.Until(at)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			fire = timer.C
		}
		select {
		case <-h.ctx.Done():
			return
		case req := <-h.flushReq:
			req.reply <- h.flush(req.ctx)
		case <-h.wake:
			h.maybePush()
		case <-fire:
			h.maybePush()
		}
	}
}

// dueAt returns when the next push attempt is due; false when nothing waits
// (a flag or a validation record wakes the scheduler).
func (h *Hub[In]) dueAt() (time.Time, bool) {
	h.mu.Lock()
	pending, fresh := h.pendingAllLocked(), h.fresh
	h.mu.Unlock()
	s := &h.sched
	if pending == 0 && !s.needCheck {
		return time.Time{}, false
	}
	due := s.lastAttempt.Add(h.opts.Interval)
	if fresh >= h.opts.MaxBatch || (s.needCheck && pending == 0) {
		due = time.Time{}
	}
	now := time.Now()
	return latest(due, s.nextTry, h.budgetOpens(now)), true
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// budgetOpens returns when the next commit fits in the hourly budget (now if it does).
func (h *Hub[In]) budgetOpens(now time.Time) time.Time {
	s := &h.sched
	cutoff := now.Add(-time.Hour)
	s.st.Times = slices.DeleteFunc(s.st.Times, func(t time.Time) bool { return !t.After(cutoff) })
	if len(s.st.Times) < h.opts.MaxCommitsPerHour {
		return now
	}
	return s.st.Times[len(s.st.Times)-h.opts.MaxCommitsPerHour].Add(time.Hour)
}

// maybePush makes one attempt if one is due.
func (h *Hub[In]) maybePush() {
	at, ok := h.dueAt()
	if !ok || time.Now().Before(at) {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.PushTimeout)
	defer cancel()
	if _, err := h.attempt(ctx); err != nil {
		h.log.Warn("flag: hub: push failed; samples and records are safe locally and will be retried",
			"pending", h.Pending(), "pending_record_files", h.PendingRecords(), "retry_at", h.sched.nextTry, "err", err)
	}
}

// flush pushes until no sample or record is pending (Flush and Close).
func (h *Hub[In]) flush(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("flag: hub flush: %w", err)
		}
		h.mu.Lock()
		pending := h.pendingAllLocked()
		h.mu.Unlock()
		if pending == 0 && !h.sched.needCheck {
			return nil
		}
		now := time.Now()
		if open := h.budgetOpens(now); now.Before(open) {
			return fmt.Errorf("%w (%d commits in the last hour; next at %s)", ErrHubCommitLimit, len(h.sched.st.Times), open.UTC().Format(time.RFC3339))
		}
		pctx, cancel := context.WithTimeout(ctx, h.opts.PushTimeout)
		more, err := h.attempt(pctx)
		cancel()
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// resolvedRetries bounds how often one attempt starts over after a conflict
// it resolved (a card another writer added; a repo that vanished).
const resolvedRetries = 3

// attempt checks the record if needed and makes one commit, starting over
// (without counting a failure) after a conflict it resolved. Failures set
// the backoff. It reports whether more remain to push.
func (h *Hub[In]) attempt(ctx context.Context) (more bool, err error) {
	s := &h.sched
	s.lastAttempt = time.Now()
	h.mu.Lock()
	h.fresh = 0
	h.mu.Unlock()
	for range resolvedRetries {
		more, err = h.pushOnce(ctx)
		var r *resolvedConflict
		if !errors.As(err, &r) {
			break
		}
		h.log.Info("flag: hub: "+r.what+"; checked again and retrying", "err", r.err)
	}
	if err != nil {
		s.failures++
		wait := backoff.Policy{Min: h.opts.MinBackoff, Max: h.opts.MaxBackoff}.Cap(s.failures - 1)
		if ra := hfhub.RetryAfterOf(err); ra > wait {
			wait = ra
		}
		s.nextTry = time.Now().Add(wait)
		s.lastErr = err
		return false, err
	}
	s.failures, s.nextTry, s.lastErr = 0, time.Time{}, nil
	return more, nil
}

// resolvedConflict is a push failure the Hub resolved by checking again: the
// attempt starts over and it is not an error.
type resolvedConflict struct {
	what string
	err  error
}

func (r *resolvedConflict) Error() string { return r.what + ": " + r.err.Error() }
func (r *resolvedConflict) Unwrap() error { return r.err }
