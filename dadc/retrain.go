package dadc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"strings"
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

// retrainJob is everything a retrain needs, captured when it starts.
type retrainJob[In any] struct {
	round   int // the current round; it stays open while the retrain runs
	index   int // index of the retrain in rounds[round].Retrains
	version string
	trainer Trainer[In]
	base    *modelRef[In] // the serving model, referenced for the baseline and the pairing
	train   []Sample[In]
	// heldOut are the current round's held-out samples (they fooled base).
	heldOut    []Example[In]
	heldOutIDs []string
	earlier    []earlierSet[In]
	clean      []Example[In]
	reference  *float64 // fixed clean reference; nil: measure base and make it the reference
	started    time.Time
}

// earlierSet is an earlier round's frozen held-out set, resolved to inputs.
type earlierSet[In any] struct {
	round     int
	examples  []Example[In]
	reference int // correct answers of the model promoted at the end of the round, on examples
}

// retrainResult is what a retrain produced.
type retrainResult[In any] struct {
	candidate Model[In] // nil if training failed
	version   string    // candidate.Version(), read once inside the recover
	clean     *float64
	baseline  *float64 // serving model's clean accuracy
	reference *float64 // the fixed reference used (newly measured when job.reference was nil)
	input     *GateInput
	decision  GateDecision
	heldOutOK int // candidate's correct answers on job.heldOut
	err       error
}

func (r *retrainResult[In]) adversarial() *float64 {
	if r.input == nil || r.input.HeldOut.N == 0 {
		return nil
	}
	a := float64(r.input.HeldOut.Candidate) / float64(r.input.HeldOut.N)
	return &a
}

// startRetrainLocked starts a retrain goroutine. The round stays open.
// Errors: ErrClosed, ErrRetrainInProgress, ErrNotTrainable, ErrNothingToTrain.
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
		round:     l.round,
		trainer:   trainer,
		base:      ref,
		clean:     l.opts.CleanTest,
		reference: clonePtr(l.refClean),
		started:   l.now(),
	}
	byID := make(map[string]In)
	for _, p := range l.pool {
		if p.heldOut && p.round != l.round {
			// An earlier round's held-out sample: its frozen set is scored as it was frozen.
			byID[p.s.ID] = p.s.Input
			continue
		}
		if l.opts.Trainable != nil && !l.opts.Trainable(p.s.SampleMeta) {
			continue
		}
		if p.heldOut {
			job.heldOut = append(job.heldOut, Example[In]{Input: p.s.Input, Label: p.s.Label})
			job.heldOutIDs = append(job.heldOutIDs, p.s.ID)
		} else {
			job.train = append(job.train, p.s)
		}
	}
	if len(job.train) == 0 {
		return ErrNothingToTrain
	}
	labels := make(map[string]int, len(l.pool))
	for _, p := range l.pool {
		labels[p.s.ID] = p.s.Label
	}
	for _, hs := range l.heldOutSets {
		es := earlierSet[In]{round: hs.Round, reference: hs.Correct}
		for _, id := range hs.IDs {
			in, ok := byID[id]
			if !ok {
				// The sample is gone from the flagger: the frozen set cannot
				// be scored as it was, so it is skipped (and logged).
				es.examples = nil
				l.log.Warn("dadc: an earlier round's held-out sample is missing; that round is not checked", "round", hs.Round, "id", id)
				break
			}
			es.examples = append(es.examples, Example[In]{Input: in, Label: labels[id]})
		}
		if len(es.examples) > 0 {
			job.earlier = append(job.earlier, es)
		}
	}
	version, err := l.newVersion(l.round + 1)
	if err != nil {
		return err
	}
	job.version = version
	if !ref.tryAcquire() { // cannot fail: the Loop holds a reference until Close
		return ErrClosed
	}

	r := &l.rounds[l.round]
	r.Retrains = append(r.Retrains, RetrainStats{Candidate: job.version, Parent: ref.version, StartedAt: job.started,
		TrainSamples: len(job.train), HeldOutSamples: len(job.heldOut), Decision: DecisionRunning})
	job.index = len(r.Retrains) - 1
	l.mirrorLastRetrainLocked(r)
	l.newFlags = 0
	l.lastRetrain = job.started

	l.retraining = true
	l.retrainDone = make(chan struct{})
	l.progress.Store(0)
	l.ops.Add(1)
	l.log.Info("dadc: retrain started", "round", job.round, "candidate", job.version,
		"train_samples", len(job.train), "held_out", len(job.heldOut), "earlier_sets", len(job.earlier), "model_version", ref.version)
	l.publishLocked(Event{Kind: EventRetrainStarted, Round: job.round, Candidate: job.version,
		Message: fmt.Sprintf("training %s on %d adversarial samples; round %d stays open until a candidate is promoted", job.version, len(job.train), job.round)})
	go l.runRetrain(job)
	return nil
}

// mirrorLastRetrainLocked copies the round's last retrain into its flat fields.
func (l *Loop[In]) mirrorLastRetrainLocked(r *RoundStats) {
	if len(r.Retrains) == 0 {
		return
	}
	t := r.Retrains[len(r.Retrains)-1]
	r.Candidate = t.Candidate
	r.TrainSamples = t.TrainSamples
	r.HeldOutSamples = t.HeldOutSamples
	r.CleanAccuracy = clonePtr(t.CleanAccuracy)
	r.AdversarialAccuracy = clonePtr(t.AdversarialAccuracy)
	r.BaselineCleanAccuracy = nil
	if t.Gate != nil && t.Gate.Clean != nil {
		b := t.Gate.Clean.Serving
		r.BaselineCleanAccuracy = &b
	}
	r.Promoted = t.Decision == DecisionPromoted
	r.Error = t.Error
	if t.Decision == DecisionRejected {
		r.Error = "rejected: " + strings.Join(failedReasons(t.Reasons), "; ")
	}
}

// failedReasons returns the reasons that failed (all of them if none is marked).
func failedReasons(reasons []string) []string {
	var out []string
	for _, r := range reasons {
		if strings.HasPrefix(r, "FAIL ") {
			out = append(out, strings.TrimPrefix(r, "FAIL "))
		}
	}
	if len(out) == 0 {
		return reasons
	}
	return out
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
	if res.err == nil && res.decision.Promote {
		res.err = l.storeCandidate(ctx, job, &res)
	}
	l.finishRetrain(job, res)
}

// retrain trains, scores and gates a candidate. A panic in user code
// (Train, Evaluate, Predict, the gate) becomes an error.
func (l *Loop[In]) retrain(ctx context.Context, job *retrainJob[In]) (res retrainResult[In]) {
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("dadc: retrain panicked", "round", job.round, "candidate", job.version,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res.err = fmt.Errorf("retrain panicked: %v", p)
			res.decision.Promote = false
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

	in := &GateInput{Round: job.round, Candidate: res.version, Serving: job.base.version}
	if len(job.clean) > 0 {
		base, err := l.baselineAccuracy(ctx, job.base, job.clean)
		if err != nil {
			res.err = fmt.Errorf("scoring the serving model on the clean test set: %w", l.explainCtxErr(ctx, err))
			return res
		}
		res.baseline = &base
		ref := job.reference
		if ref == nil {
			ref = &base // the first measured model becomes the fixed reference
		}
		res.reference = ref
		ev, err := evaluate(ctx, cand, job.clean)
		if err != nil {
			res.err = fmt.Errorf("scoring the candidate on the clean test set: %w", l.explainCtxErr(ctx, err))
			return res
		}
		res.clean = &ev.Accuracy
		in.Clean = &CleanScore{N: len(job.clean), Candidate: ev.Accuracy, Serving: base, Reference: *ref}
	}
	if len(job.heldOut) > 0 {
		candOK, err := answers(ctx, cand, job.heldOut)
		if err != nil {
			res.err = fmt.Errorf("scoring the candidate on held-out adversarial samples: %w", l.explainCtxErr(ctx, err))
			return res
		}
		baseOK, err := answers(ctx, job.base.model, job.heldOut)
		if err != nil {
			res.err = fmt.Errorf("scoring the serving model on held-out adversarial samples: %w", l.explainCtxErr(ctx, err))
			return res
		}
		h := PairedScore{N: len(job.heldOut)}
		for i := range candOK {
			if candOK[i] {
				h.Candidate++
			}
			if baseOK[i] {
				h.Serving++
			}
			if candOK[i] && !baseOK[i] {
				h.CandidateOnly++
			}
			if baseOK[i] && !candOK[i] {
				h.ServingOnly++
			}
		}
		in.HeldOut = h
		res.heldOutOK = h.Candidate
	}
	for _, e := range job.earlier {
		ok, err := answers(ctx, cand, e.examples)
		if err != nil {
			res.err = fmt.Errorf("scoring the candidate on round %d's held-out samples: %w", e.round, l.explainCtxErr(ctx, err))
			return res
		}
		es := EarlierScore{Round: e.round, N: len(e.examples), Reference: e.reference}
		for _, b := range ok {
			if b {
				es.Candidate++
			}
		}
		in.Earlier = append(in.Earlier, es)
	}
	if err := ctx.Err(); err != nil {
		res.err = fmt.Errorf("scoring: %w", l.explainCtxErr(ctx, err))
		return res
	}
	res.input = in
	res.decision = l.gate.Decide(*in)
	if len(res.decision.Reasons) == 0 {
		res.decision.Reasons = []string{fmt.Sprintf("the gate (%s) gave no reason", gateName(l.gate))}
	}
	return res
}

// storeCandidate writes a promoted candidate to the model store before it
// serves. Without a store it does nothing.
func (l *Loop[In]) storeCandidate(ctx context.Context, job *retrainJob[In], res *retrainResult[In]) error {
	if l.opts.Store == nil {
		return nil
	}
	ex, ok := res.candidate.(Exporter)
	if !ok {
		return fmt.Errorf("storing the promoted candidate: %w; the model store needs it to save the weights", ErrNotExportable)
	}
	card := ModelCard{
		Version:                res.version,
		Round:                  job.round + 1,
		Parent:                 job.base.version,
		TrainSamples:           len(job.train),
		HeldOutSamples:         len(job.heldOut),
		CleanAccuracy:          res.clean,
		ReferenceCleanAccuracy: res.reference,
		AdversarialAccuracy:    res.adversarial(),
		Reasons:                res.decision.Reasons,
		CreatedAt:              l.now(),
	}
	err := l.opts.Store.Save(ctx, card, func(w io.Writer) error { return ex.Export(ctx, w) })
	if err != nil {
		return fmt.Errorf("storing the promoted candidate (it does not serve unless stored): %w", l.explainCtxErr(ctx, err))
	}
	return nil
}

// answers reports, per example, whether m predicts its label (through
// BatchPredictor if m implements it, else Predict).
func answers[In any](ctx context.Context, m Model[In], examples []Example[In]) ([]bool, error) {
	out := make([]bool, len(examples))
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
				return nil, err
			}
			if len(preds) != len(chunk) {
				return nil, fmt.Errorf("PredictBatch of model %s returned %d predictions for %d inputs", m.Version(), len(preds), len(chunk))
			}
			for i, p := range preds {
				out[start+i] = p.Label == chunk[i].Label
			}
		}
		return out, nil
	}
	for i, e := range examples {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := m.Predict(ctx, e.Input)
		if err != nil {
			return nil, err
		}
		out[i] = p.Label == e.Label
	}
	return out, nil
}

func gateName(g Gate) string {
	if s, ok := g.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", g)
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
// passed the gate (closing the round and opening the next), and asks the
// policy again (coalescing).
func (l *Loop[In]) finishRetrain(job *retrainJob[In], res retrainResult[In]) {
	var retire Model[In] // candidate that will never serve
	var retireVersion string
	var replaced *modelRef[In] // model that stopped serving

	l.mu.Lock()
	rs := &l.rounds[job.round]
	t := &rs.Retrains[job.index]
	now := l.now()
	t.EndedAt = &now
	t.CleanAccuracy = res.clean
	t.AdversarialAccuracy = res.adversarial()
	t.Gate = res.input
	t.Reasons = res.decision.Reasons
	if res.version != "" {
		t.Candidate = res.version
	}
	if l.refClean == nil && res.reference != nil {
		l.refClean = clonePtr(res.reference)
	}
	ev := Event{Round: job.round, Candidate: t.Candidate, CleanAccuracy: deref(res.clean),
		AdversarialAccuracy: deref(res.adversarial()), Reasons: slices.Clone(res.decision.Reasons)}
	seconds := now.Sub(job.started).Seconds()
	switch {
	case res.err != nil:
		t.Decision, t.Error = DecisionFailed, res.err.Error()
		retire = res.candidate
		ev.Kind = EventRetrainFailed
		ev.Message = fmt.Sprintf("retrain in round %d failed: %v; model %s keeps serving and the round stays open", job.round, res.err, job.base.version)
		l.log.Error("dadc: retrain failed; the old model keeps serving", "round", job.round, "candidate", t.Candidate, "err", res.err)
	case res.decision.Promote && l.closed:
		t.Decision, t.Error = DecisionFailed, "not promoted: the loop closed"
		retire = res.candidate
		ev.Kind = EventRetrainFailed
		ev.Message = fmt.Sprintf("candidate %s passed the gate but the loop closed before promotion", t.Candidate)
		l.log.Warn("dadc: the loop closed before the candidate could be promoted", "round", job.round, "candidate", t.Candidate)
	case res.decision.Promote:
		t.Decision = DecisionPromoted
		promoted := newModelRef(res.candidate, res.version, l.log)
		// The gate just scored the candidate on the same clean test set: that
		// score is its baseline, so the next retrain need not score it again.
		promoted.baseline = res.clean
		replaced = l.current.Swap(promoted)
		// The round closes: its held-out set is frozen with the promoted
		// model's score as the reference later candidates are held to.
		rs.EndedAt = &now
		if len(job.heldOutIDs) > 0 {
			l.heldOutSets = append(l.heldOutSets, HeldOutSet{Round: job.round, IDs: slices.Clone(job.heldOutIDs), Correct: res.heldOutOK})
			a := float64(res.heldOutOK) / float64(len(job.heldOutIDs))
			rs.HeldOutReference = &a
		}
		l.round++
		l.rounds = append(l.rounds, RoundStats{Round: l.round, ModelVersion: res.version, StartedAt: now})
		ev.Kind = EventModelPromoted
		ev.Message = fmt.Sprintf("model %s replaces %s; round %d begins: %s", res.version, replaced.version, l.round, strings.Join(res.decision.Reasons, "; "))
		l.log.Info("dadc: candidate promoted", "round", job.round, "candidate", t.Candidate,
			"clean_accuracy", deref(res.clean), "reference_clean_accuracy", deref(res.reference),
			"adversarial_accuracy", deref(res.adversarial()), "seconds", seconds, "reasons", res.decision.Reasons)
	default:
		t.Decision = DecisionRejected
		retire = res.candidate
		ev.Kind = EventModelRejected
		ev.Message = fmt.Sprintf("candidate %s rejected: %s; model %s keeps serving and round %d stays open",
			t.Candidate, strings.Join(failedReasons(res.decision.Reasons), "; "), job.base.version, job.round)
		l.log.Warn("dadc: candidate rejected by the gate; the old model keeps serving", "round", job.round, "candidate", t.Candidate,
			"clean_accuracy", deref(res.clean), "reference_clean_accuracy", deref(res.reference), "reasons", res.decision.Reasons)
	}
	rs = &l.rounds[job.round] // a promotion's append may have moved the rounds
	l.mirrorLastRetrainLocked(rs)
	retireVersion = t.Candidate
	l.historyDirty = true
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
	// The outcome is durable before the retrain counts as ended, and before
	// its event is sent: whoever hears of a decision may rely on a restart
	// showing it.
	l.saveHistory(context.WithoutCancel(l.baseCtx))

	l.mu.Lock()
	defer l.mu.Unlock()
	l.publishLocked(ev)
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
	right, err := answers(ctx, m, examples)
	if err != nil {
		return Evaluation{}, err
	}
	correct := 0
	for _, ok := range right {
		if ok {
			correct++
		}
	}
	return Evaluation{N: len(examples), Accuracy: float64(correct) / float64(len(examples))}, nil
}
