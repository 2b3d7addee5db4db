package hubtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// client is a tiny raw HTTP helper for tests.
type client struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

// with returns a copy of c that reports to t (a subtest's).
func (c *client) with(t *testing.T) *client {
	cp := *c
	cp.t = t
	return &cp
}

func newClient(t *testing.T, s *Server, token string) *client {
	hc := &http.Client{
		// No Timeout: a hang is caught by the test binary's -timeout, and a
		// slow machine (-race, 2 cores) must not fail a correct answer.
		// Do not follow redirects: tests look at the 302 itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &client{t: t, base: s.URL(), token: token, hc: hc}
}

// newDatasetHub starts a Server holding the dataset hubtest/d, created through
// the API, and a client with the default token. The server is closed when
// the test ends.
func newDatasetHub(t *testing.T) (*Server, *client) {
	t.Helper()
	s := NewServer(nil)
	t.Cleanup(s.Close)
	c := newClient(t, s, DefaultToken)
	c.createDataset("d")
	return s, c
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

func (c *client) do(method, path string, header map[string]string, body []byte) resp {
	c.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(c.t, err)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return resp{res.StatusCode, res.Header, data}
}

func (c *client) postJSON(path string, v any) resp {
	c.t.Helper()
	data, err := json.Marshal(v)
	require.NoError(c.t, err)
	return c.do(http.MethodPost, path, map[string]string{"Content-Type": "application/json"}, data)
}

func (c *client) createDataset(name string) {
	c.t.Helper()
	r := c.postJSON("/api/repos/create", map[string]any{"name": name, "organization": nil, "type": "dataset"})
	require.Equal(c.t, http.StatusOK, r.status, string(r.body))
}

func ndjson(t *testing.T, lines ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		data, err := json.Marshal(l)
		require.NoError(t, err)
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func header(summary string, extra map[string]any) map[string]any {
	v := map[string]any{"summary": summary, "description": ""}
	for k, x := range extra {
		v[k] = x
	}
	return map[string]any{"key": "header", "value": v}
}

func fileLine(path string, content []byte) map[string]any {
	return map[string]any{"key": "file", "value": map[string]any{
		"path": path, "content": base64.StdEncoding.EncodeToString(content), "encoding": "base64"}}
}

func lfsLine(path string, content []byte) map[string]any {
	return map[string]any{"key": "lfsFile", "value": map[string]any{
		"path": path, "algo": "sha256", "oid": SHA256(content), "size": len(content)}}
}

func (c *client) commit(repoPath, rev string, body []byte) resp {
	c.t.Helper()
	return c.do(http.MethodPost, "/api/"+repoPath+"/commit/"+rev,
		map[string]string{"Content-Type": "application/x-ndjson"}, body)
}

// uploadLFS runs batch + basic PUT (+ verify) for content, returning the batch answer.
func (c *client) uploadLFS(repoURLPath string, content []byte) map[string]any {
	c.t.Helper()
	r := c.do(http.MethodPost, "/"+repoURLPath+".git/info/lfs/objects/batch",
		map[string]string{"Content-Type": lfsMediaType, "Accept": lfsMediaType},
		mustJSON(c.t, map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart"},
			"objects":   []any{map[string]any{"oid": SHA256(content), "size": len(content)}},
			"hash_algo": "sha256", "ref": map[string]any{"name": "main"}}))
	require.Equal(c.t, http.StatusOK, r.status, string(r.body))
	batch := r.json(c.t)
	obj := batch["objects"].([]any)[0].(map[string]any)
	actions, ok := obj["actions"].(map[string]any)
	if !ok {
		return batch
	}
	upload := actions["upload"].(map[string]any)
	anon := &client{t: c.t, base: c.base, hc: c.hc}
	put := anon.do(http.MethodPut, upload["href"].(string), nil, content)
	require.Equal(c.t, http.StatusOK, put.status, string(put.body))
	verify := actions["verify"].(map[string]any)
	v := c.postJSON(verify["href"].(string), map[string]any{"oid": SHA256(content), "size": len(content)})
	require.Equal(c.t, http.StatusOK, v.status, string(v.body))
	return batch
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return data
}

func TestEndToEndDatasetFlow(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	c := newClient(t, s, DefaultToken)

	r := c.do(http.MethodGet, "/api/whoami-v2", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, DefaultUser, r.json(t)["name"])
	assert.NotEmpty(t, r.header.Get("X-Request-Id"))

	r = c.postJSON("/api/repos/create", map[string]any{"name": "flags", "organization": nil, "type": "dataset", "private": true})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, s.URL()+"/datasets/hubtest/flags", r.json(t)["url"])
	assert.Equal(t, "hubtest/flags", r.json(t)["name"])

	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0, 1, 2}, 100)...)
	meta := []byte(`{"file_name": "a.png", "label": 3}` + "\n")
	r = c.postJSON("/api/datasets/hubtest/flags/preupload/main", map[string]any{"files": []any{
		map[string]any{"path": "data/s1/a.png", "sample": base64.StdEncoding.EncodeToString(png), "size": len(png)},
		map[string]any{"path": "data/s1/metadata.jsonl", "sample": base64.StdEncoding.EncodeToString(meta), "size": len(meta)},
	}})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	files := r.json(t)["files"].([]any)
	assert.Equal(t, "lfs", files[0].(map[string]any)["uploadMode"])
	assert.Equal(t, "regular", files[1].(map[string]any)["uploadMode"])
	assert.Equal(t, false, files[1].(map[string]any)["shouldIgnore"])

	c.uploadLFS("datasets/hubtest/flags", png)
	r = c.commit("datasets/hubtest/flags", "main", ndjson(t, header("Add flag", nil),
		lfsLine("data/s1/a.png", png), fileLine("data/s1/metadata.jsonl", meta)))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	out := r.json(t)
	oid := out["commitOid"].(string)
	assert.Len(t, oid, 40)
	assert.Equal(t, s.URL()+"/datasets/hubtest/flags/commit/"+oid, out["commitUrl"])
	assert.NotContains(t, out, "pullRequestUrl")

	got, ok := s.File("dataset", "hubtest/flags", "main", "data/s1/a.png")
	require.True(t, ok)
	assert.Equal(t, png, got)
	commits := s.Commits("dataset", "hubtest/flags")
	require.Len(t, commits, 2)
	assert.Equal(t, "initial commit", commits[0].Summary)
	assert.Equal(t, []string{"data/s1/a.png", "data/s1/metadata.jsonl"}, commits[1].Changed)

	r = c.do(http.MethodGet, "/api/datasets/hubtest/flags", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, oid, r.json(t)["sha"])

	r = c.do(http.MethodGet, "/datasets/hubtest/flags/resolve/main/data/s1/metadata.jsonl", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, meta, r.body)
	assert.Equal(t, `"`+GitBlobOID(meta)+`"`, r.header.Get("ETag"))
	assert.Equal(t, oid, r.header.Get("X-Repo-Commit"))

	for _, rq := range s.RequestsFor(OpLFSPut) {
		assert.Empty(t, rq.Header.Get("Authorization"), "token leaked to a pre-signed URL")
	}
}
