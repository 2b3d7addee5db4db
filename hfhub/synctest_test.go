package hfhub_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

// virtualHub is a fake Hub served in process, for tests inside a
// testing/synctest bubble: the client's real retry timers run on the
// bubble's virtual clock, and synctest.Test fails if any goroutine the
// client started is still blocked when the test ends (a leak check that
// does not count the process's goroutines).
func virtualHub(t *testing.T, opts *hfhub.Options) (*hubtest.Server, hfhub.Repo) {
	t.Helper()
	srv := hubtest.New(nil)
	o := hfhub.Options{}
	if opts != nil {
		o = *opts
	}
	o.Endpoint, o.Token = "http://hub.test", hubtest.DefaultToken
	o.HTTPClient = &http.Client{Transport: srv.Transport()}
	c, err := hfhub.NewClient(&o)
	require.NoError(t, err)
	repo := c.Repo(hfhub.Dataset, hfhub.RepoID{Namespace: hubtest.DefaultUser, Name: "flags"})
	_, err = repo.Create(t.Context(), nil)
	require.NoError(t, err)
	return srv, repo
}

// TestRetriesOnVirtualTime: the client's own timers (no injected Sleep)
// wait exactly the documented backoff, measured on the virtual clock.
func TestRetriesOnVirtualTime(t *testing.T) {
	tests := []struct {
		name   string
		faults []hubtest.Fault
		want   time.Duration
	}{
		{"no fault, no wait", nil, 0},
		{"three 503s wait 1+2+4 s", []hubtest.Fault{{Op: hubtest.OpPreupload, Status: 503, Times: 3}}, 7 * time.Second},
		{"Retry-After 7 waits 8 s", []hubtest.Fault{{Op: hubtest.OpPreupload, Status: 429, Header: http.Header{"Retry-After": {"7"}}, Times: 1}}, 8 * time.Second},
		{"a slow Hub is waited for, not retried", []hubtest.Fault{{Op: hubtest.OpPreupload, Delay: 30 * time.Second, Times: 1}}, 30 * time.Second},
		{"409 on the commit waits 1+2 s", []hubtest.Fault{{Op: hubtest.OpCommit, Status: 409, Times: 2}}, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, repo := virtualHub(t, nil)
				for _, f := range tt.faults {
					srv.InjectFault(f)
				}
				start := time.Now()
				info, err := repo.CreateCommit(t.Context(), "one", []hfhub.Operation{hfhub.AddBytes("a.txt", []byte("a"))}, nil)
				require.NoError(t, err)
				assert.False(t, info.Empty)
				assert.Equal(t, tt.want, time.Since(start))
			})
		})
	}
}

// TestRetryWaitHonoursContext: a caller's deadline ends a backoff wait at
// once, on time, with the context's error.
func TestRetryWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, repo := virtualHub(t, &hfhub.Options{MinBackoff: time.Minute, MaxBackoff: time.Hour})
		srv.InjectFault(hubtest.Fault{Op: hubtest.OpPreupload, Status: 503})
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		defer cancel()
		start := time.Now()
		_, err := repo.CreateCommit(ctx, "one", []hfhub.Operation{hfhub.AddBytes("a.txt", []byte("a"))}, nil)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 90*time.Second, time.Since(start), "1 min, then cut short 30 s into the 2 min wait")
		assert.Len(t, srv.RequestsFor(hubtest.OpPreupload), 2)
	})
}

// TestLFSUploadWorkersDoNotLeak: a failing object upload cancels the other
// workers; every goroutine has exited when the call returns (synctest.Test
// would report a blocked one), also when the caller cancels mid-upload.
func TestLFSUploadWorkersDoNotLeak(t *testing.T) {
	ops := func() []hfhub.Operation {
		var ops []hfhub.Operation
		for i := range 12 {
			ops = append(ops, hfhub.AddBytes(fmt.Sprintf("data/%02d.png", i), pngLike(i, 2000)))
		}
		return ops
	}
	t.Run("one upload fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, repo := virtualHub(t, &hfhub.Options{MaxRetries: -1})
			srv.InjectFault(hubtest.Fault{Op: hubtest.OpLFSPut, Status: 500, Times: 1})
			_, err := repo.CreateCommit(t.Context(), "twelve", ops(), nil)
			require.Error(t, err)
			assert.Empty(t, srv.RequestsFor(hubtest.OpCommit), "no commit after a failed upload")
		})
	})
	t.Run("caller cancels while uploads are held", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, repo := virtualHub(t, nil)
			srv.InjectFault(hubtest.Fault{Op: hubtest.OpLFSPut, Hold: func(ctx context.Context) { <-ctx.Done() }})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := repo.CreateCommit(ctx, "twelve", ops(), nil)
				done <- err
			}()
			synctest.Wait() // every worker is blocked in an upload
			assert.Len(t, srv.RequestsFor(hubtest.OpLFSPut), 4, "four workers upload at once")
			cancel()
			assert.ErrorIs(t, <-done, context.Canceled)
		})
	})
}

// TestDownloadRetryOnVirtualTime: a failing download is retried after the
// backoff steps, and the bytes are whole.
func TestDownloadRetryOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, repo := virtualHub(t, nil)
		content := pngLike(9, 5000)
		_, err := repo.CreateCommit(t.Context(), "img", []hfhub.Operation{hfhub.AddBytes("a.png", content)}, nil)
		require.NoError(t, err)
		srv.InjectFault(hubtest.Fault{Op: hubtest.OpCDN, Status: 503, Times: 2})
		start := time.Now()
		var buf bytes.Buffer
		_, err = repo.Download(t.Context(), "a.png", &buf)
		require.NoError(t, err)
		assert.Equal(t, content, buf.Bytes())
		assert.Equal(t, 3*time.Second, time.Since(start), "503, 1 s, 503, 2 s, then the file")
	})
}
