package hubtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleOf(content []byte) string {
	return base64.StdEncoding.EncodeToString(content[:min(512, len(content))])
}

func preuploadFile(path string, content []byte) map[string]any {
	return map[string]any{"path": path, "sample": sampleOf(content), "size": len(content)}
}

func TestPreuploadDecisions(t *testing.T) {
	s, c := newDatasetHub(t)
	require.NoError(t, s.CreateRepo("model", DefaultUser+"/m", false))
	existingText := []byte("old metadata\n")
	existingImg := []byte("old image")
	_, err := s.Seed("dataset", DefaultUser+"/d", "main", "seed", map[string][]byte{
		"data/metadata.jsonl": existingText, "data/old.png": existingImg,
		".gitignore": []byte("*.log\ntmp/\n!keep.log\n"),
	})
	require.NoError(t, err)
	head, _ := s.Head("dataset", DefaultUser+"/d", "main")

	binary := func(n int) []byte { b := bytes.Repeat([]byte{0xff, 0, 0x10}, n/3+1); return b[:n] }
	text := func(n int) []byte { return bytes.Repeat([]byte("a"), n) }
	tests := []struct {
		name   string
		repo   string
		file   map[string]any
		body   map[string]any // extra top-level fields
		mode   string
		ignore bool
		oid    string
	}{
		{"png in a dataset is lfs even when tiny", "datasets/hubtest/d", preuploadFile("data/a.png", []byte("tiny")), nil, "lfs", false, ""},
		{"jsonl is regular", "datasets/hubtest/d", preuploadFile("data/new.jsonl", []byte(`{"a":1}`)), nil, "regular", false, ""},
		{"binary over 1MB is lfs", "datasets/hubtest/d", preuploadFile("blob.dat", binary(1_000_001)), nil, "lfs", false, ""},
		{"binary under 1MB is regular", "datasets/hubtest/d", preuploadFile("blob.dat", binary(999_999)), nil, "regular", false, ""},
		{"text over 10MB is lfs", "datasets/hubtest/d", map[string]any{"path": "big.txt", "sample": sampleOf(text(512)), "size": 10_000_001}, nil, "lfs", false, ""},
		{"text of 5MB is regular", "datasets/hubtest/d", map[string]any{"path": "mid.txt", "sample": sampleOf(text(512)), "size": 5_000_000}, nil, "regular", false, ""},
		{"png in a model repo is regular", "models/hubtest/m", preuploadFile("a.png", []byte("tiny")), nil, "regular", false, ""},
		{"safetensors in a model repo is lfs", "models/hubtest/m", preuploadFile("model.safetensors", []byte("w")), nil, "lfs", false, ""},
		{"empty file", "datasets/hubtest/d", preuploadFile("empty.txt", nil), nil, "regular", false, ""},
		{"gitAttributes override", "datasets/hubtest/d", preuploadFile("x.jsonl", []byte("{}")), map[string]any{"gitAttributes": "*.jsonl filter=lfs diff=lfs merge=lfs -text\n"}, "lfs", false, ""},
		{"gitAttributes override unsets png", "datasets/hubtest/d", preuploadFile("x.png", []byte("p")), map[string]any{"gitAttributes": "*.txt filter=lfs\n"}, "regular", false, ""},
		{"repo .gitignore", "datasets/hubtest/d", preuploadFile("run.log", []byte("l")), nil, "regular", true, ""},
		{"repo .gitignore negation", "datasets/hubtest/d", preuploadFile("keep.log", []byte("l")), nil, "regular", false, ""},
		{"repo .gitignore directory", "datasets/hubtest/d", preuploadFile("tmp/a/b.txt", []byte("l")), nil, "regular", true, ""},
		{"gitIgnore override", "datasets/hubtest/d", preuploadFile("run.log", []byte("l")), map[string]any{"gitIgnore": "*.csv\n"}, "regular", false, ""},
		{"existing regular file gives git sha1", "datasets/hubtest/d", preuploadFile("data/metadata.jsonl", []byte("new")), nil, "regular", false, GitBlobOID(existingText)},
		{"existing lfs file gives sha256", "datasets/hubtest/d", preuploadFile("data/old.png", []byte("new")), nil, "lfs", false, SHA256(existingImg)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"files": []any{tt.file}}
			for k, v := range tt.body {
				body[k] = v
			}
			r := c.postJSON("/api/"+tt.repo+"/preupload/main", body)
			require.Equal(t, 200, r.status, string(r.body))
			m := r.json(t)
			files := m["files"].([]any)
			require.Len(t, files, 1)
			f := files[0].(map[string]any)
			assert.Equal(t, tt.file["path"], f["path"])
			assert.Equal(t, tt.mode, f["uploadMode"])
			require.Contains(t, f, "shouldIgnore", "shouldIgnore must always be present")
			assert.Equal(t, tt.ignore, f["shouldIgnore"])
			if tt.oid == "" {
				assert.NotContains(t, f, "oid")
			} else {
				assert.Equal(t, tt.oid, f["oid"])
			}
			assert.NotEmpty(t, m["commitOid"])
		})
	}
	r := c.postJSON("/api/datasets/hubtest/d/preupload/main", map[string]any{"files": []any{}})
	require.Equal(t, 200, r.status)
	assert.Equal(t, head, r.json(t)["commitOid"])
}

func TestPreuploadValidation(t *testing.T) {
	_, c := newDatasetHub(t)
	many := make([]any, 257)
	for i := range many {
		many[i] = preuploadFile(fmt.Sprintf("f%d.txt", i), []byte("x"))
	}
	exactly := many[:256]
	tests := []struct {
		name   string
		rev    string
		body   any
		status int
		code   string
		msg    string
	}{
		{"files missing", "main", map[string]any{}, 400, "", "files"},
		{"path not a string", "main", map[string]any{"files": []any{map[string]any{"path": 3, "sample": "", "size": 0}}}, 400, "", "path"},
		{"absolute path", "main", map[string]any{"files": []any{preuploadFile("/a.txt", []byte("a"))}}, 400, "", "absolute"},
		{"dotdot path", "main", map[string]any{"files": []any{preuploadFile("a/../b.txt", []byte("a"))}}, 400, "", ".."},
		{".git component", "main", map[string]any{"files": []any{preuploadFile(".git/config", []byte("a"))}}, 400, "", ".git"},
		{"sample not base64", "main", map[string]any{"files": []any{map[string]any{"path": "a", "sample": "@@@", "size": 2}}}, 400, "", "base64"},
		{"sample without padding", "main", map[string]any{"files": []any{map[string]any{"path": "a", "sample": "YWI", "size": 2}}}, 400, "", "base64"},
		{"sample too short", "main", map[string]any{"files": []any{map[string]any{"path": "a", "sample": base64.StdEncoding.EncodeToString([]byte("ab")), "size": 600}}}, 400, "", "min(512, size)"},
		{"sample longer than 512", "main", map[string]any{"files": []any{map[string]any{"path": "a", "sample": base64.StdEncoding.EncodeToString(make([]byte, 513)), "size": 513}}}, 400, "", "min(512, size)"},
		{"size not an integer", "main", map[string]any{"files": []any{map[string]any{"path": "a", "sample": "", "size": 1.5}}}, 400, "", "size"},
		{"size a string", "main", map[string]any{"files": []any{map[string]any{"path": "a", "sample": "", "size": "0"}}}, 400, "", "size"},
		{"negative size", "main", map[string]any{"files": []any{map[string]any{"path": "a", "sample": "", "size": -1}}}, 400, "", "size"},
		{"257 files", "main", map[string]any{"files": many}, 413, "", "256"},
		{"256 files is fine", "main", map[string]any{"files": exactly}, 200, "", ""},
		{"unknown revision", "nope", map[string]any{"files": []any{}}, 404, "RevisionNotFound", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.postJSON("/api/datasets/hubtest/d/preupload/"+tt.rev, tt.body)
			require.Equal(t, tt.status, r.status, string(r.body))
			assert.Equal(t, tt.code, r.header.Get("X-Error-Code"))
			if tt.msg != "" {
				assert.Contains(t, r.json(t)["error"], tt.msg)
			}
		})
	}
	// create_pr=1 accepts a revision that is not (yet) a branch.
	r := c.postJSON("/api/datasets/hubtest/d/preupload/nope?create_pr=1", map[string]any{"files": []any{}})
	assert.Equal(t, 200, r.status, string(r.body))
}

func batchBody(objects ...map[string]any) map[string]any {
	objs := make([]any, len(objects))
	for i, o := range objects {
		objs[i] = o
	}
	return map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart"}, "objects": objs,
		"hash_algo": "sha256", "ref": map[string]any{"name": "main"}}
}

func obj(content []byte) map[string]any {
	return map[string]any{"oid": SHA256(content), "size": len(content)}
}

func (c *client) batch(repoURLPath string, body any) resp {
	c.t.Helper()
	return c.do(http.MethodPost, "/"+repoURLPath+".git/info/lfs/objects/batch",
		map[string]string{"Content-Type": lfsMediaType, "Accept": lfsMediaType}, mustJSON(c.t, body))
}

func TestLFSBatchValidation(t *testing.T) {
	s, c := newDatasetHub(t)
	content := []byte("hello lfs")
	withAlgo := func(algo any) map[string]any { b := batchBody(obj(content)); b["hash_algo"] = algo; return b }
	noRef := batchBody(obj(content))
	delete(noRef, "ref")
	noAlgo := batchBody(obj(content))
	delete(noAlgo, "hash_algo")
	tests := []struct {
		name   string
		ctype  string
		body   any
		status int
		objErr int // expected per-object error code, 0 = none
	}{
		{"sha256", lfsMediaType, batchBody(obj(content)), 200, 0},
		{"sha_256 (huggingface.js)", lfsMediaType, withAlgo("sha_256"), 200, 0},
		{"missing hash_algo", lfsMediaType, noAlgo, 200, 0},
		{"missing ref (pull request)", lfsMediaType, noRef, 200, 0},
		{"media type with charset", lfsMediaType + "; charset=utf-8", batchBody(obj(content)), 200, 0},
		{"wrong media type", "application/json", batchBody(obj(content)), 415, 0},
		{"md5", lfsMediaType, withAlgo("md5"), 409, 0},
		{"download operation", lfsMediaType, map[string]any{"operation": "download", "objects": []any{obj(content)}}, 400, 0},
		{"objects missing", lfsMediaType, map[string]any{"operation": "upload"}, 400, 0},
		{"uppercase oid", lfsMediaType, batchBody(map[string]any{"oid": strings.ToUpper(SHA256(content)), "size": 9}), 200, 422},
		{"short oid", lfsMediaType, batchBody(map[string]any{"oid": "abc", "size": 9}), 200, 422},
		{"negative size", lfsMediaType, batchBody(map[string]any{"oid": SHA256(content), "size": -1}), 200, 422},
		{"size not a number", lfsMediaType, batchBody(map[string]any{"oid": SHA256(content), "size": "9"}), 200, 422},
		{"larger than the Hub allows", lfsMediaType, batchBody(map[string]any{"oid": SHA256(content), "size": 600_000_000_000}), 200, 422},
		{"more than 10000 parts", lfsMediaType, batchBody(map[string]any{"oid": SHA256(content), "size": 10_001 * 5 << 20}), 200, 422},
		{"unknown ref", lfsMediaType, map[string]any{"operation": "upload", "objects": []any{obj(content)}, "ref": map[string]any{"name": "nope"}}, 404, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(http.MethodPost, "/datasets/hubtest/d.git/info/lfs/objects/batch",
				map[string]string{"Content-Type": tt.ctype}, mustJSON(t, tt.body))
			require.Equal(t, tt.status, r.status, string(r.body))
			if tt.status != 200 {
				return
			}
			o := r.json(t)["objects"].([]any)[0].(map[string]any)
			if tt.objErr != 0 {
				require.Contains(t, o, "error")
				assert.EqualValues(t, tt.objErr, o["error"].(map[string]any)["code"])
				assert.NotContains(t, o, "actions")
				return
			}
			assert.NotContains(t, o, "error")
			upload := o["actions"].(map[string]any)["upload"].(map[string]any)
			assert.True(t, strings.HasPrefix(upload["href"].(string), s.URL()+"/"), "hrefs point at the fake itself")
		})
	}
	// Model repos: no prefix.
	require.NoError(t, s.CreateRepo("model", "hubtest/m", false))
	r := c.batch("hubtest/m", batchBody(obj(content)))
	assert.Equal(t, 200, r.status, string(r.body))
}

func TestLFSBasicUpload(t *testing.T) {
	s, c := newDatasetHub(t)
	anon := newClient(t, s, "")
	content := []byte("some image bytes")

	r := c.batch("datasets/hubtest/d", batchBody(obj(content)))
	require.Equal(t, 200, r.status)
	m := r.json(t)
	assert.Equal(t, "basic", m["transfer"])
	o := m["objects"].([]any)[0].(map[string]any)
	actions := o["actions"].(map[string]any)
	href := actions["upload"].(map[string]any)["href"].(string)
	assert.NotContains(t, actions["upload"].(map[string]any), "header", "basic uploads carry no chunk_size header")
	verify := actions["verify"].(map[string]any)["href"].(string)
	assert.Equal(t, s.URL()+"/datasets/hubtest/d.git/info/lfs/objects/verify", verify)

	// Verify before upload: absent.
	r = c.postJSON(verify, obj(content))
	assert.Equal(t, 404, r.status)

	bad := []struct {
		name   string
		client *client
		href   string
		body   []byte
		status int
	}{
		{"wrong content", anon, href, []byte("other image bytes"), 400},
		{"wrong size", anon, href, content[:5], 400},
		{"token sent to storage", c, href, content, 400},
		{"tampered signature", anon, strings.Replace(href, "sig=", "sig=0", 1), content, 403},
		{"tampered size", anon, strings.Replace(href, "size=16", "size=17", 1), append(content, 'x'), 403},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.client.do(http.MethodPut, tt.href, nil, tt.body)
			assert.Equal(t, tt.status, r.status, string(r.body))
			assert.Empty(t, s.LFSObjects("dataset", "hubtest/d"), "a refused upload stores nothing")
		})
	}

	r = anon.do(http.MethodPut, href, nil, content)
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, map[string]int64{SHA256(content): int64(len(content))}, s.LFSObjects("dataset", "hubtest/d"))

	r = c.postJSON(verify, obj(content))
	assert.Equal(t, 200, r.status, string(r.body))
	r = c.postJSON(verify, map[string]any{"oid": SHA256(content), "size": 3})
	assert.Equal(t, 422, r.status)
	r = anon.postJSON(verify, obj(content))
	assert.Equal(t, 401, r.status, "verify needs the token")

	// Already stored: no actions.
	r = c.batch("datasets/hubtest/d", batchBody(obj(content)))
	o = r.json(t)["objects"].([]any)[0].(map[string]any)
	assert.NotContains(t, o, "actions")
	assert.NotContains(t, o, "error")

	// Storage is per repo: another repo must upload it again and cannot commit it.
	c.createDataset("other")
	r = c.batch("datasets/hubtest/other", batchBody(obj(content)))
	assert.Contains(t, r.json(t)["objects"].([]any)[0].(map[string]any), "actions")
	r = c.commit("datasets/hubtest/other", "main", ndjson(t, header("steal", nil), lfsLine("a.png", content)))
	assert.Equal(t, 400, r.status)
	assert.Contains(t, r.json(t)["error"], "LFS pointer pointed to a file that does not exist")
}

func TestLFSMultipartUpload(t *testing.T) {
	s := NewServer(&Options{MultipartThreshold: 100, ChunkSize: 40})
	defer s.Close()
	c := newClient(t, s, DefaultToken)
	anon := newClient(t, s, "")
	c.createDataset("d")
	content := bytes.Repeat([]byte("0123456789"), 11) // 110 bytes → 3 parts of 40, 40, 30

	start := func(t *testing.T) (string, []string) {
		r := c.batch("datasets/hubtest/d", batchBody(obj(content)))
		require.Equal(t, 200, r.status)
		m := r.json(t)
		assert.Equal(t, "multipart", m["transfer"])
		upload := m["objects"].([]any)[0].(map[string]any)["actions"].(map[string]any)["upload"].(map[string]any)
		h := upload["header"].(map[string]any)
		assert.Equal(t, "40", h["chunk_size"])
		var keys []string
		for k := range h {
			if _, err := strconv.Atoi(k); err == nil {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		require.Equal(t, []string{"00001", "00002", "00003"}, keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, h[k].(string))
		}
		return upload["href"].(string), parts
	}
	putParts := func(t *testing.T, parts []string) []map[string]any {
		var out []map[string]any
		for i, u := range parts {
			chunk := content[i*40 : min((i+1)*40, len(content))]
			r := anon.do(http.MethodPut, u, nil, chunk)
			require.Equal(t, 200, r.status, string(r.body))
			etag := r.header.Get("ETag")
			require.True(t, strings.HasPrefix(etag, `"`) && strings.HasSuffix(etag, `"`), "quoted ETag, got %q", etag)
			out = append(out, map[string]any{"partNumber": i + 1, "etag": etag})
		}
		return out
	}

	t.Run("completion errors", func(t *testing.T) {
		complete, parts := start(t)
		done := putParts(t, parts)
		tests := []struct {
			name string
			body map[string]any
		}{
			{"wrong oid", map[string]any{"oid": SHA256([]byte("x")), "parts": done}},
			{"missing part", map[string]any{"oid": SHA256(content), "parts": done[:2]}},
			{"out of order", map[string]any{"oid": SHA256(content), "parts": []any{done[1], done[0], done[2]}}},
			{"wrong etag", map[string]any{"oid": SHA256(content), "parts": []any{done[0], map[string]any{"partNumber": 2, "etag": `"deadbeef"`}, done[2]}}},
		}
		for _, tt := range tests {
			r := anon.do(http.MethodPost, complete, map[string]string{"Content-Type": lfsMediaType}, mustJSON(t, tt.body))
			assert.Equal(t, 400, r.status, "%s: %s", tt.name, r.body)
		}
		assert.Empty(t, s.LFSObjects("dataset", "hubtest/d"))
		// A corrupted part makes the assembled hash wrong.
		r := anon.do(http.MethodPut, parts[1], nil, bytes.Repeat([]byte("x"), 40))
		done[1]["etag"] = r.header.Get("ETag")
		r = anon.do(http.MethodPost, complete, map[string]string{"Content-Type": lfsMediaType}, mustJSON(t, map[string]any{"oid": SHA256(content), "parts": done}))
		assert.Equal(t, 400, r.status)
		assert.Contains(t, r.json(t)["error"], "assembled")
		// Part number out of range, token on a part URL.
		r = anon.do(http.MethodPut, strings.TrimSuffix(parts[0], "/1")+"/9", nil, []byte("x"))
		assert.Equal(t, 400, r.status)
		r = c.do(http.MethodPut, parts[0], nil, content[:40])
		assert.Equal(t, 400, r.status, "token on a pre-signed part URL is refused")
	})

	t.Run("success", func(t *testing.T) {
		complete, parts := start(t)
		done := putParts(t, parts)
		// Unquoted ETags are accepted too, as S3 does.
		done[0]["etag"] = strings.Trim(done[0]["etag"].(string), `"`)
		r := anon.do(http.MethodPost, complete, map[string]string{"Content-Type": lfsMediaType, "Accept": lfsMediaType},
			mustJSON(t, map[string]any{"oid": SHA256(content), "parts": done}))
		require.Equal(t, 200, r.status, string(r.body))
		assert.Equal(t, map[string]int64{SHA256(content): 110}, s.LFSObjects("dataset", "hubtest/d"))
		r = anon.do(http.MethodPost, complete, map[string]string{"Content-Type": lfsMediaType}, mustJSON(t, map[string]any{"oid": SHA256(content), "parts": done}))
		assert.Equal(t, 404, r.status, "a completed upload cannot be completed again")
		r = c.commit("datasets/hubtest/d", "main", ndjson(t, header("big", nil), lfsLine("big.bin", content)))
		require.Equal(t, 200, r.status, string(r.body))
		got, _ := s.File("dataset", "hubtest/d", "main", "big.bin")
		assert.Equal(t, content, got)
	})

	t.Run("basic only client gets basic", func(t *testing.T) {
		other := bytes.Repeat([]byte("z"), 150)
		b := batchBody(obj(other))
		b["transfers"] = []string{"basic"}
		r := c.batch("datasets/hubtest/d", b)
		require.Equal(t, 200, r.status)
		assert.Equal(t, "basic", r.json(t)["transfer"])
	})
}
