package backoff_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/internal/backoff"
)

func TestCap(t *testing.T) {
	hf := backoff.Policy{Min: time.Second, Max: 8 * time.Second}
	tests := []struct {
		name    string
		p       backoff.Policy
		attempt int
		want    time.Duration
	}{
		{"first retry waits Min", hf, 0, time.Second},
		{"doubles", hf, 1, 2 * time.Second},
		{"doubles again", hf, 2, 4 * time.Second},
		{"reaches Max", hf, 3, 8 * time.Second},
		{"stays at Max", hf, 4, 8 * time.Second},
		{"huge attempt does not overflow", hf, math.MaxInt, 8 * time.Second},
		{"negative attempt counts as 0", hf, -3, time.Second},
		{"Max not a power-of-two multiple is reached exactly", backoff.Policy{Min: 3 * time.Second, Max: 10 * time.Second}, 2, 10 * time.Second},
		{"zero Max means no growth past Min", backoff.Policy{Min: time.Second}, 5, time.Second},
		{"near-overflow Max", backoff.Policy{Min: time.Nanosecond, Max: math.MaxInt64}, 200, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.p.Cap(tt.attempt))
		})
	}
}

func TestDelayJitter(t *testing.T) {
	p := backoff.Policy{Min: time.Second, Max: 8 * time.Second, Jitter: 0.5}
	tests := []struct {
		name    string
		attempt int
		u       float64
		want    time.Duration
	}{
		{"u=0 takes nothing off", 3, 0, 8 * time.Second},
		{"u just under 1 takes almost half", 3, 0.999999, 4*time.Second + 4*time.Microsecond},
		{"u=0.5 takes a quarter", 2, 0.5, 3 * time.Second},
		{"u above 1 is clamped", 0, 7, 500 * time.Millisecond},
		{"u below 0 is clamped", 0, -1, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, p.Delay(tt.attempt, tt.u))
		})
	}
	exact := backoff.Policy{Min: time.Second, Max: 8 * time.Second}
	assert.Equal(t, 4*time.Second, exact.Delay(2, 0.9), "no jitter: u is ignored")
	full := backoff.Policy{Min: time.Second, Max: 8 * time.Second, Jitter: 1}
	assert.Equal(t, 2*time.Second, full.Delay(3, 0.75))
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    backoff.Policy
		msg  string
	}{
		{"ok", backoff.Policy{Min: time.Second, Max: time.Minute, Jitter: 0.5}, ""},
		{"zero Max is fine", backoff.Policy{Min: time.Second}, ""},
		{"zero Min", backoff.Policy{}, "minimum wait 0s is not positive"},
		{"Max below Min", backoff.Policy{Min: time.Minute, Max: time.Second}, "maximum wait 1s is below the minimum 1m0s"},
		{"negative jitter", backoff.Policy{Min: time.Second, Jitter: -0.1}, "jitter -0.1 is outside [0, 1]"},
		{"jitter above 1", backoff.Policy{Min: time.Second, Jitter: 2}, "jitter 2 is outside [0, 1]"},
		{"NaN jitter", backoff.Policy{Min: time.Second, Jitter: math.NaN()}, "jitter NaN is outside [0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.msg == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, backoff.ErrInvalidPolicy)
			assert.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero", "0", 0, true},
		{"spaces", " 3 ", 3 * time.Second, true},
		{"HTTP-date ahead", "Sun, 29 Nov 2026 12:01:30 GMT", 90 * time.Second, true},
		{"HTTP-date in the past", "Sun, 29 Nov 2026 11:00:00 GMT", 0, true},
		{"empty", "", 0, false},
		{"negative", "-1", 0, false},
		{"garbage", "soon", 0, false},
		{"huge is clamped, not wrapped", "99999999999999999", time.Duration(math.MaxInt64/int64(time.Second)) * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := backoff.ParseRetryAfter(tt.value, now)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		require.NoError(t, backoff.Sleep(t.Context(), 5*time.Second))
		assert.Equal(t, 5*time.Second, time.Since(start), "virtual time in the bubble")

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		err := backoff.Sleep(ctx, time.Hour)
		assert.True(t, errors.Is(err, context.DeadlineExceeded))
		assert.Equal(t, time.Second, time.Since(start), "returns when ctx is done, not after the hour")

		assert.NoError(t, backoff.Sleep(t.Context(), 0))
		done, stop := context.WithCancel(t.Context())
		stop()
		assert.ErrorIs(t, backoff.Sleep(done, 0), context.Canceled)
	})
}
