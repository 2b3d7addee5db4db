package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/hfhub/hubtest"
)

const (
	token     = "hf_push_SECRET_write"
	readToken = "hf_push_SECRET_read"
)

func newHub(t *testing.T) *hubtest.Server {
	t.Helper()
	srv := hubtest.NewServer(&hubtest.Options{Tokens: map[string]hubtest.TokenInfo{
		token:     {User: "alice", Role: "write"},
		readToken: {User: "bob", Role: "read"},
	}})
	t.Cleanup(srv.Close)
	return srv
}

func datasetFolder(t *testing.T, images int) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("README.md", "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: \"data/**\"\n---\n# flags\n")
	var meta strings.Builder
	for i := range images {
		write(fmt.Sprintf("data/s1/%d.png", i), fmt.Sprintf("\x89PNG fake image %d", i))
		fmt.Fprintf(&meta, "{\"file_name\": \"%d.png\", \"label\": %d}\n", i, i%10)
	}
	write("data/s1/metadata.jsonl", meta.String())
	write(".cache/huggingface/state.json", "{}")
	return dir
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRun(t *testing.T) {
	srv := newHub(t)
	folder := datasetFolder(t, 12)
	noTokenFile := filepath.Join(t.TempDir(), "none")
	goodEnv := map[string]string{"HF_ENDPOINT": srv.URL(), "HF_TOKEN": token, "HF_TOKEN_PATH": noTokenFile}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStderr string
		noRequests bool
	}{
		{"missing -repo", []string{folder}, goodEnv, 2, "-repo is required", true},
		{"missing -repo, flags after the folder", []string{folder, "-private"}, goodEnv, 2, "-repo is required", true},
		{"two folders", []string{"-repo", "alice/flags", folder, "-private", folder}, goodEnv, 2, "exactly one folder to upload (got 2 arguments", true},
		{"bad flag after the folder", []string{folder, "-nope"}, goodEnv, 2, "usage", true},
		{"invalid repo id", []string{"-repo", "alice/bad name", folder}, goodEnv, 2, "invalid repo id", true},
		{"repo without owner", []string{"-repo", "flags", folder}, goodEnv, 2, "owner/name", true},
		{"no folder argument", []string{"-repo", "alice/flags"}, goodEnv, 2, "exactly one folder", true},
		{"missing folder", []string{"-repo", "alice/flags", filepath.Join(folder, "nope")}, goodEnv, 2, "does not exist", true},
		{"file instead of folder", []string{"-repo", "alice/flags", filepath.Join(folder, "README.md")}, goodEnv, 2, "is a file", true},
		{"empty folder", []string{"-repo", "alice/flags", t.TempDir()}, goodEnv, 2, "no files", true},
		{"no token", []string{"-repo", "alice/flags", folder}, map[string]string{"HF_ENDPOINT": srv.URL(), "HF_TOKEN_PATH": noTokenFile}, 2, "set HF_TOKEN", true},
		{"wrong token", []string{"-repo", "alice/flags", folder}, map[string]string{"HF_ENDPOINT": srv.URL(), "HF_TOKEN": "hf_wrong_SECRET", "HF_TOKEN_PATH": noTokenFile}, 1, "rejected the token", false},
		{"read-only token", []string{"-repo", "alice/flags", folder}, map[string]string{"HF_ENDPOINT": srv.URL(), "HF_TOKEN": readToken, "HF_TOKEN_PATH": noTokenFile}, 1, "read-only", false},
		{"someone else's namespace", []string{"-repo", "carol/flags", folder}, goodEnv, 1, "may not create or write carol/flags", false},
		{"bad flag", []string{"-nope"}, goodEnv, 2, "usage", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetRequests()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, envOf(tt.env), &stdout, &stderr)
			assert.Equal(t, tt.wantCode, code, stderr.String())
			assert.Contains(t, stderr.String(), tt.wantStderr)
			assert.Empty(t, stdout.String())
			assert.NotContains(t, stderr.String(), "SECRET")
			if tt.noRequests {
				assert.Empty(t, srv.Requests(), "bad input is caught before contacting the Hub")
			}
			for _, r := range srv.Requests() {
				assert.NotEqual(t, hubtest.OpPreupload, r.Op, "nothing uploaded")
				assert.NotEqual(t, hubtest.OpCommit, r.Op, "nothing committed")
			}
		})
	}
	assert.Empty(t, srv.Repos(), "no repo was created by a failing run")
}

func TestRunUploadsInOneCommit(t *testing.T) {
	srv := newHub(t)
	folder := datasetFolder(t, 300)
	env := envOf(map[string]string{"HF_ENDPOINT": srv.URL(), "HF_TOKEN": token, "HF_TOKEN_PATH": filepath.Join(t.TempDir(), "none")})
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-repo", "alice/flags", "-private", folder}, env, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	commits := srv.Commits("dataset", "alice/flags")
	require.Len(t, commits, 2, "the repo's initial commit and one upload")
	head := commits[1]
	assert.Equal(t, srv.URL()+"/datasets/alice/flags/commit/"+head.OID+"\n", stdout.String())
	assert.Len(t, srv.RequestsFor(hubtest.OpPreupload), 2, "302 files in preupload batches of ≤256")
	files := srv.Files("dataset", "alice/flags", "main")
	assert.Len(t, files, 303) // README, metadata, 300 images, .gitattributes
	assert.NotContains(t, files, ".cache/huggingface/state.json")
	got, ok := srv.File("dataset", "alice/flags", "main", "data/s1/7.png")
	require.True(t, ok)
	assert.Equal(t, "\x89PNG fake image 7", string(got))

	// Running it again changes nothing and still prints a URL.
	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{"-repo", "alice/flags", folder}, env, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stderr.String(), "nothing changed")
	assert.Len(t, srv.Commits("dataset", "alice/flags"), 2)
	assert.Contains(t, stdout.String(), head.OID)

	// Limits force several commits.
	folder2 := datasetFolder(t, 9)
	stdout.Reset()
	code = run(context.Background(), []string{"-repo", "alice/other", "-max-files-per-commit", "4", folder2}, env, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Len(t, srv.Commits("dataset", "alice/other"), 1+3) // 11 files in commits of 4
}

// TestFlagsAfterTheFolder (issue 11, small things): "hub-push DIR -repo x"
// used to say "-repo is required"; flags may follow the folder, and after
// "--" everything is the folder.
func TestFlagsAfterTheFolder(t *testing.T) {
	srv := newHub(t)
	folder := datasetFolder(t, 3)
	env := envOf(map[string]string{"HF_ENDPOINT": srv.URL(), "HF_TOKEN": token, "HF_TOKEN_PATH": filepath.Join(t.TempDir(), "none")})
	tests := []struct {
		name    string
		args    []string
		repo    string
		private bool
	}{
		{"all flags after", []string{folder, "-repo", "alice/after"}, "alice/after", false},
		{"flags on both sides", []string{"-private", folder, "-repo", "alice/both", "-message", "hello"}, "alice/both", true},
		{"-- ends the flags", []string{"-repo", "alice/dashes", "--", folder}, "alice/dashes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, env, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			commits := srv.Commits("dataset", tt.repo)
			require.Len(t, commits, 2, "the repo's initial commit and the upload")
			assert.Equal(t, srv.URL()+"/datasets/"+tt.repo+"/commit/"+commits[1].OID+"\n", stdout.String())
			// A private repo is invisible without a token.
			resp, err := http.Get(srv.URL() + "/api/datasets/" + tt.repo)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, map[bool]int{false: http.StatusOK, true: http.StatusUnauthorized}[tt.private], resp.StatusCode)
		})
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-repo", "alice/x", "--", folder, "-private"}, env, &stdout, &stderr)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), `exactly one folder to upload (got 2 arguments: ["`+folder+`" "-private"])`, "after -- a flag is an argument")
}

// TestCredentialsInAnythingPrinted (issue 11): with credentials in
// HF_ENDPOINT, hub-push printed the token in "cannot reach the Hub at ...".
// Such an endpoint is refused before any request, with the fix, and the
// token appears nowhere in the output, whether the Hub is up or not.
func TestCredentialsInAnythingPrinted(t *testing.T) {
	const secret = "SEKRET42"
	srv := newHub(t)
	folder := datasetFolder(t, 2)
	host := strings.TrimPrefix(srv.URL(), "http://")
	dead := "127.0.0.1:1" // nothing listens on port 1
	tests := []struct {
		name, endpoint, wantFix string
	}{
		{"user and token", "http://user:" + secret + "@" + host, "set HF_ENDPOINT to http://" + host + " "},
		{"token as user", "http://" + secret + "@" + host, "set HF_ENDPOINT to http://" + host + " "},
		{"token query", "http://" + host + "/?token=" + secret, "set HF_ENDPOINT to http://" + host + "/ "},
		{"access_token query", "http://" + host + "?access_token=" + secret, "set HF_ENDPOINT to http://" + host + " "},
		{"unreachable with userinfo", "http://user:" + secret + "@" + dead, "set HF_ENDPOINT to http://" + dead + " "},
		{"unreachable with query", "http://" + dead + "?token=" + secret, "set HF_ENDPOINT to http://" + dead + " "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetRequests()
			env := envOf(map[string]string{"HF_ENDPOINT": tt.endpoint, "HF_TOKEN": token, "HF_TOKEN_PATH": filepath.Join(t.TempDir(), "none")})
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"-repo", "alice/flags", folder}, env, &stdout, &stderr)
			assert.Equal(t, 2, code)
			assert.Contains(t, stderr.String(), "REDACTED")
			assert.Contains(t, stderr.String(), tt.wantFix)
			assert.NotContains(t, stderr.String()+stdout.String(), secret)
			assert.NotContains(t, stderr.String()+stdout.String(), "SECRET")
			assert.Empty(t, srv.Requests(), "refused before contacting the Hub")
		})
	}
	// The unreachable message itself never carries credentials either.
	env := envOf(map[string]string{"HF_ENDPOINT": "http://" + dead, "HF_TOKEN": token, "HF_TOKEN_PATH": filepath.Join(t.TempDir(), "none")})
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-repo", "alice/flags", folder}, env, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "cannot reach the Hub at http://"+dead)
	assert.NotContains(t, stderr.String(), "SECRET")
}
