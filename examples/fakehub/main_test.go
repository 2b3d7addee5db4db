package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/hfhub"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// fakehub is one run of the program in the background.
type fakehub struct {
	base           string // http://host:port
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

// start runs the program with args until stop; it returns once the server
// listens (or fails the test if run ends first). No timers: a hang is caught
// by the test binary's -timeout.
func start(t *testing.T, args ...string) *fakehub {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	f := &fakehub{cancel: cancel, done: make(chan error, 1)}
	addrc := make(chan string, 1)
	go func() { f.done <- run(ctx, args, &f.stdout, &f.stderr, func(a string) { addrc <- a }) }()
	select {
	case addr := <-addrc:
		f.base = "http://" + addr
	case err := <-f.done:
		cancel()
		t.Fatalf("run ended before serving: %v\n%s", err, f.stderr.String())
	}
	return f
}

// stop shuts the server down gracefully and returns run's error.
func (f *fakehub) stop() error {
	f.cancel()
	return <-f.done
}

func TestRunServesAndShutsDown(t *testing.T) {
	f := start(t, "-addr", "127.0.0.1:0", "-token", "hf_secret_dev", "-user", "alice", "-orgs", "acme", "-v")
	base := f.base
	stdout, stderr := &f.stdout, &f.stderr
	assert.Contains(t, stdout.String(), "HF_ENDPOINT="+base)
	assert.Contains(t, stdout.String(), `user "alice": the token writes to repos alice/… or acme/…`)

	get := func(token string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", base+"/api/whoami-v2", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var m map[string]any
		body, _ := io.ReadAll(res.Body)
		require.NoError(t, json.Unmarshal(body, &m), string(body))
		return res.StatusCode, m
	}
	status, who := get("hf_secret_dev")
	require.Equal(t, 200, status)
	assert.Equal(t, "alice", who["name"])
	assert.Equal(t, "acme", who["orgs"].([]any)[0].(map[string]any)["name"])
	status, _ = get("hf_other")
	assert.Equal(t, 401, status)

	// Create a dataset: URLs in answers point at this server.
	req, _ := http.NewRequest("POST", base+"/api/repos/create", strings.NewReader(`{"name":"flags","type":"dataset"}`))
	req.Header.Set("Authorization", "Bearer hf_secret_dev")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Contains(t, string(body), base+"/datasets/alice/flags")

	require.NoError(t, f.stop())
	assert.Contains(t, stdout.String(), "fakehub stopped")
	assert.NotContains(t, stdout.String()+stderr.String(), "hf_secret_dev", "the token is never printed or logged")
	assert.Contains(t, stderr.String(), "op=whoami", "-v logs requests")
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no token", []string{"-addr", "127.0.0.1:0"}, "-token is required"},
		{"stray argument", []string{"-token", "t", "extra"}, "unexpected arguments"},
		{"same read token", []string{"-token", "t", "-read-token", "t"}, "must differ"},
		{"bad address", []string{"-token", "t", "-addr", "256.0.0.1:99999"}, "listen on"},
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			err := run(context.Background(), tt.args, &stdout, &stderr, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error()+stderr.String(), tt.want)
		})
	}
}

// TestSmallThings_ReadmeFakehubExample (issue 11): the README's fakehub
// command used a user that did not own the alice/... repos that follow, so
// they answered 403. The command and the repo it suggests must agree, and
// work: the user of -user owns the -repo of the same passage.
func TestSmallThings_ReadmeFakehubExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	var line string
	for l := range strings.Lines(string(readme)) {
		if strings.Contains(l, "go run ./examples/fakehub") {
			line = l
			break
		}
	}
	require.NotEmpty(t, line, "the README shows how to run fakehub")
	flagValue := func(name string) string {
		m := regexp.MustCompile(`(?:^|\s)` + regexp.QuoteMeta(name) + `\s+([^\s` + "`" + `]+)`).FindStringSubmatch(line)
		require.NotNil(t, m, "the README's fakehub passage has %s", name)
		return m[1]
	}
	token, user, repo := flagValue("-token"), flagValue("-user"), flagValue("-repo")
	owner, _, _ := strings.Cut(repo, "/")
	assert.Equal(t, "alice", user)
	require.Equal(t, user, owner, "the README's fakehub user must own the repo it suggests")
	assert.Contains(t, line, "HF_TOKEN="+token)

	f := start(t, "-addr", "127.0.0.1:0", "-token", token, "-user", user)
	id, err := hfhub.ParseRepoID(repo)
	require.NoError(t, err)
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: f.base, Token: token})
	require.NoError(t, err)
	r := c.Repo(hfhub.Dataset, id)
	_, err = r.Create(t.Context(), &hfhub.CreateRepoOptions{ExistOK: true})
	require.NoError(t, err, "creating the README's repo on the README's fakehub")
	_, err = r.CreateCommit(t.Context(), "first sample", []hfhub.Operation{hfhub.AddBytes("data/s1/metadata.jsonl", []byte("{}\n"))}, nil)
	require.NoError(t, err)
	require.NoError(t, f.stop())
}

// TestCredentialsInAnythingPrinted (issue 11): clients pointed at fakehub
// with credentials in the endpoint (user:TOKEN@, ?token=) must not make the
// fake print or log them, even with -v.
func TestCredentialsInAnythingPrinted(t *testing.T) {
	const secret = "SEKRET42"
	f := start(t, "-addr", "127.0.0.1:0", "-token", "hf_dev_"+secret, "-user", "alice", "-v")
	host := strings.TrimPrefix(f.base, "http://")
	for _, u := range []string{
		"http://user:" + secret + "@" + host + "/api/whoami-v2",
		"http://" + secret + "@" + host + "/api/whoami-v2?token=" + secret,
		"http://" + host + "/api/datasets/alice/x?access_token=" + secret + "&sig=" + secret,
		"http://" + host + "/__hubtest/cdn/dataset/alice/x/abc?sig=" + secret,
	} {
		for _, bearer := range []string{"", "hf_dev_" + secret} {
			req, err := http.NewRequest(http.MethodGet, u, nil)
			require.NoError(t, err)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	// hfhub refuses such an endpoint before sending anything.
	_, err := hfhub.NewClient(&hfhub.Options{Endpoint: "http://user:" + secret + "@" + host + "?token=" + secret, Token: "hf_dev_" + secret})
	require.ErrorIs(t, err, hfhub.ErrInvalidEndpoint)
	assert.NotContains(t, err.Error(), secret)
	require.NoError(t, f.stop())
	out := f.stdout.String() + f.stderr.String()
	assert.Contains(t, out, "op=whoami", "-v logged the requests")
	assert.NotContains(t, out, secret)
}
