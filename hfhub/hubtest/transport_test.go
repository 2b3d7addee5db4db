package hubtest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inProcessClient talks to s through its Transport at http://hub.test.
func inProcessClient(t *testing.T, s *Server, token string) *client {
	hc := &http.Client{
		Transport:     s.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &client{t: t, base: "http://hub.test", token: token, hc: hc}
}

// TestTransportServesInProcess: the in-process transport gives the same
// answers as the network, with links pointing at the host used.
func TestTransportServesInProcess(t *testing.T) {
	s := New(nil)
	c := inProcessClient(t, s, DefaultToken)
	r := c.postJSON("/api/repos/create", map[string]any{"name": "d", "type": "dataset"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "http://hub.test/datasets/hubtest/d", r.json(t)["url"])
	img := []byte("\x89PNG in process")
	c.uploadLFS("datasets/hubtest/d", img)
	r = c.commit("datasets/hubtest/d", "main", ndjson(t, header("c", nil), lfsLine("a.png", img)))
	require.Equal(t, 200, r.status, string(r.body))
	r = c.do(http.MethodGet, "/datasets/hubtest/d/resolve/main/a.png", nil, nil)
	require.Equal(t, http.StatusFound, r.status)
	r = c.do(http.MethodGet, r.header.Get("Location"), map[string]string{"Authorization": ""}, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, img, r.body)
	r = c.do(http.MethodHead, "/datasets/hubtest/d/resolve/main/.gitattributes", nil, nil)
	assert.Equal(t, 200, r.status)
	assert.Empty(t, r.body)
	assert.Equal(t, 401, inProcessClient(t, s, "hf_wrong").do(http.MethodGet, "/api/whoami-v2", nil, nil).status)
}

// TestFaultDelayAndDrop: a Delay holds the answer exactly that long on the
// virtual clock of a synctest bubble, a Hold holds it until released, and a
// dropped connection is a transport error.
func TestFaultDelayAndDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(nil)
		c := inProcessClient(t, s, DefaultToken)

		s.InjectFault(Fault{Op: OpWhoami, Delay: 100 * time.Millisecond, Times: 1})
		start := time.Now()
		assert.Equal(t, 200, c.do(http.MethodGet, "/api/whoami-v2", nil, nil).status)
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "virtual time: exactly the Delay")
		start = time.Now()
		assert.Equal(t, 200, c.do(http.MethodGet, "/api/whoami-v2", nil, nil).status)
		assert.Zero(t, time.Since(start), "Times: 1")

		release := make(chan struct{})
		s.InjectFault(Fault{Op: OpWhoami, Status: 503, Times: 1, Hold: func(ctx context.Context) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}})
		got := make(chan int, 1)
		go func() { got <- c.do(http.MethodGet, "/api/whoami-v2", nil, nil).status }()
		synctest.Wait() // the request is held
		select {
		case <-got:
			t.Fatal("answered while held")
		default:
		}
		close(release)
		assert.Equal(t, 503, <-got)

		// A held request whose client gives up is answered 408 and frees the fake.
		s.InjectFault(Fault{Op: OpWhoami, Times: 1, Hold: func(ctx context.Context) { <-ctx.Done() }})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://hub.test/api/whoami-v2", nil)
		require.NoError(t, err)
		res, err := c.hc.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusRequestTimeout, res.StatusCode)

		s.InjectFault(Fault{Op: OpWhoami, CloseConnection: true, Times: 1})
		req, err = http.NewRequest(http.MethodGet, "http://hub.test/api/whoami-v2", nil)
		require.NoError(t, err)
		_, err = c.hc.Do(req)
		require.Error(t, err)
		assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
		whoamis := s.RequestsFor(OpWhoami)
		assert.Equal(t, 0, whoamis[len(whoamis)-1].Status, "a dropped connection is recorded with status 0")
	})
}
