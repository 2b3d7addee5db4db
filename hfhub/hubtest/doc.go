// Package hubtest is an in-memory fake of the Hugging Face Hub HTTP API for
// tests, in the spirit of net/http/httptest.
//
// NewServer starts it on 127.0.0.1 with a random port; point a Hub client at
// Server.URL (the HF_ENDPOINT). New returns one that is not listening, to
// serve Handler yourself. The fake speaks the Hub's HTTP protocol as the
// official huggingface_hub client uses it, and checks what the real Hub
// checks:
//
//   - account and repos: GET /api/whoami-v2, POST /api/repos/create (private
//     or visibility, organization null ⇒ token owner, 409 when it exists; new
//     repos get an initial commit with the Hub's default .gitattributes, so
//     images are LFS in datasets), DELETE /api/repos/delete, repo info
//     GET /api/{type}s/{ns}/{name}[/revision/{rev}] with sha and siblings,
//     POST /api/validate-yaml;
//   - upload: preupload (regular or lfs decided from .gitattributes, size and
//     binary content; shouldIgnore; oids of existing files; commitOid), the
//     git-LFS batch API at /{datasets/}{ns}/{name}.git/info/lfs/objects/batch
//     with basic and multipart transfers and verify, served from pre-signed
//     URLs on the fake itself that refuse an Authorization header as S3 does;
//     the NDJSON commit API with the Hub's error statuses: 400 for malformed
//     lines, 404 EntryNotFound, 409 while another commit runs, 412 for a stale
//     parentCommit, 429 past the hourly commit limit; create_pr=1 opens
//     refs/pr/N;
//   - read: resolve (regular files with ETag = git blob sha1 and Range
//     support; LFS files as a 302 to a fake CDN with X-Linked-Etag and
//     X-Linked-Size), tree listing with Link-header pagination, paths-info,
//     commit listing, refs listing, branch create/delete, super-squash.
//
// Routing is done on the escaped path, so a revision such as refs/pr/1 must
// travel as refs%2Fpr%2F1 (a literal refs/pr/1 is accepted too).
//
// Errors are answered like the Hub: JSON {"error": "..."} plus the
// X-Error-Message header and, for missing things, X-Error-Code (RepoNotFound,
// RevisionNotFound, EntryNotFound). Every answer carries X-Request-Id.
//
// For tests the Server records every request (Requests), injects faults
// (InjectFault: error statuses, delays, dropped connections, "500 but
// applied"), can be set down (SetDown), runs on an injectable clock
// (Options.Now), and exposes its state (Commits, File, Files, Stat,
// LFSObjects) and seeding helpers (CreateRepo, Seed).
//
// Git object ids are real: blobs are sha1("blob <len>\x00" + content), trees
// and commits are real git objects, LFS files are stored in git as the
// standard LFS pointer text.
//
// All Server methods are safe for concurrent use. Tokens are never logged.
// The package imports only the standard library.
package hubtest
