package hfhub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/hfhub"
)

// TestDownloadRedirectToAnotherHost: an LFS file redirects to a storage host;
// the token must not follow it there, the hash is checked end to end.
func TestDownloadRedirectToAnotherHost(t *testing.T) {
	content := []byte(strings.Repeat("weights", 1000))
	sum := sha256.Sum256(content)
	var cdnAuth, hubAuth, hubUA atomic.Value
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cdnAuth.Store(r.Header.Get("Authorization"))
		w.Write(content)
	}))
	defer cdn.Close()
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hubAuth.Store(r.Header.Get("Authorization"))
		hubUA.Store(r.Header.Get("User-Agent"))
		w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(content)))
		w.Header().Set("X-Repo-Commit", strings.Repeat("c", 40))
		http.Redirect(w, r, cdn.URL+"/blob?X-Amz-Signature=abc", http.StatusFound)
	}))
	defer hub.Close()
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: hub.URL, Token: "hf_SECRET", UserAgent: "tool/1.2"})
	require.NoError(t, err)
	var buf bytes.Buffer
	info, err := c.Repo(hfhub.Model, hfhub.RepoID{Namespace: "a", Name: "m"}).Download(context.Background(), "model.safetensors", &buf)
	require.NoError(t, err)
	assert.Equal(t, content, buf.Bytes())
	assert.True(t, info.LFS)
	assert.Equal(t, strings.Repeat("c", 40), info.Commit)
	assert.Equal(t, "Bearer hf_SECRET", hubAuth.Load())
	assert.Equal(t, "", cdnAuth.Load(), "no token to another host")
	assert.Regexp(t, `^tool/1\.2; hf_hub/go; go/\d`, hubUA.Load())
}

// TestDownloadResumesWithRange cuts the first transfer short; the client
// resumes with a Range request and still verifies the whole file.
func TestDownloadResumesWithRange(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 5000)
	sum := sha256.Sum256(content)
	var mu sync.Mutex
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		first := len(ranges) == 1
		mu.Unlock()
		w.Header().Set("X-Linked-Etag", hex.EncodeToString(sum[:]))
		if first {
			w.Header().Set("Content-Length", fmt.Sprint(len(content)))
			w.Write(content[:20000]) // then the handler returns: the connection is cut short
			return
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
	}))
	defer srv.Close()
	rec := &hfhub.WaitRecorder{}
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: srv.URL, Token: "t", Sleep: rec.Sleep})
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = c.Repo(hfhub.Dataset, hfhub.RepoID{Namespace: "a", Name: "d"}).At("main").Download(context.Background(), "big.bin", &buf)
	require.NoError(t, err)
	assert.Equal(t, content, buf.Bytes())
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"", "bytes=20000-"}, ranges)
}

// TestFollowsSameHostRedirects: a renamed repo answers 307 to its new URL.
func TestFollowsSameHostRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/datasets/old/name":
			http.Redirect(w, r, "/api/datasets/new/name", http.StatusTemporaryRedirect)
		case "/api/datasets/new/name":
			assert.Equal(t, "Bearer hf_x", r.Header.Get("Authorization"))
			fmt.Fprint(w, `{"id": "new/name", "sha": "`+strings.Repeat("a", 40)+`"}`)
		case "/api/datasets/other/host":
			http.Redirect(w, r, "http://elsewhere.invalid/x", http.StatusTemporaryRedirect)
		}
	}))
	defer srv.Close()
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: srv.URL, Token: "hf_x"})
	require.NoError(t, err)
	info, err := c.Repo(hfhub.Dataset, hfhub.RepoID{Namespace: "old", Name: "name"}).Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "new/name", info.ID)
	_, err = c.Repo(hfhub.Dataset, hfhub.RepoID{Namespace: "other", Name: "host"}).Info(context.Background())
	var he *hfhub.HubError
	require.ErrorAs(t, err, &he, "a redirect to another host is not followed with the token")
	assert.Equal(t, http.StatusTemporaryRedirect, he.Status)
}
