package dadchub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/flag"
	"github.com/advspace/advspace/hfhub"
)

// Folders of a dataset repo the Reader reads: data/<shard>/metadata.jsonl
// with the inputs next to it, and validations/<shard>.jsonl.
const (
	DataDir        = "data"
	ValidationsDir = "validations"
	MetadataFile   = "metadata.jsonl"
)

// Batch is what one Reader.Read found that was not read before.
type Batch[In any] struct {
	// Commit is the dataset commit read.
	Commit string
	// Samples are the new samples, shard by shard in row order.
	Samples []dadc.Sample[In]
	// Records are the new validation records (verdicts and retractions).
	Records []dadc.ValidationRecord
	// Files counts the files downloaded.
	Files int

	next map[string]fileState
}

type fileState struct {
	OID  string `json:"oid"`
	Rows int    `json:"rows"`
}

type readerState struct {
	Files map[string]fileState `json:"files"`
}

// Reader reads a dataset repo written by several writers (one shard each)
// incrementally: it lists data/ and validations/, downloads only the files
// whose blob id changed since the last read, and returns only the rows
// after those already read (shards are append-only). It remembers, per
// metadata file, the blob id and the rows read in a local state file, so a
// restarted trainer does not read the samples again; validation records are
// remembered in memory only, so the first Read of a process returns them all
// (replaying them again is harmless).
//
// Read and Commit are not safe for concurrent use with each other: one
// goroutine reads, ingests, then commits.
type Reader[In any] struct {
	repo   hfhub.Repo
	decode func([]byte) (In, error)
	path   string

	mu    sync.Mutex
	files map[string]fileState
}

// NewReader returns a Reader of the dataset repo repo (type hfhub.Dataset)
// that turns input files into inputs with decode and keeps its state in the
// file statePath (its folder is created). A damaged state file is an error.
func NewReader[In any](repo hfhub.Repo, decode func([]byte) (In, error), statePath string) (*Reader[In], error) {
	if repo.Type() != hfhub.Dataset {
		return nil, fmt.Errorf("dadchub: NewReader: %s is not a dataset repo", repo)
	}
	if decode == nil {
		return nil, errors.New("dadchub: NewReader: decode is nil; pass the codec's Decode")
	}
	if statePath == "" {
		return nil, errors.New("dadchub: NewReader: statePath is empty; name a local file for what was read")
	}
	if err := os.MkdirAll(filepath.Dir(statePath), 0o755); err != nil {
		return nil, fmt.Errorf("dadchub: NewReader: %w", err)
	}
	r := &Reader[In]{repo: repo, decode: decode, path: statePath, files: map[string]fileState{}}
	b, err := os.ReadFile(statePath)
	switch {
	case err == nil:
		var st readerState
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("dadchub: NewReader: the state file %s is damaged (%v); delete it to read the dataset again (samples already read are skipped by ID)", statePath, err)
		}
		for p, s := range st.Files {
			if path.Base(p) == MetadataFile {
				r.files[p] = s
			}
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("dadchub: NewReader: %w", err)
	}
	return r, nil
}

// Read lists the dataset at its head and returns what is new. Nothing is
// marked as read until Commit(batch): a caller that fails to store the
// batch reads it again next time.
func (r *Reader[In]) Read(ctx context.Context) (*Batch[In], error) {
	info, err := r.repo.Info(ctx)
	if errors.Is(err, hfhub.ErrRepoNotFound) || errors.Is(err, hfhub.ErrRevisionNotFound) {
		return &Batch[In]{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dadchub: reading the head of %s: %w", r.repo, err)
	}
	at := r.repo.At(info.SHA)
	r.mu.Lock()
	seen := make(map[string]fileState, len(r.files))
	for k, v := range r.files {
		seen[k] = v
	}
	r.mu.Unlock()
	b := &Batch[In]{Commit: info.SHA, next: map[string]fileState{}}
	for _, dir := range []string{DataDir, ValidationsDir} {
		entries, err := at.ListTree(ctx, dir, &hfhub.ListTreeOptions{Recursive: true})
		if errors.Is(err, hfhub.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dadchub: listing %s of %s: %w", dir, r.repo, err)
		}
		slices.SortFunc(entries, func(a, b hfhub.TreeEntry) int { return strings.Compare(a.Path, b.Path) })
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			old, known := seen[e.Path]
			if known && old.OID == e.OID {
				continue
			}
			switch {
			case dir == DataDir && path.Base(e.Path) == MetadataFile:
				if err := r.readShard(ctx, at, e, old.Rows, b); err != nil {
					return nil, err
				}
			case dir == ValidationsDir && strings.HasSuffix(e.Path, ".jsonl") && path.Dir(e.Path) == ValidationsDir:
				if err := r.readRecords(ctx, at, e, old.Rows, b); err != nil {
					return nil, err
				}
			}
		}
	}
	return b, nil
}

// readShard reads the rows of a metadata file after the first skip, with
// their inputs.
func (r *Reader[In]) readShard(ctx context.Context, at hfhub.Repo, e hfhub.TreeEntry, skip int, b *Batch[In]) error {
	data, err := at.ReadFile(ctx, e.Path)
	if err != nil {
		return fmt.Errorf("dadchub: downloading %s: %w", e.Path, err)
	}
	b.Files++
	lines := completeLines(data)
	if skip > len(lines) {
		// The file shrank: not an append-only shard any more (recreated).
		// Read it whole; samples already known are skipped by ID.
		skip = 0
	}
	shardDir := path.Dir(e.Path)
	for i, line := range lines[skip:] {
		var row flag.MetadataRow
		if err := json.Unmarshal(line, &row); err != nil || row.ID == "" || row.FileName == "" {
			return fmt.Errorf("dadchub: %s line %d is not a metadata row (%v); the shard is damaged", e.Path, skip+i+1, err)
		}
		p := path.Join(shardDir, row.FileName)
		if !strings.HasPrefix(p, shardDir+"/") {
			return fmt.Errorf("dadchub: %s line %d names %q outside its shard", e.Path, skip+i+1, row.FileName)
		}
		raw, err := at.ReadFile(ctx, p)
		if err != nil {
			return fmt.Errorf("dadchub: downloading %s: %w", p, err)
		}
		b.Files++
		in, err := r.decode(raw)
		if err != nil {
			return fmt.Errorf("dadchub: decoding %s: %w", p, err)
		}
		b.Samples = append(b.Samples, dadc.Sample[In]{SampleMeta: row.SampleMeta, Input: in})
	}
	b.next[e.Path] = fileState{OID: e.OID, Rows: len(lines)}
	return nil
}

// readRecords reads the validation records of a file after the first skip.
func (r *Reader[In]) readRecords(ctx context.Context, at hfhub.Repo, e hfhub.TreeEntry, skip int, b *Batch[In]) error {
	data, err := at.ReadFile(ctx, e.Path)
	if err != nil {
		return fmt.Errorf("dadchub: downloading %s: %w", e.Path, err)
	}
	b.Files++
	lines := completeLines(data)
	if skip > len(lines) {
		skip = 0
	}
	for i, line := range lines[skip:] {
		var rec dadc.ValidationRecord
		if err := json.Unmarshal(line, &rec); err != nil || rec.Kind == "" || rec.SampleID == "" {
			return fmt.Errorf("dadchub: %s line %d is not a validation record (%v)", e.Path, skip+i+1, err)
		}
		b.Records = append(b.Records, rec)
	}
	b.next[e.Path] = fileState{OID: e.OID, Rows: len(lines)}
	return nil
}

// completeLines returns the non-empty newline-terminated lines of data (a
// torn last line is left for the next read).
func completeLines(data []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return out
		}
		if line := bytes.TrimSpace(data[:i]); len(line) > 0 {
			out = append(out, line)
		}
		data = data[i+1:]
	}
}

// Commit marks b as read: validation files in memory, metadata files also
// in the state file (written atomically and synced).
func (r *Reader[In]) Commit(b *Batch[In]) error {
	if b == nil || len(b.next) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range b.next {
		r.files[k] = v
	}
	st := readerState{Files: map[string]fileState{}}
	for k, v := range r.files {
		if path.Base(k) == MetadataFile {
			st.Files[k] = v
		}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("dadchub: saving the reader state: %w", err)
	}
	tmp := r.path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("dadchub: saving the reader state: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("dadchub: saving the reader state: %w", err)
	}
	return nil
}
