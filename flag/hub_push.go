package flag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/advspace/advspace/hfhub"
)

// pushOnce makes at most one commit with up to MaxFilesPerCommit new inputs,
// after creating the repo and checking the push record when needed. It
// reports whether more remain to push. It runs on the scheduler goroutine.
func (h *Hub[In]) pushOnce(ctx context.Context) (more bool, err error) {
	s := &h.sched
	if !s.repoReady {
		if _, err := h.repo.Create(ctx, &hfhub.CreateRepoOptions{Private: h.opts.Private, ExistOK: true}); err != nil {
			return false, fmt.Errorf("flag: hub: creating dataset repo: %w", err)
		}
		s.repoReady = true
	}
	info, err := h.repo.Info(ctx)
	if err != nil {
		if errors.Is(err, hfhub.ErrRepoNotFound) || errors.Is(err, hfhub.ErrRevisionNotFound) {
			s.repoReady, s.needCheck = false, true
			return false, &resolvedConflict{"the repo vanished", err}
		}
		return false, fmt.Errorf("flag: hub: reading the repo head: %w", err)
	}
	if s.st.Last != "" && info.SHA != s.st.Last {
		// A commit this Hub did not make: another writer, or a repo deleted
		// and created again. The record may be stale.
		s.needCheck = true
	}
	if s.needCheck {
		if err := h.check(ctx); err != nil {
			return false, err
		}
		s.needCheck = false
	}

	// What to push: the first pending rows of each shard, up to the budget.
	type part struct {
		name string
		rows []dirRow // rows[:to] is the new pushed prefix; rows[from:to] are new
		from int
	}
	var parts []part
	h.mu.Lock()
	budget := h.opts.MaxFilesPerCommit
	for _, name := range h.order {
		sh := h.shards[name]
		n := min(len(sh.rows)-sh.pushed, budget)
		if n <= 0 {
			continue
		}
		parts = append(parts, part{name: name, rows: sh.rows[:sh.pushed+n], from: sh.pushed})
		budget -= n
		if budget == 0 {
			break
		}
	}
	// Every record file that grew, up to its last complete line now.
	type recPart struct {
		name string
		size int64
	}
	var recParts []recPart
	for _, name := range h.recOrd {
		if r := h.recs[name]; r.size > r.pushed {
			recParts = append(recParts, recPart{name, r.size})
		}
	}
	h.mu.Unlock()
	if len(parts) == 0 && len(recParts) == 0 {
		s.st.Last = info.SHA
		return false, nil // nothing to push; the card goes with the first samples or records
	}

	var ops []hfhub.Operation
	commitOpts := hfhub.CommitOptions{}
	if !s.st.CardDone {
		hasCard, err := h.remoteHasCard(ctx)
		if err != nil {
			return false, err
		}
		if !hasCard {
			card, err := h.fs.ReadFile(filepath.Join(h.dir.Root(), "README.md"))
			if errors.Is(err, fs.ErrNotExist) {
				card = []byte(DefaultCard)
			} else if err != nil {
				return false, fmt.Errorf("flag: hub: reading the dataset card: %w", err)
			}
			ops = append(ops, hfhub.AddBytes("README.md", card))
			commitOpts.ParentCommit = info.SHA // never overwrite a card someone added meanwhile
		}
	}
	taken := 0
	for _, p := range parts {
		shardDir := filepath.Join(h.dir.Root(), DataDir, p.name)
		for _, r := range p.rows[p.from:] {
			add, err := h.fileOp(path.Join(DataDir, p.name, r.File), filepath.Join(shardDir, filepath.FromSlash(r.File)), -1)
			if err != nil {
				return false, err
			}
			ops = append(ops, add)
		}
		end := p.rows[len(p.rows)-1].End
		add, err := h.fileOp(path.Join(DataDir, p.name, MetadataFile), filepath.Join(shardDir, MetadataFile), end)
		if err != nil {
			return false, err
		}
		ops = append(ops, add)
		taken += len(p.rows) - p.from
	}
	for _, r := range recParts {
		add, err := h.fileOp(path.Join(ValidationsDir, r.name), filepath.Join(h.dir.Root(), ValidationsDir, r.name), r.size)
		if err != nil {
			return false, err
		}
		ops = append(ops, add)
	}
	summary := fmt.Sprintf("Add %d flagged samples", taken)
	switch {
	case len(recParts) > 0 && taken == 0:
		summary = fmt.Sprintf("Add the validation records of %d writer(s)", len(recParts))
	case len(recParts) > 0:
		summary += fmt.Sprintf(" and the validation records of %d writer(s)", len(recParts))
	}
	commitOpts.Description = fmt.Sprintf("Pushed by advspace flag.Hub from %d shard(s) and %d validation record file(s).", len(parts), len(recParts))
	ci, err := h.repo.CreateCommit(ctx, summary, ops, &commitOpts)
	switch {
	case errors.Is(err, hfhub.ErrPreconditionFailed):
		return false, &resolvedConflict{"another writer changed the repo while this one added the dataset card", err}
	case errors.Is(err, hfhub.ErrRepoNotFound) || errors.Is(err, hfhub.ErrRevisionNotFound):
		s.repoReady, s.needCheck = false, true
		return false, &resolvedConflict{"the repo vanished during the push", err}
	case err != nil:
		return false, fmt.Errorf("flag: hub: commit: %w", err)
	}

	h.mu.Lock()
	for _, p := range parts {
		h.shards[p.name].pushed = len(p.rows)
		s.st.Shards[p.name] = hubShardState{Rows: len(p.rows), Bytes: p.rows[len(p.rows)-1].End}
	}
	for _, r := range recParts {
		h.recs[r.name].pushed = r.size
		s.st.Records[r.name] = r.size
	}
	if !ci.Empty {
		h.commits++
	}
	left := h.pendingAllLocked()
	h.mu.Unlock()
	s.st.CardDone = true
	s.st.Last = ci.OID
	if !ci.Empty {
		s.st.Times = append(s.st.Times, time.Now())
	}
	if err := h.saveState(s.st); err != nil {
		// The commit is on the Hub; the next start re-sends it as no-ops.
		h.log.Warn("flag: hub: cannot save the push record; the next start pushes these samples again as no-ops", "path", h.state, "err", err)
	}
	h.log.Info("flag: hub: pushed", "samples", taken, "record_files", len(recParts), "commit", ci.OID, "uploaded", ci.Uploaded, "skipped", ci.Skipped, "empty", ci.Empty, "pending", left)
	return left > 0, nil
}

// remoteHasCard reports whether the repo has a README.md.
func (h *Hub[In]) remoteHasCard(ctx context.Context) (bool, error) {
	entries, err := h.repo.ListTree(ctx, "", nil)
	if err != nil {
		return false, fmt.Errorf("flag: hub: checking the dataset card: %w", err)
	}
	for _, e := range entries {
		if e.Path == "README.md" && !e.IsDir() {
			return true, nil
		}
	}
	return false, nil
}

// fileOp returns the commit operation adding the local file at local as
// repoPath, read through the Dir's file system; size < 0 means the whole file.
// The file is read when the client needs it, not held in memory.
func (h *Hub[In]) fileOp(repoPath, local string, size int64) (hfhub.Add, error) {
	if size < 0 {
		st, err := h.fs.Stat(local)
		if err != nil {
			return hfhub.Add{}, fmt.Errorf("flag: hub: %w", err)
		}
		size = st.Size()
	}
	return hfhub.Add{Path: repoPath, ReaderAt: seamReader{fs: h.fs, path: local, size: size}, Size: size}, nil
}

// seamReader reads the first size bytes of a file through a fileSystem,
// opening it for each read, so that a commit of many files holds no file
// open between reads.
type seamReader struct {
	fs   fileSystem
	path string
	size int64
}

func (r seamReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	short := false
	if rest := r.size - off; int64(len(p)) > rest {
		p, short = p[:rest], true
	}
	f, err := r.fs.OpenFile(r.path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	n, err := f.ReadAt(p, off)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}
