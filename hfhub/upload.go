package hfhub

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// UploadOptions configure Repo.UploadFile. nil means the defaults.
type UploadOptions struct {
	// Summary is the commit title; default "Upload <path in repo> with advspace".
	Summary string
	// Description is the commit body.
	Description string
	// ParentCommit, if set, makes the commit fail with ErrPreconditionFailed
	// when the branch head is not this commit (see CommitOptions).
	ParentCommit string
	// CreatePR opens a pull request instead of committing to the branch.
	CreatePR bool
}

// UploadFile uploads the local file src to pathInRepo (a "/"-separated path
// in the repo, like "data/train.csv") on r's branch ("" = main), in one
// commit. An unchanged file makes no commit (CommitInfo.Empty).
func (r Repo) UploadFile(ctx context.Context, pathInRepo string, src LocalPath, opts *UploadOptions) (*CommitInfo, error) {
	var o UploadOptions
	if opts != nil {
		o = *opts
	}
	if o.Summary == "" {
		o.Summary = "Upload " + strings.TrimPrefix(pathInRepo, "/") + " with advspace"
	}
	return r.CreateCommit(ctx, o.Summary, []Operation{AddFile(pathInRepo, src)},
		&CommitOptions{Description: o.Description, ParentCommit: o.ParentCommit, CreatePR: o.CreatePR})
}

// DefaultMaxFilesPerCommit is how many files Repo.UploadFolder puts in one commit
// by default: well under the Hub's per-commit limits (25k LFS files, 1 GB of
// regular content) while keeping the commit request small enough for the
// Hub's 60 s commit timeout.
const DefaultMaxFilesPerCommit = 5000

// UploadFolderOptions configure Repo.UploadFolder. nil means the defaults.
type UploadFolderOptions struct {
	// PathInRepo is the repo folder the files go to ("" = the repo root).
	PathInRepo string
	// Summary is the commit title; default "Upload folder with advspace".
	// When the folder needs several commits, " (part i of n)" is appended.
	Summary string
	// Description is the commit body.
	Description string
	// CreatePR opens a pull request instead of committing to the branch.
	CreatePR bool
	// MaxFilesPerCommit splits large folders into several commits; default
	// DefaultMaxFilesPerCommit.
	MaxFilesPerCommit int
	// Ignore, if set, skips files whose slash-separated path relative to the
	// folder it returns true for. ".git" and ".cache" folders are always skipped.
	Ignore func(rel string) bool
}

// FolderFiles lists the files Repo.UploadFolder would upload from the local
// folder dir: sorted, "/"-separated paths relative to dir, skipping ".git"
// and ".cache" folders (like huggingface_hub's default ignore patterns, which
// keep local caches and state out of the repo) and the paths ignore (if not
// nil) returns true for. It fails if dir is not a folder.
func FolderFiles(dir LocalPath, ignore func(rel string) bool) ([]string, error) {
	localDir := string(dir)
	st, err := os.Stat(localDir)
	if err != nil {
		return nil, fmt.Errorf("hfhub: upload folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("hfhub: upload folder: %s is a file, not a folder", localDir)
	}
	var files []string
	err = filepath.WalkDir(localDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != localDir && (d.Name() == ".git" || d.Name() == ".cache") {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Stat(p) // follows symlinks
		if err != nil || !info.Mode().IsRegular() {
			return nil // dangling links, sockets, ...: not files to upload
		}
		rel, err := filepath.Rel(localDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignore != nil && ignore(rel) {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hfhub: upload folder %s: %w", localDir, err)
	}
	sort.Strings(files)
	return files, nil
}

// UploadFolder uploads every file under the local folder src (see
// FolderFiles) to the repo folder UploadFolderOptions.PathInRepo ("" = the
// repo root) on r's branch ("" = main), in as few commits as the limits
// allow (one unless the folder has more than MaxFilesPerCommit files).
// Unchanged files are not uploaded again, so after a failure the same call
// resumes where it stopped: files already committed become no-ops. It
// returns the last commit; Uploaded and Skipped are totals over all parts.
func (r Repo) UploadFolder(ctx context.Context, src LocalPath, opts *UploadFolderOptions) (*CommitInfo, error) {
	var o UploadFolderOptions
	if opts != nil {
		o = *opts
	}
	if o.Summary == "" {
		o.Summary = "Upload folder with advspace"
	}
	if o.MaxFilesPerCommit <= 0 {
		o.MaxFilesPerCommit = DefaultMaxFilesPerCommit
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	if err := r.c.requireToken("hfhub: upload folder"); err != nil {
		return nil, err
	}
	prefix := strings.Trim(o.PathInRepo, "/")
	if prefix != "" {
		if _, err := CleanPath(prefix); err != nil {
			return nil, err
		}
	}
	files, err := FolderFiles(src, o.Ignore)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: folder %s has no files to upload", ErrInvalidOperation, src)
	}
	ops := make([]Operation, 0, len(files))
	for _, rel := range files {
		p := rel
		if prefix != "" {
			p = path.Join(prefix, rel)
		}
		if _, err := CleanPath(p); err != nil {
			return nil, err
		}
		ops = append(ops, AddFile(p, LocalPath(filepath.Join(string(src), filepath.FromSlash(rel)))))
	}
	parts := (len(ops) + o.MaxFilesPerCommit - 1) / o.MaxFilesPerCommit
	var last *CommitInfo
	uploaded, skipped := 0, 0
	for i := range parts {
		chunk := ops[i*o.MaxFilesPerCommit : min((i+1)*o.MaxFilesPerCommit, len(ops))]
		summary := o.Summary
		if parts > 1 {
			summary = fmt.Sprintf("%s (part %d of %d)", o.Summary, i+1, parts)
		}
		info, err := r.CreateCommit(ctx, summary, chunk, &CommitOptions{Description: o.Description, CreatePR: o.CreatePR})
		if err != nil {
			if parts > 1 {
				return nil, fmt.Errorf("hfhub: upload folder: part %d of %d failed (earlier parts are committed; run again to resume): %w", i+1, parts, err)
			}
			return nil, err
		}
		uploaded += info.Uploaded
		skipped += info.Skipped
		last = info
	}
	last.Uploaded, last.Skipped = uploaded, skipped
	return last, nil
}
