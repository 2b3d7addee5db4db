package hubtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommitParseErrors(t *testing.T) {
	s, c := newDatasetHub(t)
	_, err := s.Seed("dataset", "hubtest/d", "main", "seed", map[string][]byte{"keep.txt": []byte("k"), "dir/a.txt": []byte("a")})
	require.NoError(t, err)
	stored := []byte("stored lfs object")
	c.uploadLFS("datasets/hubtest/d", stored)

	hdr := `{"key":"header","value":{"summary":"s","description":""}}`
	line := func(key, value string) string { return `{"key":"` + key + `","value":` + value + `}` }
	bigBinary := bytes.Repeat([]byte{0, 1, 2, 3}, 250_001)   // 1,000,004 bytes, binary
	bigText := bytes.Repeat([]byte("abcdefghij"), 1_000_001) // 10,000,010 bytes, text
	tests := []struct {
		name   string
		ctype  string
		body   string
		status int
		code   string
		msg    string
	}{
		{"wrong content type", "application/json", hdr, 400, "", "application/x-ndjson"},
		{"not json", "", hdr + "\nnot json", 400, "", "line 2"},
		{"no header", "", line("deletedFile", `{"path":"keep.txt"}`), 400, "", "header"},
		{"header not first", "", line("deletedFile", `{"path":"keep.txt"}`) + "\n" + hdr, 400, "", "first line"},
		{"two headers", "", hdr + "\n" + hdr, 400, "", "exactly one header"},
		{"empty body", "", "", 400, "", "no header"},
		{"empty summary", "", `{"key":"header","value":{"summary":"  "}}`, 400, "", "summary"},
		{"missing summary", "", `{"key":"header","value":{}}`, 400, "", "summary"},
		{"missing key", "", hdr + "\n" + `{"value":{"path":"a"}}`, 400, "", "key"},
		{"unknown key", "", hdr + "\n" + line("copyFile", `{"path":"a"}`), 400, "", "unknown key"},
		{"value not object", "", hdr + "\n" + `{"key":"file","value":"x"}`, 400, "", "JSON object"},
		{"bad parentCommit", "", `{"key":"header","value":{"summary":"s","parentCommit":"xyz"}}`, 400, "", "parentCommit"},
		{"short parentCommit", "", `{"key":"header","value":{"summary":"s","parentCommit":"abcd"}}`, 400, "", "parentCommit"},
		{"file without path", "", hdr + "\n" + line("file", `{"content":"YQ==","encoding":"base64"}`), 400, "", "path"},
		{"file without content", "", hdr + "\n" + line("file", `{"path":"a.txt","encoding":"base64"}`), 400, "", "content"},
		{"base64 without padding", "", hdr + "\n" + line("file", `{"path":"a.txt","content":"YWI","encoding":"base64"}`), 400, "", "base64"},
		{"base64 with bad padding bits", "", hdr + "\n" + line("file", `{"path":"a.txt","content":"YWJ=","encoding":"base64"}`), 400, "", "base64"},
		{"base64 with newline", "", hdr + "\n" + line("file", `{"path":"a.txt","content":"YW\\nI=","encoding":"base64"}`), 400, "", "base64"},
		{"unknown encoding", "", hdr + "\n" + line("file", `{"path":"a.txt","content":"a","encoding":"hex"}`), 400, "", "encoding"},
		{"binary over 1MB as file", "", hdr + "\n" + string(mustJSON(t, fileLine("big.bin", bigBinary))), 400, "", "contains binary files"},
		{"text over 10MB as file", "", hdr + "\n" + string(mustJSON(t, fileLine("big.txt", bigText))), 400, "", "contains binary files"},
		{"lfsFile bad algo", "", hdr + "\n" + line("lfsFile", `{"path":"a.png","algo":"md5","oid":"`+SHA256(stored)+`"}`), 400, "", "algo"},
		{"lfsFile bad oid", "", hdr + "\n" + line("lfsFile", `{"path":"a.png","algo":"sha256","oid":"ABC"}`), 400, "", "oid"},
		{"lfsFile never uploaded", "", hdr + "\n" + line("lfsFile", `{"path":"a.png","algo":"sha256","oid":"`+SHA256([]byte("nope"))+`","size":4}`), 400, "", "LFS pointer pointed to a file that does not exist"},
		{"lfsFile wrong size", "", hdr + "\n" + line("lfsFile", `{"path":"a.png","algo":"sha256","oid":"`+SHA256(stored)+`","size":3}`), 400, "", "size"},
		{"delete missing file", "", hdr + "\n" + line("deletedFile", `{"path":"nope.txt"}`), 404, "EntryNotFound", "A file with this name doesn't exist"},
		{"delete missing folder", "", hdr + "\n" + line("deletedFolder", `{"path":"nope/"}`), 404, "EntryNotFound", ""},
		{"absolute path", "", hdr + "\n" + line("file", `{"path":"/etc/x","content":"YQ==","encoding":"base64"}`), 400, "", "absolute"},
		{"dotdot path", "", hdr + "\n" + line("file", `{"path":"a/../../x","content":"YQ==","encoding":"base64"}`), 400, "", ".."},
		{".git component", "", hdr + "\n" + line("file", `{"path":"sub/.git/hooks/x","content":"YQ==","encoding":"base64"}`), 400, "", ".git"},
		{"trailing slash file", "", hdr + "\n" + line("file", `{"path":"dir/","content":"YQ==","encoding":"base64"}`), 400, "", "empty component"},
		{"bad op after good op", "", hdr + "\n" + line("file", `{"path":"ok.txt","content":"YQ==","encoding":"base64"}`) + "\n" + line("deletedFile", `{"path":"nope"}`), 404, "EntryNotFound", ""},
	}
	head, _ := s.Head("dataset", "hubtest/d", "main")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctype := tt.ctype
			if ctype == "" {
				ctype = "application/x-ndjson"
			}
			r := c.with(t).do(http.MethodPost, "/api/datasets/hubtest/d/commit/main", map[string]string{"Content-Type": ctype}, []byte(tt.body))
			require.Equal(t, tt.status, r.status, string(r.body[:min(len(r.body), 300)]))
			assert.Equal(t, tt.code, r.header.Get("X-Error-Code"))
			if tt.msg != "" {
				assert.Contains(t, r.json(t)["error"], tt.msg)
			}
			now, _ := s.Head("dataset", "hubtest/d", "main")
			assert.Equal(t, head, now, "a refused commit changes nothing")
		})
	}
}

func TestCommitOperations(t *testing.T) {
	s, c := newDatasetHub(t)
	repo := "datasets/hubtest/d"
	img := []byte("an image")
	c.uploadLFS(repo, img)

	// huggingface.js style: no trailing newline, blank lines, utf-8 encoding, no description.
	body := `{"key":"header","value":{"summary":"first"}}` + "\n\n" +
		`{"key":"file","value":{"path":"logs/a.txt","content":"hello","encoding":"utf-8"}}` + "\n" +
		`{"key":"file","value":{"path":"logs/b.txt","content":"` + base64.StdEncoding.EncodeToString([]byte("b")) + `","encoding":"base64"}}` + "\n" +
		`{"key":"lfsFile","value":{"path":"img/a.png","algo":"sha256","oid":"` + SHA256(img) + `"}}` + "\r\n" +
		`{"key":"file","value":{"path":"keep.txt","content":"aw==","encoding":"base64"}}`
	r := c.commit(repo, "main", []byte(body))
	require.Equal(t, 200, r.status, string(r.body))
	first := r.json(t)["commitOid"].(string)
	fi, ok := s.Stat("dataset", "hubtest/d", "main", "img/a.png")
	require.True(t, ok)
	assert.True(t, fi.LFS, "lfsFile without size (copy case) is accepted")
	assert.Equal(t, GitBlobOID(LFSPointer(SHA256(img), int64(len(img)))), fi.BlobOID, "LFS files are stored as pointers in git")
	got, _ := s.File("dataset", "hubtest/d", "main", "logs/a.txt")
	assert.Equal(t, "hello", string(got))

	tests := []struct {
		name    string
		lines   []any
		removed []string
		kept    []string
	}{
		{"deletedFolder with slash", []any{map[string]any{"key": "deletedFolder", "value": map[string]any{"path": "logs/"}}}, []string{"logs/a.txt", "logs/b.txt"}, []string{"keep.txt"}},
		{"deletedFolder without slash", []any{map[string]any{"key": "deletedFolder", "value": map[string]any{"path": "img"}}}, []string{"img/a.png"}, []string{"keep.txt"}},
		{"deletedFile", []any{map[string]any{"key": "deletedFile", "value": map[string]any{"path": "keep.txt"}}}, []string{"keep.txt"}, []string{".gitattributes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.commit(repo, "main", ndjson(t, append([]any{header(tt.name, nil)}, tt.lines...)...))
			require.Equal(t, 200, r.status, string(r.body))
			files := s.Files("dataset", "hubtest/d", "main")
			for _, p := range tt.removed {
				assert.NotContains(t, files, p)
			}
			for _, p := range tt.kept {
				assert.Contains(t, files, p)
			}
			history := s.Commits("dataset", "hubtest/d")
			assert.Equal(t, tt.removed, history[len(history)-1].Changed)
		})
	}
	// Old revisions stay readable by commit id.
	old, ok := s.File("dataset", "hubtest/d", first, "logs/a.txt")
	require.True(t, ok)
	assert.Equal(t, "hello", string(old))
}

func TestCommitParentCommit(t *testing.T) {
	s, c := newDatasetHub(t)
	repo := "datasets/hubtest/d"
	head, _ := s.Head("dataset", "hubtest/d", "main")

	r := c.commit(repo, "main", ndjson(t, header("full parent", map[string]any{"parentCommit": head}), fileLine("a.txt", []byte("a"))))
	require.Equal(t, 200, r.status, string(r.body))
	head2 := r.json(t)["commitOid"].(string)
	r = c.commit(repo, "main", ndjson(t, header("short parent", map[string]any{"parentCommit": strings.ToUpper(head2[:5])}), fileLine("b.txt", []byte("b"))))
	require.Equal(t, 200, r.status, string(r.body))

	// head2 is stale now.
	for _, parent := range []string{head2, head2[:7]} {
		r = c.commit(repo, "main", ndjson(t, header("stale", map[string]any{"parentCommit": parent}), fileLine("c.txt", []byte("c"))))
		require.Equal(t, http.StatusPreconditionFailed, r.status)
		assert.Equal(t, MsgStaleParent, r.json(t)["error"])
	}
	assert.Len(t, s.Commits("dataset", "hubtest/d"), 3)
}

func TestCommitPullRequest(t *testing.T) {
	s := newTeamServer(t, nil)
	require.NoError(t, s.CreateRepo("dataset", "alice/d", false))
	mainHead, _ := s.Head("dataset", "alice/d", "main")
	// A read token may open a pull request on a public repo.
	c := newClient(t, s, aliceRead)
	r := c.commit("datasets/alice/d", "main?create_pr=1", ndjson(t, header("proposal", nil), fileLine("p.txt", []byte("p"))))
	require.Equal(t, 200, r.status, string(r.body))
	m := r.json(t)
	assert.Equal(t, s.URL()+"/datasets/alice/d/discussions/1", m["pullRequestUrl"])
	prHead, ok := s.Head("dataset", "alice/d", "refs/pr/1")
	require.True(t, ok)
	assert.Equal(t, m["commitOid"], prHead)
	now, _ := s.Head("dataset", "alice/d", "main")
	assert.Equal(t, mainHead, now, "main does not move when a PR is opened")

	// Further commits go to refs%2Fpr%2F1 (escaped), with a write token.
	w := newClient(t, s, aliceToken)
	r = w.commit("datasets/alice/d", "refs%2Fpr%2F1", ndjson(t, header("more", nil), fileLine("q.txt", []byte("q"))))
	require.Equal(t, 200, r.status, string(r.body))
	assert.NotContains(t, r.json(t), "pullRequestUrl")
	files := s.Files("dataset", "alice/d", "refs/pr/1")
	assert.Contains(t, files, "p.txt")
	assert.Contains(t, files, "q.txt")

	// Reading through the escaped revision works everywhere.
	r = w.do("GET", "/datasets/alice/d/resolve/refs%2Fpr%2F1/q.txt", nil, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "q", string(r.body))
	r = w.do("GET", "/api/datasets/alice/d/revision/refs%2Fpr%2F1", nil, nil)
	require.Equal(t, 200, r.status)
	r = w.do("GET", "/api/datasets/alice/d/tree/refs%2Fpr%2F1", nil, nil)
	require.Equal(t, 200, r.status)
	r = w.postJSON("/api/datasets/alice/d/preupload/refs%2Fpr%2F1", map[string]any{"files": []any{preuploadFile("q.txt", []byte("q"))}})
	require.Equal(t, 200, r.status)
	assert.Equal(t, GitBlobOID([]byte("q")), r.json(t)["files"].([]any)[0].(map[string]any)["oid"])

	// A second PR gets number 2; commits to a commit id are refused.
	r = w.commit("datasets/alice/d", "main?create_pr=1", ndjson(t, header("second", nil), fileLine("r.txt", []byte("r"))))
	require.Equal(t, 200, r.status)
	assert.Equal(t, s.URL()+"/datasets/alice/d/discussions/2", r.json(t)["pullRequestUrl"])
	r = w.commit("datasets/alice/d", mainHead, ndjson(t, header("to a sha", nil), fileLine("s.txt", []byte("s"))))
	assert.Equal(t, 404, r.status)
	assert.Equal(t, "RevisionNotFound", r.header.Get("X-Error-Code"))
	// Read tokens still cannot push to main.
	r = c.commit("datasets/alice/d", "main", ndjson(t, header("direct", nil), fileLine("t.txt", []byte("t"))))
	assert.Equal(t, 403, r.status)
}

func TestConcurrentCommitGets409(t *testing.T) {
	s, c := newDatasetHub(t)
	// Only the commit marked ?slow=1 is held; PathContains also sees the
	// query. Hold is a barrier: it says when the commit holds the repo's
	// commit slot and keeps it there until the test lets go, so the probe
	// collides with it every time, on any machine, with no timing guess.
	holding, release := make(chan struct{}), make(chan struct{})
	s.InjectFault(Fault{Op: OpCommit, PathContains: "slow=1", Times: 1, Hold: func(ctx context.Context) {
		close(holding)
		select {
		case <-release:
		case <-ctx.Done():
		}
	}})

	slowc := make(chan resp, 1)
	go func() {
		slowc <- c.commit("datasets/hubtest/d", "main?slow=1", ndjson(t, header("slow", nil), fileLine("a.txt", []byte("a"))))
	}()
	<-holding
	// The probe deletes a missing file: were it not refused, it would fail with 404.
	fast := c.commit("datasets/hubtest/d", "main", ndjson(t, header("fast", nil),
		map[string]any{"key": "deletedFile", "value": map[string]any{"path": "missing.txt"}}))
	require.Equal(t, http.StatusConflict, fast.status, string(fast.body))
	assert.Equal(t, "Another commit operation is in progress for this repository. Please try again later.", fast.json(t)["error"])
	close(release)
	slow := <-slowc
	require.Equal(t, 200, slow.status, string(slow.body))
	assert.Len(t, s.Commits("dataset", "hubtest/d"), 2, "only the slow commit landed")
	// Free again.
	r := c.commit("datasets/hubtest/d", "main", ndjson(t, header("after", nil), fileLine("b.txt", []byte("b"))))
	assert.Equal(t, 200, r.status)
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func TestCommitRateLimit(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := NewServer(&Options{CommitsPerHour: 3, Now: clock.Now})
	defer s.Close()
	c := newClient(t, s, DefaultToken)
	c.createDataset("d")
	c.createDataset("other")
	commit := func(repo, name string) resp {
		return c.commit("datasets/hubtest/"+repo, "main", ndjson(t, header(name, nil), fileLine(name+".txt", []byte(name))))
	}
	for i, name := range []string{"a", "b", "c"} {
		require.Equal(t, 200, commit("d", name).status)
		clock.Advance(time.Duration(10*(i+1)) * time.Minute) // commits at :00, :10, :30; now :60
	}
	clock.Advance(-time.Minute) // 12:59: the :00 commit is still in the window
	r := commit("d", "d")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "You have exceeded the rate limit for repository commits (3 per hour). You can retry this action in 1 minutes. If you need higher limits, consider batching more files per commit.", r.json(t)["error"])
	assert.Equal(t, "60", r.header.Get("Retry-After"))
	assert.Equal(t, 200, commit("other", "x").status, "the limit is per repo")

	clock.Advance(time.Minute + time.Second)
	require.Equal(t, 200, commit("d", "d").status, "the oldest commit left the sliding hour")
	r = commit("d", "e")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "599", r.header.Get("Retry-After")) // now 13:00:01; the :10 commit leaves at 13:10
}

func TestAPIRateLimit(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 1, 0, 0, time.UTC)}
	s := NewServer(&Options{APIRequestsPer5Min: 2, Now: clock.Now})
	defer s.Close()
	c := newClient(t, s, DefaultToken)
	for i := range 2 {
		r := c.do("GET", "/api/whoami-v2", nil, nil)
		require.Equal(t, 200, r.status)
		assert.Equal(t, `"fixed window";"api";q=2;w=300`, r.header.Get("RateLimit-Policy"))
		assert.Equal(t, `"api";r=`+string(rune('1'-i))+`;t=240`, r.header.Get("RateLimit"))
	}
	r := c.do("GET", "/api/whoami-v2", nil, nil)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, `"api";r=0;t=240`, r.header.Get("RateLimit"))
	assert.Equal(t, `"fixed window";"api";q=2;w=300`, r.header.Get("RateLimit-Policy"))
	// Per token: the anonymous bucket is separate.
	assert.Equal(t, 401, newClient(t, s, "").do("GET", "/api/whoami-v2", nil, nil).status)
	clock.Advance(4 * time.Minute) // 12:05: a new window
	assert.Equal(t, 200, c.do("GET", "/api/whoami-v2", nil, nil).status)
}

func TestApplyThenFail(t *testing.T) {
	s, c := newDatasetHub(t)
	head, _ := s.Head("dataset", "hubtest/d", "main")
	s.InjectFault(Fault{Op: OpCommit, ApplyThenFail: true, Times: 1})
	body := ndjson(t, header("once", map[string]any{"parentCommit": head}), fileLine("a.txt", []byte("a")))
	r := c.commit("datasets/hubtest/d", "main", body)
	require.Equal(t, 500, r.status)
	assert.NotContains(t, r.json(t), "commitOid", "the real answer is replaced")
	assert.Len(t, s.Commits("dataset", "hubtest/d"), 2, "but the commit was applied")
	// Re-sending blindly with the same parentCommit is caught as stale: no duplicate.
	r = c.commit("datasets/hubtest/d", "main", body)
	assert.Equal(t, 412, r.status)
	assert.Len(t, s.Commits("dataset", "hubtest/d"), 2)
}

func TestFaults(t *testing.T) {
	s, c := newDatasetHub(t)
	preupload := func() resp {
		return c.postJSON("/api/datasets/hubtest/d/preupload/main", map[string]any{"files": []any{}})
	}

	s.InjectFault(Fault{Op: OpPreupload, Status: 503, Times: 2, Header: http.Header{"Retry-After": {"1"}}})
	for range 2 {
		r := preupload()
		assert.Equal(t, 503, r.status)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
		assert.NotEmpty(t, r.header.Get("X-Error-Message"))
	}
	assert.Equal(t, 200, preupload().status, "the fault is used up")

	for _, status := range []int{408, 500, 502, 504} {
		s.InjectFault(Fault{Method: "POST", PathContains: "/preupload/", Status: status, Times: 1})
		assert.Equal(t, status, preupload().status)
	}

	// Probability with a seed is reproducible.
	run := func() []int {
		s.ClearFaults()
		s.InjectFault(Fault{Op: OpPreupload, Status: 500, Probability: 0.5, Seed: 42})
		var got []int
		for range 20 {
			got = append(got, preupload().status)
		}
		return got
	}
	first := run()
	assert.Equal(t, first, run())
	assert.Contains(t, first, 500)
	assert.Contains(t, first, 200)
	s.ClearFaults()

	// Dropped connection.
	s.InjectFault(Fault{Op: OpWhoami, CloseConnection: true, Times: 1})
	req, _ := http.NewRequest("GET", s.URL()+"/api/whoami-v2", nil)
	// A fresh connection: on a reused one net/http would transparently retry the GET.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, err := fresh.Do(req)
	assert.Error(t, err)
	whoamis := s.RequestsFor(OpWhoami)
	assert.Equal(t, 0, whoamis[len(whoamis)-1].Status, "a dropped connection is recorded with status 0")

	// The Hub's "conflicting operation" 409 on create, as Python's create_repo sees it.
	s.InjectFault(Fault{Op: OpCreateRepo, Status: http.StatusConflict, Message: MsgCreateConflict, Times: 1})
	r := c.postJSON("/api/repos/create", map[string]any{"name": "e", "type": "dataset"})
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, MsgCreateConflict, r.json(t)["error"])
	assert.NotContains(t, s.Repos(), "dataset:hubtest/e")
	assert.Equal(t, 200, c.postJSON("/api/repos/create", map[string]any{"name": "e", "type": "dataset"}).status)

	// An invalid injected status does not crash the server.
	s.InjectFault(Fault{Op: OpWhoami, Status: 42, Times: 1})
	r = c.do("GET", "/api/whoami-v2", nil, nil)
	assert.Equal(t, 500, r.status)
	assert.Contains(t, r.json(t)["error"], "invalid status 42")

	// Down.
	s.SetDown(true)
	assert.Equal(t, 503, c.do("GET", "/api/whoami-v2", nil, nil).status)
	assert.Equal(t, 503, preupload().status)
	s.SetDown(false)
	assert.Equal(t, 200, c.do("GET", "/api/whoami-v2", nil, nil).status)
}
