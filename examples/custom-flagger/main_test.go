package main

import (
	"context"
	"image"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	advflag "github.com/advspace/advspace/flag"
)

const wantOutput = `brightness  10, person says 0, model says 0: not fooled, nothing stored
brightness  40, person says 7, model says 1: fooled, stored as flag-0001
brightness 100, person says 3, model says 3: not fooled, nothing stored
brightness 130, person says 5, model says 5: not fooled, nothing stored
brightness 200, person says 1, model says 7: fooled, stored as flag-0002
brightness 250, person says 9, model says 9: not fooled, nothing stored
brightness 240, person says 4, model says 9: fooled, stored as flag-0003
webhook answered 5 requests, refused 2 with 503 (the outbox retried them)
webhook received 3 flags:
  flag-0001 label=7 model_label=1 model=brightness-v1 session=demo-session image=true
  flag-0002 label=1 model_label=7 model=brightness-v1 session=demo-session image=true
  flag-0003 label=4 model_label=9 model=brightness-v1 session=demo-session image=true
`

func TestRun(t *testing.T) {
	data := t.TempDir()
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"-data", data}, &out))
	first, rest, _ := strings.Cut(out.String(), "\n")
	assert.Regexp(t, `^webhook listening on http://127\.0\.0\.1:[0-9]+/flags$`, first)
	assert.Equal(t, wantOutput, rest)

	// The local dataset holds the same three flags, and the outbox is empty.
	dir, err := advflag.NewDir(filepath.Join(data, "dataset"), advflag.GrayPNG(), nil)
	require.NoError(t, err)
	defer dir.Close()
	samples, err := dir.Samples(context.Background())
	require.NoError(t, err)
	require.Len(t, samples, 3)
	assert.Equal(t, image.Rect(0, 0, 28, 28), samples[0].Input.Rect)
	_, err = advflag.CheckImageFolder(os.DirFS(filepath.Join(data, "dataset")))
	require.NoError(t, err)
	pending, err := os.ReadDir(filepath.Join(data, "outbox", "pending"))
	require.NoError(t, err)
	assert.Empty(t, pending)
}

func TestRunWebhookAlwaysUp(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"-fail-first", "0"}, &out))
	assert.Contains(t, out.String(), "webhook answered 3 requests, refused 0")
	assert.Contains(t, out.String(), "webhook received 3 flags")
}

// A new user trips over an address they cannot use: the printed webhook
// address is the one that listens, port included.
func TestNewUserTrip_WebhookAddressIncludesPort(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"-fail-first", "0"}, &out))
	first, _, _ := strings.Cut(out.String(), "\n")
	addr, ok := strings.CutPrefix(first, "webhook listening on ")
	require.True(t, ok, "first line %q", first)
	u, err := url.Parse(addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", u.Hostname())
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err, "the address %q has no port", addr)
	assert.Positive(t, port)
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-fail-first", "-1"}, &out)
	require.ErrorContains(t, err, "-fail-first")
	err = run(context.Background(), []string{"-nope"}, &out)
	require.Error(t, err)
}
