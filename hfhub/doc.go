// Package hfhub is a Hugging Face Hub client in pure Go (standard library
// only): token discovery, repositories, the commit flow (preupload, Git LFS
// batch with basic and multipart transfers, NDJSON commits), downloads with
// integrity checks, tree listings, and model publishing helpers.
//
// It follows the protocol of the official huggingface_hub Python client:
//
//   - A Client holds the endpoint, the token and the retry policy; Client.Repo
//     returns a Repo handle (type, id, revision) whose methods do the work:
//     Create, Info, ListTree, CreateCommit, UploadFile, UploadFolder,
//     Download, DownloadFile, ReadFile. Paths on this machine have their own
//     type, LocalPath, so they cannot be passed where a repo path belongs.
//   - The endpoint comes from Options.Endpoint, else $HF_ENDPOINT, else
//     https://huggingface.co; the token from Options.Token, else ResolveToken
//     ($HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, then the token file).
//   - The token is sent only to the Hub's own host: never to pre-signed
//     storage URLs, multipart completions, or redirects to other hosts. It
//     never appears in errors, logs or URLs: every URL the client puts into
//     an error or a log goes through RedactURL, which programs should also
//     use for URLs they print, and an endpoint carrying credentials
//     (user:password@, ?token=...) is refused with ErrInvalidEndpoint.
//   - Retryable calls (preupload, LFS, downloads, follow-up pages) retry
//     408/429/5xx and network errors with backoff 1, 2, 4, 8, 8 s, honouring
//     Retry-After and the RateLimit header; bodies are rewound. The commit
//     POST is not retried blindly: after a failure the client re-checks the
//     branch so that a commit the Hub applied despite an error is not made
//     twice.
//   - Errors from the Hub are *HubError values that match the package's
//     sentinels (ErrNotFound, ErrRepoNotFound, ErrPreconditionFailed,
//     ErrRateLimited, ...) under errors.Is.
//
// A Client is safe for concurrent use. For tests, package hfhub/hubtest
// serves a faithful fake Hub on loopback.
package hfhub
