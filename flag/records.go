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

	"github.com/advspace/advspace/dadc"
)

// ValidationsDir is the folder under a dataset root that holds the
// validation records: one append-only JSON Lines file per writer,
// validations/<shard>.jsonl, next to data/. A Hub pushes these files with
// the samples (complete lines only), and a folder push of the dataset root
// carries them too.
const ValidationsDir = "validations"

var recordShardRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// RecordLogOptions configure OpenRecordLog; nil means the defaults.
type RecordLogOptions struct {
	// Logger receives the warnings (a torn last line cut off). Default: discard.
	Logger *slog.Logger

	fs fileSystem // tests inject faults here; nil means the real one
}

// RecordLog is one writer's durable, append-only log of validation records
// (verdicts and retractions, see dadc.ValidationRecord) at
// <root>/validations/<shard>.jsonl: one JSON object per line, never
// rewritten. Append returns only once the line is written and fsynced, so
// an acknowledged verdict survives a crash; a torn last line (a write a
// crash interrupted, never acknowledged) is cut off when the log is opened,
// like the metadata log of a Dir.
//
// Only one process may write a shard: give each writer its own (for
// instance the Dir's shard name). Give the log to the Hub of the same
// dataset folder (HubOptions.Records) so that each append schedules a push
// the way a flagged sample does. Its methods are safe for concurrent use.
type RecordLog struct {
	path string
	log  *slog.Logger
	gate gate // Append calls in progress; shut by Close

	mu       sync.Mutex
	f        file
	size     int64 // the file's length: complete, durable lines, everything acknowledged
	broken   error // set when a failed append could not be undone
	watchers map[int]func(file string, size int64)
	watchSeq int
}

// OpenRecordLog opens (creating it and its folder if needed) the record
// log of shard under the dataset folder root, after cutting off a torn last
// line. shard is 1 to 128 letters, digits, '.', '_' or '-', starting with
// a letter or digit.
func OpenRecordLog(root, shard string, opts *RecordLogOptions) (*RecordLog, error) {
	var o RecordLogOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !recordShardRE.MatchString(shard) {
		return nil, fmt.Errorf("flag: OpenRecordLog: shard %q must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", shard)
	}
	fsys := o.fs
	if fsys == nil {
		fsys = osFS{}
	}
	dir := filepath.Join(root, ValidationsDir)
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("flag: OpenRecordLog: %w", err)
	}
	path := filepath.Join(dir, shard+".jsonl")
	// A torn last line (a crash in the middle of an append) is cut off, as
	// a Dir does with its metadata log.
	_, size, existed, err := readRepaired(fsys, o.Logger, path, parseRecords)
	if err != nil {
		return nil, fmt.Errorf("flag: OpenRecordLog: %w", err)
	}
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("flag: OpenRecordLog: %w", err)
	}
	if !existed {
		if err := fsys.SyncDir(dir); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("flag: OpenRecordLog: syncing %s: %w", dir, err)
		}
	}
	return &RecordLog{f: f, size: size, path: path, log: o.Logger}, nil
}

// Path returns the file the log appends to.
func (l *RecordLog) Path() string { return l.path }

// Append writes rec as one line and fsyncs it; it returns nil only once the
// record is durable. On a failed write it cuts the file back, so that a
// partial line never swallows the next record. It has the signature of the
// persist function of dadc.Validations.Record.
func (l *RecordLog) Append(ctx context.Context, rec dadc.ValidationRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("flag: encoding a validation record: %w", err)
	}
	line = append(line, '\n')
	if l.gate.enter() != nil {
		return ErrRecordLogClosed
	}
	defer l.gate.leave()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	err = appendSynced(l.f, l.path, &l.size, line)
	if errors.Is(err, ErrBroken) {
		l.broken = err
		l.log.Error("flag: cannot undo a failed validation record append", "file", l.path, "err", err)
	}
	if err != nil {
		return fmt.Errorf("flag: appending to %s: %w", l.path, err)
	}
	for _, fn := range l.watchers {
		fn(filepath.Base(l.path), l.size)
	}
	return nil
}

// watch registers fn, called under the log's lock after each durable append
// with the file's base name and its new size (complete lines only), and
// returns the current size. fn must be quick and must not call the log.
// stop unregisters it.
func (l *RecordLog) watch(fn func(file string, size int64)) (size int64, stop func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watchers == nil {
		l.watchers = make(map[int]func(string, int64))
	}
	l.watchSeq++
	key := l.watchSeq
	l.watchers[key] = fn
	return l.size, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.watchers, key)
	}
}

// Close waits for Append calls in progress and closes the file. Later
// Append calls return ErrRecordLogClosed. It is safe to call more than once.
func (l *RecordLog) Close() error {
	if !l.gate.shut() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// ReadRecords reads every shard's validation records under the dataset
// folder root (all validations/*.jsonl), ordered by CreatedAt (stable, so
// a shard's own order is kept on ties), ready for dadc.Validations.Replay.
// A torn last line is skipped (not repaired: it may be another writer's
// file); a bad line followed by good ones is an error. No folder: none.
func ReadRecords(root string) ([]dadc.ValidationRecord, error) {
	dir := filepath.Join(root, ValidationsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("flag: ReadRecords: %w", err)
	}
	var all []dadc.ValidationRecord
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("flag: ReadRecords: %w", err)
		}
		recs, _, err := parseRecords(data)
		if err != nil {
			return nil, fmt.Errorf("flag: ReadRecords: %s: %w; move the damaged file away or repair it by hand", path, err)
		}
		all = append(all, recs...)
	}
	slices.SortStableFunc(all, func(a, b dadc.ValidationRecord) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return all, nil
}

// parseRecords returns the records of data and the length of its valid
// prefix: only the last line may be torn (no newline, or not a record).
func parseRecords(data []byte) ([]dadc.ValidationRecord, int, error) {
	var recs []dadc.ValidationRecord
	off := 0
	for lineNo := 1; off < len(data); lineNo++ {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			return recs, off, nil
		}
		line, next := bytes.TrimSpace(data[off:off+nl]), off+nl+1
		if len(line) == 0 {
			off = next
			continue
		}
		var r dadc.ValidationRecord
		err := json.Unmarshal(line, &r)
		if err == nil && (r.Kind == "" || r.SampleID == "") {
			err = errors.New("no kind or no sample_id")
		}
		if err != nil {
			if len(bytes.TrimSpace(data[next:])) == 0 {
				return recs, off, nil
			}
			return nil, 0, fmt.Errorf("line %d is not a validation record (%v) but later lines follow", lineNo, err)
		}
		recs = append(recs, r)
		off = next
	}
	return recs, off, nil
}
