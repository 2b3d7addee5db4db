package hubtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolve(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	require.NoError(t, s.CreateRepo("dataset", "hubtest/d", true))
	text := []byte("0123456789abcdef")
	img := []byte("PNG image content")
	head, err := s.Seed("dataset", "hubtest/d", "main", "seed", map[string][]byte{
		"data/metadata.jsonl": text, "data/a b.png": img,
	})
	require.NoError(t, err)
	c := newClient(t, s, DefaultToken)

	tests := []struct {
		name        string
		method      string
		path        string
		rangeHeader string
		status      int
		body        string
		contentLen  string
		contentRng  string
	}{
		{"regular file", "GET", "/datasets/hubtest/d/resolve/main/data/metadata.jsonl", "", 200, string(text), "16", ""},
		{"by commit id", "GET", "/datasets/hubtest/d/resolve/" + head + "/data/metadata.jsonl", "", 200, string(text), "16", ""},
		{"by short commit id", "GET", "/datasets/hubtest/d/resolve/" + head[:7] + "/data/metadata.jsonl", "", 200, string(text), "16", ""},
		{"HEAD", "HEAD", "/datasets/hubtest/d/resolve/main/data/metadata.jsonl", "", 200, "", "16", ""},
		{"range from offset", "GET", "/datasets/hubtest/d/resolve/main/data/metadata.jsonl", "bytes=10-", 206, "abcdef", "6", "bytes 10-15/16"},
		{"range slice", "GET", "/datasets/hubtest/d/resolve/main/data/metadata.jsonl", "bytes=2-4", 206, "234", "3", "bytes 2-4/16"},
		{"range unsatisfiable", "GET", "/datasets/hubtest/d/resolve/main/data/metadata.jsonl", "bytes=100-", 416, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.rangeHeader != "" {
				h["Range"] = tt.rangeHeader
			}
			r := c.do(tt.method, tt.path, h, nil)
			require.Equal(t, tt.status, r.status, string(r.body))
			if tt.status >= 400 {
				return
			}
			assert.Equal(t, tt.body, string(r.body))
			assert.Equal(t, tt.contentLen, r.header.Get("Content-Length"))
			assert.Equal(t, tt.contentRng, r.header.Get("Content-Range"))
			assert.Equal(t, `"`+GitBlobOID(text)+`"`, r.header.Get("ETag"))
			assert.Equal(t, head, r.header.Get("X-Repo-Commit"))
			assert.Equal(t, "bytes", r.header.Get("Accept-Ranges"))
		})
	}

	t.Run("lfs redirect", func(t *testing.T) {
		for _, method := range []string{"HEAD", "GET"} {
			r := c.do(method, "/datasets/hubtest/d/resolve/main/data/a%20b.png", nil, nil)
			require.Equal(t, http.StatusFound, r.status)
			assert.Equal(t, `"`+SHA256(img)+`"`, r.header.Get("X-Linked-Etag"))
			assert.Equal(t, "17", r.header.Get("X-Linked-Size"))
			assert.Equal(t, head, r.header.Get("X-Repo-Commit"))
			loc := r.header.Get("Location")
			require.True(t, strings.HasPrefix(loc, s.URL()+"/__hubtest/cdn/"), loc)

			// The CDN URL is pre-signed: no token needed (and none should be sent).
			anon := newClient(t, s, "")
			got := anon.do("GET", loc, nil, nil)
			require.Equal(t, 200, got.status)
			assert.Equal(t, img, got.body)
			part := anon.do("GET", loc, map[string]string{"Range": "bytes=4-"}, nil)
			require.Equal(t, 206, part.status)
			assert.Equal(t, img[4:], part.body)
			bad := anon.do("GET", strings.Replace(loc, "sig=", "sig=00", 1), nil, nil)
			assert.Equal(t, 403, bad.status)
		}
	})

	t.Run("a client following redirects gets the content", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.URL()+"/datasets/hubtest/d/resolve/main/data/a%20b.png", nil)
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		assert.Equal(t, img, data)
	})

	errs := []struct {
		path string
		code string
	}{
		{"/datasets/hubtest/d/resolve/main/nope.txt", "EntryNotFound"},
		{"/datasets/hubtest/d/resolve/nope/data/metadata.jsonl", "RevisionNotFound"},
		{"/datasets/hubtest/nope/resolve/main/a.txt", "RepoNotFound"},
	}
	for _, e := range errs {
		r := c.do("GET", e.path, nil, nil)
		assert.Equal(t, 404, r.status, e.path)
		assert.Equal(t, e.code, r.header.Get("X-Error-Code"), e.path)
	}
}

func TestModelResolve(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	require.NoError(t, s.CreateRepo("model", "hubtest/net", false))
	weights := []byte("safetensors bytes")
	_, err := s.Seed("model", "hubtest/net", "main", "weights", map[string][]byte{"model.safetensors": weights, "config.json": []byte("{}")})
	require.NoError(t, err)
	c := newClient(t, s, "")
	r := c.do("GET", "/hubtest/net/resolve/main/config.json", nil, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "{}", string(r.body))
	r = c.do("HEAD", "/hubtest/net/resolve/main/model.safetensors", nil, nil)
	require.Equal(t, 302, r.status)
	assert.Equal(t, `"`+SHA256(weights)+`"`, r.header.Get("X-Linked-Etag"))
}

func treeItems(t *testing.T, r resp) []map[string]any {
	t.Helper()
	var items []map[string]any
	require.NoError(t, json.Unmarshal(r.body, &items), string(r.body))
	return items
}

func paths(items []map[string]any) []string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprintf("%s:%s", it["type"], it["path"]))
	}
	return out
}

func TestTree(t *testing.T) {
	s := NewServer(&Options{PageSize: 2})
	defer s.Close()
	require.NoError(t, s.CreateRepo("dataset", "hubtest/d", false))
	img := []byte("image")
	_, err := s.Seed("dataset", "hubtest/d", "main", "seed", map[string][]byte{
		"README.md": []byte("# d\n"), "data/s1/metadata.jsonl": []byte("{}\n"), "data/s1/a.png": img,
		"data/s2/metadata.jsonl": []byte("{}\n"),
	})
	require.NoError(t, err)
	c := newClient(t, s, "")

	// all follows Link headers and returns every item.
	all := func(first string) ([]map[string]any, int) {
		var items []map[string]any
		pages := 0
		for next := first; next != ""; pages++ {
			r := c.do("GET", next, nil, nil)
			require.Equal(t, 200, r.status, string(r.body))
			items = append(items, treeItems(t, r)...)
			next = ""
			if link := r.header.Get("Link"); link != "" {
				require.True(t, strings.HasSuffix(link, `>; rel="next"`), link)
				next = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			}
		}
		return items, pages
	}
	tests := []struct {
		name  string
		path  string
		want  []string
		pages int
	}{
		{"root", "/api/datasets/hubtest/d/tree/main", []string{"file:.gitattributes", "file:README.md", "directory:data"}, 2},
		{"root without revision", "/api/datasets/hubtest/d/tree", []string{"file:.gitattributes", "file:README.md", "directory:data"}, 2},
		{"escaped folder (Python)", "/api/datasets/hubtest/d/tree/main/data%2Fs1", []string{"file:data/s1/a.png", "file:data/s1/metadata.jsonl"}, 1},
		{"literal folder (huggingface.js)", "/api/datasets/hubtest/d/tree/main/data/s1", []string{"file:data/s1/a.png", "file:data/s1/metadata.jsonl"}, 1},
		{"recursive", "/api/datasets/hubtest/d/tree/main/data?recursive=true", []string{"directory:data/s1", "file:data/s1/a.png", "file:data/s1/metadata.jsonl", "directory:data/s2", "file:data/s2/metadata.jsonl"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, pages := all(tt.path)
			assert.ElementsMatch(t, tt.want, paths(items))
			assert.Equal(t, tt.pages, pages)
		})
	}

	items, _ := all("/api/datasets/hubtest/d/tree/main/data%2Fs1")
	for _, it := range items {
		if it["path"] == "data/s1/a.png" {
			assert.EqualValues(t, 5, it["size"])
			assert.Equal(t, GitBlobOID(LFSPointer(SHA256(img), 5)), it["oid"])
			assert.Equal(t, map[string]any{"oid": SHA256(img), "size": 5.0, "pointerSize": float64(len(LFSPointer(SHA256(img), 5)))}, it["lfs"])
		} else {
			assert.Equal(t, GitBlobOID([]byte("{}\n")), it["oid"])
			assert.NotContains(t, it, "lfs")
		}
	}
	items, _ = all("/api/datasets/hubtest/d/tree/main")
	for _, it := range items {
		if it["type"] == "directory" {
			assert.Len(t, it["oid"], 40)
		}
	}

	r := c.do("GET", "/api/datasets/hubtest/d/tree/main?expand=true", nil, nil)
	require.Equal(t, 200, r.status)
	last := treeItems(t, r)[0]["lastCommit"].(map[string]any)
	assert.Equal(t, "initial commit", last["title"], ".gitattributes was last changed by the first commit")

	for _, bad := range []struct{ path, code string }{
		{"/api/datasets/hubtest/d/tree/main/nope", "EntryNotFound"},
		{"/api/datasets/hubtest/d/tree/main/README.md", "EntryNotFound"},
		{"/api/datasets/hubtest/d/tree/nope", "RevisionNotFound"},
	} {
		r := c.do("GET", bad.path, nil, nil)
		assert.Equal(t, 404, r.status, bad.path)
		assert.Equal(t, bad.code, r.header.Get("X-Error-Code"), bad.path)
	}
	r = c.do("GET", "/api/datasets/hubtest/d/tree/main?cursor=bm90LWEtbnVtYmVy", nil, nil)
	assert.Equal(t, 400, r.status)
}

func TestPathsInfoAndCommits(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	require.NoError(t, s.CreateRepo("dataset", "hubtest/d", false))
	_, err := s.Seed("dataset", "hubtest/d", "main", "seed", map[string][]byte{"a.txt": []byte("a"), "dir/b.png": []byte("b")})
	require.NoError(t, err)
	c := newClient(t, s, DefaultToken)

	form := url.Values{"paths": {"a.txt", "dir", "nope.txt"}, "expand": {"false"}}
	r := c.do("POST", "/api/datasets/hubtest/d/paths-info/main", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, []string{"file:a.txt", "directory:dir"}, paths(treeItems(t, r)), "unknown paths are omitted")

	r = c.postJSON("/api/datasets/hubtest/d/paths-info/main", map[string]any{"paths": []string{"dir/b.png"}, "expand": true})
	require.Equal(t, 200, r.status, string(r.body))
	items := treeItems(t, r)
	require.Len(t, items, 1)
	assert.Contains(t, items[0], "lfs")
	assert.Equal(t, "seed", items[0]["lastCommit"].(map[string]any)["title"])

	r = c.do("GET", "/api/datasets/hubtest/d/commits/main", nil, nil)
	require.Equal(t, 200, r.status)
	list := treeItems(t, r)
	require.Len(t, list, 2)
	assert.Equal(t, "seed", list[0]["title"], "newest first")

	r = c.postJSON("/api/datasets/hubtest/d/super-squash/main", map[string]any{"message": "squashed"})
	require.Equal(t, 200, r.status, string(r.body))
	history := s.Commits("dataset", "hubtest/d")
	require.Len(t, history, 1)
	assert.Equal(t, "squashed", history[0].Summary)
	assert.Len(t, s.Files("dataset", "hubtest/d", "main"), 3, "squashing keeps the files")
}
