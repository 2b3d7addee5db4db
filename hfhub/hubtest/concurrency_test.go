package hubtest

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentUse runs writers, readers and inspectors at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	c := newClient(t, s, DefaultToken)
	const repos, commitsPerRepo = 4, 5
	for i := range repos {
		c.createDataset(fmt.Sprintf("d%d", i))
	}
	var wg sync.WaitGroup
	for i := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("datasets/hubtest/d%d", i)
			for j := 0; j < commitsPerRepo; {
				img := []byte(fmt.Sprintf("image %d-%d", i, j))
				c.uploadLFS(repo, img)
				r := c.commit(repo, "main", ndjson(t, header("c", nil), lfsLine(fmt.Sprintf("%d.png", j), img),
					fileLine("meta.jsonl", []byte(fmt.Sprintf("%d\n", j)))))
				if r.status == http.StatusConflict {
					continue // another writer of this repo: retry
				}
				assert.Equal(t, 200, r.status, string(r.body))
				j++
			}
		}()
		// A second writer on the same repo makes 409s possible.
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("datasets/hubtest/d%d", i)
			for done := 0; done < 2; {
				r := c.commit(repo, "main", ndjson(t, header("other", nil), fileLine("other.txt", []byte("o"))))
				if r.status == 200 {
					done++
				} else {
					assert.Equal(t, http.StatusConflict, r.status)
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				r := c.do("GET", fmt.Sprintf("/api/datasets/hubtest/d%d/tree/main?recursive=true", i), nil, nil)
				assert.Equal(t, 200, r.status)
				_ = s.Files("dataset", fmt.Sprintf("hubtest/d%d", i), "main")
				_ = s.Requests()
			}
		}()
	}
	wg.Wait()
	for i := range repos {
		id := fmt.Sprintf("hubtest/d%d", i)
		assert.Len(t, s.Commits("dataset", id), 1+commitsPerRepo+2)
		assert.Len(t, s.LFSObjects("dataset", id), commitsPerRepo)
		got, ok := s.File("dataset", id, "main", "4.png")
		require.True(t, ok)
		assert.Equal(t, fmt.Sprintf("image %d-4", i), string(got))
	}
}

func TestTokensNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := NewServer(&Options{Logger: logger})
	defer s.Close()
	c := newClient(t, s, DefaultToken)
	c.createDataset("d")
	c.uploadLFS("datasets/hubtest/d", []byte("x"))
	newClient(t, s, "hf_wrong_secret").do("GET", "/api/whoami-v2", nil, nil)
	require.NotEmpty(t, buf.String())
	assert.NotContains(t, buf.String(), DefaultToken)
	assert.NotContains(t, buf.String(), "hf_wrong_secret")
	assert.Contains(t, buf.String(), "op=lfs-put")
}

func TestRequestsRecorded(t *testing.T) {
	s, c := newDatasetHub(t)
	c.commit("datasets/hubtest/d", "main", ndjson(t, header("x", nil), fileLine("a.txt", []byte("a"))))
	reqs := s.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, OpCreateRepo, reqs[0].Op)
	assert.Equal(t, OpCommit, reqs[1].Op)
	assert.Equal(t, "/api/datasets/hubtest/d/commit/main", reqs[1].EscapedPath)
	assert.Equal(t, "Bearer "+DefaultToken, reqs[1].Header.Get("Authorization"))
	assert.Contains(t, string(reqs[1].Body), `"key":"header"`)
	assert.Equal(t, 200, reqs[1].Status)
	assert.NotEmpty(t, reqs[1].ID)
	assert.Len(t, s.RequestsFor(OpCommit), 1)
	s.ResetRequests()
	assert.Empty(t, s.Requests())

	// A request is visible, with its status, as soon as its answer arrives,
	// even when the body is large enough to be streamed.
	_, err := s.Seed("dataset", "hubtest/d", "main", "big", map[string][]byte{"big.txt": bytes.Repeat([]byte("x"), 256<<10)})
	require.NoError(t, err)
	for range 20 {
		r := c.do("GET", "/datasets/hubtest/d/resolve/main/big.txt", nil, nil)
		require.Equal(t, 200, r.status)
		reqs := s.RequestsFor(OpResolve)
		require.NotEmpty(t, reqs)
		require.Equal(t, 200, reqs[len(reqs)-1].Status)
	}
}

func TestHandlerWithoutListener(t *testing.T) {
	s := New(nil)
	assert.Empty(t, s.URL())
	s.Close() // harmless
	require.NoError(t, s.CreateRepo("dataset", "hubtest/d", false))
	req, _ := http.NewRequest("POST", "http://hub.local:9999/api/repos/create", bytes.NewReader([]byte(`{"name":"e","type":"dataset"}`)))
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	rec := &responseRecorder{header: http.Header{}}
	s.Handler().ServeHTTP(rec, req)
	require.Equal(t, 200, rec.status, rec.body.String())
	assert.Contains(t, rec.body.String(), `"url":"http://hub.local:9999/datasets/hubtest/e"`, "URLs follow the request's Host")
}

type responseRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *responseRecorder) Header() http.Header { return r.header }
func (r *responseRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(p)
}
func (r *responseRecorder) WriteHeader(s int) { r.status = s }
