package hfhub

import "fmt"

// LocalPath is a path on this machine's file system (a file or a folder), as
// opposed to a path inside a repository, which is a plain string with "/"
// separators. The distinct type makes passing a local path where a repo path
// belongs (or the reverse) a compile error for variables; write
// hfhub.LocalPath(p) to convert a string.
type LocalPath string

// Repo is a handle on one repository of a Hub at one revision: the Client
// to talk through, the repo type, the repo id, and the branch (or tag, or
// commit) that reads and writes use. It is a small value: copy it freely.
// Its methods are safe for concurrent use, like the Client's.
//
// Get one from Client.Repo; the zero Repo has no client and its methods fail
// with ErrInvalidOperation. The type and id are validated by each call, so
// a malformed id gives ErrInvalidRepoID there.
type Repo struct {
	c   *Client
	typ RepoType
	id  RepoID
	rev string
}

// Repo returns a handle on the repository id of type typ at the default
// revision: "main" for writes and downloads, the repo's default branch for
// Info. Use Repo.At for another revision.
func (c *Client) Repo(typ RepoType, id RepoID) Repo {
	return Repo{c: c, typ: typ, id: id}
}

// At returns a copy of r that reads and writes revision: a branch for
// commits, or any branch, tag or commit id for reads. "" means the default.
func (r Repo) At(revision string) Repo {
	r.rev = revision
	return r
}

// Type is the repository's type.
func (r Repo) Type() RepoType { return r.typ }

// ID is the repository's id.
func (r Repo) ID() RepoID { return r.id }

// Revision is the revision r reads and writes; "" means the default.
func (r Repo) Revision() string { return r.rev }

// String returns "type namespace/name", plus "@revision" when one is set,
// e.g. "dataset alice/flags@dev".
func (r Repo) String() string {
	s := string(r.typ) + " " + r.id.String()
	if r.rev != "" {
		s += "@" + r.rev
	}
	return s
}

// URL is the repo's web page, e.g. https://huggingface.co/datasets/alice/flags.
func (r Repo) URL() string {
	if r.c == nil {
		return ""
	}
	return r.c.endpoint + "/" + r.typ.urlPrefix() + r.id.String()
}

// CommitURL is the web page of the commit oid.
func (r Repo) CommitURL(oid string) string { return r.URL() + "/commit/" + oid }

// ResolveURL is the download URL of the file at path in the repo:
// {endpoint}[/datasets]/{namespace}/{name}/resolve/{revision}/{path}.
func (r Repo) ResolveURL(path string) string {
	return r.URL() + "/resolve/" + escapeRev(r.rev) + "/" + escapePath(path)
}

// apiURL is {endpoint}/api/{type}s/{namespace}/{name}.
func (r Repo) apiURL() string {
	return r.c.endpoint + "/api/" + string(r.typ) + "s/" + r.id.String()
}

// check validates the handle before a call.
func (r Repo) check() error {
	if r.c == nil {
		return fmt.Errorf("%w: the Repo has no Client; get one from Client.Repo", ErrInvalidOperation)
	}
	if err := r.typ.valid(); err != nil {
		return err
	}
	return r.id.Validate()
}

// branch is r with the revision defaulted to "main", for writes.
func (r Repo) branch() Repo {
	if r.rev == "" {
		r.rev = "main"
	}
	return r
}
