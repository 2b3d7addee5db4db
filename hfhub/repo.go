package hfhub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// User is the account a token belongs to (GET /api/whoami-v2).
type User struct {
	Type     string `json:"type"` // "user", "org" or "app"
	ID       string `json:"id"`
	Name     string `json:"name"`
	Fullname string `json:"fullname"`
	Email    string `json:"email"`
	Orgs     []struct {
		Name string `json:"name"`
	} `json:"orgs"`
	Auth struct {
		Type        string `json:"type"`
		AccessToken struct {
			DisplayName string `json:"displayName"`
			Role        string `json:"role"` // "read", "write" or "fineGrained"
		} `json:"accessToken"`
	} `json:"auth"`
}

// CanWrite reports whether the token's role allows writes (fine-grained tokens
// are assumed to; the Hub decides per repo).
func (u *User) CanWrite() bool { return u.Auth.AccessToken.Role != "read" }

// WhoAmI returns the token's account. The Hub rate-limits this call strictly,
// so a successful answer is cached for the life of the Client.
func (c *Client) WhoAmI(ctx context.Context) (*User, error) {
	if err := c.requireToken("hfhub: whoami"); err != nil {
		return nil, err
	}
	c.whoMu.Lock()
	defer c.whoMu.Unlock()
	if c.whoAmI != nil {
		u := *c.whoAmI
		return &u, nil
	}
	var u User
	err := c.doJSON(ctx, &request{op: "whoami", method: http.MethodGet, url: c.endpoint + "/api/whoami-v2", size: -1, auth: true}, &u)
	if err != nil {
		return nil, err
	}
	if u.Name == "" {
		return nil, fmt.Errorf("%w: whoami answer has no name", ErrProtocol)
	}
	c.whoAmI = &u
	cp := u
	return &cp, nil
}

// CreateRepoOptions configure Repo.Create. nil means a public repo and an
// error if it exists.
type CreateRepoOptions struct {
	// Private creates a private repo (ignored by the Hub when the repo exists).
	Private bool
	// ExistOK makes an existing repo a success, like huggingface_hub's exist_ok.
	ExistOK bool
}

// Create creates the repository and returns its web page URL. Without
// ExistOK an existing repo gives an error matching ErrConflict. With ExistOK
// an existing repo is a success (also when the token may not create repos in
// the namespace but can read the repo), and transient failures (5xx,
// network) are retried with backoff. The revision of r plays no part.
func (r Repo) Create(ctx context.Context, opts *CreateRepoOptions) (string, error) {
	if err := r.check(); err != nil {
		return "", err
	}
	c, typ, id := r.c, r.typ, r.id
	if err := c.requireToken("hfhub: create repo"); err != nil {
		return "", err
	}
	var o CreateRepoOptions
	if opts != nil {
		o = *opts
	}
	payload := map[string]any{"name": id.Name, "organization": id.Namespace, "type": string(typ), "private": o.Private}
	body, size, err := jsonBody(payload)
	if err != nil {
		return "", err
	}
	var out struct {
		URL string `json:"url"`
	}
	for attempt := 0; ; attempt++ {
		// With ExistOK a repeated creation is harmless (409 counts as success),
		// so transient failures are retried; without it a retry after a
		// "500 but created" would wrongly report a conflict.
		err = c.doJSON(ctx, &request{op: "create repo", method: http.MethodPost, url: c.endpoint + "/api/repos/create",
			header: http.Header{"Content-Type": {"application/json"}}, body: body, size: size, auth: true, retry: o.ExistOK}, &out)
		var he *HubError
		// "another conflicting operation is in progress": the Hub refuses concurrent
		// creations by one user; retry with a small backoff.
		if errors.As(err, &he) && he.Status == http.StatusConflict &&
			strings.Contains(he.Message, "conflicting operation is in progress") && attempt < c.maxRetries {
			if err := c.sleep(ctx, c.backoff(attempt)); err != nil {
				return "", err
			}
			continue
		}
		break
	}
	if err == nil {
		if out.URL == "" {
			return r.URL(), nil
		}
		return RedactURL(c.fixEndpoint(out.URL)), nil
	}
	var he *HubError
	if o.ExistOK && errors.As(err, &he) {
		switch he.Status {
		case http.StatusConflict:
			return r.URL(), nil
		case http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden:
			if _, ierr := r.At("").Info(ctx); ierr == nil {
				return r.URL(), nil
			}
		}
	}
	return "", err
}

// RepoInfo is what the Hub says about a repo at a revision.
type RepoInfo struct {
	ID           string    `json:"id"`
	Author       string    `json:"author"`
	SHA          string    `json:"sha"` // commit id at the revision
	Private      bool      `json:"private"`
	Disabled     bool      `json:"disabled"`
	LastModified time.Time `json:"lastModified"`
	Siblings     []Sibling `json:"siblings"`
}

// Sibling is a file in RepoInfo.
type Sibling struct {
	RFilename string   `json:"rfilename"`
	Size      int64    `json:"size,omitempty"`
	BlobID    string   `json:"blobId,omitempty"`
	LFS       *LFSInfo `json:"lfs,omitempty"`
}

// LFSInfo describes an LFS file (the hash key is "sha256" in repo info, "oid" in trees).
type LFSInfo struct {
	SHA256      string `json:"sha256,omitempty"`
	OID         string `json:"oid,omitempty"`
	Size        int64  `json:"size"`
	PointerSize int64  `json:"pointerSize,omitempty"`
}

// Info returns the repo's metadata at r's revision ("" = the default
// branch). A missing repo gives an error matching ErrRepoNotFound, a missing
// revision one matching ErrRevisionNotFound.
func (r Repo) Info(ctx context.Context) (*RepoInfo, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	c := r.c
	u := r.apiURL()
	if r.rev != "" {
		u += "/revision/" + escapeRev(r.rev)
	}
	var info RepoInfo
	if err := c.doJSON(ctx, &request{op: "repo info", method: http.MethodGet, url: u, size: -1, auth: true}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// TreeEntry is a file or folder in a tree listing.
type TreeEntry struct {
	Type string   `json:"type"` // "file" or "directory"
	OID  string   `json:"oid"`  // git blob/tree sha1 (for LFS files: of the pointer)
	Size int64    `json:"size"` // real size, also for LFS files
	Path string   `json:"path"`
	LFS  *LFSInfo `json:"lfs,omitempty"`
}

// IsDir reports whether the entry is a folder.
func (e TreeEntry) IsDir() bool { return e.Type == "directory" }

// ListTreeOptions configure Repo.ListTree. nil means the defaults.
type ListTreeOptions struct {
	// Recursive lists the whole subtree instead of the folder's direct entries.
	Recursive bool
}

// ListTree lists the files and folders under the repo folder dir ("" = the
// root) at r's revision ("" = main), following the Link pagination. A
// missing folder gives an error matching ErrEntryNotFound.
func (r Repo) ListTree(ctx context.Context, dir string, opts *ListTreeOptions) ([]TreeEntry, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	var o ListTreeOptions
	if opts != nil {
		o = *opts
	}
	c := r.c
	u := r.apiURL() + "/tree/" + escapeRev(r.rev)
	if p := strings.Trim(dir, "/"); p != "" {
		u += "/" + escapePath(p)
	}
	q := url.Values{"recursive": {fmt.Sprint(o.Recursive)}, "expand": {"false"}}
	u += "?" + q.Encode()
	var all []TreeEntry
	for page := 0; u != ""; page++ {
		// huggingface_hub retries follow-up pages but not the first one.
		resp, err := c.do(ctx, &request{op: "list tree", method: http.MethodGet, url: u, size: -1, auth: true, retry: page > 0,
			header: http.Header{"Accept": {"application/json"}}})
		if err != nil {
			return nil, err
		}
		var entries []TreeEntry
		derr := json.NewDecoder(resp.Body).Decode(&entries)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if derr != nil {
			return nil, fmt.Errorf("%w: list tree: decoding page %d: %v", ErrProtocol, page+1, derr)
		}
		all = append(all, entries...)
		next := nextLink(resp.Header.Get("Link"))
		if next != "" {
			if next, err = resolveRef(u, c.fixEndpoint(next)); err != nil {
				return nil, fmt.Errorf("%w: list tree: bad Link header: %v", ErrProtocol, err)
			}
			if !c.sameHost(parseURLOrEmpty(next)) {
				return nil, fmt.Errorf("%w: list tree: next page on another host %q", ErrProtocol, RedactURL(next))
			}
		}
		u = next
	}
	return all, nil
}

// parseURLOrEmpty parses s; when s does not parse it returns an empty URL,
// which has no host and so is never taken for the Hub's (no token goes to it).
func parseURLOrEmpty(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}
