package space

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter is a token bucket per client key, with at most max clients
// remembered: the least recently seen is forgotten first (it gets a fresh
// bucket when it comes back, which bounds memory at the cost of letting a
// client that was evicted by a flood of others start over). Safe for
// concurrent use.
type clientLimiter struct {
	rate  rate.Limit
	burst int
	max   int

	mu      sync.Mutex
	lru     *list.List // of *clientEntry, most recent at the front
	clients map[string]*list.Element
}

type clientEntry struct {
	key     string
	limiter *rate.Limiter
}

func newClientLimiter(r rate.Limit, burst, max int) *clientLimiter {
	return &clientLimiter{rate: r, burst: burst, max: max, lru: list.New(), clients: map[string]*list.Element{}}
}

// allow takes one token from key's bucket at now. When the bucket is empty it
// takes nothing and says how long to wait.
func (c *clientLimiter) allow(key string, now time.Time) (ok bool, wait time.Duration) {
	if c.rate == rate.Inf {
		return true, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var lim *rate.Limiter
	if e, found := c.clients[key]; found {
		c.lru.MoveToFront(e)
		lim = e.Value.(*clientEntry).limiter
	} else {
		lim = rate.NewLimiter(c.rate, c.burst)
		c.clients[key] = c.lru.PushFront(&clientEntry{key: key, limiter: lim})
		for c.lru.Len() > c.max {
			oldest := c.lru.Back()
			c.lru.Remove(oldest)
			delete(c.clients, oldest.Value.(*clientEntry).key)
		}
	}
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Minute
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// len returns the number of clients remembered.
func (c *clientLimiter) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
