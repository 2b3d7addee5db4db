package hubtest

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	aliceToken = "hf_alice_write"
	aliceRead  = "hf_alice_read"
	bobToken   = "hf_bob_write"
)

func newTeamServer(t *testing.T, opts *Options) *Server {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Tokens = map[string]TokenInfo{
		aliceToken: {User: "alice", Orgs: []string{"acme"}, Role: "write"},
		aliceRead:  {User: "alice", Role: "read"},
		bobToken:   {User: "bob"},
	}
	s := NewServer(&o)
	t.Cleanup(s.Close)
	return s
}

func TestAuthAndErrorHeaders(t *testing.T) {
	s := newTeamServer(t, nil)
	require.NoError(t, s.CreateRepo("dataset", "alice/private", true))
	require.NoError(t, s.CreateRepo("dataset", "alice/public", false))
	_, err := s.Seed("dataset", "alice/private", "main", "seed", map[string][]byte{"a.txt": []byte("a")})
	require.NoError(t, err)

	commitBody := ndjson(t, header("x", nil), fileLine("b.txt", []byte("b")))
	tests := []struct {
		name        string
		token       string
		method      string
		path        string
		contentType string
		body        []byte
		status      int
		errMessage  string // expected X-Error-Message ("" = not checked)
		errCode     string // expected X-Error-Code
	}{
		{"whoami without token", "", "GET", "/api/whoami-v2", "", nil, 401, "", ""},
		{"whoami bad token", "hf_nope", "GET", "/api/whoami-v2", "", nil, 401, "Invalid credentials in Authorization header", ""},
		{"bad token on a read", "hf_nope", "GET", "/api/datasets/alice/public", "", nil, 401, "Invalid credentials in Authorization header", ""},
		{"create without token", "", "POST", "/api/repos/create", "application/json", []byte(`{"name":"x","type":"dataset"}`), 401, "", ""},
		{"create with read token", aliceRead, "POST", "/api/repos/create", "application/json", []byte(`{"name":"x","type":"dataset"}`), 403, "", ""},
		{"create in foreign namespace", bobToken, "POST", "/api/repos/create", "application/json", []byte(`{"name":"x","organization":"acme","type":"dataset"}`), 403, "", ""},
		{"commit with read token", aliceRead, "POST", "/api/datasets/alice/public/commit/main", "application/x-ndjson", commitBody, 403, "", ""},
		{"commit by non-member", bobToken, "POST", "/api/datasets/alice/public/commit/main", "application/x-ndjson", commitBody, 403, "", ""},
		{"commit without token", "", "POST", "/api/datasets/alice/public/commit/main", "application/x-ndjson", commitBody, 401, "", ""},
		{"preupload without token", "", "POST", "/api/datasets/alice/public/preupload/main", "application/json", []byte(`{"files":[]}`), 401, "", ""},
		{"lfs batch without token", "", "POST", "/datasets/alice/public.git/info/lfs/objects/batch", lfsMediaType, []byte(`{"operation":"upload","objects":[]}`), 401, "", ""},
		{"validate-yaml without token", "", "POST", "/api/validate-yaml", "application/json", []byte(`{"content":""}`), 401, "", ""},
		{"private info anonymous", "", "GET", "/api/datasets/alice/private", "", nil, 401, "Invalid username or password.", "RepoNotFound"},
		{"private resolve anonymous", "", "GET", "/datasets/alice/private/resolve/main/a.txt", "", nil, 401, "", "RepoNotFound"},
		{"private info other user", bobToken, "GET", "/api/datasets/alice/private", "", nil, 404, "", "RepoNotFound"},
		{"missing repo with token", bobToken, "GET", "/api/datasets/alice/nothing", "", nil, 404, "", "RepoNotFound"},
		{"missing repo anonymous", "", "GET", "/api/datasets/alice/nothing", "", nil, 401, "", "RepoNotFound"},
		{"private info owner", aliceToken, "GET", "/api/datasets/alice/private", "", nil, 200, "", ""},
		{"private info read token owner", aliceRead, "GET", "/api/datasets/alice/private", "", nil, 200, "", ""},
		{"public info anonymous", "", "GET", "/api/datasets/alice/public", "", nil, 200, "", ""},
		{"missing revision", aliceToken, "GET", "/api/datasets/alice/public/revision/nope", "", nil, 404, "", "RevisionNotFound"},
		{"missing file", aliceToken, "GET", "/datasets/alice/private/resolve/main/nope.txt", "", nil, 404, "", "EntryNotFound"},
		{"unknown route", aliceToken, "GET", "/api/unknown/thing", "", nil, 404, "", ""},
		{"wrong method", aliceToken, "POST", "/api/whoami-v2", "", nil, 405, "", ""},
		{"non-bearer scheme", "", "GET", "/api/whoami-v2", "", nil, 401, "Invalid credentials in Authorization header", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, s, tt.token)
			h := map[string]string{}
			if tt.contentType != "" {
				h["Content-Type"] = tt.contentType
			}
			if tt.name == "non-bearer scheme" {
				h["Authorization"] = "Basic YWxpY2U6cHc="
			}
			r := c.do(tt.method, tt.path, h, tt.body)
			require.Equal(t, tt.status, r.status, string(r.body))
			assert.NotEmpty(t, r.header.Get("X-Request-Id"), "every answer has X-Request-Id")
			if tt.status >= 400 {
				m := r.json(t)
				assert.NotEmpty(t, m["error"], "JSON error body")
				assert.Equal(t, m["error"], r.header.Get("X-Error-Message"))
			}
			if tt.errMessage != "" {
				assert.Equal(t, tt.errMessage, r.header.Get("X-Error-Message"))
			}
			if tt.status == 401 && tt.errMessage == "" && tt.token == "" {
				assert.NotEqual(t, "Invalid credentials in Authorization header", r.header.Get("X-Error-Message"),
					"anonymous 401s must not claim bad credentials, clients map them to RepoNotFound")
			}
			assert.Equal(t, tt.errCode, r.header.Get("X-Error-Code"))
		})
	}
}

func TestWhoamiShape(t *testing.T) {
	s := newTeamServer(t, nil)
	r := newClient(t, s, aliceToken).do("GET", "/api/whoami-v2", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	m := r.json(t)
	assert.Equal(t, "user", m["type"])
	assert.Equal(t, "alice", m["name"])
	orgs := m["orgs"].([]any)
	require.Len(t, orgs, 1)
	assert.Equal(t, "acme", orgs[0].(map[string]any)["name"])
	assert.Equal(t, "write", m["auth"].(map[string]any)["accessToken"].(map[string]any)["role"])

	r = newClient(t, s, aliceRead).do("GET", "/api/whoami-v2", nil, nil)
	assert.Equal(t, "read", r.json(t)["auth"].(map[string]any)["accessToken"].(map[string]any)["role"])
}

func TestCreateRepo(t *testing.T) {
	s := newTeamServer(t, nil)
	c := newClient(t, s, aliceToken)
	tests := []struct {
		name    string
		body    string
		status  int
		url     string // expected url ("" = not checked)
		private bool
		key     string // type:id created
	}{
		{"dataset, organization null, private bool", `{"name":"flags","organization":null,"type":"dataset","private":true}`, 200, "/datasets/alice/flags", true, "dataset:alice/flags"},
		{"visibility private", `{"name":"v","type":"dataset","visibility":"private"}`, 200, "/datasets/alice/v", true, "dataset:alice/v"},
		{"visibility public", `{"name":"pub","type":"dataset","visibility":"public"}`, 200, "/datasets/alice/pub", false, "dataset:alice/pub"},
		{"org namespace", `{"name":"shared","organization":"acme","type":"dataset"}`, 200, "/datasets/acme/shared", false, "dataset:acme/shared"},
		{"type defaults to model", `{"name":"net"}`, 200, "/alice/net", false, "model:alice/net"},
		{"space with sdk", `{"name":"app","type":"space","sdk":"gradio","private":false}`, 200, "/spaces/alice/app", false, "space:alice/app"},
		{"huggingface.js style full name", `{"name":"alice/jsrepo","type":"dataset"}`, 200, "/datasets/alice/jsrepo", false, "dataset:alice/jsrepo"},
		{"already exists", `{"name":"flags","organization":"alice","type":"dataset"}`, 409, "/datasets/alice/flags", false, ""},
		{"space without sdk", `{"name":"app2","type":"space"}`, 400, "", false, ""},
		{"protected on dataset", `{"name":"p","type":"dataset","visibility":"protected"}`, 400, "", false, ""},
		{"contradicting private and visibility", `{"name":"c","type":"dataset","private":true,"visibility":"public"}`, 400, "", false, ""},
		{"bad visibility", `{"name":"c","type":"dataset","visibility":"secret"}`, 400, "", false, ""},
		{"bad type", `{"name":"c","type":"datasets"}`, 400, "", false, ""},
		{"missing name", `{"type":"dataset"}`, 400, "", false, ""},
		{"invalid name", `{"name":"bad name!","type":"dataset"}`, 400, "", false, ""},
		{"double dash", `{"name":"a--b","type":"dataset"}`, 400, "", false, ""},
		{"malformed json", `{"name":`, 400, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Repos()
			r := c.do("POST", "/api/repos/create", map[string]string{"Content-Type": "application/json"}, []byte(tt.body))
			require.Equal(t, tt.status, r.status, string(r.body))
			if tt.url != "" {
				assert.Equal(t, s.URL()+tt.url, r.json(t)["url"])
			}
			if tt.status == 409 {
				assert.Equal(t, "You already created this dataset repo", r.json(t)["error"])
			}
			if tt.key == "" {
				assert.Equal(t, before, s.Repos(), "a refused create changes nothing")
				return
			}
			assert.Contains(t, s.Repos(), tt.key)
			assert.Len(t, r.json(t)["id"], 24)
		})
	}

	// New dataset repos start with one commit holding the dataset .gitattributes.
	commits := s.Commits("dataset", "alice/flags")
	require.Len(t, commits, 1)
	assert.Equal(t, []string{".gitattributes"}, commits[0].Changed)
	attrs, ok := s.File("dataset", "alice/flags", "main", ".gitattributes")
	require.True(t, ok)
	assert.Equal(t, DefaultDatasetGitAttributes, string(attrs))
	modelAttrs, _ := s.File("model", "alice/net", "main", ".gitattributes")
	assert.Equal(t, DefaultGitAttributes, string(modelAttrs))

	// Private repos are private to others; their existence is not revealed.
	r := newClient(t, s, bobToken).do("GET", "/api/datasets/alice/flags", nil, nil)
	assert.Equal(t, 404, r.status)

	// Delete.
	r = c.do("DELETE", "/api/repos/delete", map[string]string{"Content-Type": "application/json"}, []byte(`{"name":"v","type":"dataset"}`))
	require.Equal(t, 200, r.status, string(r.body))
	assert.NotContains(t, s.Repos(), "dataset:alice/v")
}

func TestRepoInfo(t *testing.T) {
	s := newTeamServer(t, nil)
	require.NoError(t, s.CreateRepo("dataset", "alice/d", false))
	head, err := s.Seed("dataset", "alice/d", "main", "seed", map[string][]byte{
		"README.md": []byte("---\nlicense: mit\n---\n# d\n"),
		"img.png":   []byte("png bytes"),
	})
	require.NoError(t, err)
	c := newClient(t, s, "")

	r := c.do("GET", "/api/datasets/alice/d", nil, nil)
	require.Equal(t, 200, r.status)
	m := r.json(t)
	assert.Equal(t, head, m["sha"])
	assert.Equal(t, "alice/d", m["id"])
	assert.Equal(t, "alice", m["author"])
	assert.Equal(t, false, m["private"])
	assert.Equal(t, map[string]any{"license": "mit"}, m["cardData"])
	sibs := m["siblings"].([]any)
	require.Len(t, sibs, 3)
	assert.Equal(t, map[string]any{"rfilename": ".gitattributes"}, sibs[0])

	r = c.do("GET", "/api/datasets/alice/d/revision/main?blobs=true", nil, nil)
	require.Equal(t, 200, r.status)
	sibs = r.json(t)["siblings"].([]any)
	img := sibs[2].(map[string]any)
	assert.Equal(t, "img.png", img["rfilename"])
	assert.EqualValues(t, 9, img["size"])
	assert.Equal(t, SHA256([]byte("png bytes")), img["lfs"].(map[string]any)["sha256"])

	r = c.do("GET", "/api/datasets/alice/d?expand=xetEnabled", nil, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, map[string]any{"_id": r.json(t)["_id"], "id": "alice/d", "xetEnabled": false}, r.json(t))

	r = c.do("GET", "/api/datasets/alice/d?expand=sha&blobs=true", nil, nil)
	assert.Equal(t, 400, r.status)
	r = c.do("GET", "/api/datasets/alice/d?expand=nonsense", nil, nil)
	assert.Equal(t, 400, r.status)

	// By commit id (prefix) too.
	r = c.do("GET", "/api/datasets/alice/d/revision/"+head[:10], nil, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, head, r.json(t)["sha"])
}

func TestValidateYAML(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	c := newClient(t, s, DefaultToken)
	tests := []struct {
		name    string
		content string
		ok      bool
	}{
		{"no front matter", "# Title\n", true},
		{"valid configs", "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: \"data/**\"\nlicense: mit\ntags: [a, b]\n---\n# x\n", true},
		{"block scalar", "---\ndescription: |\n  line one\n  line: two\n---\n", true},
		{"empty front matter", "---\n---\n", true},
		{"unclosed front matter", "---\nlicense: mit\n# body\n", false},
		{"tab indentation", "---\nconfigs:\n\t- config_name: default\n---\n", false},
		{"not a mapping", "---\nlicense mit\n---\n", false},
		{"unclosed quote", "---\nlicense: \"mit\n---\n", false},
		{"unclosed bracket", "---\ntags: [a, b\n---\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.postJSON("/api/validate-yaml", map[string]any{"content": tt.content, "repoType": "dataset"})
			m := r.json(t)
			if tt.ok {
				require.Equal(t, 200, r.status, string(r.body))
				assert.Empty(t, m["errors"])
			} else {
				require.Equal(t, 400, r.status, string(r.body))
				assert.NotEmpty(t, m["errors"])
				assert.NotEmpty(t, m["errors"].([]any)[0].(map[string]any)["message"])
			}
			assert.NotNil(t, m["warnings"])
		})
	}
	r := c.postJSON("/api/validate-yaml", map[string]any{"repoType": "dataset"})
	assert.Equal(t, 400, r.status)
}
