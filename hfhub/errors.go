package hfhub

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. A *HubError matches the sentinels that fit its status and
// error code under errors.Is, so callers can write
// errors.Is(err, hfhub.ErrNotFound) without looking at HTTP details.
var (
	// ErrUnauthorized: the token is missing or invalid (HTTP 401).
	ErrUnauthorized = errors.New("hfhub: unauthorized")
	// ErrForbidden: the token lacks the permission (HTTP 403), e.g. a read token on a write.
	ErrForbidden = errors.New("hfhub: forbidden")
	// ErrNotFound: the repo, revision or file does not exist (HTTP 404, or 401 on a
	// repo URL without a token). ErrRepoNotFound, ErrRevisionNotFound and
	// ErrEntryNotFound say which.
	ErrNotFound = errors.New("hfhub: not found")
	// ErrRepoNotFound: the repository does not exist or is not visible to the token.
	ErrRepoNotFound = errors.New("hfhub: repository not found")
	// ErrRevisionNotFound: the branch, tag or commit does not exist.
	ErrRevisionNotFound = errors.New("hfhub: revision not found")
	// ErrEntryNotFound: the file or folder does not exist at that revision.
	ErrEntryNotFound = errors.New("hfhub: file not found")
	// ErrConflict: HTTP 409, e.g. another commit is in progress or the repo exists.
	ErrConflict = errors.New("hfhub: conflict")
	// ErrPreconditionFailed: HTTP 412, the branch moved past CommitOptions.ParentCommit.
	ErrPreconditionFailed = errors.New("hfhub: precondition failed (stale parent commit)")
	// ErrRateLimited: HTTP 429; HubError.RetryAfter says how long to wait when the Hub said.
	ErrRateLimited = errors.New("hfhub: rate limited")

	// ErrInvalidEndpoint: the endpoint (Options.Endpoint or $HF_ENDPOINT) is
	// not an absolute http(s) URL, or it carries credentials or parameters
	// (user:password@, ?token=..., #...), which the Hub never takes there.
	ErrInvalidEndpoint = errors.New("hfhub: invalid endpoint")
	// ErrNoToken: an operation needs a token and none was configured or found.
	ErrNoToken = errors.New("hfhub: no Hugging Face token: set HF_TOKEN (a write token from https://huggingface.co/settings/tokens) or save it in $HF_HOME/token")
	// ErrInvalidRepoID: a repo id is malformed.
	ErrInvalidRepoID = errors.New("hfhub: invalid repo id")
	// ErrInvalidPath: a path in a repo is malformed or forbidden.
	ErrInvalidPath = errors.New("hfhub: invalid path in repo")
	// ErrInvalidOperation: a commit operation or its options are malformed.
	ErrInvalidOperation = errors.New("hfhub: invalid commit operation")
	// ErrIntegrity: downloaded or uploaded bytes do not match the expected hash or size.
	ErrIntegrity = errors.New("hfhub: integrity check failed")
	// ErrProtocol: the Hub answered something this client cannot interpret.
	ErrProtocol = errors.New("hfhub: unexpected response from the Hub")
)

// Error codes the Hub sends in the X-Error-Code header.
const (
	CodeRepoNotFound     = "RepoNotFound"
	CodeRevisionNotFound = "RevisionNotFound"
	CodeEntryNotFound    = "EntryNotFound"
	CodeGatedRepo        = "GatedRepo"
)

// HubError is an error answer of the Hub (a non-2xx HTTP status).
// It never contains the token.
type HubError struct {
	// Op names the client operation, e.g. "preupload" or "commit".
	Op string
	// Method and URL of the failing request, credentials redacted (see
	// RedactURL; a pre-signed URL also loses its whole query).
	Method, URL string
	// Status is the HTTP status code.
	Status int
	// Code is the X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound, ...), if any.
	Code string
	// Message is X-Error-Message or the JSON "error" field of the body.
	Message string
	// RequestID is the X-Request-Id answer header, useful when reporting a problem to Hugging Face.
	RequestID string
	// RetryAfter is the wait the Hub asked for (Retry-After, or RateLimit t=), zero if none.
	RetryAfter time.Duration
}

func (e *HubError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hfhub: %s: %s %s: HTTP %d", e.Op, e.Method, e.URL, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request id %s]", e.RequestID)
	}
	if hint := e.hint(); hint != "" {
		b.WriteString("; ")
		b.WriteString(hint)
	}
	return b.String()
}

// hint tells a person what to do about the most common failures.
func (e *HubError) hint() string {
	switch {
	case e.Status == 401 && e.Code == "":
		return "check the token (HF_TOKEN): it is invalid or expired"
	case e.Status == 403:
		return "the token lacks permission: use a token with the write role for this namespace"
	case e.Code == CodeRepoNotFound:
		return "check the repo id and type, and that the token can see it (private repos need a token)"
	}
	return ""
}

// Is reports whether target is one of the sentinels this error matches.
func (e *HubError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == 401 && e.Code != CodeRepoNotFound
	case ErrForbidden:
		return e.Status == 403
	case ErrNotFound:
		return e.Status == 404 || e.Code == CodeRepoNotFound || e.Code == CodeRevisionNotFound || e.Code == CodeEntryNotFound
	case ErrRepoNotFound:
		return e.Code == CodeRepoNotFound
	case ErrRevisionNotFound:
		return e.Code == CodeRevisionNotFound
	case ErrEntryNotFound:
		return e.Code == CodeEntryNotFound
	case ErrConflict:
		return e.Status == 409
	case ErrPreconditionFailed:
		return e.Status == 412
	case ErrRateLimited:
		return e.Status == 429
	}
	return false
}

// RetryAfterOf returns the wait the Hub asked for in err (a *HubError in its
// chain), or zero.
func RetryAfterOf(err error) time.Duration {
	var he *HubError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	return 0
}
