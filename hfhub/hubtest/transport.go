package hubtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// Transport returns an http.RoundTripper that serves each request in
// process through Handler: no listener, no network, and the whole answer is
// ready when RoundTrip returns. Use it as http.Client{Transport:
// s.Transport()} with any base URL, such as "http://hub.test"; links in the
// fake's answers follow the request's host, so pre-signed URLs come back to
// it too. It works for a Server made with New or NewServer.
//
// Inside a testing/synctest bubble everything then runs on the bubble's
// virtual clock: a client's retry waits and a Fault's Delay take no real
// time and can be asserted exactly, and goroutines a client leaves behind
// fail the test. A CloseConnection fault makes RoundTrip return an error
// wrapping io.ErrUnexpectedEOF, like a dropped connection.
//
// The RoundTripper is safe for concurrent use.
func (s *Server) Transport() http.RoundTripper { return inProcess{h: s.Handler()} }

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	// What net/http's server would give the handler.
	sreq := req.Clone(req.Context())
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	if req.Body != nil {
		defer req.Body.Close()
	}
	sreq.RequestURI = req.URL.RequestURI()
	sreq.Host = req.URL.Host
	sreq.RemoteAddr = "192.0.2.1:1234"
	sreq.Proto, sreq.ProtoMajor, sreq.ProtoMinor = "HTTP/1.1", 1, 1
	w := &inProcessWriter{header: http.Header{}}
	t.h.ServeHTTP(w, sreq)
	if w.hijacked {
		return nil, fmt.Errorf("hubtest: connection dropped by an injected fault: %w", io.ErrUnexpectedEOF)
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.sent == nil {
		w.sent = w.header.Clone()
	}
	resp := &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}
	if req.Method == http.MethodHead {
		resp.Body, resp.ContentLength = http.NoBody, -1
		if cl, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil {
			resp.ContentLength = cl
		}
	}
	return resp, nil
}

// inProcessWriter collects an answer. The header sent is the one at
// WriteHeader, as on the wire.
type inProcessWriter struct {
	header   http.Header
	sent     http.Header
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (w *inProcessWriter) Header() http.Header { return w.header }

func (w *inProcessWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
		w.sent = w.header.Clone()
	}
}

func (w *inProcessWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Hijack lets a CloseConnection fault drop the "connection".
func (w *inProcessWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	server, client := net.Pipe()
	client.Close()
	return server, bufio.NewReadWriter(bufio.NewReader(server), bufio.NewWriter(server)), nil
}
