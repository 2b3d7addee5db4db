package hfhub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Limits of the commit flow, as in huggingface_hub.
const (
	// PreuploadBatchSize is the most files sent in one preupload call (a server limit).
	PreuploadBatchSize = 256
	// LFSBatchSize is the most objects sent in one LFS batch call.
	LFSBatchSize = 256
	// sampleSize is how many leading bytes of a file preupload gets as a sample.
	sampleSize = 512
	// lfsUploadWorkers bounds concurrent LFS object uploads in one commit.
	lfsUploadWorkers = 4
)

// Operation is one change in a commit: an Add, a Delete or a DeleteFolder.
type Operation interface {
	// RepoPath is the path in the repo the operation changes.
	RepoPath() string
	isOperation()
}

// Add adds or replaces the file at Path. Its content comes from exactly one
// of Data, File (a local file), or ReaderAt with Size bytes.
type Add struct {
	// Path is the "/"-separated path in the repo (see CleanPath).
	Path string
	// Data is the content in memory.
	Data []byte
	// File is a local file whose content is read (more than once: it must
	// not change until the commit is done).
	File LocalPath
	// ReaderAt with Size bytes is the content; it must stay readable until
	// the commit is done.
	ReaderAt io.ReaderAt
	Size     int64
}

// AddBytes adds a file at pathInRepo with content b.
func AddBytes(pathInRepo string, b []byte) Add { return Add{Path: pathInRepo, Data: b} }

// AddFile adds a file at pathInRepo with the content of the local file src.
func AddFile(pathInRepo string, src LocalPath) Add { return Add{Path: pathInRepo, File: src} }

// RepoPath implements Operation.
func (a Add) RepoPath() string { return a.Path }
func (Add) isOperation()       {}

// Delete deletes the file at Path (it must exist).
type Delete struct{ Path string }

// RepoPath implements Operation.
func (d Delete) RepoPath() string { return d.Path }
func (Delete) isOperation()       {}

// DeleteFolder deletes the folder at Path and everything under it.
type DeleteFolder struct{ Path string }

// RepoPath implements Operation.
func (d DeleteFolder) RepoPath() string { return d.Path }
func (DeleteFolder) isOperation()       {}

// CommitOptions configure Repo.CreateCommit. nil means the defaults.
type CommitOptions struct {
	// Description is the commit body.
	Description string
	// ParentCommit, if set, makes the commit fail with ErrPreconditionFailed
	// when the branch head is not this commit (optimistic concurrency). Full
	// 40-hex id or a prefix of at least 5.
	ParentCommit string
	// CreatePR opens a pull request instead of committing to the branch.
	CreatePR bool
}

// CommitInfo describes a commit made (or found unnecessary) by Repo.CreateCommit.
type CommitInfo struct {
	// OID is the commit id. For an Empty commit, the unchanged head.
	OID string
	// URL is the commit's web page.
	URL string
	// PullRequestURL is set when CreatePR opened a pull request.
	PullRequestURL string
	// Empty reports that every operation was a no-op (the files already had
	// that content), so no commit was made.
	Empty bool
	// Recovered reports that the commit POST failed (e.g. HTTP 500 or a lost
	// connection) but the Hub had applied it, as a re-check showed. OID is then
	// the branch head found by the re-check.
	Recovered bool
	// Uploaded counts the LFS objects uploaded; Skipped the additions dropped
	// because the Hub already had the same content at that path.
	Uploaded, Skipped int
}

var parentRE = regexp.MustCompile(`^[0-9a-fA-F]{5,40}$`)

// CleanPath normalises a path in a repo like huggingface_hub: leading "/" and
// "./" stripped; empty, "." and ".." paths, ".." components and ".git" or
// ".cache" components rejected with ErrInvalidPath.
func CleanPath(p string) (string, error) {
	orig := p
	for {
		switch {
		case strings.HasPrefix(p, "/"):
			p = p[1:]
		case strings.HasPrefix(p, "./"):
			p = p[2:]
		default:
			goto done
		}
	}
done:
	if p == "" || p == "." || p == ".." {
		return "", fmt.Errorf("%w %q: want a relative file path like data/x.png", ErrInvalidPath, orig)
	}
	if strings.ContainsAny(p, "\\\x00") {
		return "", fmt.Errorf("%w %q: backslashes and NUL bytes are not allowed; use '/'", ErrInvalidPath, orig)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		switch seg {
		case "..":
			return "", fmt.Errorf("%w %q: \"..\" is not allowed", ErrInvalidPath, orig)
		case ".git", ".cache":
			return "", fmt.Errorf("%w %q: a %q folder is not allowed in a repo", ErrInvalidPath, orig, seg)
		case "", ".":
			return "", fmt.Errorf("%w %q: empty or \".\" path segment", ErrInvalidPath, orig)
		}
	}
	if path.Clean(p) != strings.TrimSuffix(p, "/") {
		return "", fmt.Errorf("%w %q: not a clean path", ErrInvalidPath, orig)
	}
	return p, nil
}

// addition is a prepared Add: hashed, with a way to re-read its content.
type addition struct {
	path    string
	size    int64
	sha256  string
	gitSHA1 string
	sample  []byte
	open    func() (io.ReaderAt, io.Closer, error)

	mode      string // "lfs" or "regular", from preupload
	remoteOID string
	ignored   bool
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func prepareAdd(a Add) (*addition, error) {
	p, err := CleanPath(a.Path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(p, "/") {
		return nil, fmt.Errorf("%w: add %q: a file path must not end with '/'", ErrInvalidOperation, a.Path)
	}
	sources := 0
	for _, set := range []bool{a.Data != nil, a.File != "", a.ReaderAt != nil} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return nil, fmt.Errorf("%w: add %q: set only one of Data, File and ReaderAt", ErrInvalidOperation, p)
	}
	ad := &addition{path: p}
	switch {
	case a.File != "":
		st, err := os.Stat(string(a.File))
		if err != nil {
			return nil, fmt.Errorf("%w: add %q: %v", ErrInvalidOperation, p, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: add %q: %s is not a regular file", ErrInvalidOperation, p, a.File)
		}
		ad.size = st.Size()
		file := string(a.File)
		ad.open = func() (io.ReaderAt, io.Closer, error) {
			f, err := os.Open(file)
			if err != nil {
				return nil, nil, err
			}
			return f, f, nil
		}
	case a.ReaderAt != nil:
		if a.Size < 0 {
			return nil, fmt.Errorf("%w: add %q: negative Size", ErrInvalidOperation, p)
		}
		ad.size = a.Size
		ra := a.ReaderAt
		ad.open = func() (io.ReaderAt, io.Closer, error) { return ra, nopCloser{}, nil }
	default:
		data := a.Data
		ad.size = int64(len(data))
		ad.open = func() (io.ReaderAt, io.Closer, error) { return bytes.NewReader(data), nopCloser{}, nil }
	}
	ra, closer, err := ad.open()
	if err != nil {
		return nil, fmt.Errorf("hfhub: add %q: %w", p, err)
	}
	defer closer.Close()
	sha := sha256.New()
	git := sha1.New()
	fmt.Fprintf(git, "blob %d\x00", ad.size)
	var head bytes.Buffer
	n, err := io.Copy(io.MultiWriter(sha, git, &limitedBuffer{buf: &head, max: sampleSize}), io.NewSectionReader(ra, 0, ad.size))
	if err != nil {
		return nil, fmt.Errorf("hfhub: add %q: reading content: %w", p, err)
	}
	if n != ad.size {
		return nil, fmt.Errorf("%w: add %q: content has %d bytes, expected %d", ErrInvalidOperation, p, n, ad.size)
	}
	ad.sha256 = hex.EncodeToString(sha.Sum(nil))
	ad.gitSHA1 = hex.EncodeToString(git.Sum(nil))
	ad.sample = head.Bytes()
	return ad, nil
}

type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (a *addition) readAll() ([]byte, error) {
	ra, closer, err := a.open()
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	b := make([]byte, a.size)
	if _, err := io.ReadFull(io.NewSectionReader(ra, 0, a.size), b); err != nil {
		return nil, err
	}
	return b, nil
}

// noop reports whether the Hub already has this content at this path.
func (a *addition) noop() bool {
	if a.remoteOID == "" {
		return false
	}
	if a.mode == "lfs" {
		return strings.EqualFold(a.remoteOID, a.sha256)
	}
	return strings.EqualFold(a.remoteOID, a.gitSHA1)
}

// CreateCommit applies ops to r's branch ("" = main) in one commit titled
// summary (required), the way huggingface_hub's create_commit does: validate;
// validate the
// README YAML if README.md is added; preupload in batches of ≤256 to learn
// each file's upload mode and remote oid; drop additions the Hub marks
// ignored or already has with the same content; upload the LFS ones (batch
// API, basic or multipart transfer, verify) — objects already stored are not
// uploaded again, so a failed CreateCommit can simply be called again; then
// send the NDJSON commit. If nothing is left, no commit is made and the
// result is Empty.
//
// The commit POST itself is not retried blindly: after a 5xx or a network
// error the client re-checks the branch and treats the commit as done if the
// Hub shows our content (a "500 but applied"); otherwise it sends it again.
// 409 (another commit in progress) and short 429 waits are retried.
func (r Repo) CreateCommit(ctx context.Context, summary string, ops []Operation, opts *CommitOptions) (*CommitInfo, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	c := r.c
	if err := c.requireToken("hfhub: commit"); err != nil {
		return nil, err
	}
	var o CommitOptions
	if opts != nil {
		o = *opts
	}
	if strings.TrimSpace(summary) == "" {
		return nil, fmt.Errorf("%w: the commit summary is empty; say what the commit changes", ErrInvalidOperation)
	}
	if o.ParentCommit != "" && !parentRE.MatchString(o.ParentCommit) {
		return nil, fmt.Errorf("%w: parent commit %q is not a 5-40 hex digit commit id", ErrInvalidOperation, o.ParentCommit)
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("%w: no operations", ErrInvalidOperation)
	}
	r = r.branch()
	var adds []*addition
	var dels []Operation
	for _, op := range ops {
		switch op := op.(type) {
		case Add:
			a, err := prepareAdd(op)
			if err != nil {
				return nil, err
			}
			adds = append(adds, a)
		case *Add:
			a, err := prepareAdd(*op)
			if err != nil {
				return nil, err
			}
			adds = append(adds, a)
		case Delete, DeleteFolder:
			if _, err := CleanPath(op.RepoPath()); err != nil {
				return nil, err
			}
			dels = append(dels, op)
		case nil:
			return nil, fmt.Errorf("%w: nil operation", ErrInvalidOperation)
		default:
			return nil, fmt.Errorf("%w: unsupported operation type %T", ErrInvalidOperation, op)
		}
	}
	for _, a := range adds {
		if a.path == "README.md" {
			if err := c.validateREADME(ctx, r.typ, a); err != nil {
				return nil, err
			}
		}
	}
	if err := c.preupload(ctx, r, adds, o.CreatePR); err != nil {
		return nil, err
	}
	info := &CommitInfo{}
	var live []*addition
	for _, a := range adds {
		if a.size == 0 {
			a.mode = "regular" // S3 rejects empty LFS uploads; the Hub takes them as regular files
		}
		if a.ignored || a.noop() {
			info.Skipped++
			continue
		}
		live = append(live, a)
	}
	uploaded, err := c.uploadLFS(ctx, r, live, o.CreatePR)
	if err != nil {
		return nil, err
	}
	info.Uploaded = uploaded
	if len(live) == 0 && len(dels) == 0 {
		ri, err := r.Info(ctx)
		if err != nil {
			return nil, err
		}
		c.log.Info("hfhub: nothing to commit, every file is unchanged", "repo", r.id.String(), "revision", r.rev)
		info.Empty, info.OID, info.URL = true, ri.SHA, r.CommitURL(ri.SHA)
		return info, nil
	}
	body, err := commitBody(summary, o, live, dels)
	if err != nil {
		return nil, err
	}
	return c.sendCommit(ctx, r, &commitPlan{body: body, createPR: o.CreatePR, adds: live, dels: dels, info: info})
}

// validateREADME asks the Hub to validate a README's YAML front matter before
// anything is uploaded, so a broken card fails early. Hubs without the
// endpoint (404/405) are tolerated.
func (c *Client) validateREADME(ctx context.Context, typ RepoType, a *addition) error {
	content, err := a.readAll()
	if err != nil {
		return fmt.Errorf("hfhub: reading README.md: %w", err)
	}
	body, size, err := jsonBody(map[string]string{"content": string(content), "repoType": string(typ)})
	if err != nil {
		return err
	}
	var out struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	err = c.doJSON(ctx, &request{op: "validate README", method: http.MethodPost, url: c.endpoint + "/api/validate-yaml",
		header: http.Header{"Content-Type": {"application/json"}}, body: body, size: size, auth: true}, &out)
	var he *HubError
	if errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusMethodNotAllowed) {
		return nil
	}
	if errors.As(err, &he) && he.Status == http.StatusBadRequest {
		return fmt.Errorf("%w: README.md has invalid YAML metadata: %w", ErrInvalidOperation, err)
	}
	return err
}

type preuploadFile struct {
	Path         string `json:"path"`
	UploadMode   string `json:"uploadMode"`
	ShouldIgnore bool   `json:"shouldIgnore"`
	OID          string `json:"oid"`
}

// preupload asks the Hub, 256 files at a time, how to upload each addition.
func (c *Client) preupload(ctx context.Context, r Repo, adds []*addition, createPR bool) error {
	u := r.apiURL() + "/preupload/" + escapeRev(r.rev)
	if createPR {
		u += "?create_pr=1"
	}
	for start := 0; start < len(adds); start += PreuploadBatchSize {
		batch := adds[start:min(start+PreuploadBatchSize, len(adds))]
		type file struct {
			Path   string `json:"path"`
			Sample string `json:"sample"`
			Size   int64  `json:"size"`
		}
		req := struct {
			Files []file `json:"files"`
		}{}
		for _, a := range batch {
			req.Files = append(req.Files, file{Path: a.path, Sample: base64.StdEncoding.EncodeToString(a.sample), Size: a.size})
		}
		body, size, err := jsonBody(req)
		if err != nil {
			return err
		}
		var out struct {
			Files     []preuploadFile `json:"files"`
			CommitOID string          `json:"commitOid"`
		}
		if err := c.doJSON(ctx, &request{op: "preupload", method: http.MethodPost, url: u,
			header: http.Header{"Content-Type": {"application/json"}}, body: body, size: size, auth: true, retry: true}, &out); err != nil {
			return err
		}
		byPath := make(map[string]preuploadFile, len(out.Files))
		for _, f := range out.Files {
			byPath[f.Path] = f
		}
		for _, a := range batch {
			f, ok := byPath[a.path]
			if !ok {
				return fmt.Errorf("%w: preupload answer lacks %q", ErrProtocol, a.path)
			}
			if f.UploadMode != "lfs" && f.UploadMode != "regular" {
				return fmt.Errorf("%w: preupload: upload mode %q for %q", ErrProtocol, f.UploadMode, a.path)
			}
			a.mode, a.ignored, a.remoteOID = f.UploadMode, f.ShouldIgnore, f.OID
		}
	}
	return nil
}

type lfsAction struct {
	Href   string         `json:"href"`
	Header map[string]any `json:"header"`
}

type lfsObject struct {
	OID     string `json:"oid"`
	Size    int64  `json:"size"`
	Actions *struct {
		Upload *lfsAction `json:"upload"`
		Verify *lfsAction `json:"verify"`
	} `json:"actions"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

const lfsMediaType = "application/vnd.git-lfs+json"

// uploadLFS uploads the content of the lfs-mode additions the Hub does not
// store yet and returns how many objects it uploaded.
func (c *Client) uploadLFS(ctx context.Context, r Repo, adds []*addition, createPR bool) (int, error) {
	byOID := map[string]*addition{}
	var oids []string
	for _, a := range adds {
		if a.mode != "lfs" {
			continue
		}
		if _, dup := byOID[a.sha256]; !dup {
			byOID[a.sha256] = a
			oids = append(oids, a.sha256)
		}
	}
	uploaded := 0
	batchURL := r.URL() + ".git/info/lfs/objects/batch"
	for start := 0; start < len(oids); start += LFSBatchSize {
		chunk := oids[start:min(start+LFSBatchSize, len(oids))]
		type obj struct {
			OID  string `json:"oid"`
			Size int64  `json:"size"`
		}
		req := map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart"}, "hash_algo": "sha256"}
		objs := make([]obj, 0, len(chunk))
		for _, oid := range chunk {
			objs = append(objs, obj{OID: oid, Size: byOID[oid].size})
		}
		req["objects"] = objs
		if !createPR { // read-only users may open PRs: no ref then
			req["ref"] = map[string]string{"name": r.rev}
		}
		body, size, err := jsonBody(req)
		if err != nil {
			return uploaded, err
		}
		var out struct {
			Transfer string      `json:"transfer"`
			Objects  []lfsObject `json:"objects"`
		}
		if err := c.doJSON(ctx, &request{op: "lfs batch", method: http.MethodPost, url: batchURL,
			header: http.Header{"Content-Type": {lfsMediaType}, "Accept": {lfsMediaType}}, body: body, size: size, auth: true, retry: true}, &out); err != nil {
			return uploaded, err
		}
		var todo []lfsObject
		for _, ob := range out.Objects {
			if ob.Error != nil {
				return uploaded, fmt.Errorf("%w: LFS batch refused %s: %d %s", ErrProtocol, ob.OID, ob.Error.Code, ob.Error.Message)
			}
			if _, ok := byOID[ob.OID]; !ok {
				return uploaded, fmt.Errorf("%w: LFS batch answered for unknown object %s", ErrProtocol, ob.OID)
			}
			if ob.Actions != nil && ob.Actions.Upload != nil {
				todo = append(todo, ob)
			}
		}
		n, err := c.uploadObjects(ctx, todo, byOID)
		uploaded += n
		if err != nil {
			return uploaded, err
		}
	}
	return uploaded, nil
}

// uploadObjects uploads objects with a few workers; the first error cancels the rest.
func (c *Client) uploadObjects(ctx context.Context, objs []lfsObject, byOID map[string]*addition) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan lfsObject)
	errs := make(chan error, len(objs))
	done := make(chan struct{})
	workers := min(lfsUploadWorkers, len(objs))
	finished := 0
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for ob := range jobs {
				err := c.uploadObject(ctx, ob, byOID[ob.OID])
				if err != nil {
					cancel()
				}
				errs <- err
			}
		}()
	}
feed:
	for _, ob := range objs {
		select {
		case jobs <- ob:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	for range workers {
		<-done
	}
	close(errs)
	var first error
	for err := range errs {
		if err == nil {
			finished++
		} else if first == nil || errors.Is(first, context.Canceled) {
			first = err
		}
	}
	return finished, first
}

func (c *Client) uploadObject(ctx context.Context, ob lfsObject, a *addition) error {
	ra, closer, err := a.open()
	if err != nil {
		return fmt.Errorf("hfhub: upload %s: %w", a.path, err)
	}
	defer closer.Close()
	up := ob.Actions.Upload
	if _, multipart := up.Header["chunk_size"]; multipart {
		err = c.uploadMultipart(ctx, a, ra, up)
	} else {
		err = c.uploadBasic(ctx, a, ra, up)
	}
	if err != nil {
		return err
	}
	if v := ob.Actions.Verify; v != nil && v.Href != "" {
		body, size, err := jsonBody(map[string]any{"oid": a.sha256, "size": a.size})
		if err != nil {
			return err
		}
		if err := c.doJSON(ctx, &request{op: "lfs verify", method: http.MethodPost, url: c.fixEndpoint(v.Href),
			header: http.Header{"Content-Type": {lfsMediaType}, "Accept": {lfsMediaType}}, body: body, size: size, auth: true, retry: true}, nil); err != nil {
			return err
		}
	}
	return nil
}

// uploadBasic PUTs the whole object to a pre-signed URL, without the token.
func (c *Client) uploadBasic(ctx context.Context, a *addition, ra io.ReaderAt, up *lfsAction) error {
	resp, err := c.do(ctx, &request{op: "lfs upload", method: http.MethodPut, url: c.fixEndpoint(up.Href),
		body: func() (io.Reader, error) { return io.NewSectionReader(ra, 0, a.size), nil }, size: a.size, retry: true})
	if err != nil {
		return fmt.Errorf("hfhub: uploading %s: %w", a.path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// uploadMultipart PUTs each part to its pre-signed URL and posts the
// completion; neither gets the token.
func (c *Client) uploadMultipart(ctx context.Context, a *addition, ra io.ReaderAt, up *lfsAction) error {
	var chunk int64
	switch v := up.Header["chunk_size"].(type) {
	case string:
		if _, err := fmt.Sscan(v, &chunk); err != nil {
			return fmt.Errorf("%w: multipart chunk_size %q", ErrProtocol, v)
		}
	case float64:
		chunk = int64(v)
	}
	if chunk <= 0 {
		return fmt.Errorf("%w: multipart chunk_size missing or not positive", ErrProtocol)
	}
	type part struct {
		n   int
		url string
	}
	var parts []part
	for k, v := range up.Header {
		if k == "" || strings.Trim(k, "0123456789") != "" {
			continue
		}
		n, err := strconv.Atoi(k)
		if err != nil {
			return fmt.Errorf("%w: multipart part key %q", ErrProtocol, k)
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%w: multipart part %q URL is not a string", ErrProtocol, k)
		}
		parts = append(parts, part{n: n, url: s})
	}
	want := (a.size + chunk - 1) / chunk
	if int64(len(parts)) != want {
		return fmt.Errorf("%w: invalid server response to upload large LFS file %s: %d part URLs for %d bytes in chunks of %d", ErrProtocol, a.path, len(parts), a.size, chunk)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].n < parts[j].n })
	type done struct {
		PartNumber int    `json:"partNumber"`
		ETag       string `json:"etag"`
	}
	completed := make([]done, 0, len(parts))
	for i, p := range parts {
		off := int64(i) * chunk
		n := min(chunk, a.size-off)
		resp, err := c.do(ctx, &request{op: "lfs upload part", method: http.MethodPut, url: c.fixEndpoint(p.url),
			body: func() (io.Reader, error) { return io.NewSectionReader(ra, off, n), nil }, size: n, retry: true})
		if err != nil {
			return fmt.Errorf("hfhub: uploading %s part %d: %w", a.path, i+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if etag == "" {
			return fmt.Errorf("%w: part %d of %s: no ETag in the answer", ErrProtocol, i+1, a.path)
		}
		completed = append(completed, done{PartNumber: i + 1, ETag: etag})
	}
	body, size, err := jsonBody(map[string]any{"oid": a.sha256, "parts": completed})
	if err != nil {
		return err
	}
	return c.doJSON(ctx, &request{op: "lfs complete multipart", method: http.MethodPost, url: c.fixEndpoint(up.Href),
		header: http.Header{"Content-Type": {lfsMediaType}, "Accept": {lfsMediaType}}, body: body, size: size, retry: true}, nil)
}

type ndjsonLine struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// commitBody builds the NDJSON payload: header first, then one line per change.
func commitBody(summary string, o CommitOptions, adds []*addition, dels []Operation) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // Encode appends "\n" after every line, like huggingface_hub
	enc.SetEscapeHTML(false)
	header := map[string]string{"summary": summary, "description": o.Description}
	if o.ParentCommit != "" {
		header["parentCommit"] = o.ParentCommit
	}
	if err := enc.Encode(ndjsonLine{"header", header}); err != nil {
		return nil, err
	}
	for _, a := range adds {
		var line ndjsonLine
		if a.mode == "lfs" {
			line = ndjsonLine{"lfsFile", map[string]any{"path": a.path, "algo": "sha256", "oid": a.sha256, "size": a.size}}
		} else {
			content, err := a.readAll()
			if err != nil {
				return nil, fmt.Errorf("hfhub: reading %s: %w", a.path, err)
			}
			line = ndjsonLine{"file", map[string]string{"path": a.path, "content": base64.StdEncoding.EncodeToString(content), "encoding": "base64"}}
		}
		if err := enc.Encode(line); err != nil {
			return nil, err
		}
	}
	for _, d := range dels {
		p, _ := CleanPath(d.RepoPath())
		key := "deletedFile"
		if _, ok := d.(DeleteFolder); ok {
			key = "deletedFolder"
			p = strings.TrimSuffix(p, "/") + "/"
		}
		if err := enc.Encode(ndjsonLine{key, map[string]string{"path": p}}); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// commitPlan is a commit ready to send: its NDJSON body, the changes it
// makes (to re-check whether a failed attempt was applied) and the result so
// far.
type commitPlan struct {
	body     []byte
	createPR bool
	adds     []*addition
	dels     []Operation
	info     *CommitInfo
}

// sendCommit posts the commit, handling the Hub's failure modes without
// ever applying it twice.
func (c *Client) sendCommit(ctx context.Context, r Repo, p *commitPlan) (*CommitInfo, error) {
	body, adds, dels, info := p.body, p.adds, p.dels, p.info
	u := r.apiURL() + "/commit/" + escapeRev(r.rev)
	if p.createPR {
		u += "?" + url.Values{"create_pr": {"1"}}.Encode()
	}
	uncertain := false // a previous attempt may have been applied
	for attempt := 0; ; attempt++ {
		var out struct {
			Success        bool   `json:"success"`
			CommitOID      string `json:"commitOid"`
			CommitURL      string `json:"commitUrl"`
			PullRequestURL string `json:"pullRequestUrl"`
		}
		err := c.doJSON(ctx, &request{op: "commit", method: http.MethodPost, url: u,
			header: http.Header{"Content-Type": {"application/x-ndjson"}}, body: bytesBody(body), size: int64(len(body)), auth: true}, &out)
		if err == nil {
			if out.CommitOID == "" {
				return nil, fmt.Errorf("%w: commit answer without commitOid", ErrProtocol)
			}
			info.OID, info.PullRequestURL = out.CommitOID, RedactURL(c.fixEndpoint(out.PullRequestURL))
			info.URL = RedactURL(c.fixEndpoint(out.CommitURL))
			if info.URL == "" {
				info.URL = r.CommitURL(out.CommitOID)
			}
			return info, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		last := attempt >= c.maxRetries
		var he *HubError
		isHub := errors.As(err, &he)
		switch {
		case isHub && he.Status == http.StatusPreconditionFailed && uncertain:
			// Our earlier attempt may be what moved the branch.
			if ok, head := c.commitApplied(ctx, r, adds, dels); ok {
				return recovered(r, info, head), nil
			}
			return nil, err
		case isHub && he.Status == http.StatusConflict && !last:
			// Another commit is in progress on this repo: ours was not applied.
			if err := c.sleep(ctx, c.backoff(attempt)); err != nil {
				return nil, err
			}
			continue
		case isHub && he.Status == http.StatusTooManyRequests && !last:
			wait := he.RetryAfter
			if wait == 0 {
				wait = c.backoff(attempt)
			}
			if wait > c.maxRetryAt {
				return nil, err
			}
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		case (!isHub || he.Status >= 500 || he.Status == http.StatusRequestTimeout) && !p.createPR:
			// 5xx or a lost connection: the Hub may still have applied it.
			uncertain = true
			if ok, head := c.commitApplied(ctx, r, adds, dels); ok {
				c.log.Warn("hfhub: commit failed but the Hub applied it", "repo", r.id.String(), "err", err)
				return recovered(r, info, head), nil
			}
			if last {
				return nil, err
			}
			c.log.Debug("hfhub: commit failed and was not applied, retrying", "repo", r.id.String(), "attempt", attempt+1, "err", err)
			if err := c.sleep(ctx, c.backoff(attempt)); err != nil {
				return nil, err
			}
			continue
		}
		return nil, err
	}
}

func recovered(r Repo, info *CommitInfo, head string) *CommitInfo {
	info.OID, info.URL, info.Recovered = head, r.CommitURL(head), true
	return info
}

// commitApplied re-checks the branch: the commit counts as applied when every
// addition is on the Hub with our content and every deleted path is gone.
// Any doubt (including a failing check) answers false.
func (c *Client) commitApplied(ctx context.Context, r Repo, adds []*addition, dels []Operation) (bool, string) {
	check := make([]*addition, len(adds))
	for i, a := range adds {
		cp := *a
		cp.remoteOID = ""
		check[i] = &cp
	}
	if len(check) > 0 {
		if err := c.preupload(ctx, r, check, false); err != nil {
			c.log.Debug("hfhub: could not re-check the commit", "err", err)
			return false, ""
		}
		for i, a := range check {
			a.mode = adds[i].mode
			if !a.noop() {
				return false, ""
			}
		}
	}
	ri, err := r.Info(ctx)
	if err != nil {
		return false, ""
	}
	if len(dels) > 0 {
		if len(ri.Siblings) == 0 {
			return false, ""
		}
		for _, s := range ri.Siblings {
			for _, d := range dels {
				p, _ := CleanPath(d.RepoPath())
				switch d.(type) {
				case Delete:
					if s.RFilename == p {
						return false, ""
					}
				case DeleteFolder:
					if strings.HasPrefix(s.RFilename, strings.TrimSuffix(p, "/")+"/") {
						return false, ""
					}
				}
			}
		}
	}
	return true, ri.SHA
}
