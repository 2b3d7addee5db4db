package hubtest

import (
	"net/http"
	"net/url"
	"strings"
)

// route is what parseRoute understood of a request path.
type route struct {
	op        Op
	method    string // expected method ("" = any)
	handler   func(*call) *apiError
	err       *apiError
	presigned bool // storage URL: no auth, no API quota

	typ      string // model, dataset, space
	ns, name string
	rev      string
	path     string // file or folder path inside the repo
	extra    []string
}

var pluralTypes = map[string]string{"models": "model", "datasets": "dataset", "spaces": "space"}
var urlPrefixTypes = map[string]string{"datasets": "dataset", "spaces": "space"}

// parseRoute splits the *escaped* path (so refs%2Fpr%2F1 stays one segment)
// and unescapes each segment afterwards.
func parseRoute(r *http.Request) route {
	raw := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return route{op: OpUnknown, err: errorf(http.StatusBadRequest, "malformed escape in path segment %q", s)}
		}
		segs[i] = u
	}
	if len(segs) > 0 && segs[0] == "api" {
		return parseAPIRoute(segs[1:])
	}
	if len(segs) > 0 && segs[0] == "__hubtest" {
		return parseStorageRoute(segs[1:])
	}
	return parseGitRoute(segs)
}

// takeRev returns the revision at segs[0] and the rest, also accepting an
// unescaped "refs/pr/N" (three segments).
func takeRev(segs []string) (string, []string) {
	if len(segs) >= 3 && segs[0] == "refs" && (segs[1] == "pr" || segs[1] == "heads" || segs[1] == "convert") {
		return strings.Join(segs[:3], "/"), segs[3:]
	}
	return segs[0], segs[1:]
}

func parseAPIRoute(segs []string) route {
	switch {
	case len(segs) == 1 && segs[0] == "whoami-v2":
		return route{op: OpWhoami, method: http.MethodGet, handler: handleWhoami}
	case len(segs) == 2 && segs[0] == "repos" && segs[1] == "create":
		return route{op: OpCreateRepo, method: http.MethodPost, handler: handleCreateRepo}
	case len(segs) == 2 && segs[0] == "repos" && segs[1] == "delete":
		return route{op: OpDeleteRepo, method: http.MethodDelete, handler: handleDeleteRepo}
	case len(segs) == 1 && segs[0] == "validate-yaml":
		return route{op: OpValidateYAML, method: http.MethodPost, handler: handleValidateYAML}
	}
	typ, ok := pluralTypes[firstOr(segs, "")]
	if !ok || len(segs) < 3 {
		return route{op: OpUnknown}
	}
	rt := route{typ: typ, ns: segs[1], name: segs[2], rev: "main"}
	rest := segs[3:]
	if len(rest) == 0 {
		rt.op, rt.method, rt.handler = OpRepoInfo, http.MethodGet, handleRepoInfo
		return rt
	}
	action := rest[0]
	if action == "refs" && len(rest) == 1 {
		rt.op, rt.method, rt.handler = OpListRefs, http.MethodGet, handleListRefs
		return rt
	}
	if len(rest) < 2 || rest[1] == "" {
		if action == "tree" || action == "commits" {
			rest = append(rest[:1], "main")
		} else {
			return route{op: OpUnknown, err: errorf(http.StatusBadRequest, "missing revision after /%s/", action)}
		}
	}
	rt.rev, rest = takeRev(rest[1:])
	switch action {
	case "revision":
		rt.op, rt.method, rt.handler = OpRepoInfo, http.MethodGet, handleRepoInfo
	case "preupload":
		rt.op, rt.method, rt.handler = OpPreupload, http.MethodPost, handlePreupload
	case "commit":
		rt.op, rt.method, rt.handler = OpCommit, http.MethodPost, handleCommit
	case "tree":
		rt.op, rt.method, rt.handler = OpTree, http.MethodGet, handleTree
		// Python escapes the folder (data%2Ftrain), huggingface.js does not: accept both.
		rt.path = strings.Trim(strings.Join(rest, "/"), "/")
		return rt
	case "paths-info":
		rt.op, rt.method, rt.handler = OpPathsInfo, http.MethodPost, handlePathsInfo
	case "commits":
		rt.op, rt.method, rt.handler = OpListCommits, http.MethodGet, handleListCommits
	case "branch":
		rt.op, rt.method, rt.handler = OpBranch, "", handleBranch
	case "super-squash":
		rt.op, rt.method, rt.handler = OpSuperSquash, http.MethodPost, handleSuperSquash
	default:
		return route{op: OpUnknown}
	}
	if len(rest) != 0 {
		return route{op: rt.op, err: errorf(http.StatusNotFound, "unexpected path after the revision: %q", strings.Join(rest, "/"))}
	}
	return rt
}

func parseGitRoute(segs []string) route {
	typ := "model"
	if t, ok := urlPrefixTypes[firstOr(segs, "")]; ok {
		typ = t
		segs = segs[1:]
	}
	if len(segs) < 3 {
		return route{op: OpUnknown}
	}
	rt := route{typ: typ, ns: segs[0], name: segs[1]}
	if name, ok := strings.CutSuffix(segs[1], ".git"); ok && len(segs) == 6 &&
		segs[2] == "info" && segs[3] == "lfs" && segs[4] == "objects" {
		rt.name = name
		switch segs[5] {
		case "batch":
			rt.op, rt.method, rt.handler = OpLFSBatch, http.MethodPost, handleLFSBatch
			return rt
		case "verify":
			rt.op, rt.method, rt.handler = OpLFSVerify, http.MethodPost, handleLFSVerify
			return rt
		}
		return route{op: OpUnknown}
	}
	if segs[2] == "resolve" && len(segs) >= 5 {
		rt.rev, segs = takeRev(segs[3:])
		rt.path = strings.Join(segs, "/")
		rt.op, rt.method, rt.handler = OpResolve, http.MethodGet, handleResolve
		return rt
	}
	return route{op: OpUnknown}
}

// Storage routes stand in for pre-signed S3/CDN URLs: no auth, a signature
// or an unguessable id instead.
func parseStorageRoute(segs []string) route {
	switch {
	case len(segs) == 5 && segs[0] == "lfs-upload":
		return route{op: OpLFSPut, method: http.MethodPut, presigned: true, handler: handleLFSPut,
			typ: segs[1], ns: segs[2], name: segs[3], extra: segs[4:]}
	case len(segs) == 3 && segs[0] == "lfs-part":
		return route{op: OpLFSPart, method: http.MethodPut, presigned: true, handler: handleLFSPart, extra: segs[1:]}
	case len(segs) == 2 && segs[0] == "lfs-complete":
		return route{op: OpLFSComplete, method: http.MethodPost, presigned: true, handler: handleLFSComplete, extra: segs[1:]}
	case len(segs) == 5 && segs[0] == "cdn":
		return route{op: OpCDN, method: http.MethodGet, presigned: true, handler: handleCDN,
			typ: segs[1], ns: segs[2], name: segs[3], extra: segs[4:]}
	}
	return route{op: OpUnknown}
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}
