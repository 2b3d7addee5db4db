package flag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
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
	st := hubState{Repo: h.repo.ID().String(), Revision: h.repo.Revision(), Shards: map[string]hubShardState{}}
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
	return nil
}
