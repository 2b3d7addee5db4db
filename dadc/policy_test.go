package dadc_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

func TestPolicies(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	state := func(flags int, open time.Duration) dadc.PolicyState {
		return dadc.PolicyState{Flags: flags, NewFlags: flags, FlagsTotal: flags + 100, RoundStarted: start, Now: start.Add(open)}
	}
	always := dadc.PolicyFunc(func(dadc.PolicyState) bool { return true })
	never := dadc.PolicyFunc(func(dadc.PolicyState) bool { return false })

	tests := []struct {
		name   string
		policy dadc.RetrainPolicy
		state  dadc.PolicyState
		want   bool
	}{
		{"EveryN below", dadc.EveryN(10), state(9, 0), false},
		{"EveryN at", dadc.EveryN(10), state(10, 0), true},
		{"EveryN above", dadc.EveryN(10), state(11, 0), true},
		{"EveryN(1) first flag", dadc.EveryN(1), state(1, 0), true},
		{"EveryN(1) nothing", dadc.EveryN(1), state(0, 0), false},
		{"EveryN(0) never fires", dadc.EveryN(0), state(5, 0), false},
		{"EveryInterval too early", dadc.EveryInterval(time.Hour), state(3, 59*time.Minute), false},
		{"EveryInterval due", dadc.EveryInterval(time.Hour), state(3, time.Hour), true},
		{"EveryInterval due but no flags", dadc.EveryInterval(time.Hour), state(0, 2*time.Hour), false},
		{"EveryInterval ignores total", dadc.EveryInterval(time.Minute), dadc.PolicyState{FlagsTotal: 50, RoundStarted: start, Now: start.Add(time.Hour)}, false},
		{"Manual", dadc.Manual(), state(1000, 1000*time.Hour), false},
		{"Any none", dadc.Any(), state(10, 0), false},
		{"Any one fires", dadc.Any(never, dadc.EveryN(5)), state(5, 0), true},
		{"Any none fires", dadc.Any(never, dadc.EveryN(5)), state(4, 0), false},
		{"All none", dadc.All(), state(10, 0), false},
		{"All fire", dadc.All(always, dadc.EveryN(5)), state(5, 0), true},
		{"All one does not", dadc.All(always, dadc.EveryN(5)), state(4, 0), false},
		{"every 10 or hourly", dadc.Any(dadc.EveryN(10), dadc.EveryInterval(time.Hour)), state(2, 2*time.Hour), true},
		{"at least 3 and hourly", dadc.All(dadc.EveryN(3), dadc.EveryInterval(time.Hour)), state(2, 2*time.Hour), false},
		{"Any with nil", dadc.Any(nil, always), state(0, 0), true},
		{"All with nil", dadc.All(nil, always), state(0, 0), false},
		{"PolicyFunc", dadc.PolicyFunc(func(s dadc.PolicyState) bool { return s.FlagsTotal > 100 }), state(1, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.policy.ShouldRetrain(tt.state))
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		policy dadc.RetrainPolicy
		want   string // "" = valid
	}{
		{dadc.EveryN(1), ""},
		{dadc.EveryN(0), "n must be at least 1"},
		{dadc.EveryN(-3), "EveryN(-3)"},
		{dadc.EveryInterval(time.Second), ""},
		{dadc.EveryInterval(0), "must be positive"},
		{dadc.Manual(), ""},
		{dadc.Any(dadc.EveryN(2), dadc.EveryInterval(-time.Second)), "EveryInterval(-1s)"},
		{dadc.All(dadc.EveryN(2), nil), "All: policy 1 is nil"},
		{dadc.Any(dadc.All(dadc.EveryN(0))), "EveryN(0)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.policy), func(t *testing.T) {
			v, ok := tt.policy.(dadc.PolicyValidator)
			require.True(t, ok)
			err := v.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tt.want)
			}
		})
	}
}

func TestPolicyString(t *testing.T) {
	p := dadc.Any(dadc.EveryN(10), dadc.All(dadc.EveryInterval(time.Hour), dadc.Manual()))
	assert.Equal(t, "Any(EveryN(10), All(EveryInterval(1h0m0s), Manual()))", fmt.Sprint(p))
}
