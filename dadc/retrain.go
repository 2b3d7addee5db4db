package dadc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// modelRef is a served (or once served) model with a reference count. The
// Loop holds one reference while the model serves; every call on the model
// holds another. When the count drops to zero the model can no longer be
// reached and, if it is an io.Closer, it is closed.
type modelRef[In any] struct {
	model   Model[In]
	version string // model.Version(), stable by contract, read once
	log     *slog.Logger
	refs    atomic.Int64

	// baseline caches the model's clean accuracy (computed by the retrain
	// goroutine, one at a time).
	baselineMu sync.Mutex
	baseline   *float64
}

func newModelRef[In any](m Model[In], version string, log *slog.Logger) *modelRef[In] {
	r := &modelRef[In]{model: m, version: version, log: log}
	r.refs.Store(1)
	return r
}

// tryAcquire takes a reference unless the count already reached zero.
func (r *modelRef[In]) tryAcquire() bool {
	for {
		n := r.refs.Load()
		if n <= 0 {
			return false
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (r *modelRef[In]) release() {
	if r.refs.Add(-1) == 0 {
		closeModel(r.model, r.version, r.log)
	}
}

// closeModel closes m if it is an io.Closer, logging any error or panic.
func closeModel[In any](m Model[In], version string, log *slog.Logger) {
	c, ok := m.(io.Closer)
	if !ok {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("dadc: closing a model panicked", "model_version", version, "panic", fmt.Sprint(p))
		}
	}()
	if err := c.Close(); err != nil {
		log.Warn("dadc: closing a retired model failed", "model_version", version, "err", err)
		return
	}
	log.Debug("dadc: closed a retired model", "model_version", version)
}

// retrainJob is everything a retrain needs, captured when its round closes.
type retrainJob[In any] struct {
	round   int // the round that closed
	version string
	trainer Trainer[In]
	base    *modelRef[In] // the serving model, referenced for the baseline
	train   []Sample[In]
	heldOut []Example[In]
	clean   []Example[In]
	started time.Time
}

// retrainResult is what a retrain produced.
type retrainResult[In any] struct {
	candidate     Model[In] // nil if training failed
	version       string    // candidate.Version(), read once inside the recover
	clean         *float64
	adversarial   *float64
	baseline      *float64
	promote       bool
	err           error // training or evaluation failed
	rejectMessage string
}

// startRetrainLocked closes the current round, opens the next and starts a
// retrain goroutine. Errors: ErrClosed, ErrRetrainInProgress,
// ErrNotTrainable, ErrNothingToTrain.
func (l *Loop[In]) startRetrainLocked() error {
	if l.closed {
		return ErrClosed
	}
	if l.retraining {
		return ErrRetrainInProgress
	}
	ref := l.current.Load()
	trainer, ok := ref.model.(Trainer[In])
	if !ok {
		return ErrNotTrainable
	}
	job := &retrainJob[In]{
		round:   l.round,
		trainer: trainer,
		base:    ref,
		clean:   l.opts.CleanTest,
		started: l.now(),
	}
	for _, p := range l.pool {
		if p.heldOut {
			job.heldOut = append(job.heldOut, Example[In]{Input: p.s.Input, Label: p.s.Label})
		} else {
			job.train = append(job.train, p.s)
		}
	}
	if len(job.train) == 0 {
		return ErrNothingToTrain
	}
	version, err := l.newVersion(l.round + 1)
	if err != nil {
		return err
	}
	job.version = version
	if !ref.tryAcquire() { // cannot fail: the Loop holds a reference until Close
		return ErrClosed
	}

	closing := &l.rounds[l.round]
	ended := job.started
	closing.EndedAt = &ended
	closing.Candidate = job.version
	closing.TrainSamples = len(job.train)
	closing.HeldOutSamples = len(job.heldOut)
	l.round++
	l.rounds = append(l.rounds, RoundStats{Round: l.round, ModelVersion: ref.version, StartedAt: job.started})

	l.retraining = true
	l.retrainDone = make(chan struct{})
	l.progress.Store(0)
	l.ops.Add(1)
	l.log.Info("dadc: retrain started", "round", job.round, "candidate", job.version,
		"train_samples", len(job.train), "held_out", len(job.heldOut), "model_version", ref.version)
	l.publishLocked(Event{Kind: EventRetrainStarted, Round: job.round, Candidate: job.version,
		Message: fmt.Sprintf("round %d closed; training %s on %d adversarial samples; round %d begins", job.round, job.version, len(job.train), l.round)})
	go l.runRetrain(job)
	return nil
}

// newVersion calls Options.NewVersion, turning a panic or an empty version into an error.
func (l *Loop[In]) newVersion(round int) (v string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("dadc: Options.NewVersion(%d) panicked: %v", round, p)
		}
	}()
	v = l.opts.NewVersion(round)
	if v == "" {
		return "", fmt.Errorf("dadc: Options.NewVersion(%d) returned an empty version; it must name the model", round)
	}
	return v, nil
}

func (l *Loop[In]) runRetrain(job *retrainJob[In]) {
	defer l.ops.Done()
	ctx, cancel := context.WithTimeout(l.baseCtx, l.opts.TrainTimeout)
	defer cancel()
	res := l.retrain(ctx, job)
	l.finishRetrain(job, res)
}

// retrain trains and scores a candidate. A panic in user code (Train,
// Evaluate, Predict) becomes an error.
func (l *Loop[In]) retrain(ctx context.Context, job *retrainJob[In]) (res retrainResult[In]) {
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("dadc: retrain panicked", "round", job.round, "candidate", job.version,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res.err = fmt.Errorf("retrain panicked: %v", p)
			res.promote = false
		}
	}()
	req := TrainRequest[In]{
		Round:   job.round,
		Version: job.version,
		Samples: job.train,
		Progress: func(done float64) {
			if !math.IsNaN(done) {
				l.progress.Store(math.Float64bits(min(max(done, 0), 1)))
			}
		},
	}
	cand, err := job.trainer.Train(ctx, req)
	res.candidate = cand
	if err == nil && cand == nil {
		err = errors.New("the trainer returned neither a model nor an error")
	}
	if err == nil {
		err = ctx.Err() // the trainer overran its deadline or ignored Close
	}
	if err != nil {
		res.err = fmt.Errorf("training: %w", l.explainCtxErr(ctx, err))
		return res
	}
	res.version = cand.Version()
	if res.version != job.version {
		l.log.Warn("dadc: the trained model reports another version than requested", "requested", job.version, "reported", res.version)
	}
	l.log.Info("dadc: training done; scoring the candidate", "round", job.round, "candidate", res.version,
		"seconds", l.now().Sub(job.started).Seconds())

	if len(job.clean) > 0 {
		base, err := l.baselineAccuracy(ctx, job.base, job.clean)
		if err != nil {
			res.err = fmt.Errorf("scoring the serving model on the clean test set: %w", l.explainCtxErr(ctx, err))
			return res
		}
		res.baseline = &base
		ev, err := evaluate(ctx, cand, job.clean)
		if err != nil {
			res.err = fmt.Errorf("scoring the candidate on the clean test set: %w", l.explainCtxErr(ctx, err))
			return res
		}
		res.clean = &ev.Accuracy
	}
	if len(job.heldOut) > 0 {
		ev, err := evaluate(ctx, cand, job.heldOut)
		if err != nil {
			res.err = fmt.Errorf("scoring the candidate on held-out adversarial samples: %w", l.explainCtxErr(ctx, err))
			return res
		}
		res.adversarial = &ev.Accuracy
	}
	if err := ctx.Err(); err != nil {
		res.err = fmt.Errorf("scoring: %w", l.explainCtxErr(ctx, err))
		return res
	}

	switch {
	case res.clean == nil:
		res.promote = true // no clean test set: the gate checks nothing
	case *res.clean >= *res.baseline-l.opts.MaxAccuracyDrop:
		res.promote = true
	default:
		res.rejectMessage = fmt.Sprintf("rejected: clean accuracy %.4f is below the serving model's %.4f minus the allowed drop %.4f",
			*res.clean, *res.baseline, l.opts.MaxAccuracyDrop)
	}
	return res
}

// explainCtxErr names a timeout or a Close when ctx ended.
func (l *Loop[In]) explainCtxErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("timed out after %s (Options.TrainTimeout): %w", l.opts.TrainTimeout, err)
	case ctx.Err() != nil:
		return fmt.Errorf("cancelled because the loop is closing: %w", err)
	}
	return err
}

// baselineAccuracy returns ref's clean accuracy, computing it once per model.
func (l *Loop[In]) baselineAccuracy(ctx context.Context, ref *modelRef[In], clean []Example[In]) (float64, error) {
	ref.baselineMu.Lock()
	defer ref.baselineMu.Unlock()
	if ref.baseline != nil {
		return *ref.baseline, nil
	}
	ev, err := evaluate(ctx, ref.model, clean)
	if err != nil {
		return 0, err
	}
	ref.baseline = &ev.Accuracy
	return ev.Accuracy, nil
}

// finishRetrain records a retrain's outcome, promotes the candidate if it
// passed the gate, and asks the policy again (coalescing).
func (l *Loop[In]) finishRetrain(job *retrainJob[In], res retrainResult[In]) {
	var retire Model[In] // candidate that will never serve
	var retireVersion string
	var replaced *modelRef[In] // model that stopped serving

	l.mu.Lock()
	rs := &l.rounds[job.round]
	rs.CleanAccuracy = res.clean
	rs.AdversarialAccuracy = res.adversarial
	rs.BaselineCleanAccuracy = res.baseline
	if res.version != "" {
		rs.Candidate = res.version
	}
	ev := Event{Round: job.round, Candidate: rs.Candidate, CleanAccuracy: deref(res.clean), AdversarialAccuracy: deref(res.adversarial)}
	seconds := l.now().Sub(job.started).Seconds()
	switch {
	case res.err != nil:
		rs.Error = res.err.Error()
		retire = res.candidate
		ev.Kind = EventRetrainFailed
		ev.Message = fmt.Sprintf("retrain of round %d failed: %v; model %s keeps serving", job.round, res.err, job.base.version)
		l.log.Error("dadc: retrain failed; the old model keeps serving", "round", job.round, "candidate", rs.Candidate, "err", res.err)
	case res.promote && l.closed:
		rs.Error = "not promoted: the loop closed"
		retire = res.candidate
		ev.Kind = EventRetrainFailed
		ev.Message = fmt.Sprintf("candidate %s passed the gate but the loop closed before promotion", rs.Candidate)
		l.log.Warn("dadc: the loop closed before the candidate could be promoted", "round", job.round, "candidate", rs.Candidate)
	case res.promote:
		rs.Promoted = true
		promoted := newModelRef(res.candidate, res.version, l.log)
		// The gate just scored the candidate on the same clean test set: that
		// score is its baseline, so the next retrain need not score it again.
		promoted.baseline = res.clean
		replaced = l.current.Swap(promoted)
		// Only this retrain could have opened the current round.
		l.rounds[l.round].ModelVersion = res.version
		ev.Kind = EventModelPromoted
		ev.Message = fmt.Sprintf("model %s replaces %s", res.version, replaced.version)
		if res.clean == nil {
			ev.Message += " (no clean test set: the gate checked nothing)"
		}
		l.log.Info("dadc: candidate promoted", "round", job.round, "candidate", rs.Candidate,
			"clean_accuracy", deref(res.clean), "baseline_clean_accuracy", deref(res.baseline),
			"adversarial_accuracy", deref(res.adversarial), "seconds", seconds)
	default:
		rs.Error = res.rejectMessage
		retire = res.candidate
		ev.Kind = EventModelRejected
		ev.Message = fmt.Sprintf("candidate %s %s; model %s keeps serving", rs.Candidate, res.rejectMessage, job.base.version)
		l.log.Warn("dadc: candidate rejected by the gate; the old model keeps serving", "round", job.round, "candidate", rs.Candidate,
			"clean_accuracy", deref(res.clean), "baseline_clean_accuracy", deref(res.baseline), "max_accuracy_drop", l.opts.MaxAccuracyDrop)
	}
	retireVersion = rs.Candidate
	l.publishLocked(ev)
	l.mu.Unlock()

	// Closing models may be slow: not under mu, but before the retrain counts
	// as ended, so that after WaitIdle retired models are released.
	if retire != nil {
		closeModel(retire, retireVersion, l.log)
	}
	job.base.release() // the retrain's own reference, taken for the baseline
	if replaced != nil {
		replaced.release() // the Loop's reference: the old model no longer serves
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.retraining = false
	l.progress.Store(0)
	close(l.retrainDone)
	l.maybeRetrainLocked() // coalescing: flags that arrived meanwhile may call for the next retrain
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// evaluateChunk is how many inputs go into one PredictBatch call.
const evaluateChunk = 256

// evaluate scores m on examples through Evaluator, else BatchPredictor, else Predict.
func evaluate[In any](ctx context.Context, m Model[In], examples []Example[In]) (Evaluation, error) {
	if len(examples) == 0 {
		return Evaluation{}, errors.New("no examples to score")
	}
	if ev, ok := m.(Evaluator[In]); ok {
		e, err := ev.Evaluate(ctx, examples)
		if err != nil {
			return Evaluation{}, err
		}
		if e.N != len(examples) || math.IsNaN(e.Accuracy) || e.Accuracy < 0 || e.Accuracy > 1 {
			return Evaluation{}, fmt.Errorf("the evaluator of model %s returned N=%d accuracy=%v for %d examples; want N equal to the number of examples and accuracy in [0,1]",
				m.Version(), e.N, e.Accuracy, len(examples))
		}
		return e, nil
	}
	correct := 0
	if bp, ok := m.(BatchPredictor[In]); ok {
		ins := make([]In, 0, evaluateChunk)
		for start := 0; start < len(examples); start += evaluateChunk {
			chunk := examples[start:min(start+evaluateChunk, len(examples))]
			ins = ins[:0]
			for _, e := range chunk {
				ins = append(ins, e.Input)
			}
			preds, err := bp.PredictBatch(ctx, ins)
			if err != nil {
				return Evaluation{}, err
			}
			if len(preds) != len(chunk) {
				return Evaluation{}, fmt.Errorf("PredictBatch of model %s returned %d predictions for %d inputs", m.Version(), len(preds), len(chunk))
			}
			for i, p := range preds {
				if p.Label == chunk[i].Label {
					correct++
				}
			}
		}
	} else {
		for _, e := range examples {
			if err := ctx.Err(); err != nil {
				return Evaluation{}, err
			}
			p, err := m.Predict(ctx, e.Input)
			if err != nil {
				return Evaluation{}, err
			}
			if p.Label == e.Label {
				correct++
			}
		}
	}
	return Evaluation{N: len(examples), Accuracy: float64(correct) / float64(len(examples))}, nil
}
