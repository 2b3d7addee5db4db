package hfhub_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/hfhub"
)

// TestCredentialsInAnythingPrinted_RedactURL: every URL a program prints
// goes through RedactURL, which must leave no credential behind.
func TestCredentialsInAnythingPrinted_RedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"user and password", "http://user:SEKRET42@host:8080/api", "http://REDACTED@host:8080/api"},
		{"bare token as user", "https://hf_SEKRET42@huggingface.co", "https://REDACTED@huggingface.co"},
		{"token query", "http://host/x?token=SEKRET42", "http://host/x?token=REDACTED"},
		{"other params kept in order", "http://host/x?a=1&access_token=SEKRET42&b=2", "http://host/x?a=1&access_token=REDACTED&b=2"},
		{"upper case key", "http://host/x?Token=SEKRET42", "http://host/x?Token=REDACTED"},
		{"key containing token", "http://host/x?X-Hub-Token=SEKRET42&hf_token=SEKRET42", "http://host/x?X-Hub-Token=REDACTED&hf_token=REDACTED"},
		{"S3 pre-signed", "https://s3.amazonaws.com/b/o?X-Amz-Algorithm=AWS4&X-Amz-Credential=SEKRET42&X-Amz-Signature=SEKRET42&X-Amz-Security-Token=SEKRET42&partNumber=2",
			"https://s3.amazonaws.com/b/o?X-Amz-Algorithm=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&partNumber=2"},
		{"GCS pre-signed", "https://storage.googleapis.com/b/o?X-Goog-Signature=SEKRET42", "https://storage.googleapis.com/b/o?X-Goog-Signature=REDACTED"},
		{"Azure SAS", "https://a.blob.core.windows.net/c/b?sv=2020&se=2026&sp=r&sig=SEKRET42", "https://a.blob.core.windows.net/c/b?sv=REDACTED&se=REDACTED&sp=REDACTED&sig=REDACTED"},
		{"CloudFront", "https://cdn-lfs.hf.co/x?Expires=1&Policy=SEKRET42&Signature=SEKRET42&Key-Pair-Id=K", "https://cdn-lfs.hf.co/x?Expires=REDACTED&Policy=REDACTED&Signature=REDACTED&Key-Pair-Id=REDACTED"},
		{"escaped key", "http://host/x?access%5Ftoken=SEKRET42", "http://host/x?access%5Ftoken=REDACTED"},
		{"fragment token", "http://host/cb#access_token=SEKRET42&state=s", "http://host/cb#access_token=REDACTED&state=s"},
		{"both at once", "http://u:SEKRET42@host/?token=SEKRET42", "http://REDACTED@host/?token=REDACTED"},
		{"harmless params kept", "https://huggingface.co/api/datasets/a/b/tree/main?recursive=true&expand=false&author=alice&cursor=abc",
			"https://huggingface.co/api/datasets/a/b/tree/main?recursive=true&expand=false&author=alice&cursor=abc"},
		{"clean URL unchanged", "https://huggingface.co/datasets/alice/flags", "https://huggingface.co/datasets/alice/flags"},
		{"escaped path kept", "https://huggingface.co/api/models/a/b/revision/refs%2Fpr%2F1", "https://huggingface.co/api/models/a/b/revision/refs%2Fpr%2F1"},
		{"empty", "", ""},
		{"unparseable: userinfo scrubbed", "http://user:SEKRET42@host:port/\x7f", "http://REDACTED@host:port/\x7f"},
		{"unparseable: token param scrubbed", "%zz?x=1&token=SEKRET42", "%zz?x=1&token=REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hfhub.RedactURL(tt.in)
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, got, "SEKRET42")
		})
	}
}

// TestCredentialsInAnythingPrinted_Endpoint: an endpoint carrying
// credentials is refused with a message that names the fix and shows the
// endpoint redacted; the token is in no error and no log.
func TestCredentialsInAnythingPrinted_Endpoint(t *testing.T) {
	tests := []struct {
		name, endpoint, shown, fix string
	}{
		{"userinfo", "http://user:SEKRET42@127.0.0.1:9/", "http://REDACTED@127.0.0.1:9", "set HF_ENDPOINT to http://127.0.0.1:9 "},
		{"bare token userinfo", "https://SEKRET42@hub.example/mirror", "https://REDACTED@hub.example/mirror", "set HF_ENDPOINT to https://hub.example/mirror "},
		{"token query", "http://127.0.0.1:9?token=SEKRET42", "http://127.0.0.1:9?token=REDACTED", "set HF_ENDPOINT to http://127.0.0.1:9 "},
		{"both", "http://user:SEKRET42@127.0.0.1:9/?access_token=SEKRET42", "http://REDACTED@127.0.0.1:9/?access_token=REDACTED", "set HF_ENDPOINT to http://127.0.0.1:9/ "},
		{"not http", "ftp://user:SEKRET42@host", "ftp://REDACTED@host", "set HF_ENDPOINT like https://huggingface.co"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			for _, viaEnv := range []bool{false, true} {
				opts := &hfhub.Options{Endpoint: tt.endpoint, Token: "hf_x", Logger: logger}
				if viaEnv {
					t.Setenv("HF_ENDPOINT", tt.endpoint)
					opts.Endpoint = ""
				}
				c, err := hfhub.NewClient(opts)
				require.Error(t, err)
				assert.Nil(t, c)
				assert.ErrorIs(t, err, hfhub.ErrInvalidEndpoint)
				assert.Contains(t, err.Error(), tt.shown)
				assert.Contains(t, err.Error(), tt.fix)
				assert.NotContains(t, err.Error(), "SEKRET42")
			}
			assert.NotContains(t, logs.String(), "SEKRET42")
		})
	}
}

// TestCredentialsInAnythingPrinted_Requests: URLs the Hub hands out (a
// pre-signed redirect, a Link to the next page) carrying credentials never
// reach an error or a log in clear, whatever their parameter names.
func TestCredentialsInAnythingPrinted_Requests(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connections to it are refused
	var logs lockedBuffer
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/resolve/"):
			w.Header().Set("X-Linked-Etag", `"`+strings.Repeat("a", 64)+`"`)
			http.Redirect(w, r, deadURL+"/blob?X-Amz-Signature=SEKRET42&weird_name=SEKRET42", http.StatusFound)
		case strings.Contains(r.URL.Path, "/tree/"):
			w.Header().Set("Link", `<http://u:SEKRET42@other.example/next?token=SEKRET42>; rel="next"`)
			w.Write([]byte(`[]`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer hub.Close()
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: hub.URL, Token: "hf_x", MaxRetries: -1,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	repo := c.Repo(hfhub.Model, hfhub.RepoID{Namespace: "a", Name: "m"})
	ctx := context.Background()

	_, err = repo.Download(ctx, "model.safetensors", &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/blob?<signature redacted>")
	_, err2 := repo.ListTree(ctx, "", nil)
	require.Error(t, err2)
	assert.ErrorIs(t, err2, hfhub.ErrProtocol)
	assert.Contains(t, err2.Error(), "http://REDACTED@other.example/next?token=REDACTED")
	for _, e := range []error{err, err2} {
		assert.NotContains(t, e.Error(), "SEKRET42")
		assert.NotContains(t, fmt.Sprintf("%+v", e), "SEKRET42")
	}
	assert.NotEmpty(t, logs.String())
	assert.NotContains(t, logs.String(), "SEKRET42")
}
