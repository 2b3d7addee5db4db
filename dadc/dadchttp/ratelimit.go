package dadchttp

import (
	"container/list"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per client key, with at most MaxClients clients
// remembered: the least recently seen is forgotten first (it gets a fresh
// bucket when it comes back, which bounds memory at the cost of letting a
// client that was evicted by a flood of others start over). Safe for
// concurrent use.
type Limiter struct {
	rate  rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu      sync.Mutex
	lru     *list.List // of *clientEntry, most recent at the front
	clients map[string]*list.Element
}

type clientEntry struct {
	key     string
	limiter *rate.Limiter
}

// LimiterOptions configure a Limiter. Zero fields mean the defaults.
type LimiterOptions struct {
	// MaxClients bounds the clients remembered. Default 10,000.
	MaxClients int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// NewLimiter returns a Limiter that allows each client r requests per
// second with bursts of burst. r = rate.Inf allows everything. A negative
// rate or burst, or a burst of 0 with a finite rate, wraps ErrConfig.
func NewLimiter(r rate.Limit, burst int, opts *LimiterOptions) (*Limiter, error) {
	var o LimiterOptions
	if opts != nil {
		o = *opts
	}
	if r < 0 || burst < 0 || o.MaxClients < 0 || (burst == 0 && r != rate.Inf) {
		return nil, fmt.Errorf("%w: a rate limit needs a rate and a burst of at least 1 (got %v, %d) and MaxClients >= 0", ErrConfig, r, burst)
	}
	if o.MaxClients == 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Limiter{rate: r, burst: burst, max: o.MaxClients, now: o.Now, lru: list.New(), clients: map[string]*list.Element{}}, nil
}

// Allow takes one token from key's bucket. When the bucket is empty it takes
// nothing and says how long to wait for the next token.
func (c *Limiter) Allow(key string) (ok bool, wait time.Duration) {
	if c.rate == rate.Inf {
		return true, 0
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var lim *rate.Limiter
	if e, found := c.clients[key]; found {
		c.lru.MoveToFront(e)
		lim = e.Value.(*clientEntry).limiter
	} else {
		lim = rate.NewLimiter(c.rate, c.burst)
		lim.SetLimitAt(now, c.rate) // start the bucket at the limiter's clock, full
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

// Len returns the number of clients remembered.
func (c *Limiter) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// RemoteIP is the default client key: the IP address of the connection's
// peer (r.RemoteAddr without the port).
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ParseTrustedProxies parses a comma-separated list of IP addresses and
// CIDR prefixes ("10.0.0.0/8,127.0.0.1"), as given to a -trust-proxy flag.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%w: %q is not an IP address or CIDR prefix such as 10.0.0.0/8", ErrConfig, f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not an IP address or CIDR prefix such as 10.0.0.0/8", ErrConfig, f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ForwardedClientIP returns a client key function for a server behind
// reverse proxies. When the connection's peer is in trusted, the client is
// the right-most address of the X-Forwarded-For header (or, without one, of
// the "for=" parameters of the Forwarded header) that is not itself a
// trusted proxy: each proxy appends the address it saw, so the addresses to
// the left of the last untrusted one are whatever the client claimed. A
// request whose peer is not trusted is keyed by its peer address, whatever
// its headers say, so nobody else can choose their own key. With no trusted
// prefixes it is RemoteIP.
func ForwardedClientIP(trusted []netip.Prefix) func(*http.Request) string {
	if len(trusted) == 0 {
		return RemoteIP
	}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer := RemoteIP(r)
		pa, err := netip.ParseAddr(peer)
		if err != nil || !isTrusted(pa) {
			return peer
		}
		hops := forwardedFor(r.Header)
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(hops[i])
			if err != nil {
				// Garbage from the client side: stop at what we can trust.
				break
			}
			if !isTrusted(a) {
				return a.Unmap().String()
			}
		}
		return peer
	}
}

// forwardedFor lists the addresses of X-Forwarded-For (all header lines in
// order), or else of Forwarded's for= parameters.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, line := range h.Values("X-Forwarded-For") {
		for f := range strings.SplitSeq(line, ",") {
			out = append(out, strings.TrimSpace(f))
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, line := range h.Values("Forwarded") {
		for elem := range strings.SplitSeq(line, ",") {
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") {
					continue
				}
				v = strings.Trim(v, `"`)
				// for="[2001:db8::1]:4711" or for=192.0.2.1:4711
				if host, _, err := net.SplitHostPort(v); err == nil {
					v = host
				}
				out = append(out, strings.Trim(v, "[]"))
			}
		}
	}
	return out
}
