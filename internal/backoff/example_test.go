package backoff_test

import (
	"fmt"
	"time"

	"github.com/advspace/advspace/internal/backoff"
)

// The Hugging Face client's policy: 1, 2, 4, 8, 8 s. With Jitter 0.5 each
// wait falls in the upper half of that; u would come from math/rand/v2.
func ExamplePolicy_Delay() {
	p := backoff.Policy{Min: time.Second, Max: 8 * time.Second}
	for attempt := range 5 {
		fmt.Println(attempt, p.Delay(attempt, 0))
	}
	p.Jitter = 0.5
	fmt.Println(p.Delay(3, 0), p.Delay(3, 0.5))
	// Output:
	// 0 1s
	// 1 2s
	// 2 4s
	// 3 8s
	// 4 8s
	// 8s 6s
}

func ExampleParseRetryAfter() {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	d, ok := backoff.ParseRetryAfter("Sun, 29 Nov 2026 12:00:30 GMT", now)
	fmt.Println(d, ok)
	d, ok = backoff.ParseRetryAfter("7", now)
	fmt.Println(d, ok)
	// Output:
	// 30s true
	// 7s true
}
