package dadc

import (
	"fmt"
	"math"
)

// Defaults of GateOptions.
const (
	// DefaultMaxCleanDrop is the clean-accuracy budget below the fixed
	// reference: 0.3 points (the target for a whole run of rounds).
	DefaultMaxCleanDrop = 0.003
	// DefaultSignificance is the one-sided level of the adversarial-gain test.
	DefaultSignificance = 0.05
	// DefaultMaxEarlierDrop is how far below its frozen reference an earlier
	// round's held-out accuracy may fall: 2 points.
	DefaultMaxEarlierDrop = 0.02
)

// GateInput is what a Gate sees: the candidate's and the serving model's
// figures, all measured by the Loop.
type GateInput struct {
	// Round is the round whose retrain produced the candidate.
	Round int `json:"round"`
	// Candidate and Serving are the two models' versions.
	Candidate string `json:"candidate"`
	Serving   string `json:"serving"`
	// Clean is nil when the Loop has no clean test set.
	Clean *CleanScore `json:"clean,omitempty"`
	// HeldOut pairs the two models' answers on the current round's held-out
	// adversarial samples (those that fooled the serving model).
	HeldOut PairedScore `json:"held_out"`
	// Earlier scores the candidate on each earlier round's frozen held-out
	// set, oldest first.
	Earlier []EarlierScore `json:"earlier,omitempty"`
}

// CleanScore is the candidate's clean accuracy next to the fixed reference.
type CleanScore struct {
	// N is the size of the clean test set.
	N int `json:"n"`
	// Candidate is the candidate's accuracy, in [0,1].
	Candidate float64 `json:"candidate"`
	// Serving is the serving model's accuracy (for information: the default gate never compares with it).
	Serving float64 `json:"serving"`
	// Reference is the fixed reference: Options.CleanReference, or the first
	// model's measured accuracy. It never moves with promotions.
	Reference float64 `json:"reference"`
}

// PairedScore counts two models' answers on the same N samples.
type PairedScore struct {
	N int `json:"n"`
	// Candidate and Serving count the samples each model got right.
	Candidate int `json:"candidate"`
	Serving   int `json:"serving"`
	// CandidateOnly counts samples only the candidate got right; ServingOnly
	// those only the serving model got right (the discordant pairs).
	CandidateOnly int `json:"candidate_only"`
	ServingOnly   int `json:"serving_only"`
}

// EarlierScore is the candidate's score on one earlier round's frozen held-out set.
type EarlierScore struct {
	Round int `json:"round"`
	N     int `json:"n"`
	// Reference is how many the model promoted at the end of that round got right.
	Reference int `json:"reference"`
	// Candidate is how many the candidate gets right.
	Candidate int `json:"candidate"`
}

// GateDecision is a Gate's verdict. Reasons say, with numbers, what was
// checked and what failed; the Loop records them in Stats, events and logs.
type GateDecision struct {
	Promote bool     `json:"promote"`
	Reasons []string `json:"reasons"`
}

// Gate decides whether a retrained candidate replaces the serving model.
// The Loop calls Decide from one goroutine at a time (the retrain's); it
// must not block.
type Gate interface {
	Decide(in GateInput) GateDecision
}

// GateFunc adapts a function to the Gate interface.
type GateFunc func(in GateInput) GateDecision

// Decide calls f(in).
func (f GateFunc) Decide(in GateInput) GateDecision { return f(in) }

// GateOptions configures NewGate. A nil pointer or zero fields mean the defaults.
type GateOptions struct {
	// MaxCleanDrop is the budget below the fixed clean reference (default
	// DefaultMaxCleanDrop, 0.003). Negative demands that much improvement.
	MaxCleanDrop float64
	// Significance is the one-sided level of the adversarial-gain test
	// (default DefaultSignificance, 0.05), in (0, 1).
	Significance float64
	// MaxEarlierDrop is how far (a fraction) each earlier round's held-out
	// accuracy may fall below its frozen reference (default
	// DefaultMaxEarlierDrop, 0.02), and at least one sample of the set.
	// Negative means no loss at all.
	MaxEarlierDrop float64
}

// NewGate returns the default gate. It promotes only when all three hold:
//
//   - (a) clean: the candidate's clean accuracy ≥ the fixed reference −
//     MaxCleanDrop (skipped, and said so, when there is no clean test set).
//     The reference never ratchets: every round is held to the same figure.
//   - (b) gain: on the current round's held-out samples, the candidate beats
//     the serving model by more than noise: a one-sided exact McNemar test
//     (a binomial test on the discordant pairs: under "no gain" the samples
//     only the candidate gets right are Binomial(CandidateOnly+ServingOnly,
//     ½)) gives p < Significance. With no held-out samples it fails: no gain
//     can be shown (more flags, or holding out, are needed).
//   - (c) no forgetting: on every earlier round's frozen held-out set, the
//     candidate's accuracy ≥ that round's reference accuracy − MaxEarlierDrop,
//     or − one sample when MaxEarlierDrop is less than one sample of the set
//     (the default 2 points is less than one sample of a set under 50: a
//     16-sample set may lose 1 sample, never 2). A negative MaxEarlierDrop
//     allows no loss at all.
func NewGate(opts *GateOptions) (Gate, error) {
	var o GateOptions
	if opts != nil {
		o = *opts
	}
	if math.IsNaN(o.MaxCleanDrop) || o.MaxCleanDrop > 1 || o.MaxCleanDrop < -1 {
		return nil, fmt.Errorf("dadc: NewGate: MaxCleanDrop is %v; it is a fraction of accuracy in [-1, 1] (for instance 0.003)", o.MaxCleanDrop)
	}
	if o.MaxCleanDrop == 0 {
		o.MaxCleanDrop = DefaultMaxCleanDrop
	}
	if math.IsNaN(o.Significance) || o.Significance < 0 || o.Significance >= 1 {
		return nil, fmt.Errorf("dadc: NewGate: Significance is %v; it must be in (0, 1) (for instance 0.05)", o.Significance)
	}
	if o.Significance == 0 {
		o.Significance = DefaultSignificance
	}
	if math.IsNaN(o.MaxEarlierDrop) || o.MaxEarlierDrop > 1 {
		return nil, fmt.Errorf("dadc: NewGate: MaxEarlierDrop is %v; it is a fraction of accuracy at most 1 (for instance 0.02)", o.MaxEarlierDrop)
	}
	switch {
	case o.MaxEarlierDrop == 0:
		o.MaxEarlierDrop = DefaultMaxEarlierDrop
	case o.MaxEarlierDrop < 0:
		o.MaxEarlierDrop = 0
	}
	return defaultGate(o), nil
}

type defaultGate GateOptions

func (g defaultGate) String() string {
	return fmt.Sprintf("NewGate(MaxCleanDrop=%g, Significance=%g, MaxEarlierDrop=%g)", g.MaxCleanDrop, g.Significance, g.MaxEarlierDrop)
}

func (g defaultGate) Decide(in GateInput) GateDecision {
	d := GateDecision{Promote: true}
	fail := func(format string, args ...any) {
		d.Promote = false
		d.Reasons = append(d.Reasons, "FAIL "+fmt.Sprintf(format, args...))
	}
	pass := func(format string, args ...any) {
		d.Reasons = append(d.Reasons, "ok "+fmt.Sprintf(format, args...))
	}

	// (a) clean accuracy against the fixed reference.
	if c := in.Clean; c == nil {
		pass("clean: no clean test set, not checked")
	} else if floor := c.Reference - g.MaxCleanDrop; c.Candidate+1e-12 >= floor {
		pass("clean: %.2f%% >= fixed reference %.2f%% - %.2f points (n=%d; serving %.2f%%)",
			100*c.Candidate, 100*c.Reference, 100*g.MaxCleanDrop, c.N, 100*c.Serving)
	} else {
		fail("clean: %.2f%% < fixed reference %.2f%% - %.2f points (n=%d; serving %.2f%%)",
			100*c.Candidate, 100*c.Reference, 100*g.MaxCleanDrop, c.N, 100*c.Serving)
	}

	// (b) a gain on the current round's held-out samples beyond noise.
	h := in.HeldOut
	if h.N == 0 {
		fail("gain: round %d has no held-out fooling samples, so no gain can be shown (collect more flags; Options.HoldoutEvery holds every k-th out)", in.Round)
	} else {
		p := McNemarP(h.CandidateOnly, h.ServingOnly)
		msg := fmt.Sprintf("gain: held-out %d/%d vs serving %d/%d; %d won, %d lost; one-sided exact McNemar p=%.3g",
			h.Candidate, h.N, h.Serving, h.N, h.CandidateOnly, h.ServingOnly, p)
		if p < g.Significance {
			pass("%s < %g", msg, g.Significance)
		} else {
			fail("%s >= %g (not more than noise)", msg, g.Significance)
		}
	}

	// (c) no earlier round's frozen held-out set falls by more than the
	// tolerance: MaxEarlierDrop, or one sample when that is less (a set of n
	// samples cannot show a drop finer than 1/n).
	for _, e := range in.Earlier {
		if e.N == 0 {
			continue
		}
		ref, got := float64(e.Reference)/float64(e.N), float64(e.Candidate)/float64(e.N)
		tol, tolDesc := g.MaxEarlierDrop, fmt.Sprintf("%.1f points", 100*g.MaxEarlierDrop)
		if g.MaxEarlierDrop > 0 && g.MaxEarlierDrop < 1/float64(e.N) {
			tol, tolDesc = 1/float64(e.N), fmt.Sprintf("1 sample (%.1f points is less than 1 of %d)", 100*g.MaxEarlierDrop, e.N)
		}
		if got+1e-12 >= ref-tol {
			pass("round %d held-out: %d/%d (%.1f%%) >= reference %d/%d (%.1f%%) - %s",
				e.Round, e.Candidate, e.N, 100*got, e.Reference, e.N, 100*ref, tolDesc)
		} else {
			fail("round %d held-out: %d/%d (%.1f%%) < reference %d/%d (%.1f%%) - %s",
				e.Round, e.Candidate, e.N, 100*got, e.Reference, e.N, 100*ref, tolDesc)
		}
	}
	return d
}

// McNemarP is the one-sided exact McNemar p-value that a candidate which got
// won samples right where the other model was wrong, and lost samples wrong
// where it was right, is no better: P(X ≥ won) for X ~ Binomial(won+lost, ½).
// It is 1 when there are no discordant pairs.
func McNemarP(won, lost int) float64 {
	n := won + lost
	if n <= 0 || won <= 0 {
		return 1
	}
	// Sum the binomial tail in log space (n may be in the thousands).
	p := 0.0
	for k := won; k <= n; k++ {
		lg := lgammaInt(n+1) - lgammaInt(k+1) - lgammaInt(n-k+1) - float64(n)*math.Ln2
		p += math.Exp(lg)
	}
	return min(p, 1)
}

func lgammaInt(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}
