package dadchttp_test

// Issue 11's web kinds: each test is named after the kind and keeps the
// right value.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/dadc/dadctest"
)

// Kind 5, errors a client can read: a client that writes a 12 MB body
// before it reads anything (Python's urllib does) reads the 413, not a
// connection reset.
func TestErrorsAClientCanRead_BodyWrittenWholeBeforeReading(t *testing.T) {
	f := newFixture(t, nil, nil)
	srv := httptest.NewServer(f.h)
	defer srv.Close()

	const size = 12 << 20
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	// A safety net so that a broken server fails the test instead of hanging it.
	require.NoError(t, conn.SetDeadline(time.Now().Add(2*time.Minute)))

	head := fmt.Sprintf("POST /api/predict HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", size)
	_, err = conn.Write([]byte(head))
	require.NoError(t, err)
	body := []byte(strings.Repeat("7", size))
	_, err = conn.Write(body)
	require.NoError(t, err, "the server must read the body, not reset the connection")

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the client reads the answer")
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "the request body is too large: the limit is 5242880 bytes", decode[errorAnswer](t, resp.Body).Error)
}

// Kind 5: a body within the limit is unaffected, and one declared far larger
// than the limit plus the drain allowance is refused without reading it.
func TestErrorsAClientCanRead_DeclaredHugeBodyNotRead(t *testing.T) {
	f := newFixture(t, nil, &dadchttp.Options{MaxBodyBytes: 1024, Drain: &dadchttp.DrainOptions{MaxBytes: 1024}})
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(time.Minute)))
	// Declares 1 GB and sends 4 KB: the server answers at once.
	_, err = fmt.Fprintf(conn, "POST /api/predict HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", 1<<30, strings.Repeat("7", 4096))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	rec := f.do("POST", "/api/predict", "text/plain", "4")
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

// Kind 6, behind a reverse proxy: forwarded addresses are believed from
// trusted proxies only.
func TestBehindAReverseProxy_ForwardedClientIP(t *testing.T) {
	trusted, err := dadchttp.ParseTrustedProxies("10.0.0.0/8, 192.0.2.7,2001:db8:ffff::/48")
	require.NoError(t, err)
	key := dadchttp.ForwardedClientIP(trusted)
	tests := []struct {
		name   string
		peer   string
		header map[string]string
		want   string
	}{
		{"trusted proxy, one hop", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
		{"trusted proxy chain: right-most untrusted", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"single trusted address", "192.0.2.7:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
		{"untrusted peer: header ignored", "198.51.100.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "198.51.100.1"},
		{"untrusted peer next to a trusted one", "192.0.2.8:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "192.0.2.8"},
		{"trusted proxy without header", "10.1.2.3:5000", nil, "10.1.2.3"},
		{"garbage hop stops the walk", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "203.0.113.9, not-an-ip"}, "10.1.2.3"},
		{"Forwarded header, IPv6 with port", "10.1.2.3:5000", map[string]string{"Forwarded": `for="[2001:db8::1]:4711";proto=https`}, "2001:db8::1"},
		{"Forwarded header chain", "10.1.2.3:5000", map[string]string{"Forwarded": "for=203.0.113.9, for=10.2.2.2"}, "203.0.113.9"},
		{"IPv6 trusted proxy", "[2001:db8:ffff::1]:443", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			assert.Equal(t, tt.want, key(r))
		})
	}
	// Without trusted proxies nothing forwarded is believed.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:5000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	assert.Equal(t, "10.1.2.3", dadchttp.ForwardedClientIP(nil)(r))

	for _, bad := range []string{"10.0.0.0/33", "proxy.local", "10.0.0.1/8/9"} {
		_, err := dadchttp.ParseTrustedProxies(bad)
		require.ErrorIs(t, err, dadchttp.ErrConfig, bad)
		assert.Contains(t, err.Error(), "is not an IP address or CIDR prefix")
	}
	empty, err := dadchttp.ParseTrustedProxies("")
	require.NoError(t, err)
	assert.Empty(t, empty)
}

// Kind 6: two people behind one proxy each get their own flag bucket; a
// client that is not a proxy cannot pick its bucket with a header.
func TestBehindAReverseProxy_OneBucketPerPerson(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f := newFixture(t, nil, &dadchttp.Options{FlagRate: rate.Every(time.Hour), FlagBurst: 1, ClientKey: dadchttp.ForwardedClientIP(trusted)})
	viaProxy := func(person string, n int) int {
		return f.flag(n, 0, "RemoteAddr", "10.0.0.2:4000", "X-Forwarded-For", person).Code
	}
	assert.Equal(t, http.StatusCreated, viaProxy("203.0.113.1", 1))
	assert.Equal(t, http.StatusTooManyRequests, viaProxy("203.0.113.1", 4))
	assert.Equal(t, http.StatusCreated, viaProxy("203.0.113.2", 7), "another person behind the same proxy")

	direct := func(claimed string, n int) int {
		return f.flag(n, 0, "RemoteAddr", "198.51.100.9:4000", "X-Forwarded-For", claimed).Code
	}
	assert.Equal(t, http.StatusCreated, direct("203.0.113.3", 10))
	assert.Equal(t, http.StatusTooManyRequests, direct("203.0.113.4", 13), "a forged header does not buy a new bucket")
}

// Kind 7, retried or repeated flags: the same Idempotency-Key gets the same
// answer and stores one sample.
func TestRetriedOrRepeatedFlags_IdempotencyKey(t *testing.T) {
	fl := dadctest.NewFlagger[int](nil)
	f := newFixture(t, fl, nil)
	first := f.flag(4, 0, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, first.Code, first.Body.String())
	f.clock.Advance(10 * time.Minute) // past the repeat window, within the key's life
	again := f.flag(4, 0, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, again.Code)
	assert.Equal(t, first.Body.String(), again.Body.String(), "the same answer")
	assert.Equal(t, "true", again.Header().Get("Idempotent-Replayed"))
	assert.Equal(t, 1, fl.Len(), "one sample")
	assert.Equal(t, 1, f.loop.Stats().FlaggedTotal)

	// The key with another body is refused and stores nothing.
	other := f.flag(7, 0, "Idempotency-Key", "k-1")
	assert.Equal(t, http.StatusUnprocessableEntity, other.Code)
	assert.Contains(t, decode[errorAnswer](t, other.Body).Error, "use a new key for each new flag")
	assert.Equal(t, 1, fl.Len())

	// A new key after the repeat window is a new flag.
	fresh := f.flag(4, 0, "Idempotency-Key", "k-2")
	assert.Equal(t, http.StatusCreated, fresh.Code)
	assert.NotEqual(t, decode[flagAnswer](t, first.Body).ID, decode[flagAnswer](t, fresh.Body).ID)
	assert.Equal(t, 2, fl.Len())

	// Keys belong to a client: another client's k-1 is its own.
	theirs := f.flag(10, 0, "Idempotency-Key", "k-1", "RemoteAddr", "198.51.100.20:1")
	assert.Equal(t, http.StatusCreated, theirs.Code)
	assert.Empty(t, theirs.Header().Get("Idempotent-Replayed"))
	assert.Equal(t, 3, fl.Len())
}

// Kind 7: the same body from the same client within the repeat window (a
// double click, a retry without a key) is the same flag; after it, a new one.
func TestRetriedOrRepeatedFlags_SameBodyWithinWindow(t *testing.T) {
	fl := dadctest.NewFlagger[int](nil)
	f := newFixture(t, fl, &dadchttp.Options{Idempotency: &dadchttp.IdempotencyOptions{RepeatWindow: 30 * time.Second}})
	first := f.flag(4, 0)
	require.Equal(t, http.StatusCreated, first.Code)
	f.clock.Advance(29 * time.Second)
	again := f.flag(4, 0)
	assert.Equal(t, first.Body.String(), again.Body.String())
	assert.Equal(t, 1, fl.Len())

	other := f.flag(4, 0, "Cookie", dadchttp.SessionCookie+"=someone-else")
	assert.Equal(t, http.StatusCreated, other.Code, "another session's same drawing is its own flag")
	assert.Equal(t, 2, fl.Len())

	f.clock.Advance(time.Second)
	later := f.flag(4, 0)
	assert.Equal(t, http.StatusCreated, later.Code)
	assert.Empty(t, later.Header().Get("Idempotent-Replayed"))
	assert.Equal(t, 3, fl.Len(), "after the window the same drawing is a new flag")
}

// Kind 7: concurrent copies of one request store one sample and all get
// the one answer.
func TestRetriedOrRepeatedFlags_Concurrent(t *testing.T) {
	release := make(chan struct{})
	fl := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{Hook: func(ctx context.Context, call int, s dadc.Sample[int]) error {
		<-release
		return nil
	}})
	f := newFixture(t, fl, nil)
	var wg sync.WaitGroup
	bodies := make([]string, 8)
	for i := range bodies {
		wg.Go(func() {
			rec := f.flag(5, 0, "Idempotency-Key", "same")
			assert.Equal(t, http.StatusCreated, rec.Code)
			bodies[i] = rec.Body.String()
		})
	}
	close(release)
	wg.Wait()
	for _, b := range bodies {
		assert.Equal(t, bodies[0], b)
	}
	assert.Equal(t, 1, fl.Len())
	assert.Equal(t, 1, fl.Calls())
}

// Kind 7: an answer that is an error is not kept: the retry runs again.
func TestRetriedOrRepeatedFlags_ErrorsAreRetried(t *testing.T) {
	fl := dadctest.NewFlagger(&dadctest.FlaggerScript[int]{FailCalls: []int{1}})
	f := newFixture(t, fl, nil)
	assert.Equal(t, http.StatusInternalServerError, f.flag(4, 0, "Idempotency-Key", "k").Code)
	assert.Equal(t, http.StatusCreated, f.flag(4, 0, "Idempotency-Key", "k").Code)
	assert.Equal(t, 1, fl.Len())
}

// Kind 8, storage failures a person understands: a full disk is 507 with a
// message for a person, and neither the answer nor the log names a path.
func TestStorageFull_507WithoutAPath(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		t.Run(errno.Error(), func(t *testing.T) {
			fl := dadc.FlaggerFunc[int](func(ctx context.Context, s dadc.Sample[int]) error {
				return fmt.Errorf("storing flagged sample %s: %w", s.ID,
					&os.PathError{Op: "write", Path: "/srv/secret/adversarial-data/data/x/" + s.ID + ".png", Err: errno})
			})
			f := newFixture(t, fl, nil)
			rec := f.flag(4, 0)
			assert.Equal(t, http.StatusInsufficientStorage, rec.Code)
			assert.Equal(t, "the server could not save your number: its disk is full", decode[errorAnswer](t, rec.Body).Error)
			assert.NotContains(t, rec.Body.String(), "/srv")
			assert.Contains(t, f.logs.String(), "the storage is full")
			assert.NotContains(t, f.logs.String(), "/srv", "no path in the log line")
			assert.Equal(t, 0, f.loop.Stats().FlaggedTotal)
		})
	}
	// Any other storage error stays a 500 that names nothing.
	f := newFixture(t, dadc.FlaggerFunc[int](func(context.Context, dadc.Sample[int]) error {
		return &os.PathError{Op: "write", Path: "/srv/x", Err: errors.New("input/output error")}
	}), nil)
	rec := f.flag(4, 0)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.NotContains(t, rec.Body.String(), "/srv")
}

// Kind 9, a 429 says the same wait in its body as in Retry-After.
func TestRateLimitBodyAgreesWithRetryAfter(t *testing.T) {
	f := newFixture(t, nil, &dadchttp.Options{FlagRate: 1, FlagBurst: 1})
	require.Equal(t, http.StatusCreated, f.flag(1, 0).Code)
	tests := []struct {
		advance time.Duration
		want    string
	}{
		{0, "1"},                      // a whole second to wait
		{600 * time.Millisecond, "1"}, // 400 ms: rounds up, never "wait 0s"
	}
	for i, tt := range tests {
		f.clock.Advance(tt.advance)
		rec := f.flag(10+3*i, 0)
		require.Equal(t, http.StatusTooManyRequests, rec.Code)
		assert.Equal(t, tt.want, rec.Header().Get("Retry-After"))
		assert.Equal(t, "too many flags from you: wait "+tt.want+"s and try again", decode[errorAnswer](t, rec.Body).Error)
	}
	f.clock.Advance(400 * time.Millisecond)
	assert.Equal(t, http.StatusCreated, f.flag(100, 0).Code, "the wait was right")

	for _, c := range []struct {
		wait time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {time.Hour, 3600}} {
		assert.Equal(t, c.want, dadchttp.RetryAfterSeconds(c.wait), c.wait)
	}
}

// Kind 5: a body that is not JSON and is over the limit gets the 413 (what
// the client must change first), not a 400 about its first byte; a small
// one that is not JSON still gets the 400.
func TestErrorsAClientCanRead_MalformedAndTooLarge(t *testing.T) {
	f := newFixture(t, nil, &dadchttp.Options{MaxBodyBytes: 1024})
	for _, path := range []string{"/api/flag", "/api/predict"} {
		rec := f.do("POST", path, "application/json", strings.Repeat("\x01garbage", 1000))
		assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, "%s: %s", path, rec.Body.String())
		rec = f.do("POST", path, "application/json", "\x01garbage")
		assert.Equal(t, http.StatusBadRequest, rec.Code, "%s: %s", path, rec.Body.String())
		assert.Contains(t, rec.Body.String(), "malformed JSON")
	}
}

// Kind 5: a body that stops arriving gets 408 when the server's read
// timeout passes, and the answer names no connection addresses.
func TestErrorsAClientCanRead_SlowBody(t *testing.T) {
	f := newFixture(t, nil, nil)
	srv := httptest.NewUnstartedServer(f.h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	for _, req := range []string{
		"POST /api/predict HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n7777",
		"POST /api/flag HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"n\": 7, ",
	} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(time.Minute)))
		_, err = conn.Write([]byte(req))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode, req)
		msg := decode[errorAnswer](t, resp.Body).Error
		assert.Contains(t, msg, "did not arrive in time")
		assert.NotContains(t, msg, "127.0.0.1")
		resp.Body.Close()
		conn.Close()
	}
}
