package hubtest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/advspace/advspace/internal/randid"
)

// Size rules of the Hub.
const (
	textLimit         = 10_000_000 // any file above this must be LFS
	binaryLimit       = 1_000_000  // binary files above this must be LFS
	maxPreuploadFiles = 256
	sampleSize        = 512
	lfsMediaType      = "application/vnd.git-lfs+json"
	maxLFSObjectSize  = 500_000_000_000 // the Hub's hard per-file limit
	maxParts          = 10_000          // S3's multipart limit
)

func isCreatePR(r *http.Request) bool {
	v := r.URL.Query().Get("create_pr")
	return v == "1" || strings.EqualFold(v, "true")
}

func handlePreupload(c *call) *apiError {
	createPR := isCreatePR(c.r)
	var req struct {
		Files         []map[string]any `json:"files"`
		GitIgnore     *string          `json:"gitIgnore"`
		GitAttributes *string          `json:"gitAttributes"`
	}
	// Validate the body before touching state: bad input changes nothing.
	if e := decodeJSON(c, &req); e != nil {
		return e
	}
	if req.Files == nil {
		return errorf(http.StatusBadRequest, `"files" is required: a list of {"path", "sample", "size"}`)
	}
	if len(req.Files) > maxPreuploadFiles {
		return errorf(http.StatusRequestEntityTooLarge, "too many files in one preupload call: %d, the limit is %d; send them in batches", len(req.Files), maxPreuploadFiles)
	}
	type entry struct {
		path   string
		sample []byte
		size   int64
	}
	entries := make([]entry, 0, len(req.Files))
	for i, f := range req.Files {
		p, ok := f["path"].(string)
		if !ok {
			return errorf(http.StatusBadRequest, "files[%d].path must be a string", i)
		}
		if err := validRepoPath(p); err != nil {
			return errorf(http.StatusBadRequest, "files[%d]: %v", i, err)
		}
		num, ok := f["size"].(json.Number)
		if !ok {
			return errorf(http.StatusBadRequest, "files[%d].size must be an integer number of bytes", i)
		}
		size, err := num.Int64()
		if err != nil || size < 0 {
			return errorf(http.StatusBadRequest, "files[%d].size %s must be a non-negative integer", i, num)
		}
		enc, ok := f["sample"].(string)
		if !ok {
			return errorf(http.StatusBadRequest, "files[%d].sample must be a base64 string of the first 512 bytes", i)
		}
		sample, err := base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil || strings.ContainsAny(enc, "\r\n") {
			return errorf(http.StatusBadRequest, "files[%d].sample is not valid standard base64 (with padding): %v", i, err)
		}
		if want := min(int64(sampleSize), size); int64(len(sample)) != want {
			return errorf(http.StatusBadRequest, "files[%d].sample holds %d bytes; it must hold the first min(512, size) = %d bytes", i, len(sample), want)
		}
		entries = append(entries, entry{p, sample, size})
	}

	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, e := s.lookupRepoForWrite(c, createPR)
	if e != nil {
		return e
	}
	head, ok := rp.resolveRev(c.rt.rev)
	if !ok {
		if !createPR {
			return revisionNotFound(c.rt.rev)
		}
		head = rp.commits[rp.refs["main"]]
	}
	attrs := gitAttributesOf(head.files)
	if req.GitAttributes != nil {
		attrs = *req.GitAttributes
	}
	ignore := gitIgnoreOf(head.files)
	if req.GitIgnore != nil {
		ignore = *req.GitIgnore
	}
	files := make([]map[string]any, 0, len(entries))
	for _, en := range entries {
		mode := "regular"
		switch {
		case lfsTracked(attrs, en.path):
			mode = "lfs"
		case en.size > textLimit:
			mode = "lfs"
		case en.size > binaryLimit && isBinarySample(en.sample, en.size > int64(len(en.sample))):
			mode = "lfs"
		}
		out := map[string]any{"path": en.path, "uploadMode": mode, "shouldIgnore": gitIgnored(ignore, en.path)}
		if b, ok := head.files[en.path]; ok {
			if b.lfs != nil {
				out["oid"] = b.lfs.sha256
			} else {
				out["oid"] = b.oid
			}
		}
		files = append(files, out)
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"files": files, "commitOid": head.oid})
	return nil
}

// multipartUpload is a multipart LFS upload in progress.
type multipartUpload struct {
	key   repoKey
	oid   string
	size  int64
	chunk int64
	parts int
	data  map[int][]byte
	etags map[int]string
}

func checkLFSMediaType(c *call) *apiError {
	mt, _, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || mt != lfsMediaType {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type must be %s, got %q", lfsMediaType, c.r.Header.Get("Content-Type"))
	}
	return nil
}

func handleLFSBatch(c *call) *apiError {
	if e := checkLFSMediaType(c); e != nil {
		return e
	}
	var req struct {
		Operation string           `json:"operation"`
		Transfers []string         `json:"transfers"`
		Objects   []map[string]any `json:"objects"`
		HashAlgo  *string          `json:"hash_algo"`
		Ref       *struct {
			Name *string `json:"name"`
		} `json:"ref"`
	}
	if e := decodeJSON(c, &req); e != nil {
		return e
	}
	if req.Operation != "upload" {
		return errorf(http.StatusBadRequest, `"operation" must be "upload" (got %q); downloads go through /resolve/`, req.Operation)
	}
	if req.HashAlgo != nil && *req.HashAlgo != "sha256" && *req.HashAlgo != "sha_256" {
		return errorf(http.StatusConflict, `"hash_algo" %q is not supported: use "sha256"`, *req.HashAlgo)
	}
	if req.Objects == nil {
		return errorf(http.StatusBadRequest, `"objects" is required: a list of {"oid", "size"}`)
	}
	if req.Ref != nil && (req.Ref.Name == nil || *req.Ref.Name == "") {
		return errorf(http.StatusBadRequest, `"ref" must be {"name": "<branch>"} when present`)
	}
	multipartOK := slices.Contains(req.Transfers, "multipart")
	if len(req.Transfers) > 0 && !multipartOK && !slices.Contains(req.Transfers, "basic") {
		return errorf(http.StatusBadRequest, `"transfers" %v offers none of "basic", "multipart"`, req.Transfers)
	}

	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	// Without ref the upload is for a pull request, which read tokens may open.
	rp, e := s.lookupRepoForWrite(c, req.Ref == nil)
	if e != nil {
		return e
	}
	if req.Ref != nil {
		if _, ok := rp.resolveRev(*req.Ref.Name); !ok {
			return revisionNotFound(*req.Ref.Name)
		}
	}
	transfer := "basic"
	expires := s.opts.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	verifyHref := c.base + "/" + rp.key.urlPath() + ".git/info/lfs/objects/verify"
	objects := make([]map[string]any, 0, len(req.Objects))
	for _, o := range req.Objects {
		oid, _ := o["oid"].(string)
		num, _ := o["size"].(json.Number)
		size, err := num.Int64()
		out := map[string]any{"oid": o["oid"], "size": o["size"]}
		switch {
		case !sha256RE.MatchString(oid):
			out["error"] = map[string]any{"code": 422, "message": fmt.Sprintf("oid %q is not a lowercase hex SHA-256 (64 characters)", oid)}
		case err != nil || size < 0:
			out["error"] = map[string]any{"code": 422, "message": fmt.Sprintf("size %v is not a non-negative integer", o["size"])}
		case size > maxLFSObjectSize || (multipartOK && (size+s.opts.ChunkSize-1)/s.opts.ChunkSize > maxParts):
			out["error"] = map[string]any{"code": 422, "message": fmt.Sprintf("object of %d bytes is too large: at most %d bytes and %d parts of %d bytes", size, int64(maxLFSObjectSize), maxParts, s.opts.ChunkSize)}
		default:
			out["size"] = size
			if stored, ok := rp.lfs[oid]; ok {
				if int64(len(stored)) != size {
					out["error"] = map[string]any{"code": 422, "message": fmt.Sprintf("object %s is stored with size %d, not %d", oid, len(stored), size)}
				}
				break // already stored: no actions, nothing to upload
			}
			out["authenticated"] = true
			if multipartOK && size > s.opts.MultipartThreshold {
				transfer = "multipart"
				out["actions"] = map[string]any{
					"upload": s.newMultipart(c, rp, oid, size, expires),
					"verify": map[string]any{"href": verifyHref, "header": map[string]string{}},
				}
			} else {
				sz := strconv.FormatInt(size, 10)
				href := fmt.Sprintf("%s/__hubtest/lfs-upload/%s/%s/%s?size=%s&sig=%s", c.base, rp.key.typ,
					rp.key.id, oid, sz, s.sign("put", rp.key.String(), oid, sz))
				out["actions"] = map[string]any{
					"upload": map[string]any{"href": href, "expires_at": expires},
					"verify": map[string]any{"href": verifyHref, "header": map[string]string{}},
				}
			}
		}
		objects = append(objects, out)
	}
	writeJSONAs(c.w, http.StatusOK, lfsMediaType, map[string]any{"transfer": transfer, "objects": objects, "hash_algo": "sha256"})
	return nil
}

// newMultipart registers an upload and returns its action (s.mu held).
func (s *Server) newMultipart(c *call, rp *repo, oid string, size int64, expires string) map[string]any {
	id := randid.Hex(16)
	parts := int((size + s.opts.ChunkSize - 1) / s.opts.ChunkSize)
	s.uploads[id] = &multipartUpload{key: rp.key, oid: oid, size: size, chunk: s.opts.ChunkSize, parts: parts,
		data: map[int][]byte{}, etags: map[int]string{}}
	header := map[string]string{"chunk_size": strconv.FormatInt(s.opts.ChunkSize, 10)}
	for i := 1; i <= parts; i++ {
		header[fmt.Sprintf("%05d", i)] = fmt.Sprintf("%s/__hubtest/lfs-part/%s/%d", c.base, id, i)
	}
	return map[string]any{"href": c.base + "/__hubtest/lfs-complete/" + id, "header": header, "expires_at": expires}
}

// rejectAuthOnStorage mimics S3: a pre-signed URL plus an Authorization
// header is refused, which also catches clients leaking the Hub token.
func rejectAuthOnStorage(c *call) *apiError {
	if c.r.Header.Get("Authorization") != "" {
		return errorf(http.StatusBadRequest, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified (hubtest: do not send the Hub token to pre-signed storage URLs)")
	}
	return nil
}

func handleLFSPut(c *call) *apiError {
	if e := rejectAuthOnStorage(c); e != nil {
		return e
	}
	key := repoKey{c.rt.typ, c.rt.ns + "/" + c.rt.name}
	oid := c.rt.extra[0]
	sz := c.r.URL.Query().Get("size")
	s := c.server
	if !s.checkSig(c.r.URL.Query().Get("sig"), "put", key.String(), oid, sz) {
		return errorf(http.StatusForbidden, "SignatureDoesNotMatch: the pre-signed upload URL is invalid")
	}
	size, _ := strconv.ParseInt(sz, 10, 64)
	if int64(len(c.body)) != size {
		return errorf(http.StatusBadRequest, "uploaded %d bytes but the object %s has size %d", len(c.body), oid, size)
	}
	if got := SHA256(c.body); got != oid {
		return errorf(http.StatusBadRequest, "content sha256 is %s but the upload was announced as %s", got, oid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[key]
	if rp == nil {
		return errorf(http.StatusNotFound, "NoSuchBucket: the repository of this upload no longer exists")
	}
	rp.lfs[oid] = bytes.Clone(c.body) // the recorded Request keeps its own copy
	c.w.WriteHeader(http.StatusOK)
	return nil
}

func handleLFSPart(c *call) *apiError {
	if e := rejectAuthOnStorage(c); e != nil {
		return e
	}
	id := c.rt.extra[0]
	n, err := strconv.Atoi(c.rt.extra[1])
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	up := s.uploads[id]
	if up == nil {
		return errorf(http.StatusNotFound, "NoSuchUpload: unknown or completed multipart upload")
	}
	if err != nil || n < 1 || n > up.parts {
		return errorf(http.StatusBadRequest, "part number %q is outside 1..%d", c.rt.extra[1], up.parts)
	}
	sum := md5.Sum(c.body)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	up.data[n] = c.body
	up.etags[n] = etag
	c.w.Header().Set("ETag", etag)
	c.w.WriteHeader(http.StatusOK)
	return nil
}

func handleLFSComplete(c *call) *apiError {
	var req struct {
		OID   string `json:"oid"`
		Parts []struct {
			PartNumber int    `json:"partNumber"`
			ETag       string `json:"etag"`
		} `json:"parts"`
	}
	if e := decodeJSON(c, &req); e != nil {
		return e
	}
	id := c.rt.extra[0]
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	up := s.uploads[id]
	if up == nil {
		return errorf(http.StatusNotFound, "unknown or already completed multipart upload")
	}
	if req.OID != up.oid {
		return errorf(http.StatusBadRequest, "oid %q does not match the upload's oid %s", req.OID, up.oid)
	}
	if len(req.Parts) != up.parts {
		return errorf(http.StatusBadRequest, "got %d parts, the upload has %d", len(req.Parts), up.parts)
	}
	var all bytes.Buffer
	for i, p := range req.Parts {
		if p.PartNumber != i+1 {
			return errorf(http.StatusBadRequest, "parts[%d].partNumber is %d; parts must be listed in order 1..%d", i, p.PartNumber, up.parts)
		}
		stored, ok := up.etags[p.PartNumber]
		if !ok {
			return errorf(http.StatusBadRequest, "part %d was never uploaded", p.PartNumber)
		}
		if strings.Trim(p.ETag, `"`) != strings.Trim(stored, `"`) {
			return errorf(http.StatusBadRequest, "parts[%d].etag %q does not match the uploaded part's ETag %s", i, p.ETag, stored)
		}
		want := min(up.chunk, up.size-int64(i)*up.chunk)
		if int64(len(up.data[p.PartNumber])) != want {
			return errorf(http.StatusBadRequest, "part %d holds %d bytes, expected %d (chunk_size %d)", p.PartNumber, len(up.data[p.PartNumber]), want, up.chunk)
		}
		all.Write(up.data[p.PartNumber])
	}
	sum := sha256.Sum256(all.Bytes())
	if got := hex.EncodeToString(sum[:]); got != up.oid || int64(all.Len()) != up.size {
		return errorf(http.StatusBadRequest, "assembled object has sha256 %s and size %d, expected %s and %d", got, all.Len(), up.oid, up.size)
	}
	rp := s.repos[up.key]
	if rp == nil {
		return errorf(http.StatusNotFound, "the repository of this upload no longer exists")
	}
	rp.lfs[up.oid] = all.Bytes()
	delete(s.uploads, id)
	writeJSON(c.w, http.StatusOK, map[string]any{"success": true})
	return nil
}

func handleLFSVerify(c *call) *apiError {
	var req struct {
		OID  string `json:"oid"`
		Size *int64 `json:"size"`
	}
	if e := decodeJSON(c, &req); e != nil {
		return e
	}
	if !sha256RE.MatchString(req.OID) || req.Size == nil {
		return errorf(http.StatusBadRequest, `verify body must be {"oid": <64 hex>, "size": <int>}`)
	}
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, e := s.lookupRepoForWrite(c, true)
	if e != nil {
		return e
	}
	data, ok := rp.lfs[req.OID]
	if !ok {
		return errorf(http.StatusNotFound, "LFS object %s is not stored for %s", req.OID, rp.key.id)
	}
	if int64(len(data)) != *req.Size {
		return errorf(http.StatusUnprocessableEntity, "LFS object %s has size %d, not %d", req.OID, len(data), *req.Size)
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"success": true})
	return nil
}

func sortedPaths(files map[string]*blob) []string {
	out := make([]string, 0, len(files))
	for p := range files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
