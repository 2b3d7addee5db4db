package hubtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// commitOp is one parsed NDJSON operation line.
type commitOp struct {
	line    int
	key     string // file, lfsFile, deletedFile, deletedFolder
	path    string
	content []byte // file
	oid     string // lfsFile
	size    *int64 // lfsFile
}

type commitHeader struct {
	Summary      *string `json:"summary"`
	Description  *string `json:"description"`
	ParentCommit *string `json:"parentCommit"`
}

// parseCommitBody parses and validates an NDJSON commit body without
// touching state.
func parseCommitBody(body []byte) (commitHeader, []commitOp, *apiError) {
	var hdr commitHeader
	var ops []commitOp
	seenHeader := false
	lines := bytes.Split(body, []byte("\n"))
	for i, raw := range lines {
		n := i + 1
		line := bytes.TrimSpace(raw)
		if len(line) == 0 {
			continue // a trailing newline or blank lines are fine
		}
		var l struct {
			Key   *string         `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			return hdr, nil, errorf(http.StatusBadRequest, "line %d is not a JSON object: %v", n, err)
		}
		if l.Key == nil {
			return hdr, nil, errorf(http.StatusBadRequest, `line %d has no "key"`, n)
		}
		if len(l.Value) == 0 || l.Value[0] != '{' {
			return hdr, nil, errorf(http.StatusBadRequest, `line %d: "value" must be a JSON object`, n)
		}
		if *l.Key == "header" {
			if seenHeader {
				return hdr, nil, errorf(http.StatusBadRequest, "line %d: a second header line; exactly one header is allowed", n)
			}
			if len(ops) > 0 {
				return hdr, nil, errorf(http.StatusBadRequest, "line %d: the header must be the first line", n)
			}
			seenHeader = true
			if err := json.Unmarshal(l.Value, &hdr); err != nil {
				return hdr, nil, errorf(http.StatusBadRequest, "line %d: invalid header: %v", n, err)
			}
			if hdr.Summary == nil || strings.TrimSpace(*hdr.Summary) == "" {
				return hdr, nil, errorf(http.StatusBadRequest, "line %d: the commit summary (title) must not be empty", n)
			}
			if p := hdr.ParentCommit; p != nil && (len(*p) < 5 || len(*p) > 40 || !isHex(*p)) {
				return hdr, nil, errorf(http.StatusBadRequest, "line %d: parentCommit %q must be 5 to 40 hex characters", n, *p)
			}
			continue
		}
		if !seenHeader {
			return hdr, nil, errorf(http.StatusBadRequest, "line %d: the first line must be the header (key \"header\")", n)
		}
		op, e := parseOpLine(n, *l.Key, l.Value)
		if e != nil {
			return hdr, nil, e
		}
		ops = append(ops, op)
	}
	if !seenHeader {
		return hdr, nil, errorf(http.StatusBadRequest, "the commit has no header line")
	}
	return hdr, ops, nil
}

func parseOpLine(n int, key string, value json.RawMessage) (commitOp, *apiError) {
	var v struct {
		Path     *string `json:"path"`
		Content  *string `json:"content"`
		Encoding *string `json:"encoding"`
		Algo     *string `json:"algo"`
		OID      *string `json:"oid"`
		Size     *int64  `json:"size"`
	}
	if err := json.Unmarshal(value, &v); err != nil {
		return commitOp{}, errorf(http.StatusBadRequest, "line %d (%s): %v", n, key, err)
	}
	if v.Path == nil {
		return commitOp{}, errorf(http.StatusBadRequest, `line %d (%s): "path" is required`, n, key)
	}
	op := commitOp{line: n, key: key, path: *v.Path}
	check := op.path
	if key == "deletedFolder" {
		check = strings.TrimSuffix(check, "/")
	}
	if err := validRepoPath(check); err != nil {
		return commitOp{}, errorf(http.StatusBadRequest, "line %d (%s): %v", n, key, err)
	}
	switch key {
	case "file":
		if v.Content == nil {
			return commitOp{}, errorf(http.StatusBadRequest, `line %d (file %s): "content" is required`, n, op.path)
		}
		enc := "base64"
		if v.Encoding != nil {
			enc = *v.Encoding
		}
		switch enc {
		case "base64":
			data, err := base64.StdEncoding.Strict().DecodeString(*v.Content)
			if err != nil || strings.ContainsAny(*v.Content, "\r\n") {
				return commitOp{}, errorf(http.StatusBadRequest, "line %d (file %s): content is not valid standard base64 with padding: %v", n, op.path, err)
			}
			op.content = data
		case "utf-8", "utf8":
			op.content = []byte(*v.Content)
		default:
			return commitOp{}, errorf(http.StatusBadRequest, `line %d (file %s): encoding %q is not supported: use "base64"`, n, op.path, enc)
		}
		size := len(op.content)
		if size > textLimit || (size > binaryLimit && isBinarySample(op.content[:min(size, 8000)], size > 8000)) {
			return commitOp{}, errorf(http.StatusBadRequest,
				"Your push was rejected because it contains binary files or files larger than 10 MB (%s, %d bytes at line %d). Please use https://huggingface.co/docs/hub/xet to store large files: upload them with LFS (preupload said uploadMode \"lfs\") and send an lfsFile line.",
				op.path, size, n)
		}
	case "lfsFile":
		if v.Algo == nil || *v.Algo != "sha256" {
			return commitOp{}, errorf(http.StatusBadRequest, `line %d (lfsFile %s): "algo" must be "sha256"`, n, op.path)
		}
		if v.OID == nil || !sha256RE.MatchString(*v.OID) {
			return commitOp{}, errorf(http.StatusBadRequest, `line %d (lfsFile %s): "oid" must be a lowercase hex SHA-256`, n, op.path)
		}
		if v.Size != nil && *v.Size < 0 {
			return commitOp{}, errorf(http.StatusBadRequest, `line %d (lfsFile %s): "size" must not be negative`, n, op.path)
		}
		op.oid, op.size = *v.OID, v.Size
	case "deletedFile", "deletedFolder":
	default:
		return commitOp{}, errorf(http.StatusBadRequest, `line %d: unknown key %q (expected header, file, lfsFile, deletedFile or deletedFolder)`, n, key)
	}
	return op, nil
}

func handleCommit(c *call) *apiError {
	if mt, _, err := mime.ParseMediaType(c.r.Header.Get("Content-Type")); err != nil || mt != "application/x-ndjson" {
		return errorf(http.StatusBadRequest, "Content-Type must be application/x-ndjson, got %q", c.r.Header.Get("Content-Type"))
	}
	createPR := isCreatePR(c.r)
	s := c.server

	// Claim the repo's commit slot; checks that need no body come first so a
	// missing repo is reported as such.
	s.mu.Lock()
	rp, e := s.lookupRepoForWrite(c, createPR)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	if e := s.checkRevForCommit(rp, c.rt.rev, createPR); e != nil {
		s.mu.Unlock()
		return e
	}
	if e := s.checkCommitRate(c, rp); e != nil {
		s.mu.Unlock()
		return e
	}
	if rp.busy {
		s.mu.Unlock()
		return errorf(http.StatusConflict, "%s", MsgCommitInProgress)
	}
	rp.busy = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		rp.busy = false
		s.mu.Unlock()
	}()

	if h, ok := c.ctx.Value(commitDelayKey).(hold); ok {
		if !h.wait(c.ctx) {
			return errorf(http.StatusRequestTimeout, "request cancelled by the client")
		}
	}
	hdr, ops, e := parseCommitBody(c.body)
	if e != nil {
		return e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repos[rp.key] != rp {
		return notFound("RepoNotFound", "Repository not found: %s was deleted", rp.key.id)
	}
	// Re-check: the branch may have moved or been deleted while we waited.
	if e := s.checkRevForCommit(rp, c.rt.rev, createPR); e != nil {
		return e
	}
	branch := strings.TrimPrefix(c.rt.rev, "refs/heads/")
	head := rp.commits[rp.refs[branch]]
	base := head
	if hdr.ParentCommit != nil {
		want := strings.ToLower(*hdr.ParentCommit)
		if createPR {
			found, ok := rp.resolveRev(want)
			if !ok || len(want) < 5 {
				return errorf(http.StatusPreconditionFailed, "parentCommit %s is not a commit of this repository", want)
			}
			base = found
		} else if !strings.HasPrefix(head.oid, want) {
			return errorf(http.StatusPreconditionFailed, "%s", MsgStaleParent)
		}
	}
	tree := cloneFiles(base.files)
	var changed []string
	for _, op := range ops {
		switch op.key {
		case "file":
			tree[op.path] = newRegularBlob(op.content)
		case "lfsFile":
			data, ok := rp.lfs[op.oid]
			if !ok {
				return errorf(http.StatusBadRequest, "line %d (lfsFile %s): LFS pointer pointed to a file that does not exist: object %s was never uploaded to this repo", op.line, op.path, op.oid)
			}
			if op.size != nil && *op.size != int64(len(data)) {
				return errorf(http.StatusBadRequest, "line %d (lfsFile %s): size %d does not match the stored object's size %d", op.line, op.path, *op.size, len(data))
			}
			tree[op.path] = newLFSBlob(op.oid, int64(len(data)))
		case "deletedFile":
			if _, ok := tree[op.path]; !ok {
				return notFound("EntryNotFound", "A file with this name doesn't exist: %s (line %d)", op.path, op.line)
			}
			delete(tree, op.path)
		case "deletedFolder":
			prefix := strings.TrimSuffix(op.path, "/") + "/"
			found := false
			for p := range tree {
				if strings.HasPrefix(p, prefix) {
					delete(tree, p)
					changed = append(changed, p)
					found = true
				}
			}
			if !found {
				return notFound("EntryNotFound", "A file with this name doesn't exist: no file under folder %s (line %d)", prefix, op.line)
			}
			continue
		}
		changed = append(changed, op.path)
	}
	if e := checkFileFolderConflicts(tree); e != nil {
		return e
	}
	// Like the Hub, track lfsFile paths that .gitattributes does not cover yet,
	// so later preuploads of the same path answer "lfs".
	if attrs, added := trackLFSPaths(tree, ops); added {
		tree[".gitattributes"] = newRegularBlob([]byte(attrs))
		changed = append(changed, ".gitattributes")
	}
	changed = dedupe(changed)
	desc := ""
	if hdr.Description != nil {
		desc = *hdr.Description
	}
	now := s.opts.Now().UTC()
	cm := newCommit(base.oid, tree, strings.TrimSpace(*hdr.Summary), desc, c.who.info.User, now, changed)
	rp.commits[cm.oid] = cm
	rp.recent = append(rp.recent, now)
	resp := map[string]any{"success": true, "commitOid": cm.oid, "hookOutput": ""}
	if createPR {
		rp.prs++
		ref := fmt.Sprintf("refs/pr/%d", rp.prs)
		rp.refs[ref] = cm.oid
		resp["pullRequestUrl"] = fmt.Sprintf("%s/%s/discussions/%d", c.base, rp.key.urlPath(), rp.prs)
	} else {
		rp.refs[branch] = cm.oid
	}
	resp["commitUrl"] = c.base + "/" + rp.key.urlPath() + "/commit/" + cm.oid
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}

// checkRevForCommit: commits go to a branch or an open PR ref, never to a
// commit id; a PR is opened against a branch (s.mu held).
func (s *Server) checkRevForCommit(rp *repo, rev string, createPR bool) *apiError {
	rev = strings.TrimPrefix(rev, "refs/heads/")
	if _, ok := rp.refs[rev]; !ok {
		return notFound("RevisionNotFound", "Invalid rev id: %s (commits must target an existing branch)", rev)
	}
	if createPR && strings.HasPrefix(rev, "refs/pr/") {
		return errorf(http.StatusBadRequest, "cannot open a pull request against %s: target a branch", rev)
	}
	return nil
}

// checkCommitRate applies the per-repo sliding-hour commit limit (s.mu held).
func (s *Server) checkCommitRate(c *call, rp *repo) *apiError {
	limit := s.opts.CommitsPerHour
	if limit < 0 {
		return nil
	}
	now := s.opts.Now()
	cut := now.Add(-time.Hour)
	kept := rp.recent[:0]
	for _, t := range rp.recent {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	rp.recent = kept
	if len(kept) < limit {
		return nil
	}
	wait := kept[0].Add(time.Hour).Sub(now)
	secs := int(math.Ceil(wait.Seconds()))
	mins := int(math.Ceil(wait.Minutes()))
	return &apiError{status: http.StatusTooManyRequests,
		msg:    fmt.Sprintf("You have exceeded the rate limit for repository commits (%d per hour). You can retry this action in %d minutes. If you need higher limits, consider batching more files per commit.", limit, mins),
		header: http.Header{"Retry-After": []string{strconv.Itoa(secs)}}}
}

// checkFileFolderConflicts refuses a tree where a path is both a file and a
// folder (e.g. "data" and "data/a.txt"), which git cannot represent.
func checkFileFolderConflicts(tree map[string]*blob) *apiError {
	for p := range tree {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, isFile := tree[dir]; isFile {
				return errorf(http.StatusBadRequest, "path %q needs a folder %q, but %q is a file: delete it in the same commit or choose another path", p, dir, dir)
			}
		}
	}
	return nil
}

// trackLFSPaths appends "<path> filter=lfs diff=lfs merge=lfs -text" to
// .gitattributes for every lfsFile path it does not track yet.
func trackLFSPaths(tree map[string]*blob, ops []commitOp) (string, bool) {
	if b, ok := tree[".gitattributes"]; ok && b.lfs != nil {
		return "", false // an LFS-stored .gitattributes is left alone
	}
	attrs := gitAttributesOf(tree)
	added := false
	for _, op := range ops {
		if op.key != "lfsFile" || tree[op.path] == nil || tree[op.path].lfs == nil || lfsTracked(attrs, op.path) {
			continue
		}
		if attrs != "" && !strings.HasSuffix(attrs, "\n") {
			attrs += "\n"
		}
		// A space would split the pattern; "?" matches it (and any other character).
		attrs += strings.ReplaceAll(globEscaper.Replace(op.path), " ", "?") + " filter=lfs diff=lfs merge=lfs -text\n"
		added = true
	}
	return attrs, added
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
