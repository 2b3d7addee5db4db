package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-token", "hf_secret_dev", "-user", "alice", "-orgs", "acme", "-v"},
			&stdout, &stderr, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	base := "http://" + addr
	assert.Contains(t, stdout.String(), "HF_ENDPOINT="+base)

	get := func(token string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", base+"/api/whoami-v2", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var m map[string]any
		body, _ := io.ReadAll(res.Body)
		require.NoError(t, json.Unmarshal(body, &m), string(body))
		return res.StatusCode, m
	}
	status, who := get("hf_secret_dev")
	require.Equal(t, 200, status)
	assert.Equal(t, "alice", who["name"])
	assert.Equal(t, "acme", who["orgs"].([]any)[0].(map[string]any)["name"])
	status, _ = get("hf_other")
	assert.Equal(t, 401, status)

	// Create a dataset: URLs in answers point at this server.
	req, _ := http.NewRequest("POST", base+"/api/repos/create", strings.NewReader(`{"name":"flags","type":"dataset"}`))
	req.Header.Set("Authorization", "Bearer hf_secret_dev")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Contains(t, string(body), base+"/datasets/alice/flags")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	assert.Contains(t, stdout.String(), "fakehub stopped")
	assert.NotContains(t, stdout.String()+stderr.String(), "hf_secret_dev", "the token is never printed or logged")
	assert.Contains(t, stderr.String(), "op=whoami", "-v logs requests")
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no token", []string{"-addr", "127.0.0.1:0"}, "-token is required"},
		{"stray argument", []string{"-token", "t", "extra"}, "unexpected arguments"},
		{"same read token", []string{"-token", "t", "-read-token", "t"}, "must differ"},
		{"bad address", []string{"-token", "t", "-addr", "256.0.0.1:99999"}, "listen on"},
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			err := run(context.Background(), tt.args, &stdout, &stderr, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error()+stderr.String(), tt.want)
		})
	}
}
