package backoff

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy describes an exponential backoff. The zero value is not useful:
// Min must be positive (see Validate). A Policy is a plain value, safe to
// copy and to use from many goroutines.
type Policy struct {
	// Min is the wait before the first retry (attempt 0).
	Min time.Duration
	// Max caps the wait; a Max below Min is treated as Min.
	Max time.Duration
	// Jitter is the fraction of the capped wait that may be taken off at
	// random, in [0, 1]: 0 means exact waits, 0.5 means a wait uniformly in
	// [d/2, d] ("equal jitter"), 1 means uniformly in [0, d] ("full jitter").
	Jitter float64
}

// Validate reports a Policy that cannot be used: Min not positive, Max below
// Min (when set), or Jitter outside [0, 1].
func (p Policy) Validate() error {
	switch {
	case p.Min <= 0:
		return fmt.Errorf("%w: minimum wait %v is not positive", ErrInvalidPolicy, p.Min)
	case p.Max != 0 && p.Max < p.Min:
		return fmt.Errorf("%w: maximum wait %v is below the minimum %v", ErrInvalidPolicy, p.Max, p.Min)
	case !(p.Jitter >= 0 && p.Jitter <= 1): // also catches NaN
		return fmt.Errorf("%w: jitter %v is outside [0, 1]", ErrInvalidPolicy, p.Jitter)
	}
	return nil
}

// Cap returns the wait before retry number attempt (0-based) without jitter:
// Min·2^attempt, capped at Max. A negative attempt counts as 0. It never
// overflows, however large attempt is.
func (p Policy) Cap(attempt int) time.Duration {
	hi := max(p.Max, p.Min)
	d := p.Min
	for i := 0; i < attempt && d < hi; i++ {
		if d > hi/2 {
			d = hi
			break
		}
		d *= 2
	}
	return min(d, hi)
}

// Delay returns the wait before retry number attempt (0-based): Cap(attempt)
// minus Jitter·Cap(attempt)·u, where u is a random number in [0, 1) such as
// math/rand/v2.Float64() (values outside are clamped). With Jitter 0 the
// result does not depend on u.
func (p Policy) Delay(attempt int, u float64) time.Duration {
	d := p.Cap(attempt)
	if p.Jitter <= 0 {
		return d
	}
	u = min(max(u, 0), 1)
	j := min(p.Jitter, 1)
	return d - time.Duration(float64(d)*j*u)
}

// ParseRetryAfter reads an HTTP Retry-After value: delay-seconds ("120") or
// an HTTP-date, which is measured from now (a date in the past gives 0).
// ok is false when the value is empty or malformed.
func ParseRetryAfter(value string, now time.Time) (d time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(value, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		const maxSeconds = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(n, maxSeconds)) * time.Second, true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Sleep waits d or until ctx is done, whichever comes first, and returns
// ctx.Err() in the second case. A d of zero or less returns at once (with
// ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
