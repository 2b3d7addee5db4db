package hubtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

func handleResolve(c *call) *apiError {
	s := c.server
	s.mu.Lock()
	rp, cm, e := s.lookupRev(c)
	if e != nil {
		s.mu.Unlock()
		return e
	}
	h := c.w.Header()
	h.Set("X-Repo-Commit", cm.oid)
	b, ok := cm.files[c.rt.path]
	if !ok {
		s.mu.Unlock()
		return notFound("EntryNotFound", "Entry not found: %s does not exist at revision %s", c.rt.path, c.rt.rev)
	}
	key := rp.key
	s.mu.Unlock()

	if b.lfs != nil {
		sha, size := b.lfs.sha256, strconv.FormatInt(b.lfs.size, 10)
		loc := fmt.Sprintf("%s/__hubtest/cdn/%s/%s/%s?sig=%s&filename=%s", c.base, key.typ, key.id, sha,
			s.sign("cdn", key.String(), sha), url.QueryEscape(path.Base(c.rt.path)))
		h.Set("X-Linked-Etag", `"`+sha+`"`)
		h.Set("X-Linked-Size", size)
		h.Set("ETag", `"`+sha+`"`)
		h.Set("Location", loc)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		c.w.WriteHeader(http.StatusFound)
		if c.r.Method != http.MethodHead {
			_, _ = fmt.Fprintf(c.w, "Found. Redirecting to %s", loc)
		}
		return nil
	}
	h.Set("ETag", `"`+b.oid+`"`)
	h.Set("Accept-Ranges", "bytes")
	// ServeContent handles HEAD, Range (206 + Content-Range) and If-None-Match.
	http.ServeContent(c.w, c.r, c.rt.path, time.Time{}, bytes.NewReader(b.data))
	return nil
}

func handleCDN(c *call) *apiError {
	key := repoKey{c.rt.typ, c.rt.ns + "/" + c.rt.name}
	sha := c.rt.extra[0]
	s := c.server
	if !s.checkSig(c.r.URL.Query().Get("sig"), "cdn", key.String(), sha) {
		return errorf(http.StatusForbidden, "Access denied: invalid signature on the pre-signed download URL")
	}
	s.mu.Lock()
	var data []byte
	rp := s.repos[key]
	if rp != nil {
		data = rp.lfs[sha]
	}
	s.mu.Unlock()
	if data == nil {
		return errorf(http.StatusNotFound, "NoSuchKey: object %s not found", sha)
	}
	h := c.w.Header()
	h.Set("ETag", `"`+sha+`"`)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "application/octet-stream")
	if name := c.r.URL.Query().Get("filename"); name != "" {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	}
	http.ServeContent(c.w, c.r, "", time.Time{}, bytes.NewReader(data))
	return nil
}

// treeEntry builds a listing item for a file or a directory.
func treeEntry(cm *commit, p string, expand bool, rp *repo) map[string]any {
	var out map[string]any
	if b, ok := cm.files[p]; ok {
		out = map[string]any{"type": "file", "oid": b.oid, "size": b.size(), "path": p}
		if b.lfs != nil {
			out["lfs"] = map[string]any{"oid": b.lfs.sha256, "size": b.lfs.size, "pointerSize": len(b.data)}
		}
	} else {
		out = map[string]any{"type": "directory", "oid": cm.dirOIDs[p], "size": 0, "path": p}
	}
	if expand {
		if last := lastCommitTouching(rp, cm, p); last != nil {
			out["lastCommit"] = map[string]any{"id": last.oid, "title": last.summary, "date": last.at.Format(time.RFC3339Nano)}
		}
		if out["type"] == "file" {
			out["securityFileStatus"] = map[string]any{"status": "safe"}
		}
	}
	return out
}

// entryOID is the oid of a file or directory at a commit, "" if absent.
func entryOID(cm *commit, p string) string {
	if b, ok := cm.files[p]; ok {
		return b.oid
	}
	return cm.dirOIDs[p]
}

// lastCommitTouching walks first-parent history to the oldest commit since
// which the entry has kept its oid.
func lastCommitTouching(rp *repo, cm *commit, p string) *commit {
	oid := entryOID(cm, p)
	last := cm
	for cur := cm; cur != nil && cur.parent != ""; {
		parent := rp.commits[cur.parent]
		if parent == nil || entryOID(parent, p) != oid {
			break
		}
		last, cur = parent, parent
	}
	return last
}

// children lists the entries directly under dir (or all below it when
// recursive), directories included, sorted by path.
func children(cm *commit, dir string, recursive bool) []string {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	set := map[string]bool{}
	for p := range cm.files {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		rest := strings.Split(p[len(prefix):], "/")
		if recursive {
			for i := 1; i <= len(rest); i++ {
				set[prefix+strings.Join(rest[:i], "/")] = true
			}
		} else {
			set[prefix+rest[0]] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func handleTree(c *call) *apiError {
	q := c.r.URL.Query()
	recursive := q.Get("recursive") == "true" || q.Get("recursive") == "1"
	expand := q.Get("expand") == "true" || q.Get("expand") == "1"
	offset := 0
	if cur := q.Get("cursor"); cur != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cur)
		n, err2 := strconv.Atoi(string(raw))
		if err != nil || err2 != nil || n < 0 {
			return errorf(http.StatusBadRequest, "invalid cursor %q: use the Link header of the previous page", cur)
		}
		offset = n
	}
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, cm, e := s.lookupRev(c)
	if e != nil {
		return e
	}
	c.w.Header().Set("X-Repo-Commit", cm.oid)
	dir := c.rt.path
	if _, isDir := cm.dirOIDs[dir]; !isDir {
		if _, isFile := cm.files[dir]; isFile {
			return notFound("EntryNotFound", "%s is a file, not a folder: list its parent folder or use paths-info", dir)
		}
		return notFound("EntryNotFound", "Folder %s does not exist at revision %s", dir, c.rt.rev)
	}
	all := children(cm, dir, recursive)
	if offset > len(all) {
		offset = len(all)
	}
	end := min(offset+s.opts.PageSize, len(all))
	items := make([]map[string]any, 0, end-offset)
	for _, p := range all[offset:end] {
		items = append(items, treeEntry(cm, p, expand, rp))
	}
	if end < len(all) {
		next := *c.r.URL
		nq := next.Query()
		nq.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end))))
		next.RawQuery = nq.Encode()
		c.w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, c.base, next.RequestURI()))
	}
	writeJSON(c.w, http.StatusOK, items)
	return nil
}

func handlePathsInfo(c *call) *apiError {
	var paths []string
	expand := false
	mt, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var req struct {
			Paths  []string `json:"paths"`
			Expand any      `json:"expand"`
		}
		if err := json.Unmarshal(c.body, &req); err != nil {
			return errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
		}
		paths = req.Paths
		expand = req.Expand == true || req.Expand == "true"
	case "application/x-www-form-urlencoded", "":
		form, err := url.ParseQuery(string(c.body))
		if err != nil {
			return errorf(http.StatusBadRequest, "malformed form body: %v", err)
		}
		paths = form["paths"]
		expand = form.Get("expand") == "true" || form.Get("expand") == "True"
	default:
		return errorf(http.StatusBadRequest, "Content-Type %q is not supported: send a form (paths=...&expand=...) or JSON", mt)
	}
	if len(paths) > 1000 {
		return errorf(http.StatusRequestEntityTooLarge, "too many paths: %d (at most 1000 per call)", len(paths))
	}
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, cm, e := s.lookupRev(c)
	if e != nil {
		return e
	}
	items := []map[string]any{}
	for _, p := range paths {
		p = strings.Trim(p, "/")
		if _, isFile := cm.files[p]; isFile || (p != "" && cm.dirOIDs[p] != "") {
			items = append(items, treeEntry(cm, p, expand, rp))
		}
	}
	writeJSON(c.w, http.StatusOK, items)
	return nil
}

func handleListCommits(c *call) *apiError {
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, cm, e := s.lookupRev(c)
	if e != nil {
		return e
	}
	items := []map[string]any{}
	for cur := cm; cur != nil; cur = rp.commits[cur.parent] {
		items = append(items, map[string]any{
			"id": cur.oid, "title": cur.summary, "message": cur.description,
			"date": cur.at.Format(time.RFC3339Nano), "authors": []map[string]string{{"user": cur.author}},
		})
		if cur.parent == "" {
			break
		}
	}
	writeJSON(c.w, http.StatusOK, items)
	return nil
}

func handleSuperSquash(c *call) *apiError {
	var req struct {
		Message *string `json:"message"`
	}
	if len(bytes.TrimSpace(c.body)) > 0 {
		if e := decodeJSON(c, &req); e != nil {
			return e
		}
	}
	msg := "Super-squash branch '" + c.rt.rev + "' using huggingface_hub"
	if req.Message != nil && *req.Message != "" {
		msg = *req.Message
	}
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, e := s.lookupRepoForWrite(c, false)
	if e != nil {
		return e
	}
	if e := s.checkRevForCommit(rp, c.rt.rev, false); e != nil {
		return e
	}
	if rp.busy {
		return errorf(http.StatusConflict, "%s", MsgCommitInProgress)
	}
	head := rp.commits[rp.refs[c.rt.rev]]
	cm := newCommit("", cloneFiles(head.files), msg, "", c.who.info.User, s.opts.Now().UTC(), sortedPaths(head.files))
	rp.commits[cm.oid] = cm
	rp.refs[c.rt.rev] = cm.oid
	writeJSON(c.w, http.StatusOK, map[string]any{"commitId": cm.oid})
	return nil
}

func handleListRefs(c *call) *apiError {
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, e := s.lookupRepo(c)
	if e != nil {
		return e
	}
	branches, prs := []map[string]any{}, []map[string]any{}
	names := make([]string, 0, len(rp.refs))
	for name := range rp.refs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasPrefix(name, "refs/pr/") {
			prs = append(prs, map[string]any{"name": strings.TrimPrefix(name, "refs/pr/"), "ref": name, "targetCommit": rp.refs[name]})
		} else {
			branches = append(branches, map[string]any{"name": name, "ref": "refs/heads/" + name, "targetCommit": rp.refs[name]})
		}
	}
	out := map[string]any{"branches": branches, "converts": []any{}, "tags": []any{}}
	if v := c.r.URL.Query().Get("include_prs"); v == "1" || v == "true" {
		out["pullRequests"] = prs
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

var branchNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$`)

// handleBranch creates (POST, optional {"startingPoint": rev}) or deletes
// (DELETE) a branch.
func handleBranch(c *call) *apiError {
	if c.r.Method != http.MethodPost && c.r.Method != http.MethodDelete {
		return errorf(http.StatusMethodNotAllowed, "use POST to create a branch or DELETE to delete it")
	}
	branch := c.rt.rev
	if !branchNameRE.MatchString(branch) || strings.HasPrefix(branch, "refs/") || strings.Contains(branch, "..") || isHex(branch) && len(branch) >= 7 {
		return errorf(http.StatusBadRequest, "invalid branch name %q: letters, digits, '.', '_', '-', '/', not starting with refs/ and not a commit id", branch)
	}
	var req struct {
		StartingPoint *string `json:"startingPoint"`
	}
	if c.r.Method == http.MethodPost && len(bytes.TrimSpace(c.body)) > 0 {
		if e := decodeJSON(c, &req); e != nil {
			return e
		}
	}
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, e := s.lookupRepoForWrite(c, false)
	if e != nil {
		return e
	}
	_, exists := rp.refs[branch]
	if c.r.Method == http.MethodDelete {
		if !exists {
			return revisionNotFound(branch)
		}
		if branch == "main" {
			return errorf(http.StatusForbidden, "the default branch main cannot be deleted")
		}
		delete(rp.refs, branch)
		c.w.WriteHeader(http.StatusOK)
		return nil
	}
	if exists {
		return errorf(http.StatusConflict, "Reference already exists: refs/heads/%s", branch)
	}
	start := "main"
	if req.StartingPoint != nil && *req.StartingPoint != "" {
		start = *req.StartingPoint
	}
	from, ok := rp.resolveRev(start)
	if !ok {
		return revisionNotFound(start)
	}
	rp.refs[branch] = from.oid
	c.w.WriteHeader(http.StatusOK)
	return nil
}
