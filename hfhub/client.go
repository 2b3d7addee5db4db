package hfhub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/advspace/advspace/internal/backoff"
)

// DefaultEndpoint is the public Hugging Face Hub.
const DefaultEndpoint = "https://huggingface.co"

// Options configure a Client. The zero value (or a nil *Options) means the defaults.
type Options struct {
	// Endpoint is the Hub's base URL. Default: $HF_ENDPOINT, else https://huggingface.co.
	// A trailing "/" is stripped.
	Endpoint string
	// Token is the access token. Default: ResolveToken(). No token is fine for
	// reading public repos; writes fail with ErrNoToken.
	Token string
	// HTTPClient sends the requests. Default: a client with no overall timeout
	// (uploads can be long; use contexts for deadlines). Its CheckRedirect is
	// not used: the client follows redirects itself so that the token only goes
	// to the Hub's own host.
	HTTPClient *http.Client
	// UserAgent is the first User-Agent token. Default "advspace/<module version>".
	// "; hf_hub/go; go/<version>" is appended.
	UserAgent string
	// Logger receives debug logs of requests and retries (never the token). Default: discard.
	Logger *slog.Logger
	// MaxRetries is the number of retries after a failed attempt of a retryable
	// call (so MaxRetries+1 attempts). Default 5. A negative value disables retries.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff between retries
	// (doubling from MinBackoff). Defaults 1s and 8s: waits 1, 2, 4, 8, 8 s,
	// as huggingface_hub waits.
	MinBackoff, MaxBackoff time.Duration
	// Jitter is the fraction of each backoff wait taken off at random, in
	// [0, 1]: 0.5 gives waits uniformly in the upper half. Default 0, exact
	// waits like huggingface_hub; raise it when many clients share a Hub.
	// It does not shorten a wait the Hub asked for.
	Jitter float64
	// MaxRetryAfter is the longest Retry-After (or RateLimit t=) the client waits
	// for by itself; a longer requested wait is returned as an ErrRateLimited
	// error carrying RetryAfter, so the caller can schedule. Default 5 minutes.
	MaxRetryAfter time.Duration
	// Sleep waits between retries and returns early with ctx.Err() when ctx
	// is done. Default: a timer (virtual inside a testing/synctest bubble).
	// Tests may inject a recorder that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for a Retry-After given as an HTTP date. Default time.Now.
	Now func() time.Time
}

// Client talks to a Hugging Face Hub. It is safe for concurrent use by many
// goroutines; it keeps no per-call state besides the cached WhoAmI answer.
type Client struct {
	endpoint   string
	base       *url.URL
	token      string
	http       *http.Client
	userAgent  string
	log        *slog.Logger
	maxRetries int
	policy     backoff.Policy
	maxRetryAt time.Duration
	sleep      func(ctx context.Context, d time.Duration) error
	now        func() time.Time

	whoMu  sync.Mutex
	whoAmI *User
}

// NewClient returns a Client. It fails if the endpoint is not an absolute
// http(s) URL or the token file exists but cannot be read.
func NewClient(opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Endpoint == "" {
		o.Endpoint = os.Getenv("HF_ENDPOINT")
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	base, err := url.Parse(o.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an absolute http(s) URL; set HF_ENDPOINT like https://huggingface.co", ErrInvalidEndpoint, RedactURL(o.Endpoint))
	}
	if base.User != nil || base.RawQuery != "" || base.ForceQuery || base.Fragment != "" {
		clean := url.URL{Scheme: base.Scheme, Host: base.Host, Path: base.Path, RawPath: base.RawPath}
		return nil, fmt.Errorf("%w: %s carries credentials or parameters (a user:password@ part, a ?query or a #fragment); "+
			"the Hub takes its token only from HF_TOKEN (or Options.Token): set HF_ENDPOINT to %s and the token in HF_TOKEN",
			ErrInvalidEndpoint, RedactURL(o.Endpoint), clean.String())
	}
	if o.Token == "" {
		tok, err := ResolveToken()
		if err != nil {
			return nil, err
		}
		o.Token = tok
	}
	o.Token = cleanToken(o.Token)
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	// Copy the caller's client so we can take over redirects without changing theirs.
	hc := *o.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if o.UserAgent == "" {
		o.UserAgent = "advspace/" + moduleVersion()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	}
	if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 8 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 5 * time.Minute
	}
	if !(o.Jitter >= 0 && o.Jitter <= 1) {
		return nil, fmt.Errorf("hfhub: Options.Jitter is %v; give a fraction in [0, 1] (0 = exact waits)", o.Jitter)
	}
	if o.Sleep == nil {
		o.Sleep = backoff.Sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{
		endpoint:   o.Endpoint,
		base:       base,
		token:      o.Token,
		http:       &hc,
		userAgent:  o.UserAgent + "; hf_hub/go; go/" + strings.TrimPrefix(runtime.Version(), "go"),
		log:        o.Logger,
		maxRetries: o.MaxRetries,
		policy:     backoff.Policy{Min: o.MinBackoff, Max: o.MaxBackoff, Jitter: o.Jitter},
		maxRetryAt: o.MaxRetryAfter,
		sleep:      o.Sleep,
		now:        o.Now,
	}, nil
}

// Endpoint returns the Hub base URL the client talks to. It never carries
// credentials: NewClient refuses an endpoint with any.
func (c *Client) Endpoint() string { return c.endpoint }

// HasToken reports whether the client has a token to send.
func (c *Client) HasToken() bool { return c.token != "" }

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// ResolveToken finds the Hugging Face token the way huggingface_hub does:
// $HF_TOKEN, then $HUGGING_FACE_HUB_TOKEN, then the token file ($HF_TOKEN_PATH,
// default $HF_HOME/token with HF_HOME defaulting to ~/.cache/huggingface).
// The value is cleaned (CR/LF removed, surrounding space trimmed). No token
// anywhere gives "" and a nil error; an unreadable token file is an error.
func ResolveToken() (string, error) { return ResolveTokenFrom(os.Getenv) }

// ResolveTokenFrom is ResolveToken reading the environment through getenv
// (for programs and tests that pass their own environment).
func ResolveTokenFrom(getenv func(string) string) (string, error) {
	for _, env := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := cleanToken(getenv(env)); t != "" {
			return t, nil
		}
	}
	path := getenv("HF_TOKEN_PATH")
	if path == "" {
		home := getenv("HF_HOME")
		if home == "" {
			uh, err := os.UserHomeDir()
			if err != nil {
				return "", nil // no home, no token file
			}
			home = filepath.Join(uh, ".cache", "huggingface")
		}
		path = filepath.Join(home, "token")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("hfhub: reading token file %s: %w", path, err)
	}
	return cleanToken(string(b)), nil
}

func cleanToken(t string) string {
	t = strings.ReplaceAll(t, "\r", "")
	t = strings.ReplaceAll(t, "\n", "")
	return strings.TrimSpace(t)
}

// RepoType is the kind of repository.
type RepoType string

// Repository types.
const (
	Model   RepoType = "model"
	Dataset RepoType = "dataset"
	Space   RepoType = "space"
)

func (t RepoType) valid() error {
	switch t {
	case Model, Dataset, Space:
		return nil
	}
	return fmt.Errorf("%w: repo type %q (want %q, %q or %q)", ErrInvalidRepoID, string(t), Model, Dataset, Space)
}

// urlPrefix is the prefix of web and git URLs: "" for models.
func (t RepoType) urlPrefix() string {
	if t == Model {
		return ""
	}
	return string(t) + "s/"
}

// RepoID names a repository: Namespace (user or organisation) and Name.
type RepoID struct{ Namespace, Name string }

// String returns "namespace/name".
func (id RepoID) String() string { return id.Namespace + "/" + id.Name }

const maxRepoIDLen = 96

// ParseRepoID parses "namespace/name" and validates both parts like the Hub:
// characters [A-Za-z0-9-_.], no "--" or "..", not starting or ending with
// "-" or ".", the whole id at most 96 characters.
func ParseRepoID(s string) (RepoID, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(name, "/") {
		return RepoID{}, fmt.Errorf("%w %q: want \"owner/name\", e.g. \"alice/mnist-adversarial\"", ErrInvalidRepoID, s)
	}
	id := RepoID{Namespace: ns, Name: name}
	if err := id.Validate(); err != nil {
		return RepoID{}, err
	}
	return id, nil
}

// Validate checks the id like ParseRepoID.
func (id RepoID) Validate() error {
	s := id.String()
	if len(s) > maxRepoIDLen {
		return fmt.Errorf("%w %q: longer than %d characters", ErrInvalidRepoID, s, maxRepoIDLen)
	}
	for _, part := range []struct{ what, v string }{{"owner", id.Namespace}, {"name", id.Name}} {
		if part.v == "" {
			return fmt.Errorf("%w %q: empty %s; want \"owner/name\"", ErrInvalidRepoID, s, part.what)
		}
		for _, r := range part.v {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return fmt.Errorf("%w %q: %s contains %q; only letters, digits, '-', '_' and '.' are allowed", ErrInvalidRepoID, s, part.what, r)
			}
		}
		if strings.Contains(part.v, "--") || strings.Contains(part.v, "..") {
			return fmt.Errorf("%w %q: \"--\" and \"..\" are not allowed", ErrInvalidRepoID, s)
		}
		if strings.HasPrefix(part.v, "-") || strings.HasPrefix(part.v, ".") || strings.HasSuffix(part.v, "-") || strings.HasSuffix(part.v, ".") {
			return fmt.Errorf("%w %q: %s must not start or end with '-' or '.'", ErrInvalidRepoID, s, part.what)
		}
	}
	return nil
}

// escapeRev escapes a revision with no safe characters (refs/pr/1 → refs%2Fpr%2F1).
func escapeRev(rev string) string {
	if rev == "" {
		rev = "main"
	}
	return url.PathEscape(rev)
}

// escapePath escapes a repo path segment by segment, keeping "/".
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// fixEndpoint rewrites links the Hub returns for its public host to the
// configured endpoint (like huggingface_hub's fix_hf_endpoint_in_url).
func (c *Client) fixEndpoint(u string) string {
	if c.endpoint != DefaultEndpoint && strings.HasPrefix(u, DefaultEndpoint+"/") {
		return c.endpoint + strings.TrimPrefix(u, DefaultEndpoint)
	}
	return u
}

// sameHost reports whether u points at the Hub's own host, where the token may go.
func (c *Client) sameHost(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.base.Scheme) && strings.EqualFold(u.Host, c.base.Host)
}
