package hfhub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRepoID(t *testing.T) {
	tests := []struct {
		in      string
		want    RepoID
		wantErr string
	}{
		{in: "alice/flags", want: RepoID{"alice", "flags"}},
		{in: "Org-1/my_data.v2", want: RepoID{"Org-1", "my_data.v2"}},
		{in: "flags", wantErr: `want "owner/name"`},
		{in: "a/b/c", wantErr: `want "owner/name"`},
		{in: "/flags", wantErr: "empty owner"},
		{in: "alice/", wantErr: "empty name"},
		{in: "alice/fl ags", wantErr: "contains ' '"},
		{in: "alice/fl--ags", wantErr: `"--"`},
		{in: "alice/fl..ags", wantErr: `".."`},
		{in: "alice/-flags", wantErr: "must not start or end"},
		{in: "alice/flags.", wantErr: "must not start or end"},
		{in: "alice/" + strings.Repeat("x", 91), wantErr: "longer than 96"},
		{in: "alice/" + strings.Repeat("x", 90), want: RepoID{"alice", strings.Repeat("x", 90)}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRepoID(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrInvalidRepoID)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String())
		})
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "data/a.png", want: "data/a.png"},
		{in: "/data/a.png", want: "data/a.png"},
		{in: "./data/a.png", want: "data/a.png"},
		{in: "logs/", want: "logs/"},
		{in: "", wantErr: "relative file path"},
		{in: ".", wantErr: "relative file path"},
		{in: "..", wantErr: "relative file path"},
		{in: "../x", wantErr: `".."`},
		{in: "a/../x", wantErr: `".."`},
		{in: ".git/config", wantErr: ".git"},
		{in: "a/.cache/x", wantErr: ".cache"},
		{in: "a//b", wantErr: "empty"},
		{in: `a\b`, wantErr: "backslash"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CleanPath(tt.in)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidPath)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("  hf_from_file\r\n"), 0o600))
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"HF_TOKEN first", map[string]string{"HF_TOKEN": "hf_a\n", "HUGGING_FACE_HUB_TOKEN": "hf_b", "HF_TOKEN_PATH": tokenFile}, "hf_a"},
		{"legacy variable", map[string]string{"HUGGING_FACE_HUB_TOKEN": " hf_b ", "HF_TOKEN_PATH": tokenFile}, "hf_b"},
		{"blank HF_TOKEN is no token", map[string]string{"HF_TOKEN": " \n", "HF_TOKEN_PATH": tokenFile}, "hf_from_file"},
		{"token path", map[string]string{"HF_TOKEN_PATH": tokenFile}, "hf_from_file"},
		{"HF_HOME/token", map[string]string{"HF_HOME": dir}, "hf_from_file"},
		{"nothing", map[string]string{"HF_HOME": filepath.Join(dir, "missing")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveTokenFrom(func(k string) string { return tt.env[k] })
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := ResolveTokenFrom(func(k string) string {
		if k == "HF_TOKEN_PATH" {
			return dir // a folder: unreadable as a file
		}
		return ""
	})
	assert.Error(t, err)
}

func TestNewClientEndpoint(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://example.test:8080/")
	c, err := NewClient(&Options{Token: "x"})
	require.NoError(t, err)
	assert.Equal(t, "http://example.test:8080", c.Endpoint())
	_, err = NewClient(&Options{Endpoint: "ftp://x", Token: "x"})
	assert.ErrorContains(t, err, "not an absolute http(s) URL")
	c, err = NewClient(&Options{Endpoint: "https://huggingface.co", Token: "x"})
	require.NoError(t, err)
	assert.Equal(t, "https://huggingface.co/datasets/a/b", c.Repo(Dataset, RepoID{"a", "b"}).URL())
	assert.Equal(t, "https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/dir/x%20y.bin", c.Repo(Model, RepoID{"a", "b"}).At("refs/pr/1").ResolveURL("dir/x y.bin"))
}

func TestNextLink(t *testing.T) {
	assert.Equal(t, "http://h/p?cursor=2", nextLink(`<http://h/p?cursor=2>; rel="next"`))
	assert.Equal(t, "http://h/n", nextLink(`<http://h/prev>; rel="prev", <http://h/n>; rel=next`))
	assert.Equal(t, "", nextLink(""))
	assert.Equal(t, "", nextLink(`<http://h/p>; rel="last"`))
}

func TestHubErrorSentinels(t *testing.T) {
	tests := []struct {
		err  *HubError
		is   []error
		isnt []error
	}{
		{&HubError{Status: 401}, []error{ErrUnauthorized}, []error{ErrNotFound}},
		{&HubError{Status: 401, Code: CodeRepoNotFound}, []error{ErrNotFound, ErrRepoNotFound}, []error{ErrUnauthorized}},
		{&HubError{Status: 403}, []error{ErrForbidden}, []error{ErrUnauthorized}},
		{&HubError{Status: 404, Code: CodeEntryNotFound}, []error{ErrNotFound, ErrEntryNotFound}, []error{ErrRepoNotFound, ErrRevisionNotFound}},
		{&HubError{Status: 404, Code: CodeRevisionNotFound}, []error{ErrNotFound, ErrRevisionNotFound}, []error{ErrEntryNotFound}},
		{&HubError{Status: 409}, []error{ErrConflict}, []error{ErrPreconditionFailed}},
		{&HubError{Status: 412}, []error{ErrPreconditionFailed}, []error{ErrConflict}},
		{&HubError{Status: 429, RetryAfter: 3 * time.Second}, []error{ErrRateLimited}, []error{ErrNotFound}},
	}
	for _, tt := range tests {
		wrapped := errors.Join(errors.New("context"), tt.err)
		for _, e := range tt.is {
			assert.ErrorIs(t, wrapped, e, "%v", tt.err)
		}
		for _, e := range tt.isnt {
			assert.NotErrorIs(t, wrapped, e, "%v", tt.err)
		}
	}
	assert.Equal(t, 3*time.Second, RetryAfterOf(errors.Join(errors.New("x"), &HubError{Status: 429, RetryAfter: 3 * time.Second})))
}

// TestRetryPolicy checks the waits of §5.3 against a plain HTTP server.
func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		fail      int // answers before success
		status    int
		header    http.Header
		wantWaits []time.Duration
		wantErr   error
	}{
		{"503 backoff", 3, 503, nil, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, nil},
		{"gives up after 5 retries", 99, 502, nil, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}, ErrProtocol},
		{"Retry-After honoured", 1, 429, http.Header{"Retry-After": {"7"}}, []time.Duration{8 * time.Second}, nil},
		{"RateLimit t honoured", 1, 429, http.Header{"Ratelimit": {`"api";r=0;t=12`}}, []time.Duration{13 * time.Second}, nil},
		{"long Retry-After left to the caller", 1, 429, http.Header{"Retry-After": {"3600"}}, nil, ErrRateLimited},
		{"408 retried", 1, 408, nil, []time.Duration{time.Second}, nil},
		{"400 not retried", 1, 400, nil, nil, ErrProtocol},
		{"Retry-After as an HTTP date", 1, 503, http.Header{"Retry-After": {"Sun, 29 Nov 2026 12:00:45 GMT"}}, []time.Duration{45 * time.Second}, nil},
		{"malformed Retry-After falls back to backoff", 2, 503, http.Header{"Retry-After": {"soon"}}, []time.Duration{time.Second, 2 * time.Second}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				if int(n) <= tt.fail {
					for k, v := range tt.header {
						w.Header()[k] = v
					}
					w.Header().Set("X-Error-Message", "injected")
					w.WriteHeader(tt.status)
					return
				}
				w.Write([]byte(`{"files":[{"path":"a.txt","uploadMode":"regular","shouldIgnore":false}]}`))
			}))
			defer srv.Close()
			rec := &WaitRecorder{}
			now := func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }
			c, err := NewClient(&Options{Endpoint: srv.URL, Token: "hf_secret", Sleep: rec.Sleep, Now: now})
			require.NoError(t, err)
			a, err := prepareAdd(AddBytes("a.txt", []byte("hi")))
			require.NoError(t, err)
			err = c.preupload(context.Background(), c.Repo(Dataset, RepoID{"u", "r"}).At("main"), []*addition{a}, false)
			assert.Equal(t, tt.wantWaits, rec.Waits())
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, "regular", a.mode)
				return
			}
			var he *HubError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tt.status, he.Status)
			assert.Equal(t, "injected", he.Message)
			if tt.wantErr == ErrRateLimited {
				assert.ErrorIs(t, err, ErrRateLimited)
				assert.Equal(t, 3601*time.Second, he.RetryAfter)
			}
		})
	}
}

// TestRetryJitter: with Options.Jitter each backoff wait lies between
// (1-Jitter) and 1 times the exact wait; a wait the Hub asked for is kept.
func TestRetryJitter(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1, 2, 3, 4:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 5:
			w.Header().Set("Retry-After", "4")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.Write([]byte(`{"files":[{"path":"a.txt","uploadMode":"regular","shouldIgnore":false}]}`))
		}
	}))
	defer srv.Close()
	rec := &WaitRecorder{}
	c, err := NewClient(&Options{Endpoint: srv.URL, Token: "hf_secret", Sleep: rec.Sleep, Jitter: 0.5})
	require.NoError(t, err)
	a, err := prepareAdd(AddBytes("a.txt", []byte("hi")))
	require.NoError(t, err)
	require.NoError(t, c.preupload(context.Background(), c.Repo(Dataset, RepoID{"u", "r"}), []*addition{a}, false))
	waits := rec.Waits()
	require.Len(t, waits, 5)
	for i, exact := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		assert.GreaterOrEqual(t, waits[i], exact/2, "wait %d", i)
		assert.LessOrEqual(t, waits[i], exact, "wait %d", i)
	}
	assert.Equal(t, 5*time.Second, waits[4], "Retry-After 4 plus one second, never jittered")

	for _, bad := range []float64{-0.1, 1.5} {
		_, err := NewClient(&Options{Endpoint: srv.URL, Token: "x", Jitter: bad})
		assert.ErrorContains(t, err, "give a fraction in [0, 1]")
	}
}

func TestNoTokenRefusedBeforeAnyRequest(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", filepath.Join(t.TempDir(), "none"))
	c, err := NewClient(&Options{Endpoint: srv.URL})
	require.NoError(t, err)
	assert.False(t, c.HasToken())
	ctx := context.Background()
	id := RepoID{"u", "r"}
	_, err = c.WhoAmI(ctx)
	assert.ErrorIs(t, err, ErrNoToken)
	_, err = c.Repo(Dataset, id).Create(ctx, nil)
	assert.ErrorIs(t, err, ErrNoToken)
	_, err = c.Repo(Dataset, id).CreateCommit(ctx, "s", []Operation{AddBytes("a", []byte("x"))}, nil)
	assert.ErrorIs(t, err, ErrNoToken)
	assert.Contains(t, err.Error(), "set HF_TOKEN")
	assert.Zero(t, calls.Load())
}
