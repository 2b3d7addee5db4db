package flag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

// The Hub tests run in a synctest bubble: the scheduler's timers, the
// client's retry waits and the fake Hub's clock all use the bubble's fake
// time, and the fake Hub is served in process (no sockets), so that time
// advances exactly when every goroutine waits. A goroutine the Hub leaks
// makes synctest.Test fail.

const (
	hubTestToken = "hf_flaghub_SECRET_token"
	hubTestRepo  = "alice/flags"
)

var hubTestID = hfhub.RepoID{Namespace: "alice", Name: "flags"}

// hookTransport is the fake Hub's in-process transport with a hook: before,
// if set, runs first (to change the Hub under a request).
type hookTransport struct {
	rt     http.RoundTripper
	mu     sync.Mutex
	before func(r *http.Request)
}

func (t *hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	before := t.before
	t.mu.Unlock()
	if before != nil {
		before(r)
	}
	return t.rt.RoundTrip(r)
}

func (t *hookTransport) setBefore(fn func(r *http.Request)) {
	t.mu.Lock()
	t.before = fn
	t.mu.Unlock()
}

type hubFixture struct {
	srv    *hubtest.Server
	tr     *hookTransport
	client *hfhub.Client
	root   string
	logMu  sync.Mutex
	logs   bytes.Buffer
}

func (f *hubFixture) Write(p []byte) (int, error) {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.logs.Write(p)
}

func (f *hubFixture) logText() string {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.logs.String()
}

// newHubFixture must be called inside the bubble.
func newHubFixture(t *testing.T) *hubFixture {
	t.Helper()
	f := &hubFixture{root: t.TempDir()}
	f.srv = hubtest.New(&hubtest.Options{
		Tokens: map[string]hubtest.TokenInfo{hubTestToken: {User: "alice", Role: "write"}},
	})
	f.tr = &hookTransport{rt: f.srv.Transport()}
	c, err := hfhub.NewClient(&hfhub.Options{
		Endpoint: "http://hub.test", Token: hubTestToken,
		HTTPClient: &http.Client{Transport: f.tr},
	})
	require.NoError(t, err)
	f.client = c
	return f
}

func (f *hubFixture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openHub opens a Dir on the fixture's root and a Hub over it, and waits
// until the Hub's start-up work is done; both are closed at the end of the
// test (Close is idempotent). It runs inside the bubble.
func (f *hubFixture) openHub(t *testing.T, shard string, opts HubOptions) (*Dir[*image.Gray], *Hub[*image.Gray]) {
	t.Helper()
	d, err := NewDir(f.root, GrayPNG(), &DirOptions{Shard: shard, fs: noSyncFS{}})
	require.NoError(t, err)
	if opts.Logger == nil {
		opts.Logger = f.logger()
	}
	h, err := NewHub(f.client, hubTestID, d, &opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close(); _ = d.Close() })
	synctest.Wait() // the start-up check of the push record (and any push of a backlog) is done
	return d, h
}

// deleteRepo deletes the dataset repo through the Hub's API, as its owner
// would on the website.
func (f *hubFixture) deleteRepo(t *testing.T) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, "http://hub.test/api/repos/delete",
		strings.NewReader(`{"name":"flags","organization":"alice","type":"dataset"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+hubTestToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.tr.RoundTrip(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// checkHubDataset checks the fake Hub's files: the ImageFolder rules, and
// every wanted ID present exactly once.
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

func newCommits(f *hubFixture) []hubtest.Commit {
	var out []hubtest.Commit
	for _, c := range f.srv.Commits("dataset", hubTestRepo) {
		if c.Parent != "" { // not the repo's initial .gitattributes commit
			out = append(out, c)
		}
	}
	return out
}

func TestHubSimulatedHour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h := f.openHub(t, "w1", HubOptions{})
		ctx := t.Context()
		const n, writers = 400, 10
		var wg sync.WaitGroup
		for g := range writers { // several people flag at once, 400 flags over one hour
			wg.Go(func() {
				for i := g; i < n; i += writers {
					assert.NoError(t, h.Flag(ctx, testSample(i)))
					time.Sleep(90 * time.Second)
				}
			})
		}
		wg.Wait()
		require.NoError(t, h.Flush(ctx))
		assert.Zero(t, h.Pending())
		require.NoError(t, h.Close())

		commits := newCommits(f)
		t.Logf("%d flags over a simulated hour → %d commits", n, len(commits))
		assert.Equal(t, len(commits), h.Commits())
		// Interval 5 min over 60 min → 12 timed pushes; MaxBatch 100 may add a few.
		assert.GreaterOrEqual(t, len(commits), 10)
		assert.LessOrEqual(t, len(commits), 22, "a handful of batched commits")
		for i := 1; i < len(commits); i++ {
			assert.GreaterOrEqual(t, commits[i].Time.Sub(commits[i-1].Time), time.Duration(0))
		}
		f.checkHubDataset(t, ids(0, n))
		for _, r := range f.srv.RequestsFor(hubtest.OpLFSPut) {
			assert.Empty(t, r.Header.Get("Authorization"))
		}
	})
}

func TestHubPushesEveryIntervalOrMaxBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h := f.openHub(t, "w1", HubOptions{Interval: time.Minute, MaxBatch: 5})
		ctx := t.Context()
		require.NoError(t, h.Flag(ctx, testSample(0)))
		time.Sleep(59 * time.Second)
		synctest.Wait()
		assert.Empty(t, newCommits(f), "one flag waits for the interval")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Len(t, newCommits(f), 1, "pushed once the interval passed")

		for i := 1; i <= 5; i++ {
			require.NoError(t, h.Flag(ctx, testSample(i)))
		}
		synctest.Wait()
		assert.Len(t, newCommits(f), 2, "MaxBatch new samples push at once")
		assert.Zero(t, h.Pending())
		require.NoError(t, h.Close())
		f.checkHubDataset(t, ids(0, 6))
	})
}

func TestHubSurvivesAFlakyHub(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 25})
		f.srv.InjectFault(hubtest.Fault{Op: hubtest.OpCommit, ApplyThenFail: true, Status: 500, Probability: 0.3, Seed: 1})
		f.srv.InjectFault(hubtest.Fault{Status: 503, Probability: 0.3, Seed: 2})
		ctx := t.Context()
		const n, writers = 300, 6
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := g; i < n; i += writers {
					assert.NoError(t, h.Flag(ctx, testSample(i)), "Hub errors never fail Flag")
					time.Sleep(5 * time.Second)
				}
			})
		}
		wg.Wait()
		var err error
		for range 50 {
			if err = h.Flush(ctx); err == nil {
				break
			}
		}
		require.NoError(t, err, "Flush kept failing")
		f.srv.ClearFaults()
		require.NoError(t, h.Close())
		f.checkHubDataset(t, ids(0, n))
	})
}

func TestHubDownForAWhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 10})
		ctx := t.Context()
		require.NoError(t, h.Flag(ctx, testSample(0)))
		require.NoError(t, h.Flush(ctx))
		f.srv.SetDown(true)
		for i := 1; i < 60; i++ {
			require.NoError(t, h.Flag(ctx, testSample(i)))
			time.Sleep(10 * time.Second)
		}
		err := h.Flush(ctx)
		var he *hfhub.HubError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, 503, he.Status)
		assert.Equal(t, 59, h.Pending(), "nothing lost while down")
		f.srv.SetDown(false)
		time.Sleep(10 * time.Minute) // the scheduler's backoff ends; it pushes by itself
		synctest.Wait()
		assert.Zero(t, h.Pending())
		require.NoError(t, h.Close())
		f.checkHubDataset(t, ids(0, 60))
	})
}

func TestHubRestartPushesPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		d1, h1 := f.openHub(t, "", HubOptions{CloseTimeout: 2 * time.Second})
		ctx := t.Context()
		f.srv.SetDown(true)
		for i := range 30 {
			require.NoError(t, h1.Flag(ctx, testSample(i)))
		}
		assert.Equal(t, 30, h1.Pending())
		err := h1.Close()
		var pe *PendingError
		require.ErrorAs(t, err, &pe, "the final push fails while the Hub is down")
		assert.Equal(t, 30, pe.Samples)
		assert.Equal(t, f.root, pe.Where)
		assert.Contains(t, err.Error(), "30 samples not delivered yet; they wait in "+f.root)
		assert.ErrorIs(t, h1.Flag(ctx, testSample(99)), ErrClosed)
		require.NoError(t, d1.Close())
		assert.Empty(t, newCommits(f))

		// A new process: a new shard, and the old one's backlog goes out first.
		f.srv.SetDown(false)
		d2, h2 := f.openHub(t, "", HubOptions{})
		assert.NotEqual(t, d1.Shard(), d2.Shard())
		for i := 30; i < 40; i++ {
			require.NoError(t, h2.Flag(ctx, testSample(i)))
		}
		require.NoError(t, h2.Flush(ctx))
		require.NoError(t, h2.Close())
		f.checkHubDataset(t, ids(0, 40))
		files := f.srv.Files("dataset", hubTestRepo, "main")
		assert.Contains(t, files, "data/"+d1.Shard()+"/metadata.jsonl")
		assert.Contains(t, files, "data/"+d2.Shard()+"/metadata.jsonl")
	})
}

func TestHubCrashBetweenCommitAndStateWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		d, h := f.openHub(t, "w1", HubOptions{})
		ctx := t.Context()
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
		commits := len(newCommits(f))
		puts := len(f.srv.RequestsFor(hubtest.OpLFSPut))

		// As if the process died after the second commit, before its state write.
		require.NoError(t, os.WriteFile(h.state, stale, 0o644))
		_, h2 := f.openHub(t, "w1", HubOptions{}) // the record's 10 missing rows go out at start
		assert.Contains(t, f.logText(), "samples=10", "the 10 rows the record lacks were pushed again")
		require.NoError(t, h2.Flush(ctx))
		assert.Zero(t, h2.Pending())
		require.NoError(t, h2.Close())
		assert.Len(t, newCommits(f), commits, "the re-push was a no-op: no new commit")
		assert.Len(t, f.srv.RequestsFor(hubtest.OpLFSPut), puts, "no image uploaded twice")
		f.checkHubDataset(t, ids(0, 30))
	})
}

func TestHubHourlyCommitBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 1, MaxCommitsPerHour: 3, Interval: time.Minute})
		ctx := t.Context()
		var limited error
		for i := range 6 {
			require.NoError(t, h.Flag(ctx, testSample(i)))
			if err := h.Flush(ctx); err != nil {
				limited = err
			}
			time.Sleep(time.Minute)
		}
		require.ErrorIs(t, limited, ErrHubCommitLimit)
		assert.Equal(t, 3, h.Commits())
		assert.Equal(t, 3, h.Pending())
		time.Sleep(time.Hour) // the scheduler pushes the rest when the budget allows
		synctest.Wait()
		assert.Zero(t, h.Pending())
		require.NoError(t, h.Close())
		// No sliding hour ever held more than 3 commits.
		commits := newCommits(f)
		for i := range commits {
			inHour := 0
			for _, u := range commits[i:] {
				if u.Time.Sub(commits[i].Time) < time.Hour {
					inHour++
				}
			}
			assert.LessOrEqual(t, inHour, 3)
		}
		f.checkHubDataset(t, ids(0, 6))
	})
}

func TestHubKeepsAnExistingCard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		require.NoError(t, f.srv.CreateRepo("dataset", hubTestRepo, false))
		custom := "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: \"data/**\"\n---\n# Our own card\n"
		_, err := f.srv.Seed("dataset", hubTestRepo, "main", "card", map[string][]byte{"README.md": []byte(custom)})
		require.NoError(t, err)
		_, h := f.openHub(t, "w1", HubOptions{})
		ctx := t.Context()
		require.NoError(t, h.Flag(ctx, testSample(1)))
		require.NoError(t, h.Flag(ctx, testSample(1)), "idempotent")
		assert.Equal(t, 1, h.Pending(), "a sample is counted once")
		require.NoError(t, h.Flush(ctx))
		require.NoError(t, h.Close())
		card, ok := f.srv.File("dataset", hubTestRepo, "main", "README.md")
		require.True(t, ok)
		assert.Equal(t, custom, string(card))
		f.checkHubDataset(t, ids(1, 2))
	})
}

func TestHubSeesFlagsMadeOnTheDir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		d, h := f.openHub(t, "w1", HubOptions{})
		ctx := t.Context()
		require.NoError(t, d.Flag(ctx, testSample(1)), "flagged on the Dir, not through the Hub")
		require.NoError(t, h.Flag(ctx, testSample(2)))
		assert.Equal(t, 2, h.Pending())
		require.NoError(t, h.Flush(ctx))
		require.NoError(t, h.Close())
		f.checkHubDataset(t, ids(1, 3))
	})
}

func TestHubConcurrentFlags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 7})
		ctx := t.Context()
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 25 {
					assert.NoError(t, h.Flag(ctx, testSample(g*25+i)))
					assert.NoError(t, h.Flag(ctx, testSample((g*25+i+1)%200)), "a concurrent re-flag is absorbed")
					time.Sleep(time.Second)
				}
			})
		}
		for range 5 { // flushes race with the flags
			_ = h.Flush(ctx)
		}
		wg.Wait()
		require.NoError(t, h.Flush(ctx))
		require.NoError(t, h.Close())
		f.checkHubDataset(t, ids(0, 200))
	})
}

func TestNewHubRejectsBadInput(t *testing.T) {
	{
		f := newHubFixture(t)
		d, err := NewDir(f.root, GrayPNG(), nil)
		require.NoError(t, err)
		defer d.Close()
		t.Setenv("HF_TOKEN", "")
		t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
		t.Setenv("HF_TOKEN_PATH", filepath.Join(t.TempDir(), "none"))
		noToken, err := hfhub.NewClient(&hfhub.Options{Endpoint: "http://hub.test", HTTPClient: &http.Client{Transport: f.tr}})
		require.NoError(t, err)
		tests := []struct {
			name   string
			client *hfhub.Client
			id     hfhub.RepoID
			dir    *Dir[*image.Gray]
			opts   *HubOptions
			want   string
		}{
			{"nil client", nil, hubTestID, d, nil, "client is nil"},
			{"nil dir", f.client, hubTestID, nil, nil, "dir is nil"},
			{"bad repo id", f.client, hfhub.RepoID{Namespace: "alice", Name: "bad repo"}, d, nil, "invalid repo id"},
			{"no namespace", f.client, hfhub.RepoID{Name: "flags"}, d, nil, "owner/name"},
			{"no token", noToken, hubTestID, d, nil, "HF_TOKEN"},
			{"negative batch", f.client, hubTestID, d, &HubOptions{MaxBatch: -1}, "negative"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := NewHub(tt.client, tt.id, tt.dir, tt.opts)
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.want)
			})
		}
		assert.Empty(t, f.srv.Requests(), "bad input contacts nobody")
	}
}

func TestHubNeverLogsTheToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h := f.openHub(t, "w1", HubOptions{MaxBatch: 1})
		f.srv.InjectFault(hubtest.Fault{Status: 500, Times: 20})
		ctx := t.Context()
		for i := range 5 {
			require.NoError(t, h.Flag(ctx, testSample(i)))
		}
		var err error
		for range 50 { // the client retries too; 20 failures end within a few Flushes
			if err = h.Flush(ctx); err == nil {
				break
			}
			assert.NotContains(t, err.Error(), "SECRET")
		}
		require.NoError(t, err)
		require.NoError(t, h.Close())
		logs := f.logText()
		assert.Contains(t, logs, "pushed")
		assert.NotContains(t, logs, "SECRET")
	})
}

// Local knowledge of remote state goes stale: the dataset was deleted and
// created again while the app was down. The restarted app must push all 4
// samples and the card, not only its new shard, and say so in the log.
func TestStaleRemoteState_DatasetDeletedAndCreatedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		ctx := t.Context()
		d1, h1 := f.openHub(t, "", HubOptions{})
		require.NoError(t, h1.Flag(ctx, testSample(0)))
		require.NoError(t, h1.Flag(ctx, testSample(1)))
		require.NoError(t, h1.Flush(ctx))
		require.NoError(t, h1.Close())
		require.NoError(t, d1.Close())
		f.checkHubDataset(t, ids(0, 2))

		f.deleteRepo(t)
		require.NoError(t, f.srv.CreateRepo("dataset", hubTestRepo, false))

		_, h2 := f.openHub(t, "", HubOptions{})
		require.NoError(t, h2.Flag(ctx, testSample(2)))
		require.NoError(t, h2.Flag(ctx, testSample(3)))
		require.NoError(t, h2.Flush(ctx))
		require.NoError(t, h2.Close())
		f.checkHubDataset(t, ids(0, 4))
		logs := f.logText()
		assert.Contains(t, logs, "the Hub lacks samples the push record says were pushed")
		assert.Contains(t, logs, "missing=2")
		assert.Contains(t, logs, "dataset card recorded as pushed is missing")
	})
}

// The same kind while running: the repo is deleted and created again under
// a running Hub; its next push notices the foreign head and re-pushes.
func TestStaleRemoteState_RepoRecreatedWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		ctx := t.Context()
		d, h := f.openHub(t, "w1", HubOptions{})
		require.NoError(t, h.Flag(ctx, testSample(0)))
		require.NoError(t, h.Flush(ctx))
		f.deleteRepo(t)
		require.NoError(t, f.srv.CreateRepo("dataset", hubTestRepo, false))
		require.NoError(t, h.Flag(ctx, testSample(1)))
		require.NoError(t, h.Flush(ctx))
		require.NoError(t, h.Close())
		require.NoError(t, d.Close())
		f.checkHubDataset(t, ids(0, 2))
		assert.Contains(t, f.logText(), "missing=1")

		// And with the repo simply gone (not created again), the Hub creates it.
		f.deleteRepo(t)
		_, h2 := f.openHub(t, "w1", HubOptions{})
		require.NoError(t, h2.Flush(ctx))
		require.NoError(t, h2.Close())
		f.checkHubDataset(t, ids(0, 2))
	})
}

// A conflict the client resolved is not an error: two writers race to add
// the dataset card; the loser's commit gets 412, it checks again and pushes
// without the card. Flush and Close return nil and nothing is logged at
// error level.
func TestResolvedConflict_CardRaceIsNotAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		ctx := t.Context()
		other := "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: \"data/**\"\n---\n# The other writer's card\n"
		var once sync.Once
		f.tr.setBefore(func(r *http.Request) {
			if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/commit/") {
				once.Do(func() { // the other writer commits its card first
					_, err := f.srv.Seed("dataset", hubTestRepo, "main", "card", map[string][]byte{"README.md": []byte(other)})
					assert.NoError(t, err)
				})
			}
		})
		_, h := f.openHub(t, "w1", HubOptions{})
		for i := range 3 {
			require.NoError(t, h.Flag(ctx, testSample(i)))
		}
		require.NoError(t, h.Flush(ctx), "the 412 was resolved by checking again")
		require.NoError(t, h.Close())
		var got412 bool
		for _, r := range f.srv.RequestsFor(hubtest.OpCommit) {
			got412 = got412 || r.Status == http.StatusPreconditionFailed
		}
		assert.True(t, got412, "the race happened")
		card, _ := f.srv.File("dataset", hubTestRepo, "main", "README.md")
		assert.Equal(t, other, string(card), "the other writer's card is kept")
		f.checkHubDataset(t, ids(0, 3))
		logs := f.logText()
		assert.NotContains(t, logs, "level=ERROR")
		assert.NotContains(t, logs, "level=WARN")
		assert.Contains(t, logs, "checked again")
	})
}

// Close reports an error only when data really stays unpushed, and then says
// how many samples and where they wait.
func TestResolvedConflict_CloseErrorsOnlyWhenDataStays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		ctx := t.Context()
		_, h := f.openHub(t, "w1", HubOptions{CloseTimeout: time.Minute})
		require.NoError(t, h.Flag(ctx, testSample(0)))
		// A state write failure after the commit leaves nothing unpushed.
		require.NoError(t, os.MkdirAll(h.state, 0o755)) // the state path is a folder: writes fail
		require.NoError(t, h.Close(), "every sample is on the Hub")
		assert.Contains(t, f.logText(), "cannot save the push record")
		require.NoError(t, os.RemoveAll(h.state))
		f.checkHubDataset(t, ids(0, 1))

		f2 := newHubFixture(t)
		f2.srv.SetDown(true)
		_, h2 := f2.openHub(t, "w2", HubOptions{CloseTimeout: time.Minute})
		for i := range 3 {
			require.NoError(t, h2.Flag(ctx, testSample(i)))
		}
		err := h2.Close()
		var pe *PendingError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, 3, pe.Samples)
		assert.Equal(t, f2.root, pe.Where)
		assert.Equal(t, fmt.Sprintf("flag: hub: 3 samples not delivered yet; they wait in %s and are pushed to dataset alice/flags@main by the next Hub opened on that folder: last error: ", f2.root),
			err.Error()[:strings.Index(err.Error(), "last error: ")+len("last error: ")])
	})
}
