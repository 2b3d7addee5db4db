package flag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

const (
	hubTestToken = "hf_flaghub_SECRET_token"
	hubTestRepo  = "alice/flags"
)

// hubClock is a settable clock shared by the fake Hub and the flag.Hub.
type hubClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *hubClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *hubClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type hubFixture struct {
	srv    *hubtest.Server
	client *hfhub.Client
	clock  *hubClock
	root   string
	logs   *bytes.Buffer
	logMu  *sync.Mutex
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func newHubFixture(t *testing.T) *hubFixture {
	t.Helper()
	f := &hubFixture{clock: &hubClock{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}, root: t.TempDir(), logs: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	f.srv = hubtest.NewServer(&hubtest.Options{
		Tokens: map[string]hubtest.TokenInfo{hubTestToken: {User: "alice", Role: "write"}},
		Now:    f.clock.Now,
	})
	t.Cleanup(f.srv.Close)
	c, err := hfhub.NewClient(&hfhub.Options{
		Endpoint: f.srv.URL(), Token: hubTestToken,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }, // retries without real waits
	})
	require.NoError(t, err)
	f.client = c
	return f
}

func (f *hubFixture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(syncWriter{f.logMu, f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (f *hubFixture) openHub(t *testing.T, shard string, opts HubOptions) (*Dir[*image.Gray], *Hub[*image.Gray]) {
	t.Helper()
	d, err := NewDir(f.root, GrayPNG(), &DirOptions{Shard: shard, Now: f.clock.Now})
	require.NoError(t, err)
	if opts.Repo == "" {
		opts.Repo = hubTestRepo
	}
	if opts.Now == nil {
		opts.Now = f.clock.Now
	}
	if opts.Logger == nil {
		opts.Logger = f.logger()
	}
	if opts.PushTimeout == 0 {
		opts.PushTimeout = time.Minute
	}
	h, err := NewHub(f.client, d, &opts)
	require.NoError(t, err)
	return d, h
}

// hubTestCtx bounds a test's Hub calls, so that a hang fails the test with
// a clear message instead of running into the package timeout.
func hubTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// flushUntilDone retries Flush, as a caller would while the Hub misbehaves.
func flushUntilDone(t *testing.T, h *Hub[*image.Gray], tries int) {
	t.Helper()
	var err error
	for range tries {
		if err = h.Flush(hubTestCtx(t)); err == nil {
			return
		}
	}
	require.NoError(t, err, "Flush kept failing")
}

// checkHubDataset downloads the fake Hub's files and checks them: the
// ImageFolder rules, and every wanted ID present exactly once.
func (f *hubFixture) checkHubDataset(t *testing.T, wantIDs []string) {
	t.Helper()
	files := f.srv.Files("dataset", hubTestRepo, "main")
	mfs := fstest.MapFS{}
	for p, b := range files {
		mfs[p] = &fstest.MapFile{Data: b}
	}
	sum, err := CheckImageFolder(mfs)
	require.NoError(t, err)
	assert.Equal(t, len(wantIDs), sum.Rows)
	seen := map[string]int{}
	for p, b := range files {
		if filepath.Base(p) != MetadataFile {
			continue
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var row MetadataRow
			require.NoError(t, json.Unmarshal([]byte(line), &row))
			seen[row.ID]++
			img, ok := files[filepath.Dir(p)+"/"+row.FileName]
			require.True(t, ok, "image of %s", row.ID)
			_, err := GrayPNG().Decode(img)
			require.NoError(t, err)
		}
	}
	for _, id := range wantIDs {
		assert.Equal(t, 1, seen[id], "sample %s", id)
	}
	assert.Len(t, seen, len(wantIDs))
	assert.Contains(t, string(files["README.md"]), "configs:")
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, testSample(i).ID)
	}
	return out
}

func newCommits(f *hubFixture) int {
	n := 0
	for _, c := range f.srv.Commits("dataset", hubTestRepo) {
		if c.Parent != "" { // not the repo's initial .gitattributes commit
			n++
		}
	}
	return n
}

func TestHubSimulatedHour(t *testing.T) {
	f := newHubFixture(t)
	_, h := f.openHub(t, "w1", HubOptions{})
	ctx := hubTestCtx(t)
	const n, writers = 1000, 10
	var wg sync.WaitGroup
	for g := range writers { // several people flag at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += writers {
				assert.NoError(t, h.Flag(ctx, testSample(i)))
				f.clock.Advance(3600 * time.Millisecond) // 1,000 flags over one hour
			}
		}()
	}
	wg.Wait()
	require.NoError(t, h.Flush(ctx))
	assert.Zero(t, h.Pending())
	require.NoError(t, h.Close())

	commits := newCommits(f)
	t.Logf("%d flags over a simulated hour → %d commits", n, commits)
	assert.Equal(t, commits, h.Commits())
	assert.GreaterOrEqual(t, commits, 2)
	assert.LessOrEqual(t, commits, 25, "a handful of batched commits")
	assert.LessOrEqual(t, commits, 100, "within MaxCommitsPerHour")
	f.checkHubDataset(t, ids(0, n))
	for _, r := range f.srv.RequestsFor(hubtest.OpLFSPut) {
		assert.Empty(t, r.Header.Get("Authorization"))
	}
}

func TestHubSurvivesAFlakyHub(t *testing.T) {
	f := newHubFixture(t)
	_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 25})
	f.srv.InjectFault(hubtest.Fault{Op: hubtest.OpCommit, ApplyThenFail: true, Status: 500, Probability: 0.3, Seed: 1})
	f.srv.InjectFault(hubtest.Fault{Status: 503, Probability: 0.3, Seed: 2})
	ctx := hubTestCtx(t)
	const n, writers = 300, 6
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += writers {
				assert.NoError(t, h.Flag(ctx, testSample(i)), "Hub errors never fail Flag")
				f.clock.Advance(5 * time.Second)
			}
		}()
	}
	wg.Wait()
	flushUntilDone(t, h, 50)
	f.srv.ClearFaults()
	require.NoError(t, h.Close())
	f.checkHubDataset(t, ids(0, n))
	assert.Greater(t, len(f.srv.Requests()), 0)
}

func TestHubDownForAWhile(t *testing.T) {
	f := newHubFixture(t)
	_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 10})
	ctx := hubTestCtx(t)
	require.NoError(t, h.Flag(ctx, testSample(0)))
	require.NoError(t, h.Flush(ctx))
	f.srv.SetDown(true)
	for i := 1; i < 60; i++ {
		require.NoError(t, h.Flag(ctx, testSample(i)))
		f.clock.Advance(10 * time.Second)
	}
	err := h.Flush(ctx)
	var he *hfhub.HubError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 503, he.Status)
	assert.Equal(t, 59, h.Pending(), "nothing lost while down")
	f.clock.Advance(10 * time.Minute)
	f.srv.SetDown(false)
	require.NoError(t, h.Flush(ctx))
	assert.Zero(t, h.Pending())
	require.NoError(t, h.Close())
	f.checkHubDataset(t, ids(0, 60))
}

func TestHubRestartPushesPending(t *testing.T) {
	f := newHubFixture(t)
	d1, h1 := f.openHub(t, "", HubOptions{CloseTimeout: 2 * time.Second})
	ctx := hubTestCtx(t)
	f.srv.SetDown(true)
	for i := range 30 {
		require.NoError(t, h1.Flag(ctx, testSample(i)))
	}
	assert.Equal(t, 30, h1.Pending())
	err := h1.Close()
	require.Error(t, err, "the final push fails while the Hub is down")
	assert.Contains(t, err.Error(), "30 samples stay on local disk")
	assert.ErrorIs(t, h1.Flag(ctx, testSample(99)), ErrClosed)
	require.NoError(t, d1.Close())
	assert.Zero(t, newCommits(f))

	// A new process: a new shard, and the old one's backlog goes out first.
	f.srv.SetDown(false)
	d2, h2 := f.openHub(t, "", HubOptions{})
	assert.NotEqual(t, d1.Shard(), d2.Shard())
	for i := 30; i < 40; i++ {
		require.NoError(t, h2.Flag(ctx, testSample(i)))
	}
	require.NoError(t, h2.Flush(ctx))
	require.NoError(t, h2.Close())
	require.NoError(t, d2.Close())
	f.checkHubDataset(t, ids(0, 40))
	files := f.srv.Files("dataset", hubTestRepo, "main")
	assert.Contains(t, files, "data/"+d1.Shard()+"/metadata.jsonl")
	assert.Contains(t, files, "data/"+d2.Shard()+"/metadata.jsonl")
}

func TestHubCrashBetweenCommitAndStateWrite(t *testing.T) {
	f := newHubFixture(t)
	d, h := f.openHub(t, "w1", HubOptions{})
	ctx := hubTestCtx(t)
	for i := range 20 {
		require.NoError(t, h.Flag(ctx, testSample(i)))
	}
	require.NoError(t, h.Flush(ctx))
	stale, err := os.ReadFile(h.state)
	require.NoError(t, err)
	for i := 20; i < 30; i++ {
		require.NoError(t, h.Flag(ctx, testSample(i)))
	}
	require.NoError(t, h.Flush(ctx))
	require.NoError(t, h.Close())
	require.NoError(t, d.Close())
	commits := newCommits(f)
	puts := len(f.srv.RequestsFor(hubtest.OpLFSPut))

	// As if the process died after the second commit, before its state write.
	require.NoError(t, os.WriteFile(h.state, stale, 0o644))
	d2, h2 := f.openHub(t, "w1", HubOptions{})
	assert.Equal(t, 10, h2.Pending())
	require.NoError(t, h2.Flush(ctx))
	assert.Zero(t, h2.Pending())
	require.NoError(t, h2.Close())
	require.NoError(t, d2.Close())
	assert.Equal(t, commits, newCommits(f), "the re-push was a no-op: no new commit")
	assert.Len(t, f.srv.RequestsFor(hubtest.OpLFSPut), puts, "no image uploaded twice")
	f.checkHubDataset(t, ids(0, 30))
}

func TestHubHourlyCommitBudget(t *testing.T) {
	f := newHubFixture(t)
	_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 1, MaxCommitsPerHour: 3, Interval: time.Minute})
	ctx := hubTestCtx(t)
	var limited error
	for i := range 6 {
		require.NoError(t, h.Flag(ctx, testSample(i)))
		if err := h.Flush(ctx); err != nil {
			limited = err
		}
		f.clock.Advance(time.Minute)
	}
	require.ErrorIs(t, limited, ErrHubCommitLimit)
	assert.Equal(t, 3, h.Commits())
	assert.Equal(t, 3, h.Pending())
	f.clock.Advance(time.Hour)
	require.NoError(t, h.Flush(ctx))
	assert.Zero(t, h.Pending())
	require.NoError(t, h.Close())
	// No sliding hour ever held more than 3 commits.
	var times []time.Time
	for _, c := range f.srv.Commits("dataset", hubTestRepo) {
		if c.Parent != "" {
			times = append(times, c.Time)
		}
	}
	for i := range times {
		inHour := 0
		for _, u := range times[i:] {
			if u.Sub(times[i]) < time.Hour {
				inHour++
			}
		}
		assert.LessOrEqual(t, inHour, 3)
	}
	f.checkHubDataset(t, ids(0, 6))
}

func TestHubKeepsAnExistingCard(t *testing.T) {
	f := newHubFixture(t)
	require.NoError(t, f.srv.CreateRepo("dataset", hubTestRepo, false))
	custom := "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: \"data/**\"\n---\n# Our own card\n"
	_, err := f.srv.Seed("dataset", hubTestRepo, "main", "card", map[string][]byte{"README.md": []byte(custom)})
	require.NoError(t, err)
	_, h := f.openHub(t, "w1", HubOptions{})
	ctx := hubTestCtx(t)
	require.NoError(t, h.Flag(ctx, testSample(1)))
	require.NoError(t, h.Flag(ctx, testSample(1)), "idempotent")
	assert.Equal(t, 1, h.Pending())
	require.NoError(t, h.Flush(ctx))
	require.NoError(t, h.Close())
	card, ok := f.srv.File("dataset", hubTestRepo, "main", "README.md")
	require.True(t, ok)
	assert.Equal(t, custom, string(card))
	f.checkHubDataset(t, ids(1, 2))
}

func TestHubConcurrentFlags(t *testing.T) {
	f := newHubFixture(t)
	_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 7})
	ctx := hubTestCtx(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				assert.NoError(t, h.Flag(ctx, testSample(g*25+i)))
				f.clock.Advance(time.Second)
			}
		}()
	}
	// Flushes race with the flags.
	for range 5 {
		_ = h.Flush(ctx)
	}
	wg.Wait()
	require.NoError(t, h.Flush(ctx))
	require.NoError(t, h.Close())
	f.checkHubDataset(t, ids(0, 200))
}

func TestNewHubRejectsBadInput(t *testing.T) {
	f := newHubFixture(t)
	d, err := NewDir(f.root, GrayPNG(), nil)
	require.NoError(t, err)
	defer d.Close()
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", filepath.Join(t.TempDir(), "none"))
	noToken, err := hfhub.NewClient(&hfhub.Options{Endpoint: f.srv.URL()})
	require.NoError(t, err)
	tests := []struct {
		name   string
		client *hfhub.Client
		dir    *Dir[*image.Gray]
		opts   *HubOptions
		want   string
	}{
		{"nil client", nil, d, &HubOptions{Repo: hubTestRepo}, "client is nil"},
		{"nil dir", f.client, nil, &HubOptions{Repo: hubTestRepo}, "dir is nil"},
		{"nil options", f.client, d, nil, "Repo is empty"},
		{"bad repo id", f.client, d, &HubOptions{Repo: "alice/bad repo"}, "invalid repo id"},
		{"no namespace", f.client, d, &HubOptions{Repo: "flags"}, "owner/name"},
		{"no token", noToken, d, &HubOptions{Repo: hubTestRepo}, "HF_TOKEN"},
		{"negative batch", f.client, d, &HubOptions{Repo: hubTestRepo, MaxBatch: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHub(tt.client, tt.dir, tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	assert.Empty(t, f.srv.Requests(), "bad input contacts nobody")
}

func TestHubNeverLogsTheToken(t *testing.T) {
	f := newHubFixture(t)
	_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 1})
	f.srv.InjectFault(hubtest.Fault{Status: 500, Times: 20})
	ctx := hubTestCtx(t)
	for i := range 5 {
		require.NoError(t, h.Flag(ctx, testSample(i)))
	}
	err := h.Flush(ctx)
	if err != nil {
		assert.NotContains(t, err.Error(), "SECRET")
	}
	flushUntilDone(t, h, 10)
	require.NoError(t, h.Close())
	f.logMu.Lock()
	logs := f.logs.String()
	f.logMu.Unlock()
	assert.Contains(t, logs, "pushed")
	assert.NotContains(t, logs, "SECRET")
	assert.False(t, errors.Is(err, ErrClosed))
}

// A Hub in front of a local Dir: flags are acknowledged once on local disk,
// and pushed to a Hub dataset in batched commits (here forced by Flush).
func ExampleHub() {
	srv := hubtest.NewServer(nil) // stands in for https://huggingface.co
	defer srv.Close()
	root, err := os.MkdirTemp("", "flags")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)

	client, err := hfhub.NewClient(&hfhub.Options{Endpoint: srv.URL(), Token: hubtest.DefaultToken})
	if err != nil {
		panic(err)
	}
	dir, err := NewDir(root, GrayPNG(), &DirOptions{Shard: "server-1"})
	if err != nil {
		panic(err)
	}
	defer dir.Close()
	hub, err := NewHub(client, dir, &HubOptions{Repo: "hubtest/mnist-adversarial", MaxBatch: 100})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := hub.Flag(ctx, testSample(i)); err != nil {
			panic(err)
		}
	}
	if err := hub.Flush(ctx); err != nil {
		panic(err)
	}
	if err := hub.Close(); err != nil {
		panic(err)
	}
	meta, _ := srv.File("dataset", "hubtest/mnist-adversarial", "main", "data/server-1/metadata.jsonl")
	fmt.Println("pending:", hub.Pending(), "commits:", hub.Commits(), "rows on the Hub:", strings.Count(string(meta), "\n"))
	// Output:
	// pending: 0 commits: 1 rows on the Hub: 3
}
