package dadchttp

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
	"time"
)

// IdempotencyOptions configure the Idempotency middleware. Zero fields mean
// the defaults.
type IdempotencyOptions struct {
	// KeyTTL is how long the answer to a request with an Idempotency-Key
	// header is kept. Default 24 hours.
	KeyTTL time.Duration
	// RepeatWindow is how long a request with the same body from the same
	// client gets the first answer again. Default 1 minute.
	RepeatWindow time.Duration
	// MaxEntries bounds the answers kept; the oldest are forgotten first.
	// Default 10,000.
	MaxEntries int
	// Scope names the client of a request; keys and bodies are matched per
	// client only. Default RemoteIP.
	Scope func(*http.Request) string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults of IdempotencyOptions.
const (
	DefaultIdempotencyKeyTTL = 24 * time.Hour
	DefaultRepeatWindow      = time.Minute
	DefaultIdempotentEntries = 10000
)

// IdempotencyKeyHeader is the request header that names one logical request
// across retries.
const IdempotencyKeyHeader = "Idempotency-Key"

// Idempotency makes a handler that stores things safe to call twice:
//
//   - A request with an Idempotency-Key header that the same client (Scope)
//     already sent gets the first answer again (status, Content-Type, body,
//     plus the header Idempotent-Replayed: true) and next is not called.
//     The same key with a different body is refused with 422.
//   - A request without the header whose body equals one the same client
//     sent within RepeatWindow is treated the same way (a double click or a
//     retry after a timeout).
//
// Only 2xx answers are kept; after any other the next request runs again.
// A repeat that arrives while the first is still being served waits for its
// answer. Bodies are read whole, so put a BodyLimit in front.
func Idempotency(opts *IdempotencyOptions) Middleware {
	var o IdempotencyOptions
	if opts != nil {
		o = *opts
	}
	if o.KeyTTL <= 0 {
		o.KeyTTL = DefaultIdempotencyKeyTTL
	}
	if o.RepeatWindow <= 0 {
		o.RepeatWindow = DefaultRepeatWindow
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultIdempotentEntries
	}
	if o.Scope == nil {
		o.Scope = RemoteIP
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &idemCache{opts: o, order: list.New(), entries: map[string]*list.Element{}}
	return c.middleware
}

type idemCache struct {
	opts IdempotencyOptions

	mu      sync.Mutex
	order   *list.List // of *idemSlot, oldest at the front
	entries map[string]*list.Element
}

// idemSlot is one cache key pointing at an answer.
type idemSlot struct {
	key     string
	expires time.Time
	ans     *idemAnswer
}

// idemAnswer is an answer being made (done open) or made.
type idemAnswer struct {
	done   chan struct{}
	sum    [sha256.Size]byte
	keys   []string // the cache keys that point here; guarded by idemCache.mu
	kept   bool     // set before done closes: a 2xx answer to replay
	status int
	ctype  string
	body   []byte
}

func (c *idemCache) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// Let the handler meet the same error (a too large body: 413).
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			next.ServeHTTP(w, r)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		scope := c.opts.Scope(r) + "\x00"
		bodyKey := scope + "body\x00" + string(sum[:])
		headerKey := ""
		if k := r.Header.Get(IdempotencyKeyHeader); k != "" {
			headerKey = scope + "key\x00" + k
		}

		ans, mine, conflict := c.claim(headerKey, bodyKey, sum)
		if conflict {
			writeError(w, http.StatusUnprocessableEntity,
				"this Idempotency-Key was already used for a different request; use a new key for each new flag")
			return
		}
		if !mine {
			select {
			case <-ans.done:
			case <-r.Context().Done():
				return
			}
			if ans.kept {
				h := w.Header()
				h.Set("Content-Type", ans.ctype)
				h.Set("Cache-Control", "no-store")
				h.Set("Idempotent-Replayed", "true")
				w.WriteHeader(ans.status)
				_, _ = w.Write(ans.body)
				return
			}
			// The first attempt was not kept (an error): run this one.
			next.ServeHTTP(w, r)
			return
		}
		rec := &teeRecorder{recorder: newRecorder(w)}
		defer func() {
			if rec.status >= 200 && rec.status < 300 {
				ans.kept = true
				ans.status = rec.status
				ans.ctype = rec.Header().Get("Content-Type")
				ans.body = rec.buf.Bytes()
			} else {
				c.forget(ans)
			}
			close(ans.done)
		}()
		next.ServeHTTP(rec, r)
	})
}

// claim finds the answer for the keys, or makes a new one that the caller
// then owns (mine). conflict: the header key was used with another body.
func (c *idemCache) claim(headerKey, bodyKey string, sum [sha256.Size]byte) (ans *idemAnswer, mine, conflict bool) {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	lookup := func(k string) *idemAnswer {
		e, ok := c.entries[k]
		if !ok {
			return nil
		}
		s := e.Value.(*idemSlot)
		if !now.Before(s.expires) {
			c.order.Remove(e)
			delete(c.entries, k)
			return nil
		}
		return s.ans
	}
	if headerKey != "" {
		if a := lookup(headerKey); a != nil {
			if a.sum != sum {
				return nil, false, true
			}
			return a, false, false
		}
	}
	if a := lookup(bodyKey); a != nil {
		if headerKey != "" {
			c.addLocked(headerKey, now.Add(c.opts.KeyTTL), a)
		}
		return a, false, false
	}
	a := &idemAnswer{done: make(chan struct{}), sum: sum}
	c.addLocked(bodyKey, now.Add(c.opts.RepeatWindow), a)
	if headerKey != "" {
		c.addLocked(headerKey, now.Add(c.opts.KeyTTL), a)
	}
	return a, true, false
}

func (c *idemCache) addLocked(k string, expires time.Time, a *idemAnswer) {
	if e, ok := c.entries[k]; ok {
		c.order.Remove(e)
	}
	c.entries[k] = c.order.PushBack(&idemSlot{key: k, expires: expires, ans: a})
	a.keys = append(a.keys, k)
	for c.order.Len() > c.opts.MaxEntries {
		oldest := c.order.Front()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*idemSlot).key)
	}
}

// forget drops every slot of an answer that is not kept.
func (c *idemCache) forget(a *idemAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range a.keys {
		if e, ok := c.entries[k]; ok && e.Value.(*idemSlot).ans == a {
			c.order.Remove(e)
			delete(c.entries, k)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// teeRecorder records the answer's body as well.
type teeRecorder struct {
	*recorder
	buf bytes.Buffer
}

func (t *teeRecorder) Write(b []byte) (int, error) {
	t.buf.Write(b)
	return t.recorder.Write(b)
}
