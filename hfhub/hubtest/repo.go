package hubtest

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/advspace/advspace/internal/randid"
)

type repoKey struct{ typ, id string }

func (k repoKey) String() string { return k.typ + ":" + k.id }

// urlPath is the repo's path on the website: datasets/ns/name, spaces/ns/name or ns/name.
func (k repoKey) urlPath() string {
	if k.typ == "model" {
		return k.id
	}
	return k.typ + "s/" + k.id
}

type repo struct {
	key       repoKey
	private   bool
	objectID  string
	sdk       string
	createdAt time.Time
	refs      map[string]string // branch or refs/pr/N → commit oid
	commits   map[string]*commit
	lfs       map[string][]byte // sha256 → content: this repo's LFS storage
	recent    []time.Time       // times of recent commits, for the hourly limit
	busy      bool              // a commit is in progress
	prs       int
}

// resolveRev finds the commit of a branch, PR ref or (≥7 hex chars) commit id.
func (r *repo) resolveRev(rev string) (*commit, bool) {
	rev = strings.TrimPrefix(rev, "refs/heads/")
	if oid, ok := r.refs[rev]; ok {
		return r.commits[oid], true
	}
	if len(rev) >= 7 && len(rev) <= 40 && isHex(rev) {
		var found *commit
		for oid, c := range r.commits {
			if strings.HasPrefix(oid, strings.ToLower(rev)) {
				if found != nil {
					return nil, false // ambiguous
				}
				found = c
			}
		}
		return found, found != nil
	}
	return nil, false
}

func (r *repo) lastModified() time.Time {
	var t time.Time
	for _, oid := range r.refs {
		if c := r.commits[oid]; c != nil && c.at.After(t) {
			t = c.at
		}
	}
	return t
}

var hexRE = regexp.MustCompile(`^[0-9a-fA-F]+$`)

func isHex(s string) bool { return hexRE.MatchString(s) }

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

var repoNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)

func validRepoName(part string) error {
	if !repoNameRE.MatchString(part) || strings.Contains(part, "--") || strings.Contains(part, "..") ||
		strings.HasSuffix(part, ".") || strings.HasSuffix(part, "-") || strings.HasSuffix(part, ".git") {
		return fmt.Errorf("%q is not a valid repo name or namespace: use letters, digits, '-', '_', '.' (no '--' or '..', not ending in '-', '.' or '.git', at most 96 characters)", part)
	}
	return nil
}

// normType accepts model/dataset/space, their plurals, and "" for model.
func normType(t string) (string, error) {
	switch strings.ToLower(t) {
	case "", "model", "models":
		return "model", nil
	case "dataset", "datasets":
		return "dataset", nil
	case "space", "spaces":
		return "space", nil
	}
	return "", fmt.Errorf("unknown repo type %q: use model, dataset or space", t)
}

// lookupRepo finds a repo for reading, mapping absence and privacy to the
// Hub's answers (s.mu held).
func (s *Server) lookupRepo(c *call) (*repo, *apiError) {
	key := repoKey{c.rt.typ, c.rt.ns + "/" + c.rt.name}
	rp := s.repos[key]
	if rp == nil || (rp.private && !c.who.memberOf(c.rt.ns)) {
		if c.who.anon {
			// Anonymous callers cannot tell private from missing: 401.
			return nil, &apiError{status: http.StatusUnauthorized, code: "RepoNotFound", msg: "Invalid username or password."}
		}
		return nil, notFound("RepoNotFound", "Repository not found: %s %s does not exist or you do not have access to it.", key.typ, key.id)
	}
	return rp, nil
}

// lookupRev finds a repo for reading, as lookupRepo does, and the commit the
// call's revision names (s.mu held).
func (s *Server) lookupRev(c *call) (*repo, *commit, *apiError) {
	rp, e := s.lookupRepo(c)
	if e != nil {
		return nil, nil, e
	}
	cm, ok := rp.resolveRev(c.rt.rev)
	if !ok {
		return nil, nil, revisionNotFound(c.rt.rev)
	}
	return rp, cm, nil
}

// revisionNotFound is the Hub's answer for a branch, ref or commit id that
// does not exist.
func revisionNotFound(rev string) *apiError {
	return notFound("RevisionNotFound", "Invalid rev id: %s", rev)
}

// lookupRepoForWrite also checks that the caller may write (or, when
// allowRead, that a read token may open a pull request) (s.mu held).
func (s *Server) lookupRepoForWrite(c *call, allowReadForPR bool) (*repo, *apiError) {
	if c.who.anon {
		return nil, errorf(http.StatusUnauthorized, "You must be authenticated to access this resource: send an Authorization: Bearer <token> header.")
	}
	rp, e := s.lookupRepo(c)
	if e != nil {
		return nil, e
	}
	// Anyone who can read a repo may open a pull request on it; everything else needs write access.
	if !c.who.canWriteNamespace(c.rt.ns) && !allowReadForPR {
		return nil, errorf(http.StatusForbidden, "You don't have the rights to write to %s %s: your token has role %q in namespace %q (a write token of its owner or an org member is needed).",
			rp.key.typ, rp.key.id, c.who.info.Role, c.rt.ns)
	}
	return rp, nil
}

// createRepoLocked makes a repo with its initial commit (s.mu held).
func (s *Server) createRepoLocked(key repoKey, private bool, sdk, author string) *repo {
	now := s.opts.Now().UTC()
	rp := &repo{
		key: key, private: private, sdk: sdk, objectID: randid.Hex(12), createdAt: now,
		refs: map[string]string{}, commits: map[string]*commit{}, lfs: map[string][]byte{},
	}
	attrs := DefaultGitAttributes
	if key.typ == "dataset" {
		attrs = DefaultDatasetGitAttributes
	}
	files := map[string]*blob{".gitattributes": newRegularBlob([]byte(attrs))}
	if key.typ == "space" {
		readme := fmt.Sprintf("---\ntitle: %s\nsdk: %s\n---\n", key.id[strings.Index(key.id, "/")+1:], sdk)
		files["README.md"] = newRegularBlob([]byte(readme))
	}
	var changed []string
	for p := range files {
		changed = append(changed, p)
	}
	c := newCommit("", files, "initial commit", "", author, now, changed)
	rp.commits[c.oid] = c
	rp.refs["main"] = c.oid
	s.repos[key] = rp
	return rp
}

// ---- Inspection and seeding helpers for tests ----

// Commit describes one commit, for tests.
type Commit struct {
	OID         string
	Parent      string // "" for the first commit
	Summary     string
	Description string
	Author      string
	Time        time.Time
	// Changed lists the paths added, updated or deleted, sorted.
	Changed []string
}

// FileInfo describes one file at one revision, for tests.
type FileInfo struct {
	Path    string
	Size    int64  // real content size
	BlobOID string // git blob sha1 (of the pointer for LFS files)
	LFS     bool
	SHA256  string // LFS object id, when LFS
}

func (s *Server) repoLocked(repoType, repoID string) *repo {
	typ, err := normType(repoType)
	if err != nil {
		return nil
	}
	return s.repos[repoKey{typ, repoID}]
}

// commitLocked finds a repo and the commit a revision names; ok is false
// when either is unknown (s.mu held).
func (s *Server) commitLocked(repoType, repoID, revision string) (rp *repo, c *commit, ok bool) {
	rp = s.repoLocked(repoType, repoID)
	if rp == nil {
		return nil, nil, false
	}
	c, ok = rp.resolveRev(revision)
	if !ok {
		return nil, nil, false
	}
	return rp, c, true
}

// CreateRepo creates a repo directly (no HTTP), seeded like the Hub does:
// an initial commit holding the default .gitattributes.
func (s *Server) CreateRepo(repoType, repoID string, private bool) error {
	typ, err := normType(repoType)
	if err != nil {
		return fmt.Errorf("hubtest: %w", err)
	}
	ns, name, ok := strings.Cut(repoID, "/")
	if !ok {
		return fmt.Errorf("hubtest: repo id %q must be namespace/name", repoID)
	}
	for _, part := range []string{ns, name} {
		if err := validRepoName(part); err != nil {
			return fmt.Errorf("hubtest: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := repoKey{typ, repoID}
	if s.repos[key] != nil {
		return fmt.Errorf("hubtest: %s %s already exists", typ, repoID)
	}
	sdk := ""
	if typ == "space" {
		sdk = "static"
	}
	s.createRepoLocked(key, private, sdk, ns)
	return nil
}

// Seed commits files directly to a branch (no HTTP, no rate limit). Files
// whose path .gitattributes tracks, or larger than 10 MB, are stored with LFS.
// It returns the new commit id.
func (s *Server) Seed(repoType, repoID, branch, summary string, files map[string][]byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repoLocked(repoType, repoID)
	if rp == nil {
		return "", fmt.Errorf("hubtest: %s %s: %w", repoType, repoID, errNoRepo)
	}
	headOID, ok := rp.refs[branch]
	if !ok {
		return "", fmt.Errorf("hubtest: %s %s has no branch %q", repoType, repoID, branch)
	}
	head := rp.commits[headOID]
	tree := cloneFiles(head.files)
	attrs := gitAttributesOf(head.files)
	for p := range files { // validate everything first: a refused seed changes nothing
		if err := validRepoPath(p); err != nil {
			return "", fmt.Errorf("hubtest: %w", err)
		}
	}
	var changed []string
	for p, content := range files {
		if lfsTracked(attrs, p) || len(content) > textLimit {
			sha := SHA256(content)
			rp.lfs[sha] = append([]byte(nil), content...)
			tree[p] = newLFSBlob(sha, int64(len(content)))
		} else {
			tree[p] = newRegularBlob(append([]byte(nil), content...))
		}
		changed = append(changed, p)
	}
	c := newCommit(headOID, tree, summary, "", rp.key.id[:strings.Index(rp.key.id, "/")], s.opts.Now().UTC(), changed)
	rp.commits[c.oid] = c
	rp.refs[branch] = c.oid
	return c.oid, nil
}

// Commits returns the history of the main branch, oldest first.
func (s *Server) Commits(repoType, repoID string) []Commit {
	return s.History(repoType, repoID, "main")
}

// History returns the history of a revision, oldest first (nil if unknown).
func (s *Server) History(repoType, repoID, revision string) []Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, c, ok := s.commitLocked(repoType, repoID, revision)
	if !ok {
		return nil
	}
	var out []Commit
	for ; c != nil; c = rp.commits[c.parent] {
		out = append(out, Commit{OID: c.oid, Parent: c.parent, Summary: c.summary, Description: c.description,
			Author: c.author, Time: c.at, Changed: append([]string(nil), c.changed...)})
		if c.parent == "" {
			break
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Head returns the commit id a revision points at.
func (s *Server) Head(repoType, repoID, revision string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, c, ok := s.commitLocked(repoType, repoID, revision)
	if !ok {
		return "", false
	}
	return c.oid, true
}

// File returns the content of a file at a revision (the real content for LFS files).
func (s *Server) File(repoType, repoID, revision, path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, c, ok := s.commitLocked(repoType, repoID, revision)
	if !ok {
		return nil, false
	}
	b, ok := c.files[path]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), rp.content(b)...), true
}

// Files returns every file at a revision with its content (nil if unknown).
func (s *Server) Files(repoType, repoID, revision string) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, c, ok := s.commitLocked(repoType, repoID, revision)
	if !ok {
		return nil
	}
	out := make(map[string][]byte, len(c.files))
	for p, b := range c.files {
		out[p] = append([]byte(nil), rp.content(b)...)
	}
	return out
}

// Stat describes a file at a revision: size, oids, and whether it is LFS.
func (s *Server) Stat(repoType, repoID, revision, path string) (FileInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, c, ok := s.commitLocked(repoType, repoID, revision)
	if !ok {
		return FileInfo{}, false
	}
	b, ok := c.files[path]
	if !ok {
		return FileInfo{}, false
	}
	fi := FileInfo{Path: path, Size: b.size(), BlobOID: b.oid, LFS: b.lfs != nil}
	if b.lfs != nil {
		fi.SHA256 = b.lfs.sha256
	}
	return fi, true
}

// LFSObjects returns the sha256 → size of every LFS object stored for a repo.
func (s *Server) LFSObjects(repoType, repoID string) map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repoLocked(repoType, repoID)
	if rp == nil {
		return nil
	}
	out := make(map[string]int64, len(rp.lfs))
	for k, v := range rp.lfs {
		out[k] = int64(len(v))
	}
	return out
}

// Repos lists the ids of existing repos as "type:namespace/name", sorted.
func (s *Server) Repos() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.repos {
		out = append(out, k.String())
	}
	sort.Strings(out)
	return out
}

func (r *repo) content(b *blob) []byte {
	if b.lfs != nil {
		return r.lfs[b.lfs.sha256]
	}
	return b.data
}

func cloneFiles(m map[string]*blob) map[string]*blob {
	out := make(map[string]*blob, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func gitAttributesOf(files map[string]*blob) string {
	if b, ok := files[".gitattributes"]; ok && b.lfs == nil {
		return string(b.data)
	}
	return ""
}

func gitIgnoreOf(files map[string]*blob) string {
	if b, ok := files[".gitignore"]; ok && b.lfs == nil {
		return string(b.data)
	}
	return ""
}
