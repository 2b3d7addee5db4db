package hfhub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/advspace/advspace/internal/backoff"
)

// request describes one logical Hub call, possibly sent several times.
type request struct {
	op     string
	method string
	url    string
	header http.Header
	// body returns a fresh reader for each attempt (bodies are rewound on retry); nil = no body.
	body func() (io.Reader, error)
	// size is the body length, or -1 if unknown.
	size int64
	// auth sends the token (only ever to the Hub's own host).
	auth bool
	// retry retries 408/429/5xx and network errors with backoff.
	retry bool
	// redirects returns 3xx answers to the caller instead of treating them as errors.
	redirects bool
	// presigned marks a URL the Hub handed out (a redirect target), whose query may hold a signature.
	presigned bool
	// hub is the client, set by do; it knows the Hub's host.
	hub *Client
}

// shownURL is the URL as errors and logs show it: credentials redacted (see
// RedactURL), and pre-signed storage URLs (requests sent without auth, or to
// another host) lose their whole query, which holds the signature, a
// short-lived credential, under names RedactURL may not know.
func (r *request) shownURL(u string) string {
	if r.auth && !r.presigned && (r.hub == nil || r.hub.sameHost(parseURLOrEmpty(u))) {
		return RedactURL(u)
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return RedactURL(u[:i]) + "?<signature redacted>"
	}
	return RedactURL(u)
}

// shownErr hides credentials in the URL of a transport error.
func (r *request) shownErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && r.shownURL(ue.URL) != ue.URL {
		cp := *ue
		cp.URL = r.shownURL(ue.URL)
		return &cp
	}
	return err
}

func bytesBody(b []byte) func() (io.Reader, error) {
	return func() (io.Reader, error) { return bytes.NewReader(b), nil }
}

func jsonBody(v any) (func() (io.Reader, error), int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, 0, fmt.Errorf("hfhub: encoding request: %w", err)
	}
	return bytesBody(b), int64(len(b)), nil
}

// retryableStatus are the statuses huggingface_hub retries.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff returns the wait before retry number attempt (0-based):
// MinBackoff·2^attempt capped at MaxBackoff, less the jitter.
func (c *Client) backoff(attempt int) time.Duration {
	u := 0.0
	if c.policy.Jitter > 0 {
		u = rand.Float64()
	}
	return c.policy.Delay(attempt, u)
}

var rateLimitRE = regexp.MustCompile(`r=(\d+)\s*;\s*t=(\d+)`)

// serverWait is the wait the Hub asked for: RateLimit r=0;t=N on a 429 ⇒ N+1 s;
// a numeric Retry-After ⇒ N+1 s (like huggingface_hub); an HTTP-date
// Retry-After ⇒ the time until then. ok=false when none.
func (c *Client) serverWait(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode == http.StatusTooManyRequests {
		if m := rateLimitRE.FindStringSubmatch(resp.Header.Get("RateLimit")); m != nil && m[1] == "0" {
			if t, err := strconv.Atoi(m[2]); err == nil {
				return time.Duration(t+1) * time.Second, true
			}
		}
	}
	ra := resp.Header.Get("Retry-After")
	d, ok := backoff.ParseRetryAfter(ra, c.now())
	if !ok {
		return 0, false
	}
	if _, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && d <= math.MaxInt64-time.Second {
		d += time.Second // huggingface_hub waits one second more than asked
	}
	return d, true
}

// do sends r, retrying as r allows. On a 2xx (or 3xx when r.redirects) it
// returns the response, whose body the caller must close. Otherwise it returns
// a *HubError (or a transport/context error) and no response.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	r.hub = c
	attempts := 1
	if r.retry {
		attempts += c.maxRetries
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, r)
		last := attempt+1 >= attempts
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if last {
				return nil, c.redact(fmt.Errorf("hfhub: %s: %w", r.op, r.shownErr(err)))
			}
			wait := c.backoff(attempt)
			c.log.Debug("hfhub: network error, retrying", "op", r.op, "url", r.shownURL(r.url), "attempt", attempt+1, "wait", wait, "err", c.redact(r.shownErr(err)))
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode < 300 || (r.redirects && resp.StatusCode < 400) {
			return resp, nil
		}
		herr := c.hubError(r, resp)
		if !r.retry || last || !retryableStatus(resp.StatusCode) {
			return nil, herr
		}
		wait, asked := c.serverWait(resp)
		if !asked {
			wait = c.backoff(attempt)
		} else if wait > c.maxRetryAt {
			// Too long to block here: let the caller schedule.
			return nil, herr
		}
		c.log.Debug("hfhub: retrying", "op", r.op, "url", r.shownURL(r.url), "status", resp.StatusCode, "attempt", attempt+1, "wait", wait)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// send makes one attempt. Unless r.redirects, it follows redirects to the
// Hub's own host (a renamed repo answers 307 to its new name), keeping the
// method for 307/308 and for GET/HEAD; other redirects are returned as they are.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	if r.redirects {
		return c.sendOnce(ctx, r, r.url)
	}
	u := r.url
	for hops := 0; ; hops++ {
		resp, err := c.sendOnce(ctx, r, u)
		if err != nil || resp.StatusCode < 300 || resp.StatusCode >= 400 || hops >= maxRedirects {
			return resp, err
		}
		loc := resp.Header.Get("Location")
		keepsMethod := resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect ||
			r.method == http.MethodGet || r.method == http.MethodHead
		next, rerr := resolveRef(u, loc)
		if loc == "" || !keepsMethod || rerr != nil || !c.sameHost(parseURLOrEmpty(next)) {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		c.log.Debug("hfhub: following redirect", "op", r.op, "from", r.shownURL(u), "to", r.shownURL(next), "status", resp.StatusCode)
		u = next
	}
}

func (c *Client) sendOnce(ctx context.Context, r *request, u string) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		b, err := r.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("hfhub: building %s request: %w", r.op, r.shownErr(err))
	}
	if body != nil && r.size >= 0 {
		req.ContentLength = r.size
		if r.size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", c.userAgent)
	if r.auth && c.token != "" && c.sameHost(req.URL) {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	c.log.Debug("hfhub: request", "op", r.op, "method", r.method, "url", r.shownURL(u), "status", resp.StatusCode)
	return resp, nil
}

// hubError reads and closes resp's body and describes the failure.
func (c *Client) hubError(r *request, resp *http.Response) *HubError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &HubError{
		Op:        r.op,
		Method:    r.method,
		URL:       r.shownURL(r.url),
		Status:    resp.StatusCode,
		Code:      resp.Header.Get("X-Error-Code"),
		Message:   resp.Header.Get("X-Error-Message"),
		RequestID: resp.Header.Get("X-Request-Id"),
	}
	if e.Message == "" {
		e.Message = errorMessageFromBody(body)
	}
	if wait, ok := c.serverWait(resp); ok {
		e.RetryAfter = wait
	}
	// The Hub answers 401 for private or missing repos to callers without a
	// valid token; only "Invalid credentials" really means a bad token.
	if e.Status == http.StatusUnauthorized && e.Code == "" &&
		!strings.Contains(e.Message, "Invalid credentials") && isRepoURL(c, r.url) {
		e.Code = CodeRepoNotFound
	}
	if c.token != "" {
		e.Message = strings.ReplaceAll(e.Message, c.token, "***")
	}
	return e
}

func isRepoURL(c *Client, u string) bool {
	p := strings.TrimPrefix(u, c.endpoint)
	return strings.HasPrefix(p, "/api/models/") || strings.HasPrefix(p, "/api/datasets/") ||
		strings.HasPrefix(p, "/api/spaces/") || strings.Contains(p, "/resolve/")
}

func errorMessageFromBody(body []byte) string {
	var v struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
		Message          string          `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil {
		s := strings.TrimSpace(string(body))
		if len(s) > 300 {
			s = s[:300] + "..."
		}
		return s
	}
	var parts []string
	var s string
	var list []string
	if json.Unmarshal(v.Error, &s) == nil && s != "" {
		parts = append(parts, s)
	} else if json.Unmarshal(v.Error, &list) == nil {
		parts = append(parts, list...)
	}
	if v.ErrorDescription != "" {
		parts = append(parts, v.ErrorDescription)
	}
	if v.Message != "" && len(parts) == 0 {
		parts = append(parts, v.Message)
	}
	return strings.Join(parts, ": ")
}

// redact removes the token from an error's text, in case a transport ever echoes it.
func (c *Client) redact(err error) error {
	if err == nil || c.token == "" || !strings.Contains(err.Error(), c.token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), c.token, "***"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Is lets errors.Is see the sentinels of the wrapped error without exposing its text.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// doJSON sends r and decodes a JSON answer into out (if not nil).
func (c *Client) doJSON(ctx context.Context, r *request, out any) error {
	if r.header == nil {
		r.header = http.Header{}
	}
	if r.header.Get("Accept") == "" {
		r.header.Set("Accept", "application/json")
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%w: %s: decoding answer of %s: %v", ErrProtocol, r.op, r.shownURL(r.url), err)
	}
	return nil
}

func (c *Client) requireToken(op string) error {
	if c.token == "" {
		return fmt.Errorf("%s: %w", op, ErrNoToken)
	}
	return nil
}

// nextLink parses an RFC 5988 Link header and returns the rel="next" URL.
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		segs := strings.Split(part, ";")
		if len(segs) < 2 {
			continue
		}
		target := strings.TrimSpace(segs[0])
		if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		for _, p := range segs[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.TrimSpace(k) == "rel" && strings.Trim(strings.TrimSpace(v), `"`) == "next" {
				return target[1 : len(target)-1]
			}
		}
	}
	return ""
}

// resolveRef makes a possibly relative link absolute against base.
func resolveRef(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}
