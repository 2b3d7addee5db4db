package hfhub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileInfo describes a downloaded file.
type FileInfo struct {
	// Path in the repo.
	Path string
	// Size in bytes.
	Size int64
	// Commit is the commit the file was read at (X-Repo-Commit), if the Hub said.
	Commit string
	// LFS reports whether the file is stored in LFS (then SHA256 is set).
	LFS bool
	// SHA256 is the hex sha256 of the content (always computed).
	SHA256 string
	// GitSHA1 is the git blob id of the content (set for regular files).
	GitSHA1 string
}

const maxRedirects = 10

// Download writes the file at path in the repo, at r's revision ("" =
// main), to w and returns its
// description. It follows the Hub's redirect to LFS storage itself, sending
// the token only to the Hub's own host, resumes an interrupted transfer with a
// Range request, and verifies the size and hash the Hub announced (X-Linked-Etag
// sha256 for LFS files, ETag git sha1 for regular files); a mismatch gives
// ErrIntegrity. On error w may have received part of the file: use
// DownloadFile for an all-or-nothing file.
func (r Repo) Download(ctx context.Context, path string, w io.Writer) (*FileInfo, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	c := r.c
	clean, err := CleanPath(path)
	if err != nil {
		return nil, err
	}
	info := &FileInfo{Path: clean, Size: -1}
	expectHash := ""
	loc := r.ResolveURL(clean)
	var resp *http.Response
	for hops := 0; ; hops++ {
		resp, err = c.do(ctx, &request{op: "download", method: http.MethodGet, url: loc, size: -1, auth: true, retry: true, redirects: true,
			presigned: hops > 0, header: http.Header{"Accept-Encoding": {"identity"}}})
		if err != nil {
			return nil, err
		}
		h := resp.Header
		if v := h.Get("X-Repo-Commit"); v != "" && info.Commit == "" {
			info.Commit = v
		}
		if v := h.Get("X-Linked-Etag"); v != "" && expectHash == "" {
			expectHash = normalizeEtag(v)
			info.LFS = true
		}
		if v := h.Get("X-Linked-Size"); v != "" && info.Size < 0 {
			if n, perr := strconv.ParseInt(v, 10, 64); perr == nil {
				info.Size = n
			}
		}
		if resp.StatusCode < 300 {
			break
		}
		resp.Body.Close()
		if hops >= maxRedirects {
			return nil, fmt.Errorf("%w: download %s: too many redirects", ErrProtocol, clean)
		}
		next := resp.Header.Get("Location")
		if next == "" {
			return nil, fmt.Errorf("%w: download %s: redirect without Location", ErrProtocol, clean)
		}
		if loc, err = resolveRef(loc, c.fixEndpoint(next)); err != nil {
			return nil, fmt.Errorf("%w: download %s: bad redirect: %v", ErrProtocol, clean, err)
		}
	}
	if expectHash == "" {
		expectHash = normalizeEtag(resp.Header.Get("ETag"))
	}
	if info.Size < 0 && resp.ContentLength >= 0 {
		info.Size = resp.ContentLength
	}

	sha := sha256.New()
	var git hash.Hash
	if info.Size >= 0 {
		git = sha1.New()
		fmt.Fprintf(git, "blob %d\x00", info.Size)
	}
	hashes := []io.Writer{errMarkingWriter{w}, sha}
	if git != nil {
		hashes = append(hashes, git)
	}
	mw := io.MultiWriter(hashes...)
	var written int64
	for attempt := 0; ; attempt++ {
		n, cerr := io.Copy(mw, resp.Body)
		resp.Body.Close()
		written += n
		if cerr == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var werr *writeError
		if errors.As(cerr, &werr) || attempt >= c.maxRetries {
			return nil, c.redact(fmt.Errorf("hfhub: download %s: %w", clean, cerr))
		}
		c.log.Debug("hfhub: download interrupted, resuming", "path", clean, "at", written, "err", c.redact(cerr))
		if err := c.sleep(ctx, c.backoff(attempt)); err != nil {
			return nil, err
		}
		resp, err = c.do(ctx, &request{op: "download", method: http.MethodGet, url: loc, size: -1, auth: true, retry: true,
			presigned: loc != r.ResolveURL(clean), header: http.Header{"Accept-Encoding": {"identity"}, "Range": {fmt.Sprintf("bytes=%d-", written)}}})
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			// The server ignored Range: skip what we already have.
			if _, err := io.CopyN(io.Discard, resp.Body, written); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("hfhub: download %s: resuming: %w", clean, err)
			}
		}
	}
	if info.Size >= 0 && written != info.Size {
		return nil, fmt.Errorf("%w: %s: got %d bytes, the Hub announced %d", ErrIntegrity, clean, written, info.Size)
	}
	info.Size = written
	info.SHA256 = hex.EncodeToString(sha.Sum(nil))
	if git != nil {
		info.GitSHA1 = hex.EncodeToString(git.Sum(nil))
	}
	switch len(expectHash) {
	case 64:
		if expectHash != info.SHA256 {
			return nil, fmt.Errorf("%w: %s: sha256 %s, the Hub announced %s", ErrIntegrity, clean, info.SHA256, expectHash)
		}
	case 40:
		if git != nil && expectHash != info.GitSHA1 {
			return nil, fmt.Errorf("%w: %s: git blob id %s, the Hub announced %s", ErrIntegrity, clean, info.GitSHA1, expectHash)
		}
	}
	if info.LFS {
		info.GitSHA1 = "" // the git blob of an LFS file is its pointer, not the content
	}
	return info, nil
}

// writeError marks a failure of the caller's writer (not retried).
type writeError struct{ err error }

func (e *writeError) Error() string { return "writing the download: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

type errMarkingWriter struct{ w io.Writer }

func (m errMarkingWriter) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

func normalizeEtag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	return strings.ToLower(strings.Trim(s, `"`))
}

// DownloadFile downloads the file at path in the repo, at r's revision, into
// the local file dst, all or nothing: the bytes go to a temporary file next
// to dst which is synced, verified and renamed over dst only on success.
func (r Repo) DownloadFile(ctx context.Context, path string, dst LocalPath) error {
	dir := filepath.Dir(string(dst))
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(string(dst))+".*.part")
	if err != nil {
		return fmt.Errorf("hfhub: download %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := r.Download(ctx, path, tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("hfhub: download %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("hfhub: download %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), string(dst)); err != nil {
		return fmt.Errorf("hfhub: download %s: %w", path, err)
	}
	ok = true
	return nil
}
