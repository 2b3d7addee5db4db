package dadc

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// PolicyValidator is an optional RetrainPolicy capability: reporting a
// misconfiguration. NewLoop calls Validate and refuses a policy that fails,
// so that for instance EveryN(0) is a clear error instead of a loop that never
// retrains. All policies of this package implement it.
type PolicyValidator interface {
	Validate() error
}

// EveryN returns a policy that fires when at least n adversarial samples
// arrived since the last retrain started (PolicyState.NewFlags), so a
// rejected candidate is retried after n more flags, not at every flag (the seed Space retrained every 10). n must be at least 1.
func EveryN(n int) RetrainPolicy { return everyN{n: n} }

type everyN struct{ n int }

func (p everyN) ShouldRetrain(s PolicyState) bool { return p.n >= 1 && s.NewFlags >= p.n }

func (p everyN) Validate() error {
	if p.n < 1 {
		return fmt.Errorf("dadc: EveryN(%d): n must be at least 1 (use Manual() to never retrain automatically)", p.n)
	}
	return nil
}

func (p everyN) String() string { return fmt.Sprintf("EveryN(%d)", p.n) }

// EveryInterval returns a policy that fires when at least d has passed since
// the current round began and since the last retrain started, and at least
// one adversarial sample arrived since that retrain started. The Loop asks
// it on every flag and every Options.CheckInterval. d must be positive.
func EveryInterval(d time.Duration) RetrainPolicy { return everyInterval{d: d} }

type everyInterval struct{ d time.Duration }

func (p everyInterval) ShouldRetrain(s PolicyState) bool {
	since := s.RoundStarted
	if s.LastRetrain.After(since) {
		since = s.LastRetrain
	}
	return p.d > 0 && s.NewFlags >= 1 && s.Now.Sub(since) >= p.d
}

func (p everyInterval) Validate() error {
	if p.d <= 0 {
		return fmt.Errorf("dadc: EveryInterval(%s): the interval must be positive", p.d)
	}
	return nil
}

func (p everyInterval) String() string { return fmt.Sprintf("EveryInterval(%s)", p.d) }

// Manual returns a policy that never fires: retrains start only through Loop.Retrain.
func Manual() RetrainPolicy { return manual{} }

type manual struct{}

func (manual) ShouldRetrain(PolicyState) bool { return false }
func (manual) Validate() error                { return nil }
func (manual) String() string                 { return "Manual()" }

// Any returns a policy that fires when at least one of ps fires. Any() with no
// policies never fires.
func Any(ps ...RetrainPolicy) RetrainPolicy {
	return combined{any: true, ps: append([]RetrainPolicy(nil), ps...)}
}

// All returns a policy that fires when every one of ps fires. All() with no
// policies never fires (rather than always, which would retrain on every flag).
func All(ps ...RetrainPolicy) RetrainPolicy {
	return combined{any: false, ps: append([]RetrainPolicy(nil), ps...)}
}

type combined struct {
	any bool
	ps  []RetrainPolicy
}

func (c combined) ShouldRetrain(s PolicyState) bool {
	if len(c.ps) == 0 {
		return false
	}
	for _, p := range c.ps {
		if p == nil {
			// Validate reports nil policies; unvalidated, a nil never fires.
			if !c.any {
				return false
			}
			continue
		}
		fired := p.ShouldRetrain(s)
		if c.any && fired {
			return true
		}
		if !c.any && !fired {
			return false
		}
	}
	return !c.any
}

func (c combined) Validate() error {
	var errs []error
	for i, p := range c.ps {
		if p == nil {
			errs = append(errs, fmt.Errorf("dadc: %s: policy %d is nil", c.name(), i))
			continue
		}
		if v, ok := p.(PolicyValidator); ok {
			if err := v.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (c combined) name() string {
	if c.any {
		return "Any"
	}
	return "All"
}

func (c combined) String() string {
	parts := make([]string, len(c.ps))
	for i, p := range c.ps {
		parts[i] = policyName(p)
	}
	return c.name() + "(" + strings.Join(parts, ", ") + ")"
}

// policyName describes p for logs.
func policyName(p RetrainPolicy) string {
	switch v := p.(type) {
	case nil:
		return "nil"
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprintf("%T", p)
	}
}
