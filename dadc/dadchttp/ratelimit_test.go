package dadchttp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/advspace/advspace/dadc/dadchttp"
)

type limiterCall struct {
	key   string
	after time.Duration // since the previous call
	ok    bool
	wait  time.Duration // expected wait when refused
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		rate  rate.Limit
		burst int
		calls []limiterCall
	}{
		{
			name: "burst then refill", rate: 2, burst: 2,
			calls: []limiterCall{
				{"a", 0, true, 0},
				{"a", 0, true, 0},
				{"a", 0, false, 500 * time.Millisecond},
				{"a", 250 * time.Millisecond, false, 250 * time.Millisecond},
				{"b", 0, true, 0}, // clients are independent
				{"a", 250 * time.Millisecond, true, 0},
				{"a", 0, false, 500 * time.Millisecond},
			},
		},
		{
			name: "refused calls take no token", rate: 1, burst: 1,
			calls: []limiterCall{
				{"a", 0, true, 0},
				{"a", 0, false, time.Second},
				{"a", 0, false, time.Second},
				{"a", time.Second, true, 0},
			},
		},
		{
			name: "unlimited", rate: rate.Inf, burst: 1,
			calls: []limiterCall{{"a", 0, true, 0}, {"a", 0, true, 0}, {"a", 0, true, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now
			l, err := dadchttp.NewLimiter(tt.rate, tt.burst, &dadchttp.LimiterOptions{MaxClients: 10, Now: func() time.Time { return at }})
			require.NoError(t, err)
			for i, c := range tt.calls {
				at = at.Add(c.after)
				ok, wait := l.Allow(c.key)
				assert.Equal(t, c.ok, ok, "call %d", i)
				assert.Equal(t, c.wait, wait, "call %d", i)
			}
		})
	}
}

func TestLimiterIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := dadchttp.NewLimiter(rate.Every(time.Hour), 1, &dadchttp.LimiterOptions{MaxClients: 100, Now: func() time.Time { return now }})
	require.NoError(t, err)
	for i := range 1000 {
		ok, _ := l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
		require.True(t, ok)
	}
	assert.Equal(t, 100, l.Len(), "at most MaxClients clients are remembered")

	// The most recently seen client is kept (and stays limited); the least
	// recently seen ones were forgotten (and start with a fresh bucket).
	ok, _ := l.Allow("10.0.3.231") // client 999
	assert.False(t, ok)
	ok, _ = l.Allow("10.0.0.0") // client 0, evicted long ago
	assert.True(t, ok)
	assert.Equal(t, 100, l.Len())
}
