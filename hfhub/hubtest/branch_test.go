package hubtest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLFSFileTracksGitAttributes(t *testing.T) {
	s, c := newDatasetHub(t)
	repo := "datasets/hubtest/d"
	odd := []byte("binary-ish content of an odd extension")
	png := []byte("png")
	c.uploadLFS(repo, odd)
	c.uploadLFS(repo, png)

	r := c.commit(repo, "main", ndjson(t, header("lfs", nil),
		lfsLine("weights/my model[1].dat", odd), lfsLine("img/a.png", png)))
	require.Equal(t, 200, r.status, string(r.body))
	attrs, _ := s.File("dataset", "hubtest/d", "main", ".gitattributes")
	assert.True(t, strings.HasSuffix(string(attrs), "\nweights/my?model\\[1].dat filter=lfs diff=lfs merge=lfs -text\n"), string(attrs[len(attrs)-80:]))
	assert.Equal(t, 1, strings.Count(string(attrs), "img/a.png")+1, "png is already tracked: no line added")
	history := s.Commits("dataset", "hubtest/d")
	assert.Equal(t, []string{".gitattributes", "img/a.png", "weights/my model[1].dat"}, history[len(history)-1].Changed)

	// The next preupload of that path answers lfs even though it is small and text.
	r = c.postJSON("/api/"+repo+"/preupload/main", map[string]any{"files": []any{preuploadFile("weights/my model[1].dat", []byte("text"))}})
	require.Equal(t, 200, r.status)
	assert.Equal(t, "lfs", r.json(t)["files"].([]any)[0].(map[string]any)["uploadMode"])
	// ...and not for a sibling the escaped pattern must not match.
	r = c.postJSON("/api/"+repo+"/preupload/main", map[string]any{"files": []any{preuploadFile("weights/my model1.dat", []byte("text"))}})
	assert.Equal(t, "regular", r.json(t)["files"].([]any)[0].(map[string]any)["uploadMode"])
}

func TestFileFolderConflict(t *testing.T) {
	s, c := newDatasetHub(t)
	repo := "datasets/hubtest/d"
	require.Equal(t, 200, c.commit(repo, "main", ndjson(t, header("a", nil), fileLine("data/a.txt", []byte("a")))).status)
	head, _ := s.Head("dataset", "hubtest/d", "main")
	for _, lines := range [][]any{
		{fileLine("data", []byte("file over a folder"))},
		{fileLine("data/a.txt/b.txt", []byte("folder under a file"))},
	} {
		r := c.commit(repo, "main", ndjson(t, append([]any{header("conflict", nil)}, lines...)...))
		assert.Equal(t, 400, r.status, string(r.body))
		now, _ := s.Head("dataset", "hubtest/d", "main")
		assert.Equal(t, head, now)
	}
	// Replacing the folder by a file in one commit is fine.
	r := c.commit(repo, "main", ndjson(t, header("swap", nil),
		map[string]any{"key": "deletedFolder", "value": map[string]any{"path": "data"}}, fileLine("data", []byte("now a file"))))
	assert.Equal(t, 200, r.status, string(r.body))
}

func TestBranchesAndRefs(t *testing.T) {
	s := newTeamServer(t, nil)
	require.NoError(t, s.CreateRepo("dataset", "alice/d", false))
	c := newClient(t, s, aliceToken)
	mainHead, _ := s.Head("dataset", "alice/d", "main")

	r := c.do("POST", "/api/datasets/alice/d/branch/feature%2Fx", nil, nil)
	require.Equal(t, 200, r.status, string(r.body))
	r = c.do("POST", "/api/datasets/alice/d/branch/feature%2Fx", nil, nil)
	assert.Equal(t, 409, r.status)
	r = c.commit("datasets/alice/d", "feature%2Fx", ndjson(t, header("on a branch", nil), fileLine("f.txt", []byte("f"))))
	require.Equal(t, 200, r.status, string(r.body))
	r = c.do("GET", "/datasets/alice/d/resolve/feature%2Fx/f.txt", nil, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "f", string(r.body))
	now, _ := s.Head("dataset", "alice/d", "main")
	assert.Equal(t, mainHead, now)

	r = c.postJSON("/api/datasets/alice/d/branch/from-old", map[string]any{"startingPoint": mainHead})
	require.Equal(t, 200, r.status, string(r.body))
	r = c.commit("datasets/alice/d", "main?create_pr=1", ndjson(t, header("pr", nil), fileLine("p.txt", []byte("p"))))
	require.Equal(t, 200, r.status)

	r = c.do("GET", "/api/datasets/alice/d/refs?include_prs=1", nil, nil)
	require.Equal(t, 200, r.status)
	m := r.json(t)
	var names []string
	for _, b := range m["branches"].([]any) {
		names = append(names, b.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{"feature/x", "from-old", "main"}, names)
	prs := m["pullRequests"].([]any)
	require.Len(t, prs, 1)
	assert.Equal(t, "refs/pr/1", prs[0].(map[string]any)["ref"])

	bad := []struct {
		name, method, path, token string
		status                    int
	}{
		{"branch named like a PR ref", "POST", "/api/datasets/alice/d/branch/refs%2Fpr%2F9", aliceToken, 400},
		{"branch named like a commit", "POST", "/api/datasets/alice/d/branch/" + mainHead[:12], aliceToken, 400},
		{"unknown starting point", "POST", "/api/datasets/alice/d/branch/x", aliceToken, 404},
		{"read token", "POST", "/api/datasets/alice/d/branch/y", aliceRead, 403},
		{"delete main", "DELETE", "/api/datasets/alice/d/branch/main", aliceToken, 403},
		{"delete missing", "DELETE", "/api/datasets/alice/d/branch/nope", aliceToken, 404},
		{"wrong method", "PUT", "/api/datasets/alice/d/branch/z", aliceToken, 405},
	}
	for _, tt := range bad {
		body := []byte(nil)
		if tt.name == "unknown starting point" {
			body = []byte(`{"startingPoint":"nope"}`)
		}
		r := newClient(t, s, tt.token).do(tt.method, tt.path, map[string]string{"Content-Type": "application/json"}, body)
		assert.Equal(t, tt.status, r.status, "%s: %s", tt.name, r.body)
	}
	r = c.do("DELETE", "/api/datasets/alice/d/branch/from-old", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	_, ok := s.Head("dataset", "alice/d", "from-old")
	assert.False(t, ok)
}

func TestLiteralPRRevision(t *testing.T) {
	_, c := newDatasetHub(t)
	r := c.commit("datasets/hubtest/d", "main?create_pr=1", ndjson(t, header("pr", nil), fileLine("p.txt", []byte("p"))))
	require.Equal(t, 200, r.status)
	// huggingface.js sends some revisions unescaped; refs/pr/N is recognised either way.
	r = c.do("GET", "/datasets/hubtest/d/resolve/refs/pr/1/p.txt", nil, nil)
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "p", string(r.body))
	r = c.do("GET", "/api/datasets/hubtest/d/tree/refs/pr/1", nil, nil)
	require.Equal(t, 200, r.status, string(r.body))
	r = c.do("GET", "/datasets/hubtest/d/resolve/refs%2Fpr%2F2/p.txt", nil, nil)
	assert.Equal(t, "RevisionNotFound", r.header.Get("X-Error-Code"))
}

func TestHelperErrors(t *testing.T) {
	s := New(nil)
	assert.Error(t, s.CreateRepo("dataset", "no-namespace", false))
	assert.Error(t, s.CreateRepo("datasheet", "a/b", false))
	assert.Error(t, s.CreateRepo("dataset", "a/bad name", false))
	require.NoError(t, s.CreateRepo("datasets", "a/b", false), "plural types are accepted")
	assert.Error(t, s.CreateRepo("dataset", "a/b", false), "already exists")
	require.NoError(t, s.CreateRepo("space", "a/app", true))
	readme, ok := s.File("space", "a/app", "main", "README.md")
	require.True(t, ok)
	assert.Contains(t, string(readme), "sdk: static")

	_, err := s.Seed("dataset", "a/missing", "main", "x", nil)
	assert.ErrorIs(t, err, errNoRepo)
	_, err = s.Seed("dataset", "a/b", "nope", "x", nil)
	assert.Error(t, err)
	_, err = s.Seed("dataset", "a/b", "main", "x", map[string][]byte{"../x": nil})
	assert.Error(t, err)
	assert.Len(t, s.Commits("dataset", "a/b"), 1, "failed seeds change nothing")

	for _, miss := range [][2]string{{"dataset", "a/none"}, {"model", "a/b"}} {
		assert.Nil(t, s.Files(miss[0], miss[1], "main"))
		assert.Nil(t, s.Commits(miss[0], miss[1]))
		assert.Nil(t, s.LFSObjects(miss[0], miss[1]))
		_, ok := s.File(miss[0], miss[1], "main", ".gitattributes")
		assert.False(t, ok)
		_, ok = s.Stat(miss[0], miss[1], "main", ".gitattributes")
		assert.False(t, ok)
		_, ok = s.Head(miss[0], miss[1], "main")
		assert.False(t, ok)
	}
	assert.Nil(t, s.Files("dataset", "a/b", "nope"))
	_, ok = s.File("dataset", "a/b", "main", "nope")
	assert.False(t, ok)
	assert.Equal(t, []string{"dataset:a/b", "space:a/app"}, s.Repos())
}
