package hfhub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

const (
	writeToken = "hf_test_write_SECRET_1234567890"
	readToken  = "hf_test_read_SECRET_0987654321"
	user       = "alice"
)

// lockedBuffer collects logs from concurrent goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	srv   *hubtest.Server
	c     *hfhub.Client
	logs  *lockedBuffer
	waits *hfhub.WaitRecorder
	id    hfhub.RepoID
}

func newEnv(t *testing.T, opts *hubtest.Options) *env {
	t.Helper()
	var o hubtest.Options
	if opts != nil {
		o = *opts
	}
	if o.Tokens == nil {
		o.Tokens = map[string]hubtest.TokenInfo{
			writeToken: {User: user, Orgs: []string{"acme"}, Role: "write"},
			readToken:  {User: "bob", Role: "read"},
		}
	}
	srv := hubtest.NewServer(&o)
	t.Cleanup(srv.Close)
	e := &env{srv: srv, logs: &lockedBuffer{}, waits: &hfhub.WaitRecorder{}, id: hfhub.RepoID{Namespace: user, Name: "flags"}}
	e.c = e.client(t, writeToken)
	return e
}

func (e *env) client(t *testing.T, token string) *hfhub.Client {
	t.Helper()
	c, err := hfhub.NewClient(&hfhub.Options{
		Endpoint: e.srv.URL(), Token: token, Sleep: e.waits.Sleep,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	return c
}

func (e *env) createDataset(t *testing.T) {
	t.Helper()
	_, err := e.c.Repo(hfhub.Dataset, e.id).Create(context.Background(), nil)
	require.NoError(t, err)
}

func pngLike(seed, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	b := make([]byte, n)
	copy(b, "\x89PNG\r\n\x1a\n")
	for i := 8; i < n; i++ {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func download(t *testing.T, c *hfhub.Client, typ hfhub.RepoType, id hfhub.RepoID, rev, path string) ([]byte, *hfhub.FileInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := c.Repo(typ, id).At(rev).Download(context.Background(), path, &buf)
	require.NoError(t, err, path)
	return buf.Bytes(), info
}

func TestRepoLifecycleAndCommit(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()

	u, err := e.c.WhoAmI(ctx)
	require.NoError(t, err)
	assert.Equal(t, user, u.Name)
	assert.True(t, u.CanWrite())
	_, err = e.c.WhoAmI(ctx)
	require.NoError(t, err)
	assert.Len(t, e.srv.RequestsFor(hubtest.OpWhoami), 1, "whoami is cached")

	url, err := e.c.Repo(hfhub.Dataset, e.id).Create(ctx, &hfhub.CreateRepoOptions{Private: true})
	require.NoError(t, err)
	assert.Equal(t, e.srv.URL()+"/datasets/alice/flags", url)
	_, err = e.c.Repo(hfhub.Dataset, e.id).Create(ctx, nil)
	assert.ErrorIs(t, err, hfhub.ErrConflict)
	url2, err := e.c.Repo(hfhub.Dataset, e.id).Create(ctx, &hfhub.CreateRepoOptions{ExistOK: true})
	require.NoError(t, err)
	assert.Equal(t, url, url2)

	info, err := e.c.Repo(hfhub.Dataset, e.id).Info(ctx)
	require.NoError(t, err)
	assert.True(t, info.Private)
	assert.Len(t, info.SHA, 40)

	img := pngLike(1, 3000)
	meta := []byte(`{"file_name": "a.png", "label": 3}` + "\n")
	card := []byte("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: \"data/**\"\n---\n# flags\n")
	ci, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "first", []hfhub.Operation{
		hfhub.AddBytes("README.md", card),
		hfhub.AddBytes("data/s1/metadata.jsonl", meta),
		hfhub.AddBytes("data/s1/a.png", img),
		hfhub.AddBytes("empty.txt", nil),
	}, &hfhub.CommitOptions{Description: "three files"})
	require.NoError(t, err)
	assert.Len(t, ci.OID, 40)
	assert.Equal(t, e.srv.URL()+"/datasets/alice/flags/commit/"+ci.OID, ci.URL)
	assert.Equal(t, 1, ci.Uploaded, "the png goes to LFS")
	assert.False(t, ci.Empty)
	commits := e.srv.Commits("dataset", "alice/flags")
	assert.Equal(t, "first", commits[len(commits)-1].Summary)
	got, ok := e.srv.File("dataset", "alice/flags", "main", "data/s1/a.png")
	require.True(t, ok)
	assert.Equal(t, img, got)

	// The LFS object was verified with the client's own auth.
	verifies := e.srv.RequestsFor(hubtest.OpLFSVerify)
	require.Len(t, verifies, 1)
	assert.Equal(t, "Bearer "+writeToken, verifies[0].Header.Get("Authorization"))

	// The NDJSON body: header first, base64 regular files, lfsFile lines.
	reqs := e.srv.RequestsFor(hubtest.OpCommit)
	require.Len(t, reqs, 1)
	assert.Equal(t, "application/x-ndjson", reqs[0].Header.Get("Content-Type"))
	lines := strings.Split(strings.TrimSuffix(string(reqs[0].Body), "\n"), "\n")
	require.Len(t, lines, 5)
	var first struct {
		Key   string
		Value map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Equal(t, "header", first.Key)
	assert.Equal(t, "first", first.Value["summary"])
	assert.Contains(t, string(reqs[0].Body), `"key":"lfsFile"`)
	assert.Contains(t, string(reqs[0].Body), `"encoding":"base64"`)

	// Reading back: resolve (regular and LFS redirect), verified.
	b, fi := download(t, e.c, hfhub.Dataset, e.id, "main", "data/s1/a.png")
	assert.Equal(t, img, b)
	assert.True(t, fi.LFS)
	sum := sha256.Sum256(img)
	assert.Equal(t, hex.EncodeToString(sum[:]), fi.SHA256)
	assert.Equal(t, ci.OID, fi.Commit)
	b, fi = download(t, e.c, hfhub.Dataset, e.id, "", "data/s1/metadata.jsonl")
	assert.Equal(t, meta, b)
	assert.False(t, fi.LFS)
	assert.Len(t, fi.GitSHA1, 40)
	dst := filepath.Join(t.TempDir(), "a.png")
	require.NoError(t, e.c.Repo(hfhub.Dataset, e.id).At("main").DownloadFile(ctx, "data/s1/a.png", hfhub.LocalPath(dst)))
	disk, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, img, disk)

	tree, err := e.c.Repo(hfhub.Dataset, e.id).At("main").ListTree(ctx, "", &hfhub.ListTreeOptions{Recursive: true})
	require.NoError(t, err)
	var paths []string
	for _, en := range tree {
		if !en.IsDir() {
			paths = append(paths, en.Path)
		}
		if en.Path == "data/s1/a.png" {
			require.NotNil(t, en.LFS)
			assert.Equal(t, int64(3000), en.Size)
		}
	}
	assert.Subset(t, paths, []string{"README.md", "data/s1/metadata.jsonl", "data/s1/a.png", "empty.txt", ".gitattributes"})
	sub, err := e.c.Repo(hfhub.Dataset, e.id).At("main").ListTree(ctx, "data/s1", nil)
	require.NoError(t, err)
	assert.Len(t, sub, 2)

	// The same content again: no upload, no commit.
	before := len(e.srv.Commits("dataset", "alice/flags"))
	puts := len(e.srv.RequestsFor(hubtest.OpLFSPut))
	ci2, err := e.c.Repo(hfhub.Dataset, e.id).At("main").CreateCommit(ctx, "again", []hfhub.Operation{
		hfhub.AddBytes("data/s1/metadata.jsonl", meta), hfhub.AddBytes("data/s1/a.png", img),
	}, nil)
	require.NoError(t, err)
	assert.True(t, ci2.Empty)
	assert.Equal(t, ci.OID, ci2.OID)
	assert.Equal(t, 2, ci2.Skipped)
	assert.Len(t, e.srv.Commits("dataset", "alice/flags"), before)
	assert.Len(t, e.srv.RequestsFor(hubtest.OpLFSPut), puts)

	// Deletions.
	_, err = e.c.Repo(hfhub.Dataset, e.id).At("main").CreateCommit(ctx, "rm", []hfhub.Operation{hfhub.Delete{Path: "empty.txt"}}, nil)
	require.NoError(t, err)
	_, ok = e.srv.File("dataset", "alice/flags", "main", "empty.txt")
	assert.False(t, ok)
	_, err = e.c.Repo(hfhub.Dataset, e.id).At("main").CreateCommit(ctx, "rm again", []hfhub.Operation{hfhub.Delete{Path: "empty.txt"}}, nil)
	assert.ErrorIs(t, err, hfhub.ErrEntryNotFound)
	_, err = e.c.Repo(hfhub.Dataset, e.id).At("main").CreateCommit(ctx, "rm folder", []hfhub.Operation{hfhub.DeleteFolder{Path: "data/s1"}}, nil)
	require.NoError(t, err)
	_, ok = e.srv.File("dataset", "alice/flags", "main", "data/s1/a.png")
	assert.False(t, ok)
}

func TestErrorsAreTyped(t *testing.T) {
	e := newEnv(t, nil)
	e.createDataset(t)
	ctx := context.Background()
	missing := hfhub.RepoID{Namespace: user, Name: "nope"}
	tests := []struct {
		name string
		call func() error
		want []error
	}{
		{"repo info of a missing repo", func() error {
			_, err := e.c.Repo(hfhub.Dataset, missing).Info(ctx)
			return err
		}, []error{hfhub.ErrNotFound, hfhub.ErrRepoNotFound}},
		{"missing revision", func() error {
			_, err := e.c.Repo(hfhub.Dataset, e.id).At("nobranch").Info(ctx)
			return err
		}, []error{hfhub.ErrNotFound, hfhub.ErrRevisionNotFound}},
		{"missing file", func() error {
			_, err := e.c.Repo(hfhub.Dataset, e.id).At("main").Download(ctx, "nope.txt", &bytes.Buffer{})
			return err
		}, []error{hfhub.ErrNotFound, hfhub.ErrEntryNotFound}},
		{"missing folder in tree", func() error {
			_, err := e.c.Repo(hfhub.Dataset, e.id).At("main").ListTree(ctx, "nope", nil)
			return err
		}, []error{hfhub.ErrNotFound}},
		{"commit to a missing repo", func() error {
			_, err := e.c.Repo(hfhub.Dataset, missing).CreateCommit(ctx, "x", []hfhub.Operation{hfhub.AddBytes("a.txt", []byte("a"))}, nil)
			return err
		}, []error{hfhub.ErrRepoNotFound}},
		{"wrong token", func() error {
			_, err := e.client(t, "hf_wrong_SECRET").WhoAmI(ctx)
			return err
		}, []error{hfhub.ErrUnauthorized}},
		{"read token writes", func() error {
			_, err := e.client(t, readToken).Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "x", []hfhub.Operation{hfhub.AddBytes("a.txt", []byte("a"))}, nil)
			return err
		}, []error{hfhub.ErrForbidden}},
		{"other namespace", func() error {
			_, err := e.c.Repo(hfhub.Dataset, hfhub.RepoID{Namespace: "bob", Name: "x"}).Create(ctx, nil)
			return err
		}, []error{hfhub.ErrForbidden}},
		{"empty summary", func() error {
			_, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "", []hfhub.Operation{hfhub.AddBytes("a.txt", []byte("a"))}, nil)
			return err
		}, []error{hfhub.ErrInvalidOperation}},
		{"bad path", func() error {
			_, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "x", []hfhub.Operation{hfhub.AddBytes("../a.txt", []byte("a"))}, nil)
			return err
		}, []error{hfhub.ErrInvalidPath}},
		{"bad parent", func() error {
			_, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "x", []hfhub.Operation{hfhub.AddBytes("a.txt", []byte("a"))}, &hfhub.CommitOptions{ParentCommit: "xyz"})
			return err
		}, []error{hfhub.ErrInvalidOperation}},
		{"two sources", func() error {
			_, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "x", []hfhub.Operation{hfhub.Add{Path: "a", Data: []byte("a"), File: "/etc/hostname"}}, nil)
			return err
		}, []error{hfhub.ErrInvalidOperation}},
		{"invalid README YAML", func() error {
			_, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "x", []hfhub.Operation{hfhub.AddBytes("README.md", []byte("---\nconfigs: [\n---\n")), hfhub.AddBytes("x.png", pngLike(2, 100))}, nil)
			return err
		}, []error{hfhub.ErrInvalidOperation}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.srv.ResetRequests()
			err := tt.call()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorIs(t, err, w, err.Error())
			}
		})
	}
	// Bad input sent nothing that changes state.
	assert.Empty(t, e.srv.RequestsFor(hubtest.OpLFSPut), "invalid README must fail before any upload")
}

func TestPreuploadBatchesOf256(t *testing.T) {
	e := newEnv(t, nil)
	e.createDataset(t)
	var ops []hfhub.Operation
	for i := range 300 {
		ops = append(ops, hfhub.AddBytes(fmt.Sprintf("data/s/%03d.png", i), pngLike(i, 200)))
	}
	ops = append(ops, hfhub.AddBytes("data/s/metadata.jsonl", []byte("{}\n")))
	ci, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(context.Background(), "300 files", ops, nil)
	require.NoError(t, err)
	assert.Equal(t, 300, ci.Uploaded)
	pre := e.srv.RequestsFor(hubtest.OpPreupload)
	require.Len(t, pre, 2)
	for i, want := range []int{256, 45} {
		var body struct{ Files []json.RawMessage }
		require.NoError(t, json.Unmarshal(pre[i].Body, &body))
		assert.Len(t, body.Files, want)
	}
	batches := e.srv.RequestsFor(hubtest.OpLFSBatch)
	require.Len(t, batches, 2)
	for _, b := range batches {
		var body struct{ Objects []json.RawMessage }
		require.NoError(t, json.Unmarshal(b.Body, &body))
		assert.LessOrEqual(t, len(body.Objects), 256)
	}
	assert.Len(t, e.srv.RequestsFor(hubtest.OpCommit), 1)
	files := e.srv.Files("dataset", "alice/flags", "main")
	assert.Len(t, files, 302) // + .gitattributes
}

func TestMultipartUploadAndResumption(t *testing.T) {
	e := newEnv(t, &hubtest.Options{MultipartThreshold: 1000, ChunkSize: 400})
	e.createDataset(t)
	ctx := context.Background()
	big := pngLike(9, 2500) // 7 parts of ≤400 bytes
	small := pngLike(10, 500)
	e.srv.InjectFault(hubtest.Fault{Op: hubtest.OpLFSPart, Status: 500, Times: 1})
	e.srv.InjectFault(hubtest.Fault{Op: hubtest.OpCommit, Status: 422, Message: "injected refusal", Times: 1})
	_, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "big", []hfhub.Operation{
		hfhub.AddBytes("big.png", big), hfhub.AddBytes("small.png", small),
	}, nil)
	require.Error(t, err, "the commit step was refused")
	assert.Contains(t, err.Error(), "injected refusal")
	assert.Equal(t, []time.Duration{time.Second}, e.waits.Waits(), "the failed part PUT was retried once")
	assert.Len(t, e.srv.RequestsFor(hubtest.OpLFSPart), 8)
	assert.Len(t, e.srv.RequestsFor(hubtest.OpLFSComplete), 1)
	assert.Len(t, e.srv.RequestsFor(hubtest.OpLFSPut), 1)

	// Run again: both objects are stored already, nothing is re-uploaded.
	e.srv.ResetRequests()
	ci, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "big", []hfhub.Operation{
		hfhub.AddBytes("big.png", big), hfhub.AddBytes("small.png", small),
	}, nil)
	require.NoError(t, err)
	assert.Zero(t, ci.Uploaded)
	assert.Empty(t, e.srv.RequestsFor(hubtest.OpLFSPart))
	assert.Empty(t, e.srv.RequestsFor(hubtest.OpLFSPut))
	got, _ := download(t, e.c, hfhub.Dataset, e.id, "main", "big.png")
	assert.Equal(t, big, got)
}

func TestStaleParentCommit(t *testing.T) {
	e := newEnv(t, nil)
	e.createDataset(t)
	ctx := context.Background()
	info, err := e.c.Repo(hfhub.Dataset, e.id).Info(ctx)
	require.NoError(t, err)
	old := info.SHA
	_, err = e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "a", []hfhub.Operation{hfhub.AddBytes("a.txt", []byte("a"))}, &hfhub.CommitOptions{ParentCommit: old[:7]})
	require.NoError(t, err)
	_, err = e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "b", []hfhub.Operation{hfhub.AddBytes("b.txt", []byte("b"))}, &hfhub.CommitOptions{ParentCommit: old})
	require.ErrorIs(t, err, hfhub.ErrPreconditionFailed)
	assert.Contains(t, err.Error(), "The branch was updated")
	_, ok := e.srv.File("dataset", "alice/flags", "main", "b.txt")
	assert.False(t, ok)
}

func TestCommitFailedButApplied(t *testing.T) {
	tests := []struct {
		name      string
		faults    []hubtest.Fault
		parent    bool
		recovered bool
	}{
		{"500 but applied", []hubtest.Fault{{Op: hubtest.OpCommit, ApplyThenFail: true, Status: 500, Times: 1}}, false, true},
		{"502 but applied with parent", []hubtest.Fault{{Op: hubtest.OpCommit, ApplyThenFail: true, Status: 502, Times: 1}}, true, true},
		{"500 but applied, then 412 with parent", []hubtest.Fault{
			{Op: hubtest.OpCommit, ApplyThenFail: true, Status: 500, Times: 1},
			{Op: hubtest.OpPreupload, Status: 503, Times: 6}, // the first re-check fails: outcome unknown, resend
		}, true, true},
		{"500 not applied is retried", []hubtest.Fault{{Op: hubtest.OpCommit, Status: 500, Times: 1}}, false, false},
		{"lost connection, not applied, is retried", []hubtest.Fault{{Op: hubtest.OpCommit, CloseConnection: true, Times: 1}}, false, false},
		{"409 another commit in progress is retried", []hubtest.Fault{{Op: hubtest.OpCommit, Status: 409, Message: "Another commit operation is in progress for this repository. Please try again later.", Times: 2}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.createDataset(t)
			ctx := context.Background()
			info, err := e.c.Repo(hfhub.Dataset, e.id).Info(ctx)
			require.NoError(t, err)
			before := len(e.srv.Commits("dataset", "alice/flags"))
			opts := &hfhub.CommitOptions{}
			if tt.parent {
				opts.ParentCommit = info.SHA
			}
			// Prime the preupload of the first attempt before the faults apply.
			ops := []hfhub.Operation{hfhub.AddBytes("data/x.png", pngLike(3, 300)), hfhub.AddBytes("data/m.jsonl", []byte("{}\n"))}
			e.srv.InjectFault(tt.faults[0])
			if len(tt.faults) > 1 {
				// Arm the preupload fault only after the first preupload passed.
				e.srv.InjectFault(hubtest.Fault{Op: hubtest.OpPreupload, Times: 1})
				for _, f := range tt.faults[1:] {
					e.srv.InjectFault(f)
				}
			}
			ci, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "once", ops, opts)
			require.NoError(t, err)
			commits := e.srv.Commits("dataset", "alice/flags")
			assert.Len(t, commits, before+1, "applied exactly once")
			assert.Equal(t, "once", commits[len(commits)-1].Summary)
			assert.Equal(t, commits[len(commits)-1].OID, ci.OID)
			assert.Equal(t, tt.recovered, ci.Recovered)
			if strings.Contains(tt.name, "412") {
				var statuses []int
				for _, r := range e.srv.RequestsFor(hubtest.OpCommit) {
					statuses = append(statuses, r.Status)
				}
				assert.Equal(t, []int{500, 412}, statuses, "the resent commit hit the parent check")
			}
		})
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, nil)
	e.createDataset(t)
	ctx := context.Background()
	e.srv.InjectFault(hubtest.Fault{Op: hubtest.OpPreupload, Status: 429, Header: http.Header{"Retry-After": {"3"}}, Times: 1})
	e.srv.InjectFault(hubtest.Fault{Op: hubtest.OpLFSBatch, Status: 429, Header: http.Header{"Ratelimit": {`"api";r=0;t=20`}, "Ratelimit-Policy": {`"fixed window";"api";q=1000;w=300`}}, Times: 1})
	_, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "a", []hfhub.Operation{hfhub.AddBytes("a.png", pngLike(1, 100))}, nil)
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{4 * time.Second, 21 * time.Second}, e.waits.Waits())

	// An hour-long wait is not slept inside the client: the caller gets it.
	e.srv.InjectFault(hubtest.Fault{Op: hubtest.OpCommit, Status: 429, Header: http.Header{"Retry-After": {"2400"}}, Message: "You have exceeded the rate limit for repository commits (128 per hour).", Times: 1})
	_, err = e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "b", []hfhub.Operation{hfhub.AddBytes("b.txt", []byte("b"))}, nil)
	require.ErrorIs(t, err, hfhub.ErrRateLimited)
	assert.Equal(t, 2401*time.Second, hfhub.RetryAfterOf(err))
}

func TestCommitLimitOfTheFakeHub(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, &hubtest.Options{CommitsPerHour: 3, Now: clock})
	e.createDataset(t)
	ctx := context.Background()
	var err error
	for i := range 5 {
		_, err = e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "n", []hfhub.Operation{hfhub.AddBytes("n.txt", []byte(fmt.Sprint(i)))}, nil)
		if err != nil {
			break
		}
	}
	require.ErrorIs(t, err, hfhub.ErrRateLimited)
	assert.Greater(t, hfhub.RetryAfterOf(err), time.Duration(0))
}

func TestTreePagination(t *testing.T) {
	e := newEnv(t, &hubtest.Options{PageSize: 5})
	e.createDataset(t)
	var ops []hfhub.Operation
	for i := range 12 {
		ops = append(ops, hfhub.AddBytes(fmt.Sprintf("d/%02d.txt", i), []byte{byte(i)}))
	}
	_, err := e.c.Repo(hfhub.Dataset, e.id).CreateCommit(context.Background(), "12", ops, nil)
	require.NoError(t, err)
	e.srv.ResetRequests()
	tree, err := e.c.Repo(hfhub.Dataset, e.id).At("main").ListTree(context.Background(), "d", nil)
	require.NoError(t, err)
	assert.Len(t, tree, 12)
	assert.Len(t, e.srv.RequestsFor(hubtest.OpTree), 3)
	var names []string
	for _, en := range tree {
		names = append(names, en.Path)
	}
	assert.True(t, sort.StringsAreSorted(names))
}

func TestUploadFolder(t *testing.T) {
	e := newEnv(t, nil)
	e.createDataset(t)
	dir := t.TempDir()
	write := func(rel string, b []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
	write("README.md", []byte("# x\n"))
	for i := range 7 {
		write(fmt.Sprintf("data/s/%d.png", i), pngLike(i, 64))
	}
	write(".git/config", []byte("secret"))
	write(".cache/huggingface/state.json", []byte("{}"))
	ci, err := e.c.Repo(hfhub.Dataset, e.id).UploadFolder(context.Background(), hfhub.LocalPath(dir), &hfhub.UploadFolderOptions{PathInRepo: "sub", MaxFilesPerCommit: 5})
	require.NoError(t, err)
	assert.Equal(t, 7, ci.Uploaded)
	commits := e.srv.Commits("dataset", "alice/flags")
	assert.Equal(t, "Upload folder with advspace (part 2 of 2)", commits[len(commits)-1].Summary)
	files := e.srv.Files("dataset", "alice/flags", "main")
	assert.Contains(t, files, "sub/README.md")
	assert.Contains(t, files, "sub/data/s/6.png")
	for p := range files {
		assert.NotContains(t, p, ".git/")
		assert.NotContains(t, p, ".cache")
	}
	// Single file upload.
	ci, err = e.c.Repo(hfhub.Dataset, e.id).UploadFile(context.Background(), "one/README.md", hfhub.LocalPath(filepath.Join(dir, "README.md")), nil)
	require.NoError(t, err)
	assert.False(t, ci.Empty)
	// Missing and non-folder inputs.
	_, err = e.c.Repo(hfhub.Dataset, e.id).UploadFolder(context.Background(), hfhub.LocalPath(filepath.Join(dir, "nope")), nil)
	assert.ErrorContains(t, err, "no such file")
	_, err = e.c.Repo(hfhub.Dataset, e.id).UploadFolder(context.Background(), hfhub.LocalPath(filepath.Join(dir, "README.md")), nil)
	assert.ErrorContains(t, err, "not a folder")
}

func TestPushModelRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := hfhub.RepoID{Namespace: "acme", Name: "mnist"}
	weights := pngLike(4, 4096)
	files := map[string][]byte{"model.safetensors": weights, "config.json": []byte(`{"model_type":"mnist"}`)}
	ci, err := hfhub.PushModel(ctx, e.c.Repo(hfhub.Model, id), files, nil)
	require.NoError(t, err)
	assert.Contains(t, ci.URL, "/acme/mnist/commit/")
	assert.NotContains(t, ci.URL, "/datasets/")
	got, err := e.c.Repo(hfhub.Model, id).ReadFile(ctx, "model.safetensors")
	require.NoError(t, err)
	assert.Equal(t, weights, got)
	card, ok := e.srv.File("model", "acme/mnist", "main", "README.md")
	require.True(t, ok)
	assert.Contains(t, string(card), "library_name: advspace")
	// Same model again: nothing to do.
	ci, err = hfhub.PushModel(ctx, e.c.Repo(hfhub.Model, id), files, nil)
	require.NoError(t, err)
	assert.True(t, ci.Empty)
	// Bad input.
	_, err = hfhub.PushModel(ctx, e.c.Repo(hfhub.Model, id), map[string][]byte{"config.json": []byte("{}")}, nil)
	assert.ErrorContains(t, err, "safetensors")
	_, err = hfhub.PushModel(ctx, e.c.Repo(hfhub.Model, id), map[string][]byte{"model.safetensors": weights, "config.json": []byte("{")}, nil)
	assert.ErrorContains(t, err, "not valid JSON")
	// From a folder.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), weights[:100], 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{}`), 0o644))
	_, err = hfhub.PushModelDir(ctx, e.c.Repo(hfhub.Model, id), hfhub.LocalPath(dir), nil)
	require.NoError(t, err)
	got, err = e.c.Repo(hfhub.Model, id).At("main").ReadFile(ctx, "model.safetensors")
	require.NoError(t, err)
	assert.Equal(t, weights[:100], got)
}

// TestTokenNeverLeaks forces many failures and checks that the token shows up
// in no error and no log line, and never reaches pre-signed storage URLs.
func TestTokenNeverLeaks(t *testing.T) {
	e := newEnv(t, &hubtest.Options{MultipartThreshold: 1000, ChunkSize: 600})
	e.createDataset(t)
	ctx := context.Background()
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err := e.client(t, writeToken+"x").WhoAmI(ctx)
	collect(err)
	_, err = e.c.Repo(hfhub.Dataset, hfhub.RepoID{Namespace: "x", Name: "y"}).Info(ctx)
	collect(err)
	_, err = e.client(t, readToken).Repo(hfhub.Dataset, hfhub.RepoID{Namespace: user, Name: "z"}).Create(ctx, nil)
	collect(err)
	e.srv.InjectFault(hubtest.Fault{Op: hubtest.OpLFSPut, Status: 503, Times: 6})
	_, err = e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "a", []hfhub.Operation{hfhub.AddBytes("a.png", pngLike(1, 100))}, nil)
	collect(err)
	e.srv.InjectFault(hubtest.Fault{Op: hubtest.OpCommit, Status: 500, Times: 6})
	_, err = e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "b", []hfhub.Operation{hfhub.AddBytes("b.png", pngLike(2, 3000)), hfhub.AddBytes("c.png", pngLike(3, 10))}, nil)
	collect(err)
	_, err = e.c.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "b", []hfhub.Operation{hfhub.AddBytes("b.png", pngLike(2, 3000)), hfhub.AddBytes("c.png", pngLike(3, 10))}, nil)
	require.NoError(t, err)
	_, err = e.c.Repo(hfhub.Dataset, e.id).At("main").Download(ctx, "b.png", &bytes.Buffer{})
	require.NoError(t, err)
	// A dead server: network errors.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	dc, err := hfhub.NewClient(&hfhub.Options{Endpoint: deadURL, Token: writeToken, Sleep: e.waits.Sleep, Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	_, err = dc.Repo(hfhub.Dataset, e.id).CreateCommit(ctx, "a", []hfhub.Operation{hfhub.AddBytes("a.txt", []byte("a"))}, nil)
	collect(err)

	require.Len(t, errs, 6)
	assert.Contains(t, errs[3].Error(), "lfs-upload")
	assert.Contains(t, errs[3].Error(), "<signature redacted>", "pre-signed URLs lose their signature in errors")
	for _, err := range errs {
		assert.NotContains(t, err.Error(), "sig=")
		assert.NotContains(t, err.Error(), "SECRET", err.Error())
		assert.NotContains(t, fmt.Sprintf("%+v", err), "SECRET")
	}
	assert.NotEmpty(t, e.logs.String())
	assert.NotContains(t, e.logs.String(), "SECRET")
	assert.NotContains(t, e.logs.String(), "sig=")
	presigned := 0
	for _, r := range e.srv.Requests() {
		assert.NotContains(t, r.EscapedPath+"?"+r.Query, "SECRET")
		switch r.Op {
		case hubtest.OpLFSPut, hubtest.OpLFSPart, hubtest.OpLFSComplete:
			presigned++
			assert.Empty(t, r.Header.Get("Authorization"), "%s %s got the token", r.Op, r.EscapedPath)
		}
	}
	assert.Greater(t, presigned, 5)
}

// TestDownloadIntegrity serves a file whose announced hash is wrong.
func TestDownloadIntegrity(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		body   string
	}{
		{"wrong git sha1", map[string]string{"ETag": `"0000000000000000000000000000000000000000"`}, "hello"},
		{"wrong sha256", map[string]string{"X-Linked-Etag": `"` + strings.Repeat("a", 64) + `"`}, "hello"},
		{"short body", map[string]string{"X-Linked-Size": "10"}, "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := hfhub.NewClient(&hfhub.Options{Endpoint: srv.URL, Token: "t", MaxRetries: -1})
			require.NoError(t, err)
			dst := filepath.Join(t.TempDir(), "f")
			err = c.Repo(hfhub.Model, hfhub.RepoID{Namespace: "a", Name: "b"}).DownloadFile(context.Background(), "f", hfhub.LocalPath(dst))
			require.ErrorIs(t, err, hfhub.ErrIntegrity)
			_, statErr := os.Stat(dst)
			assert.ErrorIs(t, statErr, os.ErrNotExist, "nothing half-written")
		})
	}
}

// TestConcurrentCommits runs commits to different repos at once (go test -race).
func TestConcurrentCommits(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := hfhub.RepoID{Namespace: user, Name: fmt.Sprintf("r%d", i)}
			if _, err := e.c.Repo(hfhub.Dataset, id).Create(ctx, &hfhub.CreateRepoOptions{ExistOK: true}); err != nil {
				errs <- err
				return
			}
			var ops []hfhub.Operation
			for j := range 20 {
				ops = append(ops, hfhub.AddBytes(fmt.Sprintf("%d.png", j), pngLike(i*100+j, 150)))
			}
			_, err := e.c.Repo(hfhub.Dataset, id).CreateCommit(ctx, "c", ops, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i := range 4 {
		assert.Len(t, e.srv.Files("dataset", fmt.Sprintf("alice/r%d", i), "main"), 21)
	}
}
