package dadc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/advspace/advspace/internal/randid"
)

// DefaultKeepModels is how many model versions a LocalStore keeps by default.
const DefaultKeepModels = 5

// LocalStoreOptions configures NewLocalStore. A nil pointer or zero fields mean the defaults.
type LocalStoreOptions struct {
	// Keep is how many model versions are kept, newest first (default
	// DefaultKeepModels); older ones are deleted after each Save. The
	// latest model is never deleted.
	Keep int
	// WeightsName is the file name of the weights in each version's folder
	// (default "model.bin"; an MNIST app would use "model.safetensors").
	WeightsName string
	// Logger receives the store's logs. nil discards them.
	Logger *slog.Logger
}

// LocalStore is the default ModelStore (and HistoryStore): a local folder.
//
// Layout: models/<seq>/ holds one version (card.json and the weights file),
// <seq> a zero-padded counter that orders saves; history.json holds the round
// history. Every write goes to a temporary name, is synced, renamed into
// place and its folder synced, so a crash leaves either the old state or the
// new one; leftovers of interrupted saves are removed by NewLocalStore.
// One process at a time may use a folder.
type LocalStore struct {
	dir     string
	keep    int
	weights string
	log     *slog.Logger
	mu      sync.Mutex // serialises Save, pruning and SaveHistory
}

var (
	_ ModelStore   = (*LocalStore)(nil)
	_ HistoryStore = (*LocalStore)(nil)
)

const (
	localModelsDir  = "models"
	localCardFile   = "card.json"
	localHistory    = "history.json"
	localTempPrefix = ".tmp-"
)

// NewLocalStore opens (creating if needed) a store in dir.
func NewLocalStore(dir string, opts *LocalStoreOptions) (*LocalStore, error) {
	var o LocalStoreOptions
	if opts != nil {
		o = *opts
	}
	if dir == "" {
		return nil, errors.New("dadc: NewLocalStore: the folder is empty; give the folder to keep models in (for instance inside the app's data folder)")
	}
	if o.Keep < 0 {
		return nil, fmt.Errorf("dadc: NewLocalStore: Keep is %d; it must be at least 1 (0 means %d)", o.Keep, DefaultKeepModels)
	}
	if o.Keep == 0 {
		o.Keep = DefaultKeepModels
	}
	if o.WeightsName == "" {
		o.WeightsName = "model.bin"
	}
	if o.WeightsName != filepath.Base(o.WeightsName) || o.WeightsName == localCardFile || strings.HasPrefix(o.WeightsName, ".") {
		return nil, fmt.Errorf("dadc: NewLocalStore: WeightsName %q must be a plain file name, not %q and not starting with a dot", o.WeightsName, localCardFile)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	models := filepath.Join(dir, localModelsDir)
	if err := os.MkdirAll(models, 0o755); err != nil {
		return nil, fmt.Errorf("dadc: NewLocalStore: %w", err)
	}
	s := &LocalStore{dir: dir, keep: o.Keep, weights: o.WeightsName, log: o.Logger}
	entries, err := os.ReadDir(models)
	if err != nil {
		return nil, fmt.Errorf("dadc: NewLocalStore: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), localTempPrefix) {
			s.log.Warn("dadc: removing an interrupted model save", "path", filepath.Join(models, e.Name()))
			if err := os.RemoveAll(filepath.Join(models, e.Name())); err != nil {
				return nil, fmt.Errorf("dadc: NewLocalStore: removing an interrupted save: %w", err)
			}
		}
	}
	_ = os.Remove(filepath.Join(dir, localTempPrefix+localHistory))
	return s, nil
}

// Dir returns the store's folder.
func (s *LocalStore) Dir() string { return s.dir }

type localEntry struct {
	seq  int
	path string
	card ModelCard
}

// entries lists the complete stored versions, oldest first.
func (s *LocalStore) entries() ([]localEntry, error) {
	// A version pruned while we list means a newer one was saved first (the
	// latest is never pruned): list again, so that a reader never sees fewer
	// versions than there are, and never none (with Keep 1 the only folder
	// listed may be gone by the time its card is read).
	for range 8 {
		out, pruned, err := s.listEntries()
		if err != nil || !pruned {
			return out, err
		}
	}
	out, _, err := s.listEntries()
	return out, err
}

// listEntries lists the stored versions once; pruned reports that a listed
// version vanished before its card was read.
func (s *LocalStore) listEntries() (out []localEntry, pruned bool, err error) {
	models := filepath.Join(s.dir, localModelsDir)
	des, err := os.ReadDir(models)
	if err != nil {
		return nil, false, fmt.Errorf("dadc: local store: %w", err)
	}
	for _, de := range des {
		seq, err := strconv.Atoi(de.Name())
		if err != nil || !de.IsDir() {
			continue
		}
		p := filepath.Join(models, de.Name())
		b, err := os.ReadFile(filepath.Join(p, localCardFile))
		if errors.Is(err, fs.ErrNotExist) {
			pruned = true // pruned while we listed
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("dadc: local store: reading the card of %s: %w", p, err)
		}
		var c ModelCard
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, false, fmt.Errorf("dadc: local store: the card %s is damaged: %w", filepath.Join(p, localCardFile), err)
		}
		out = append(out, localEntry{seq: seq, path: p, card: c})
	}
	slices.SortFunc(out, func(a, b localEntry) int { return a.seq - b.seq })
	return out, pruned, nil
}

// Save implements ModelStore.
func (s *LocalStore) Save(ctx context.Context, card ModelCard, write func(w io.Writer) error) error {
	if card.Version == "" {
		return errors.New("dadc: local store: the card has an empty version; name the model")
	}
	if write == nil {
		return errors.New("dadc: local store: Save needs a write function for the weights")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	es, err := s.entries()
	if err != nil {
		return err
	}
	seq := 1
	for _, e := range es {
		if e.card.Version == card.Version {
			return fmt.Errorf("dadc: local store: version %q is already stored in %s; versions must be unique", card.Version, e.path)
		}
		seq = e.seq + 1
	}
	models := filepath.Join(s.dir, localModelsDir)
	tmp := filepath.Join(models, localTempPrefix+strconv.Itoa(seq)+"-"+randid.Hex(4))
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("dadc: local store: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := writeSynced(filepath.Join(tmp, s.weights), write); err != nil {
		return fmt.Errorf("dadc: local store: writing the weights of %s: %w", card.Version, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cardJSON, err := json.MarshalIndent(card, "", "  ")
	if err != nil {
		return fmt.Errorf("dadc: local store: %w", err)
	}
	if err := writeSynced(filepath.Join(tmp, localCardFile), func(w io.Writer) error {
		_, err := w.Write(append(cardJSON, '\n'))
		return err
	}); err != nil {
		return fmt.Errorf("dadc: local store: writing the card of %s: %w", card.Version, err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("dadc: local store: %w", err)
	}
	final := filepath.Join(models, fmt.Sprintf("%06d", seq))
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("dadc: local store: %w", err)
	}
	ok = true
	if err := syncDir(models); err != nil {
		return fmt.Errorf("dadc: local store: %w", err)
	}
	s.log.Info("dadc: model stored", "version", card.Version, "path", final)
	s.pruneLocked(append(es, localEntry{seq: seq, path: final, card: card}))
	return nil
}

// pruneLocked deletes the oldest versions beyond Keep (errors are logged:
// a version left behind harms nothing).
func (s *LocalStore) pruneLocked(es []localEntry) {
	for len(es) > s.keep {
		// Renamed away first, so that readers never see a half-deleted version.
		gone := filepath.Join(filepath.Dir(es[0].path), localTempPrefix+"old-"+filepath.Base(es[0].path))
		err := os.Rename(es[0].path, gone)
		if err == nil {
			err = os.RemoveAll(gone)
		}
		if err != nil {
			s.log.Warn("dadc: could not delete an old model version", "version", es[0].card.Version, "err", err)
		} else {
			s.log.Info("dadc: deleted an old model version", "version", es[0].card.Version, "keep", s.keep)
		}
		es = es[1:]
	}
}

// Latest implements ModelStore.
func (s *LocalStore) Latest(ctx context.Context) (ModelCard, error) {
	if err := ctx.Err(); err != nil {
		return ModelCard{}, err
	}
	es, err := s.entries()
	if err != nil {
		return ModelCard{}, err
	}
	if len(es) == 0 {
		return ModelCard{}, fmt.Errorf("%w (folder %s)", ErrNoModel, filepath.Join(s.dir, localModelsDir))
	}
	return es[len(es)-1].card, nil
}

// Open implements ModelStore.
func (s *LocalStore) Open(ctx context.Context, version string) (io.ReadCloser, ModelCard, error) {
	if err := ctx.Err(); err != nil {
		return nil, ModelCard{}, err
	}
	es, err := s.entries()
	if err != nil {
		return nil, ModelCard{}, err
	}
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].card.Version == version {
			f, err := os.Open(filepath.Join(es[i].path, s.weights))
			if errors.Is(err, fs.ErrNotExist) {
				return nil, ModelCard{}, fmt.Errorf("%w: %q (deleted while opening)", ErrModelNotFound, version)
			}
			if err != nil {
				return nil, ModelCard{}, fmt.Errorf("dadc: local store: opening the weights of %s: %w", version, err)
			}
			return f, es[i].card, nil
		}
	}
	return nil, ModelCard{}, fmt.Errorf("%w: %q", ErrModelNotFound, version)
}

// List implements ModelStore.
func (s *LocalStore) List(ctx context.Context) ([]ModelCard, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	es, err := s.entries()
	if err != nil {
		return nil, err
	}
	out := make([]ModelCard, len(es))
	for i, e := range es {
		out[i] = e.card
	}
	return out, nil
}

// SaveHistory implements HistoryStore.
func (s *LocalStore) SaveHistory(ctx context.Context, h *History) error {
	if h == nil {
		return errors.New("dadc: local store: SaveHistory got a nil history")
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("dadc: local store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, localTempPrefix+localHistory)
	if err := writeSynced(tmp, func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err }); err != nil {
		return fmt.Errorf("dadc: local store: writing the history: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, localHistory)); err != nil {
		return fmt.Errorf("dadc: local store: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("dadc: local store: %w", err)
	}
	return nil
}

// LoadHistory implements HistoryStore.
func (s *LocalStore) LoadHistory(ctx context.Context) (*History, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := filepath.Join(s.dir, localHistory)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dadc: local store: %w", err)
	}
	var h History
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("dadc: local store: the history %s is damaged (move it away to start a fresh history): %w", p, err)
	}
	return &h, nil
}

// writeSynced creates path, fills it with write through a buffer, and syncs and closes it.
func writeSynced(path string, write func(w io.Writer) error) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Sync()
}

// syncDir fsyncs a folder so that renames into it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
