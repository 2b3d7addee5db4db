package flag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/internal/randid"
)

// MetadataFile is the name of the metadata file in every shard folder.
const MetadataFile = "metadata.jsonl"

// DataDir is the folder under a dataset root that holds the shard folders.
const DataDir = "data"

// lockName is the lock file in an Outbox's folder.
const lockName = ".advspace.lock"

// dirLockPath is the lock file in a Dir's root, relative to it. It lives in
// .cache/huggingface/, which the datasets loader ignores (leading dot) and
// which folder uploaders (huggingface_hub's upload_folder, hfhub.FolderFiles)
// skip, so it never ends up in the Hub dataset.
var dirLockPath = filepath.Join(".cache", "huggingface", "advspace.lock")

// DefaultCard is the dataset card written to README.md when a Dir creates a
// dataset folder and DirOptions.Card is empty. Its YAML front matter tells the
// Hugging Face datasets loader and dataset viewer that every file under data/
// belongs to the train split of the default config (an ImageFolder with one
// metadata.jsonl per shard folder), and that the validation records under
// validations/ (one JSON Lines file per writer, see RecordLog) form a second
// config, "validations".
const DefaultCard = `---
configs:
- config_name: default
  default: true
  data_files:
  - split: train
    path: "data/**"
- config_name: validations
  data_files:
  - split: train
    path: "validations/*.jsonl"
---

# Adversarial examples

Inputs that fooled a model, collected by dynamic adversarial data collection
with [advspace](https://github.com/advspace/advspace). Each folder under
` + "`data/`" + ` is one writer's shard: the input files (named by sample ID) and a
` + "`metadata.jsonl`" + ` with one row per input.

| column | meaning |
|---|---|
| file_name | the input file, relative to the shard folder |
| id | the sample's unique ID |
| label | the correct label, given by the person |
| model_label | what the model predicted |
| model_probabilities | the model's class probabilities |
| model_version | the model that was fooled |
| round | the collection round |
| created_at | when it was flagged (RFC 3339, UTC) |
| session | an anonymous session ID (may be empty) |

Not every input is a trustworthy label. Other people validate each sample and
its writer may retract it; these records are appended, never rewritten, to
` + "`validations/<shard>.jsonl`" + ` (the ` + "`validations`" + ` config), one row per record.
A sample's state is the fold of its records: trust only samples with enough
matching "correct" verdicts, and drop retracted ones.

| column | meaning |
|---|---|
| kind | ` + "`verdict`" + ` or ` + "`retraction`" + ` |
| sample_id | the ` + "`id`" + ` of the sample it is about |
| session | the validator's session (verdicts) or the writer's (retractions) |
| verdict | ` + "`correct`" + `, ` + "`incorrect`" + ` or ` + "`flagged`" + ` (verdicts only) |
| label | the right label, given with ` + "`incorrect`" + ` (may be absent) |
| created_at | when the record was made (RFC 3339, UTC) |
`

// DirOptions configures a Dir. A nil *DirOptions and zero fields mean the defaults.
type DirOptions struct {
	// Shard names the folder under data/ that this Dir writes to. Default:
	// "<UTC yyyymmdd>-<8 random hex>", a new shard per Dir (per process), so
	// that no two writers ever append to the same file. Naming an existing
	// shard continues it. With DailyShards it is the suffix after the date.
	// It must be 1 to 100 characters from [A-Za-z0-9_.-] and start with a
	// letter or digit.
	Shard string
	// DailyShards rolls to a new shard at UTC midnight:
	// "<yyyymmdd>-<suffix>", where suffix is Shard (default 8 random hex
	// chosen once per Dir). Off by default: one shard per Dir, which keeps a
	// writer's rows in one file however long the process runs.
	DailyShards bool
	// Now is the clock used for shard names and for samples without
	// CreatedAt. Default time.Now.
	Now func() time.Time
	// Logger receives recovery and error reports. Default: discard.
	Logger *slog.Logger
	// Card is the content of README.md, written only when the root has no
	// README.md yet. Default DefaultCard.
	Card string

	// fs replaces the operating system in tests (fault injection).
	fs fileSystem
}

// Dir stores flagged samples in a local folder laid out as a Hugging Face
// ImageFolder dataset, the same layout as the Hub dataset:
//
//	<root>/README.md                    dataset card with the configs YAML
//	<root>/data/<shard>/metadata.jsonl  one MetadataRow per input
//	<root>/data/<shard>/<id><ext>       the input, encoded by the Codec
//
// Durability: Flag writes the input to a temporary file in the shard folder,
// syncs it, renames it to <id><ext> and syncs the folder; then it appends the
// metadata row with a single write of the whole line and syncs the file. Only
// then does it return nil, so an acknowledged sample survives a crash or a
// power cut. A row is visible only after its input file is complete, and a
// failed write is undone (the file is truncated back, the input removed), so
// readers never see half a row.
//
// Recovery: NewDir scans every shard, cuts off a torn last line (a crash
// mid-append), removes input files that have no row (the flag was never
// acknowledged) and leftover temporary files, and rebuilds the set of stored
// IDs, so a retried flag is still stored exactly once.
//
// A Dir takes an exclusive lock on its root (the file
// .cache/huggingface/advspace.lock, an advisory flock released by the kernel
// if the process dies): one Dir per root at a time; a second one gets
// ErrLocked. Upload tools skip that folder.
//
// All methods are safe for concurrent use. Flag calls run their file writes
// in parallel and serialise only the metadata append; a second Flag of an ID
// that is being stored waits for the first and then returns nil.
type Dir[In any] struct {
	root   string
	codec  Codec[In]
	fs     fileSystem
	log    *slog.Logger
	now    func() time.Time
	daily  bool
	suffix string // DailyShards: the part after the date
	fixed  string // !DailyShards: the one shard
	lock   *os.File

	mu       sync.Mutex
	shards   map[string]*shardState
	order    []string          // shard names in the order they became known (recovered ones sorted)
	ids      map[string]string // sample ID → shard name
	inflight map[string]chan struct{}
	count    int
	broken   error
	gate     gate // Flag calls in progress; shut by Close
	watchers map[int]func(shard string, row dirRow)
	watchSeq int
}

type shardState struct {
	name    string
	dir     string
	meta    file     // metadata.jsonl opened for appending; nil until the first write
	size    int64    // bytes of complete rows in metadata.jsonl
	rows    []dirRow // every row of metadata.jsonl, in file order
	created bool     // the folder exists on disk
}

// dirRow is one durable row of a shard's metadata.jsonl, as a Dir watcher
// sees it: the sample's ID, its input file (relative to the shard folder) and
// the byte offset just after the row's newline.
type dirRow struct {
	ID   string
	File string
	End  int64
}

// dirShard is a shard as a Dir watcher sees it: its name and rows.
type dirShard struct {
	Name string
	Rows []dirRow
}

var shardPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// NewDir opens (creating if needed) the dataset folder root, recovers it
// after a possible crash and returns a Dir writing to its shard.
func NewDir[In any](root string, codec Codec[In], opts *DirOptions) (*Dir[In], error) {
	if root == "" {
		return nil, errors.New("flag: NewDir: root folder is empty; give the dataset folder to write to")
	}
	if codec == nil {
		return nil, errors.New("flag: NewDir: codec is nil; use flag.GrayPNG() for images or flag.JSONCodec")
	}
	if ext := codec.Ext(); !strings.HasPrefix(ext, ".") || len(ext) < 2 || strings.ContainsAny(ext, `/\`) || ext == ".jsonl" {
		return nil, fmt.Errorf("flag: NewDir: codec extension %q must look like \".png\"", ext)
	}
	if opts == nil {
		opts = &DirOptions{}
	}
	d := &Dir[In]{
		root:     root,
		codec:    codec,
		fs:       opts.fs,
		log:      opts.Logger,
		now:      opts.Now,
		daily:    opts.DailyShards,
		shards:   make(map[string]*shardState),
		ids:      make(map[string]string),
		inflight: make(map[string]chan struct{}),
	}
	if d.fs == nil {
		d.fs = osFS{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if opts.Shard != "" && !shardPattern.MatchString(opts.Shard) {
		return nil, fmt.Errorf("flag: NewDir: shard name %q must be 1 to 100 characters from A-Z, a-z, 0-9, '_', '.', '-' and start with a letter or digit", opts.Shard)
	}
	switch {
	case d.daily && opts.Shard != "":
		d.suffix = opts.Shard
	case d.daily:
		d.suffix = randid.Hex(4)
	case opts.Shard != "":
		d.fixed = opts.Shard
	default:
		d.fixed = d.now().UTC().Format("20060102") + "-" + randid.Hex(4)
	}

	dataDir := filepath.Join(root, DataDir)
	if err := d.fs.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("flag: NewDir: creating %s: %w", dataDir, err)
	}
	lockPath := filepath.Join(root, dirLockPath)
	if err := d.fs.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return nil, fmt.Errorf("flag: NewDir: creating %s: %w", filepath.Dir(lockPath), err)
	}
	lock, err := lockFile(lockPath)
	if err != nil {
		return nil, fmt.Errorf("flag: NewDir: locking %s: %w", root, err)
	}
	d.lock = lock
	if err := d.open(opts.Card); err != nil {
		_ = unlockFile(lock)
		return nil, err
	}
	return d, nil
}

func (d *Dir[In]) open(card string) error {
	readme := filepath.Join(d.root, "README.md")
	if _, err := d.fs.Stat(readme); errors.Is(err, fs.ErrNotExist) {
		if card == "" {
			card = DefaultCard
		}
		if err := writeFileAtomic(d.fs, readme, []byte(card)); err != nil {
			return fmt.Errorf("flag: NewDir: writing dataset card %s: %w", readme, err)
		}
	} else if err != nil {
		return fmt.Errorf("flag: NewDir: %w", err)
	}
	dataDir := filepath.Join(d.root, DataDir)
	entries, err := d.fs.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("flag: NewDir: listing %s: %w", dataDir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || !shardPattern.MatchString(e.Name()) {
			continue // hidden or foreign entries are not ours
		}
		if err := d.recoverShard(e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// recoverShard brings one shard folder back to a consistent state and loads
// its IDs: see the Dir documentation.
func (d *Dir[In]) recoverShard(name string) error {
	dir := filepath.Join(d.root, DataDir, name)
	sh := &shardState{name: name, dir: dir, created: true}
	rows, size, _, err := readRepaired(d.fs, d.log, filepath.Join(dir, MetadataFile), func(data []byte) ([]MetadataRow, int, error) {
		rows, good, err := parseMetadata(data)
		if err == nil {
			sh.rows = indexRows(data[:good], rows)
		}
		return rows, good, err
	})
	if err != nil {
		return fmt.Errorf("flag: NewDir: %w", err)
	}
	sh.size = size

	referenced := make(map[string]bool, len(rows))
	for _, r := range rows {
		referenced[r.FileName] = true
		if prev, dup := d.ids[r.ID]; dup {
			d.log.Warn("flag: sample ID stored twice; keeping the first", "id", r.ID, "first_shard", prev, "shard", name)
			continue
		}
		d.ids[r.ID] = name
		d.count++
	}

	entries, err := d.fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("flag: NewDir: listing %s: %w", dir, err)
	}
	present := make(map[string]bool, len(entries))
	removed := false
	ext := d.codec.Ext()
	for _, e := range entries {
		n := e.Name()
		present[n] = true
		var why string
		switch {
		case strings.HasPrefix(n, tempPrefix):
			why = "temporary file left by a crash"
		case !e.IsDir() && strings.HasSuffix(n, ext) && validID(strings.TrimSuffix(n, ext)) && !referenced[n]:
			why = "input file without a metadata row (its flag was never acknowledged)"
		default:
			continue
		}
		if err := d.fs.Remove(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("flag: NewDir: removing %s: %w", filepath.Join(dir, n), err)
		}
		d.log.Info("flag: removed "+why, "file", filepath.Join(dir, n))
		removed = true
	}
	if removed {
		if err := d.fs.SyncDir(dir); err != nil {
			return fmt.Errorf("flag: NewDir: syncing %s: %w", dir, err)
		}
	}
	for _, r := range rows {
		if !present[r.FileName] {
			d.log.Error("flag: metadata row refers to a missing input file", "shard", name, "id", r.ID, "file_name", r.FileName)
		}
	}
	if len(rows) == 0 {
		// A crash before the shard's first row leaves an empty folder (or an
		// empty metadata file). Remove it: the loader cannot read an empty
		// shard, and nothing in it was ever acknowledged.
		gone, err := d.removeEmptyShard(dir)
		if err != nil {
			return fmt.Errorf("flag: NewDir: %w", err)
		}
		if gone {
			d.log.Info("flag: removed an empty shard folder left by a crash", "dir", dir)
			return nil
		}
	}
	d.shards[name] = sh
	d.order = append(d.order, name)
	return nil
}

// removeEmptyShard removes dir if it holds nothing but an empty metadata
// file; it reports whether it did.
func (d *Dir[In]) removeEmptyShard(dir string) (bool, error) {
	entries, err := d.fs.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Name() != MetadataFile {
			return false, nil
		}
	}
	meta := filepath.Join(dir, MetadataFile)
	if err := d.fs.Remove(meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("removing %s: %w", meta, err)
	}
	if err := d.fs.Remove(dir); err != nil {
		return false, fmt.Errorf("removing empty shard %s: %w", dir, err)
	}
	if err := d.fs.SyncDir(filepath.Dir(dir)); err != nil {
		return false, fmt.Errorf("syncing %s: %w", filepath.Dir(dir), err)
	}
	return true, nil
}

// parseMetadata parses metadata.jsonl content. It returns the rows and the
// length of the prefix made of complete, valid lines. Only the last line may
// be torn (no newline, or not a valid row): that is what an interrupted
// append leaves. A damaged line followed by good ones is an error, because
// cutting it off would drop acknowledged rows.
func parseMetadata(data []byte) (rows []MetadataRow, good int, err error) {
	return parseLines(data, parseRow)
}

// indexRows pairs the parsed rows of metadata content with the offsets just
// after their lines (blank lines hold no row).
func indexRows(data []byte, rows []MetadataRow) []dirRow {
	out := make([]dirRow, 0, len(rows))
	off := 0
	for _, r := range rows {
		for {
			nl := bytes.IndexByte(data[off:], '\n')
			blank := len(bytes.TrimSpace(data[off:off+nl])) == 0
			off += nl + 1
			if !blank {
				break
			}
		}
		out = append(out, dirRow{ID: r.ID, File: r.FileName, End: int64(off)})
	}
	return out
}

// watch registers fn to be told of every row appended durably from now on
// and returns the rows already there, shard by shard in the order of Shards,
// atomically: no row is missed or seen twice. fn runs with the Dir's lock
// held, once per append, in append order: it must not block or call the Dir.
// stop unregisters fn.
func (d *Dir[In]) watch(fn func(shard string, row dirRow)) (shards []dirShard, stop func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range d.order {
		shards = append(shards, dirShard{Name: name, Rows: slices.Clone(d.shards[name].rows)})
	}
	if d.watchers == nil {
		d.watchers = make(map[int]func(string, dirRow))
	}
	d.watchSeq++
	key := d.watchSeq
	d.watchers[key] = fn
	return shards, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.watchers, key)
	}
}

// Root returns the dataset folder.
func (d *Dir[In]) Root() string { return d.root }

// Shard returns the name of the shard the next flag goes to.
func (d *Dir[In]) Shard() string {
	if d.daily {
		return d.dailyName()
	}
	return d.fixed
}

// ShardDir returns the folder of Shard. It exists once a sample was stored in it.
func (d *Dir[In]) ShardDir() string { return filepath.Join(d.root, DataDir, d.Shard()) }

// Shards returns the names of all shard folders known to the Dir (recovered
// ones and the ones it wrote to), in the order they became known.
func (d *Dir[In]) Shards() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.order)
}

// Count returns the number of samples stored in all shards.
func (d *Dir[In]) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}

// Has reports whether a sample with this ID is stored (in any shard).
func (d *Dir[In]) Has(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.ids[id]
	return ok
}

func (d *Dir[In]) dailyName() string {
	return d.now().UTC().Format("20060102") + "-" + d.suffix
}

// Flag stores s durably (see the Dir documentation) and returns nil only when
// it is on disk. A sample whose ID is already stored is not stored again (nil
// is returned). A zero CreatedAt is set to the current time. An invalid sample
// gets an error wrapping ErrInvalidSample and nothing is written.
func (d *Dir[In]) Flag(ctx context.Context, s dadc.Sample[In]) error {
	data, err := admitSample(ctx, &s, d.codec, d.now, "dir", "not stored")
	if err != nil {
		return err
	}

	if err := d.gate.enter(); err != nil {
		return err
	}
	defer d.gate.leave()

	// Claim the ID, or find it already stored, or wait for whoever stores it.
	var (
		done chan struct{}
		sh   *shardState
	)
	for done == nil {
		d.mu.Lock()
		if d.broken != nil {
			d.mu.Unlock()
			return d.broken
		}
		if _, ok := d.ids[s.ID]; ok {
			d.mu.Unlock()
			return nil
		}
		if wait, ok := d.inflight[s.ID]; ok {
			d.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return fmt.Errorf("flag: dir: sample %s not stored: %w", s.ID, ctx.Err())
			}
		}
		sh, err = d.shardLocked()
		if err != nil {
			d.mu.Unlock()
			return err
		}
		done = make(chan struct{})
		d.inflight[s.ID] = done
		d.mu.Unlock()
	}
	defer func() {
		d.mu.Lock()
		delete(d.inflight, s.ID)
		close(done)
		d.mu.Unlock()
	}()

	fileName := s.ID + d.codec.Ext()
	inputPath := filepath.Join(sh.dir, fileName)
	if err := writeFileAtomic(d.fs, inputPath, data); err != nil {
		d.removeInput(inputPath) // in case the rename happened but the folder sync failed
		return fmt.Errorf("flag: dir: writing input of sample %s: %w", s.ID, err)
	}
	if err := ctx.Err(); err != nil {
		d.removeInput(inputPath)
		return fmt.Errorf("flag: dir: sample %s not stored: %w", s.ID, err)
	}
	line, err := json.Marshal(MetadataRow{FileName: fileName, SampleMeta: metaUTC(s)})
	if err != nil {
		d.removeInput(inputPath)
		return fmt.Errorf("%w: sample %s: metadata cannot be encoded: %w", ErrInvalidSample, s.ID, err)
	}
	line = append(line, '\n')

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken != nil {
		d.removeInput(inputPath)
		return d.broken
	}
	if err := d.appendLocked(sh, line); err != nil {
		d.removeInput(inputPath)
		return fmt.Errorf("flag: dir: appending metadata of sample %s: %w", s.ID, err)
	}
	d.ids[s.ID] = sh.name
	d.count++
	row := dirRow{ID: s.ID, File: fileName, End: sh.size}
	sh.rows = append(sh.rows, row)
	for _, fn := range d.watchers {
		fn(sh.name, row)
	}
	return nil
}

// shardLocked returns the shard to write to, creating its folder and
// metadata file (durably) on first use. d.mu is held.
func (d *Dir[In]) shardLocked() (*shardState, error) {
	name := d.fixed
	if d.daily {
		name = d.dailyName()
	}
	sh := d.shards[name]
	if sh == nil {
		sh = &shardState{name: name, dir: filepath.Join(d.root, DataDir, name)}
		d.shards[name] = sh
		d.order = append(d.order, name)
	}
	if !sh.created {
		if err := d.fs.MkdirAll(sh.dir, 0o755); err != nil {
			return nil, fmt.Errorf("flag: dir: creating shard folder %s: %w", sh.dir, err)
		}
		if err := d.fs.SyncDir(filepath.Join(d.root, DataDir)); err != nil {
			return nil, fmt.Errorf("flag: dir: syncing %s: %w", filepath.Join(d.root, DataDir), err)
		}
		sh.created = true
	}
	return sh, nil
}

// openMetaLocked opens the shard's metadata file for appending, creating it
// (durably) on the first row: a shard never has an empty metadata file that
// the datasets loader could trip over. d.mu is held.
func (d *Dir[In]) openMetaLocked(sh *shardState) error {
	if sh.meta != nil {
		return nil
	}
	path := filepath.Join(sh.dir, MetadataFile)
	f, err := d.fs.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	if err := d.fs.SyncDir(sh.dir); err != nil {
		_ = f.Close()
		return fmt.Errorf("syncing %s: %w", sh.dir, err)
	}
	sh.meta = f
	return nil
}

// appendLocked appends one complete row and syncs it. On failure it truncates
// the file back so that no partial or unsynced row stays visible; if even
// that fails the Dir stops accepting writes (recovery on reopen repairs the
// file). d.mu is held.
func (d *Dir[In]) appendLocked(sh *shardState, line []byte) error {
	if err := d.openMetaLocked(sh); err != nil {
		return err
	}
	err := appendSynced(sh.meta, sh.meta.Name(), &sh.size, line)
	if errors.Is(err, ErrBroken) {
		d.broken = err
		d.log.Error("flag: cannot undo a failed metadata append", "file", sh.meta.Name(), "err", err)
	}
	return err
}

func (d *Dir[In]) removeInput(path string) {
	if err := d.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Harmless: recovery removes input files without a row.
		d.log.Warn("flag: cannot remove the input of a failed flag", "file", path, "err", err)
	}
}

// Samples returns every stored sample of every shard with its decoded input,
// oldest first (by CreatedAt; ties in storage order). A row whose input file
// is missing or cannot be decoded is skipped and logged at error level, so
// that one damaged file does not stop a server from starting.
func (d *Dir[In]) Samples(ctx context.Context) ([]dadc.Sample[In], error) {
	type located struct {
		row MetadataRow
		dir string
	}
	var rows []located
	if d.gate.isShut() {
		return nil, ErrClosed
	}
	d.mu.Lock()
	seen := make(map[string]bool, d.count)
	for _, name := range d.order {
		sh := d.shards[name]
		if !sh.created || sh.size == 0 {
			continue
		}
		path := filepath.Join(sh.dir, MetadataFile)
		data, err := d.fs.ReadFile(path)
		if err != nil {
			d.mu.Unlock()
			return nil, fmt.Errorf("flag: dir: reading %s: %w", path, err)
		}
		// Appends happen under d.mu, so the first sh.size bytes are complete rows.
		parsed, _, err := parseMetadata(data[:min(int64(len(data)), sh.size)])
		if err != nil {
			d.mu.Unlock()
			return nil, fmt.Errorf("flag: dir: %s: %w", path, err)
		}
		for _, r := range parsed {
			if !seen[r.ID] {
				seen[r.ID] = true
				rows = append(rows, located{r, sh.dir})
			}
		}
	}
	d.mu.Unlock()

	out := make([]dadc.Sample[In], 0, len(rows))
	for _, l := range rows {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("flag: dir: reading samples: %w", err)
		}
		if name := l.row.FileName; name == "" || name != filepath.Base(name) || strings.ContainsAny(name, `/\`) || name == ".." {
			d.log.Error("flag: skipping a metadata row whose file_name is not a file in its shard folder", "dir", l.dir, "id", l.row.ID, "file_name", name)
			continue
		}
		b, err := d.fs.ReadFile(filepath.Join(l.dir, l.row.FileName))
		if err != nil {
			d.log.Error("flag: skipping a sample whose input file cannot be read", "dir", l.dir, "id", l.row.ID, "err", err)
			continue
		}
		in, err := d.codec.Decode(b)
		if err != nil {
			d.log.Error("flag: skipping a sample whose input cannot be decoded", "dir", l.dir, "id", l.row.ID, "err", err)
			continue
		}
		out = append(out, withInput(l.row.SampleMeta, in))
	}
	slices.SortStableFunc(out, func(a, b dadc.Sample[In]) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Close waits for Flag calls in progress, closes the files and releases the
// lock on the root. Later Flag calls return ErrClosed. Close is idempotent.
func (d *Dir[In]) Close() error {
	if !d.gate.shut() {
		return nil
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, sh := range d.shards {
		if sh.meta != nil {
			errs = append(errs, sh.meta.Close())
			sh.meta = nil
		}
	}
	errs = append(errs, unlockFile(d.lock))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flag: dir: close: %w", err)
	}
	return nil
}

// String names the handler in errors and logs (for instance in a PartialError).
func (d *Dir[In]) String() string { return "flag.Dir(" + d.root + ")" }

var (
	_ dadc.Flagger[struct{}]      = (*Dir[struct{}])(nil)
	_ dadc.SampleSource[struct{}] = (*Dir[struct{}])(nil)
)
