package hubtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults used when the matching Options field is zero.
const (
	// DefaultToken is the write token accepted when Options.Tokens is nil.
	DefaultToken = "hf_hubtest_write_token"
	// DefaultUser owns DefaultToken.
	DefaultUser = "hubtest"

	defaultCommitsPerHour     = 128
	defaultMultipartThreshold = 10 << 20
	defaultChunkSize          = 5 << 20
	defaultPageSize           = 1000
	// maxBodyBytes bounds what one request may send; the fake keeps bodies in memory.
	maxBodyBytes = 1 << 30
)

// Messages the Hub answers with, for tests that assert on them or inject them.
const (
	// MsgInvalidCredentials is the X-Error-Message of a 401 for a bad token;
	// clients tell it apart from the 401 anonymous callers get for private repos.
	MsgInvalidCredentials = "Invalid credentials in Authorization header"
	// MsgStaleParent is the 412 answer to a commit whose parentCommit is not the branch head.
	MsgStaleParent = "The branch was updated since you opened this page. Please refresh and try again."
	// MsgCommitInProgress is the 409 answer while another commit runs on the repo.
	MsgCommitInProgress = "Another commit operation is in progress for this repository. Please try again later."
	// MsgCreateConflict is the 409 the Hub sends when one user creates repos
	// concurrently; inject it with Fault{Op: OpCreateRepo, Status: 409, Message: MsgCreateConflict}.
	MsgCreateConflict = "Cannot create repo: another conflicting operation is in progress"
)

// Options configures a Server. A nil *Options, and every zero field, means
// the default.
type Options struct {
	// Tokens maps bearer tokens to their owners. nil means one write token,
	// DefaultToken, owned by DefaultUser.
	Tokens map[string]TokenInfo
	// CommitsPerHour is the per-repo limit on commits over a sliding hour
	// (default 128, the Hub's observed limit). Negative means unlimited.
	CommitsPerHour int
	// APIRequestsPer5Min limits API calls per token over fixed 5-minute
	// windows; 0 means unlimited.
	APIRequestsPer5Min int
	// MultipartThreshold: LFS objects larger than this get a multipart upload
	// action when the client offers "multipart" (default 10 MiB).
	MultipartThreshold int64
	// ChunkSize is the multipart part size (default 5 MiB).
	ChunkSize int64
	// PageSize is the number of tree entries per page (default 1000).
	PageSize int
	// Now is the clock (default time.Now); inject one to simulate an hour.
	Now func() time.Time
	// Logger receives one debug line per request (default: discard). Tokens
	// are never logged.
	Logger *slog.Logger
}

// TokenInfo describes who owns a token and what it may do.
type TokenInfo struct {
	// User is the account name, the default namespace.
	User string
	// Orgs are further namespaces the token may write to.
	Orgs []string
	// Role is "write" (default when empty) or "read". Any other value is
	// treated as "read".
	Role string
}

// Op names an operation of the fake Hub, for fault injection and for
// Request.Op.
type Op string

// Operations the fake Hub serves.
const (
	OpWhoami       Op = "whoami"
	OpCreateRepo   Op = "create-repo"
	OpDeleteRepo   Op = "delete-repo"
	OpRepoInfo     Op = "repo-info"
	OpValidateYAML Op = "validate-yaml"
	OpPreupload    Op = "preupload"
	OpLFSBatch     Op = "lfs-batch"
	OpLFSPut       Op = "lfs-put"      // pre-signed single-part upload
	OpLFSPart      Op = "lfs-part"     // pre-signed multipart part upload
	OpLFSComplete  Op = "lfs-complete" // multipart completion
	OpLFSVerify    Op = "lfs-verify"
	OpCommit       Op = "commit"
	OpResolve      Op = "resolve"
	OpCDN          Op = "cdn" // pre-signed LFS download target of a resolve redirect
	OpTree         Op = "tree"
	OpPathsInfo    Op = "paths-info"
	OpListCommits  Op = "list-commits"
	OpSuperSquash  Op = "super-squash"
	OpListRefs     Op = "list-refs"
	OpBranch       Op = "branch" // create (POST) or delete (DELETE) a branch
	OpUnknown      Op = "unknown"
)

// Request is one request the server received, recorded after it was answered.
type Request struct {
	ID          string // the X-Request-Id the server answered with
	Op          Op
	Method      string
	EscapedPath string
	Query       string // raw query
	// Header is the request header as sent, Authorization included, so tests
	// can assert that no token reached a pre-signed URL.
	Header http.Header
	Body   []byte
	// Status is the answer's status, or 0 when a fault dropped the connection.
	Status int
}

// Server is an in-memory fake Hugging Face Hub. All methods are safe for
// concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	signKey []byte
	ts      *httptest.Server
	reqSeq  atomic.Uint64

	mu      sync.Mutex // guards everything below
	repos   map[repoKey]*repo
	uploads map[string]*multipartUpload
	windows map[string]*apiWindow
	down    bool
	faults  []*faultState

	reqMu    sync.Mutex // guards requests and their Status; never held with mu
	requests []*Request // recorded on arrival; Status is set when the answer starts
}

type apiWindow struct {
	start time.Time
	count int
}

// New returns a fake Hub that is not listening: serve Handler() yourself
// (on your own listener, for a standalone fake Hub) or use Transport. URLs
// in answers are built from the request's Host.
func New(opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Tokens == nil {
		o.Tokens = map[string]TokenInfo{DefaultToken: {User: DefaultUser, Role: "write"}}
	} else {
		copied := make(map[string]TokenInfo, len(o.Tokens))
		for k, v := range o.Tokens {
			copied[k] = v
		}
		o.Tokens = copied
	}
	if o.CommitsPerHour == 0 {
		o.CommitsPerHour = defaultCommitsPerHour
	}
	if o.MultipartThreshold <= 0 {
		o.MultipartThreshold = defaultMultipartThreshold
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = defaultChunkSize
	}
	if o.PageSize <= 0 {
		o.PageSize = defaultPageSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails on supported platforms
	return &Server{
		opts: o, log: log, signKey: key,
		repos: map[repoKey]*repo{}, uploads: map[string]*multipartUpload{}, windows: map[string]*apiWindow{},
	}
}

// NewServer starts a fake Hub on 127.0.0.1 with a random port, like
// httptest.NewServer. Call Close when done.
func NewServer(opts *Options) *Server {
	s := New(opts)
	s.ts = httptest.NewServer(s.Handler())
	return s
}

// URL is the base URL of a server started with NewServer (use it as
// HF_ENDPOINT), or "" for one made with New.
func (s *Server) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL
}

// Client returns an *http.Client for a server started with NewServer, or
// http.DefaultClient otherwise.
func (s *Server) Client() *http.Client {
	if s.ts == nil {
		return http.DefaultClient
	}
	return s.ts.Client()
}

// Close shuts a started server down, blocking until its requests finish. It
// is safe to call more than once and on a server made with New.
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// Handler serves the fake Hub's HTTP API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// SetDown makes every request fail with 503 while down is true.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Requests returns a copy of the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
	}
	return out
}

// RequestsFor returns the recorded requests of one operation.
func (s *Server) RequestsFor(op Op) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.reqMu.Lock()
	s.requests = nil
	s.reqMu.Unlock()
}

// Fault makes matching requests misbehave. A request matches when every
// non-empty selector (Method, Op, PathContains) matches.
type Fault struct {
	Method       string
	Op           Op
	PathContains string // substring of the escaped path and query ("path?query")

	// Status is the error status to answer with (e.g. 500, 503, 429). Zero
	// with Delay only slows the request down and then serves it normally.
	// A status outside 100-599 is answered as 500 with an explanation.
	Status int
	// Message is the error text (default: the status text).
	Message string
	// Header is added to the error answer (e.g. Retry-After).
	Header http.Header
	// Delay is waited before answering. For OpCommit it is waited while the
	// commit holds the repo's commit slot, so concurrent commits get 409.
	Delay time.Duration
	// Hold, if set, is called where Delay is waited (after it), with the
	// request's context; the request waits until Hold returns. For OpCommit
	// it runs while the commit holds the repo's commit slot. Tests use it as
	// a barrier instead of a guessed Delay: signal that the request got
	// there, then wait for the test's go-ahead (or ctx.Done()). A Hold that
	// never returns blocks that request, and Close, forever.
	Hold func(ctx context.Context)
	// ApplyThenFail serves the request normally (state changes happen) but
	// answers Status (default 500) instead of the real answer: "500 but applied".
	ApplyThenFail bool
	// CloseConnection drops the connection without an answer (a network error).
	CloseConnection bool
	// Times is how many matching requests the fault hits; 0 means all of them.
	Times int
	// Probability in (0,1) hits each matching request with that chance, drawn
	// from a generator seeded with Seed; 0 (or ≥ 1) means always.
	Probability float64
	Seed        uint64
}

type faultState struct {
	Fault
	hits int
	rng  *mrand.Rand
}

// InjectFault adds a fault; faults are checked in the order they were added
// and the first that hits applies.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{Fault: f, rng: mrand.New(mrand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// pickFault returns the first fault that hits this request (s.mu held).
func (s *Server) pickFault(op Op, method, pathAndQuery string) *Fault {
	for i, f := range s.faults {
		if (f.Method != "" && !strings.EqualFold(f.Method, method)) || (f.Op != "" && f.Op != op) ||
			(f.PathContains != "" && !strings.Contains(pathAndQuery, f.PathContains)) {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && f.rng.Float64() >= f.Probability {
			continue
		}
		f.hits++
		if f.Times > 0 && f.hits >= f.Times {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		copied := f.Fault
		return &copied
	}
	return nil
}

// apiError is an error answer: JSON {"error": msg} plus X-Error-Message and,
// when set, X-Error-Code.
type apiError struct {
	status int
	code   string // RepoNotFound, RevisionNotFound, EntryNotFound
	msg    string
	header http.Header
	extra  map[string]any
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	for k, vs := range e.header {
		h[k] = vs
	}
	// Header values cannot carry newlines.
	h.Set("X-Error-Message", strings.NewReplacer("\r", " ", "\n", " ").Replace(e.msg))
	if e.code != "" {
		h.Set("X-Error-Code", e.code)
	}
	body := map[string]any{"error": e.msg}
	for k, v := range e.extra {
		body[k] = v
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, "application/json; charset=utf-8", v)
}

// writeJSONAs writes v as JSON with the given Content-Type (the LFS batch API
// answers application/vnd.git-lfs+json).
func writeJSONAs(w http.ResponseWriter, status int, contentType string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"hubtest: cannot encode answer"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// recorder captures the status of an answer, and buffers it entirely when
// the answer may be replaced (ApplyThenFail).
type recorder struct {
	http.ResponseWriter
	server  *Server
	entry   *Request // the recorded request, updated before the status goes out
	status  int
	buffer  bool
	header  http.Header
	body    bytes.Buffer
	written bool
}

func (r *recorder) Header() http.Header {
	if r.buffer {
		return r.header
	}
	return r.ResponseWriter.Header()
}

func (r *recorder) WriteHeader(status int) {
	if r.written {
		return
	}
	r.written = true
	r.status = status
	if !r.buffer {
		// Record the status before the client can see the answer, so a test
		// that reads Requests() right after a response finds it complete.
		r.server.reqMu.Lock()
		r.entry.Status = status
		r.server.reqMu.Unlock()
		r.ResponseWriter.WriteHeader(status)
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.written {
		r.WriteHeader(http.StatusOK)
	}
	if r.buffer {
		return r.body.Write(p)
	}
	return r.ResponseWriter.Write(p)
}

type ctxKey int

const commitDelayKey ctxKey = 1

// caller is who sent a request.
type caller struct {
	token string
	info  TokenInfo
	anon  bool
}

func (c caller) canWriteNamespace(ns string) bool {
	return !c.anon && c.info.Role == "write" && c.memberOf(ns)
}

func (c caller) memberOf(ns string) bool {
	if c.anon {
		return false
	}
	if c.info.User == ns {
		return true
	}
	for _, o := range c.info.Orgs {
		if o == ns {
			return true
		}
	}
	return false
}

// call carries one request through the handlers.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	body   []byte
	rt     route
	who    caller
	base   string // scheme://host of this server as the client sees it
	ctx    context.Context
	server *Server
}

func (s *Server) newRequestID() string {
	n := s.reqSeq.Add(1)
	return fmt.Sprintf("Root=1-%08x-%024x", s.opts.Now().Unix(), n)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	id := s.newRequestID()
	w.Header().Set("X-Request-Id", id)
	rt := parseRoute(r)
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	entry := &Request{ID: id, Op: rt.op, Method: r.Method, EscapedPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body}
	s.reqMu.Lock()
	s.requests = append(s.requests, entry)
	s.reqMu.Unlock()
	rec := &recorder{ResponseWriter: w, server: s, entry: entry}
	dropped := false

	defer func() {
		status := rec.status
		switch {
		case dropped:
			status = 0
		case status == 0:
			status = http.StatusOK // nothing written: net/http answers 200 after we return
		}
		s.reqMu.Lock()
		entry.Status = status
		s.reqMu.Unlock()
		s.log.Debug("hubtest request", "id", id, "op", string(rt.op), "method", r.Method,
			"path", r.URL.EscapedPath(), "status", status)
	}()

	if readErr != nil {
		writeError(rec, errorf(http.StatusRequestEntityTooLarge, "request body could not be read: %v", readErr))
		return
	}
	s.mu.Lock()
	down := s.down
	var fault *Fault
	if !down {
		fault = s.pickFault(rt.op, r.Method, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
	}
	s.mu.Unlock()
	if down {
		writeError(rec, errorf(http.StatusServiceUnavailable, "The Hub is temporarily unavailable (hubtest: server set down)."))
		return
	}
	ctx := r.Context()
	if fault != nil {
		if fault.CloseConnection {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					dropped = true
					_ = conn.Close()
					return
				}
			}
			fault = &Fault{Status: http.StatusBadGateway, Message: "hubtest: connection drop not possible, answering 502"}
		}
		if fault.Delay > 0 || fault.Hold != nil {
			if rt.op == OpCommit && (fault.Status == 0 || fault.ApplyThenFail) {
				ctx = context.WithValue(ctx, commitDelayKey, holdOf(fault))
			} else if !holdOf(fault).wait(ctx) {
				writeError(rec, errorf(http.StatusRequestTimeout, "request cancelled by the client"))
				return
			}
		}
		if fault.Status != 0 && !fault.ApplyThenFail {
			writeError(rec, faultError(fault))
			return
		}
		if fault.ApplyThenFail {
			rec.buffer = true
			rec.header = http.Header{}
		}
	}

	c := &call{w: rec, r: r, body: body, rt: rt, ctx: ctx, server: s, base: baseURL(r)}
	if e := s.dispatch(c); e != nil {
		writeError(rec, e)
	}
	if fault != nil && fault.ApplyThenFail {
		rec.buffer = false
		rec.written = false
		status := fault.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		f := *fault
		f.Status = status
		writeError(rec, faultError(&f))
	}
}

func faultError(f *Fault) *apiError {
	if f.Status < 100 || f.Status > 599 {
		// net/http panics on such codes; answer 500 and say why instead.
		return &apiError{status: http.StatusInternalServerError, header: f.Header,
			msg: fmt.Sprintf("hubtest: injected fault has invalid status %d (use 100-599); answering 500", f.Status)}
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status) + " (hubtest: injected fault)"
	}
	return &apiError{status: f.Status, msg: msg, header: f.Header}
}

// hold is how a fault holds a request: Delay, then Hold.
type hold struct {
	delay time.Duration
	fn    func(ctx context.Context)
}

func holdOf(f *Fault) hold { return hold{delay: f.Delay, fn: f.Hold} }

// wait holds the request; false means the client gave up meanwhile.
func (h hold) wait(ctx context.Context) bool {
	if h.delay > 0 {
		t := time.NewTimer(h.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	if h.fn != nil {
		h.fn(ctx)
	}
	return ctx.Err() == nil
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// dispatch authenticates, applies the API rate limit, and runs the handler.
func (s *Server) dispatch(c *call) *apiError {
	if c.rt.err != nil {
		return c.rt.err
	}
	if c.rt.handler == nil {
		return &apiError{status: http.StatusNotFound, msg: "Sorry, we can't find the page you are looking for."}
	}
	if c.rt.method != "" && c.r.Method != c.rt.method && !(c.rt.method == http.MethodGet && c.r.Method == http.MethodHead) {
		return &apiError{status: http.StatusMethodNotAllowed, msg: fmt.Sprintf("method %s not allowed on %s (use %s)", c.r.Method, c.r.URL.EscapedPath(), c.rt.method)}
	}
	if !c.rt.presigned {
		who, e := s.authenticate(c.r)
		if e != nil {
			return e
		}
		c.who = who
		if c.rt.op != OpResolve {
			if e := s.countAPICall(c); e != nil {
				return e
			}
		}
	}
	return c.rt.handler(c)
}

func (s *Server) authenticate(r *http.Request) (caller, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return caller{anon: true}, nil
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return caller{}, &apiError{status: http.StatusUnauthorized, msg: MsgInvalidCredentials}
	}
	info, ok := s.opts.Tokens[token]
	if !ok {
		return caller{}, &apiError{status: http.StatusUnauthorized, msg: MsgInvalidCredentials}
	}
	if info.Role == "" {
		info.Role = "write"
	} else if info.Role != "write" {
		info.Role = "read"
	}
	return caller{token: token, info: info}, nil
}

// countAPICall applies the global per-token 5-minute fixed window.
func (s *Server) countAPICall(c *call) *apiError {
	quota := s.opts.APIRequestsPer5Min
	if quota <= 0 {
		return nil
	}
	key := "anonymous"
	if !c.who.anon {
		key = "token:" + c.who.token
	}
	const window = 5 * time.Minute
	now := s.opts.Now()
	s.mu.Lock()
	win := s.windows[key]
	if win == nil || !now.Before(win.start.Add(window)) {
		win = &apiWindow{start: now.Truncate(window)}
		s.windows[key] = win
	}
	win.count++
	remaining := quota - win.count
	reset := int(math.Ceil(win.start.Add(window).Sub(now).Seconds()))
	s.mu.Unlock()
	h := c.w.Header()
	h.Set("RateLimit-Policy", fmt.Sprintf(`"fixed window";"api";q=%d;w=300`, quota))
	if remaining < 0 {
		h.Set("RateLimit", fmt.Sprintf(`"api";r=0;t=%d`, reset))
		return errorf(http.StatusTooManyRequests,
			"You have exceeded our hourly quotas for action: api. We invite you to retry later (hubtest: %d requests per 5 minutes).", quota)
	}
	h.Set("RateLimit", fmt.Sprintf(`"api";r=%d;t=%d`, remaining, reset))
	return nil
}

// sign returns an HMAC over parts, the "signature" of a pre-signed URL.
func (s *Server) sign(parts ...string) string {
	m := hmac.New(sha256.New, s.signKey)
	m.Write([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

func (s *Server) checkSig(sig string, parts ...string) bool {
	return hmac.Equal([]byte(sig), []byte(s.sign(parts...)))
}
