package flag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/advspace/advspace/hfhub"
)

// hubState is the Hub's record of what the repo holds, kept in its state
// file: a cached remote fact, checked against the repo (see Hub.check).
type hubState struct {
	Repo     string                   `json:"repo"`
	Revision string                   `json:"revision"`
	Shards   map[string]hubShardState `json:"shards"`
	Last     string                   `json:"last_commit,omitempty"`
	CardDone bool                     `json:"card_pushed,omitempty"`
	Times    []time.Time              `json:"commit_times,omitempty"`
	// Records is the pushed size in bytes of each validation record file
	// (validations/<name>), by base name.
	Records map[string]int64 `json:"records,omitempty"`
}

// hubShardState is how much of a shard the repo holds: the first Rows rows,
// whose metadata ends at byte Bytes.
type hubShardState struct {
	Rows  int   `json:"rows"`
	Bytes int64 `json:"bytes"`
}

// loadState reads the state file through the Dir's file system. A missing or
// unreadable file means nothing is known to be pushed: re-pushing is
// idempotent, so starting over is safe.
func (h *Hub[In]) loadState() (hubState, error) {
	st := hubState{Repo: h.repo.ID().String(), Revision: h.repo.Revision(), Shards: map[string]hubShardState{}, Records: map[string]int64{}}
	b, err := h.fs.ReadFile(h.state)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("flag: NewHub: reading the push record %s: %w", h.state, err)
	}
	var got hubState
	if err := json.Unmarshal(b, &got); err != nil {
		// The file is written atomically, so this is outside damage.
		h.log.Warn("flag: hub: push record unreadable; checking everything with the Hub", "path", h.state, "err", err)
		return st, nil
	}
	if got.Shards == nil {
		got.Shards = map[string]hubShardState{}
	}
	if got.Records == nil {
		got.Records = map[string]int64{}
	}
	return got, nil
}

// saveState writes the state file atomically through the Dir's file system.
func (h *Hub[In]) saveState(st hubState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := h.fs.MkdirAll(filepath.Dir(h.state), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(h.fs, h.state, append(b, '\n'))
}

// adoptShardLocked takes a shard the Dir reported at start and sets how much
// of it the record says is pushed. A record that does not match the local
// shard (replaced, or restored from elsewhere) is dropped for that shard:
// everything is pushed again, unchanged files as no-ops. h.mu is held.
func (h *Hub[In]) adoptShardLocked(s dirShard) {
	sh := &hubShard{rows: s.Rows}
	ps := h.sched.st.Shards[s.Name]
	switch {
	case ps.Rows > len(s.Rows) || (ps.Rows > 0 && s.Rows[ps.Rows-1].End != ps.Bytes):
		h.log.Warn("flag: hub: the local shard differs from the push record; pushing it again", "shard", s.Name,
			"recorded_rows", ps.Rows, "local_rows", len(s.Rows))
	default:
		sh.pushed = ps.Rows
	}
	h.shards[s.Name] = sh
	h.order = append(h.order, s.Name)
}

// adoptRecordsLocked takes a record file found at start, whose complete lines
// end at byte size, and sets how much of it the push record says is pushed.
// A record longer than the file (the file was replaced) is dropped for it:
// the file is pushed again. h.mu is held.
func (h *Hub[In]) adoptRecordsLocked(name string, size int64) {
	r := &hubRecords{size: size}
	if old := h.recs[name]; old != nil {
		r.size = max(r.size, old.size) // an append reported while starting
	}
	if ps := h.sched.st.Records[name]; ps > r.size {
		h.log.Warn("flag: hub: the local validation record file is shorter than the push record says was pushed; pushing it again",
			"file", name, "recorded_bytes", ps, "local_bytes", r.size)
	} else {
		r.pushed = ps
	}
	if _, ok := h.recs[name]; !ok {
		h.recOrd = append(h.recOrd, name)
	}
	h.recs[name] = r
}

// scanRecords takes the validation record files under the dataset folder
// (validations/*.jsonl, read through the Dir's file system), except skip
// (the watched log's, already taken). Only complete records count: a torn
// last line is never pushed. A file damaged before its last line is left
// out with a warning (it is not the Hub's to repair).
func (h *Hub[In]) scanRecords(skip string) error {
	dir := filepath.Join(h.dir.Root(), ValidationsDir)
	entries, err := h.fs.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("flag: NewHub: listing the validation records: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == skip || !strings.HasSuffix(name, ".jsonl") || !recordShardRE.MatchString(strings.TrimSuffix(name, ".jsonl")) {
			continue
		}
		data, err := h.fs.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("flag: NewHub: reading the validation records: %w", err)
		}
		_, good, err := parseRecords(data)
		if err != nil {
			h.log.Warn("flag: hub: a validation record file is damaged; not pushing it (repair it or move it away)", "file", name, "err", err)
			continue
		}
		h.mu.Lock()
		h.adoptRecordsLocked(name, int64(good))
		h.mu.Unlock()
	}
	return nil
}

// check compares the record of what was pushed with the repo and sets back
// every shard (and the card) the repo lacks, so that the next push sends
// them again, with a warning saying how many samples. The record is a cached
// remote fact: the repo may have been deleted and created again, or files
// removed, by someone else. It runs on the scheduler goroutine.
func (h *Hub[In]) check(ctx context.Context) error {
	root, err := h.repo.ListTree(ctx, "", nil)
	if err != nil && !errors.Is(err, hfhub.ErrEntryNotFound) {
		return fmt.Errorf("flag: hub: checking what the repo holds: %w", err)
	}
	hasCard := false
	for _, e := range root {
		if e.Path == "README.md" && !e.IsDir() {
			hasCard = true
		}
	}
	if h.sched.st.CardDone && !hasCard {
		h.log.Warn("flag: hub: the dataset card recorded as pushed is missing from the Hub; pushing it again")
		h.sched.st.CardDone = false
	}

	type claim struct {
		name string
		rows []dirRow
	}
	var claims []claim
	h.mu.Lock()
	for _, name := range h.order {
		if sh := h.shards[name]; sh.pushed > 0 {
			claims = append(claims, claim{name: name, rows: sh.rows[:sh.pushed]})
		}
	}
	h.mu.Unlock()

	lost := 0
	for _, c := range claims {
		folder := path.Join(DataDir, c.name)
		entries, err := h.repo.ListTree(ctx, folder, nil)
		if err != nil && !errors.Is(err, hfhub.ErrEntryNotFound) {
			return fmt.Errorf("flag: hub: checking %s on the Hub: %w", folder, err)
		}
		remote := make(map[string]int64, len(entries))
		for _, e := range entries {
			if !e.IsDir() {
				remote[path.Base(e.Path)] = e.Size
			}
		}
		// A pushed row is there when its file is and the metadata reaches
		// its end (longer metadata is a commit whose record was not written
		// yet: harmless).
		missing := 0
		metaSize, hasMeta := remote[MetadataFile]
		for _, r := range c.rows {
			if _, ok := remote[r.File]; !ok || !hasMeta || metaSize < r.End {
				missing++
			}
		}
		if missing == 0 {
			continue
		}
		lost += missing
		h.log.Warn("flag: hub: the Hub lacks samples the push record says were pushed (the repo was changed or created again); pushing the shard again",
			"shard", c.name, "missing", missing, "recorded", len(c.rows))
		h.mu.Lock()
		h.shards[c.name].pushed = 0 // the metadata file is pushed whole again anyway
		h.mu.Unlock()
		delete(h.sched.st.Shards, c.name)
	}
	if lost > 0 {
		h.log.Warn("flag: hub: re-pushing samples missing from the Hub", "samples", lost)
	}
	return h.checkRecords(ctx)
}

// checkRecords sets back every validation record file the repo lacks or
// holds shorter than the push record says, so that the next push sends it
// again whole.
func (h *Hub[In]) checkRecords(ctx context.Context) error {
	h.mu.Lock()
	claims := make(map[string]int64)
	for name, r := range h.recs {
		if r.pushed > 0 {
			claims[name] = r.pushed
		}
	}
	h.mu.Unlock()
	if len(claims) == 0 {
		return nil
	}
	entries, err := h.repo.ListTree(ctx, ValidationsDir, nil)
	if err != nil && !errors.Is(err, hfhub.ErrEntryNotFound) {
		return fmt.Errorf("flag: hub: checking %s on the Hub: %w", ValidationsDir, err)
	}
	remote := make(map[string]int64, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			remote[path.Base(e.Path)] = e.Size
		}
	}
	for name, pushed := range claims {
		if size, ok := remote[name]; ok && size >= pushed {
			continue
		}
		h.log.Warn("flag: hub: the Hub lacks validation records the push record says were pushed (the repo was changed or created again); pushing the file again",
			"file", name, "recorded_bytes", pushed, "hub_bytes", remote[name])
		h.mu.Lock()
		h.recs[name].pushed = 0
		h.mu.Unlock()
		delete(h.sched.st.Records, name)
	}
	return nil
}
