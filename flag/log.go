package flag

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/advspace/advspace/dadc"
)

// LogFormat is the file format of a Log.
type LogFormat int

const (
	// JSONL writes one JSON object per line.
	JSONL LogFormat = iota
	// CSV writes a header row once, then one row per sample (RFC 4180 quoting).
	CSV
)

func (f LogFormat) String() string {
	switch f {
	case JSONL:
		return "JSONL"
	case CSV:
		return "CSV"
	}
	return "LogFormat(" + strconv.Itoa(int(f)) + ")"
}

// LogColumns returns the columns of a Log, in order: the JSON names of
// dadc.SampleMeta's fields, then "input". model_probabilities is a JSON array
// (also in CSV); created_at is RFC 3339 in UTC; input is the codec's bytes in
// standard base64. The caller may modify the slice.
func LogColumns() []string { return append(metaColumns(), "input") }

// LogOptions configures a Log. A nil *LogOptions and zero fields mean the defaults.
type LogOptions struct {
	// Now stamps samples without CreatedAt. Default time.Now.
	Now func() time.Time
	// Logger receives recovery reports. Default: discard.
	Logger *slog.Logger

	// fs replaces the operating system in tests (fault injection).
	fs fileSystem
}

// Log appends one line (JSONL) or row (CSV) per sample to a single file, in
// the spirit of Gradio's CSVLogger: easy to open in a spreadsheet or pandas,
// self-contained because the input is embedded as base64 (see LogColumns).
//
// Each Flag writes the whole line with one write and syncs the file before
// returning nil; a failed write is truncated away. The CSV header is written
// (and synced) once, when the file is created. Flag calls are serialised (one
// file, one writer); a sample ID already in the file is not written again.
// NewLog recovers like Dir: it cuts off a torn last line left by a crash and
// reloads the IDs. A Log takes an exclusive lock on a hidden sibling file
// (".<name>.lock"). All methods are safe for concurrent use.
type Log[In any] struct {
	path   string
	format LogFormat
	codec  Codec[In]
	fs     fileSystem
	log    *slog.Logger
	now    func() time.Time
	lock   *os.File

	mu     sync.Mutex
	f      file
	size   int64
	ids    map[string]bool
	broken error
	gate   gate // Flag and Samples calls in progress; shut by Close
}

// logRow is one line of a Log: the sample's metadata and its encoded input.
type logRow struct {
	dadc.SampleMeta
	Input string `json:"input"`
}

// NewLog opens (creating if needed) the log file at path and recovers it.
func NewLog[In any](path string, format LogFormat, codec Codec[In], opts *LogOptions) (*Log[In], error) {
	if path == "" {
		return nil, errors.New("flag: NewLog: path is empty; give the log file to write")
	}
	if format != JSONL && format != CSV {
		return nil, fmt.Errorf("flag: NewLog: unknown format %v; use flag.JSONL or flag.CSV", format)
	}
	if codec == nil {
		return nil, errors.New("flag: NewLog: codec is nil; use flag.GrayPNG() for images or flag.JSONCodec")
	}
	if opts == nil {
		opts = &LogOptions{}
	}
	l := &Log[In]{path: path, format: format, codec: codec, fs: opts.fs, log: opts.Logger, now: opts.Now, ids: make(map[string]bool)}
	if l.fs == nil {
		l.fs = osFS{}
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	dir := filepath.Dir(path)
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("flag: NewLog: creating %s: %w", dir, err)
	}
	lock, err := lockFile(filepath.Join(dir, "."+filepath.Base(path)+".lock"))
	if err != nil {
		return nil, fmt.Errorf("flag: NewLog: locking %s: %w", path, err)
	}
	l.lock = lock
	if err := l.open(); err != nil {
		_ = unlockFile(lock)
		return nil, err
	}
	return l, nil
}

func (l *Log[In]) open() error {
	rows, size, existed, err := readRepaired(l.fs, l.log, l.path, l.parse)
	if err != nil {
		return fmt.Errorf("flag: NewLog: %w", err)
	}
	for _, r := range rows {
		l.ids[r.ID] = true
	}
	f, err := l.fs.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("flag: NewLog: opening %s: %w", l.path, err)
	}
	l.f = f
	l.size = size
	if !existed {
		if err := l.fs.SyncDir(filepath.Dir(l.path)); err != nil {
			_ = f.Close()
			return fmt.Errorf("flag: NewLog: syncing %s: %w", filepath.Dir(l.path), err)
		}
	}
	if l.format == CSV && size == 0 {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write(LogColumns())
		w.Flush()
		if err := l.appendLocked(buf.Bytes()); err != nil {
			_ = f.Close()
			return fmt.Errorf("flag: NewLog: writing the CSV header: %w", err)
		}
	}
	return nil
}

// parse reads the file's rows and returns the length of the valid prefix.
// Only a torn tail (one interrupted write) is tolerated.
func (l *Log[In]) parse(data []byte) ([]logRow, int, error) {
	if l.format == JSONL {
		return parseLines(data, func(line []byte) (logRow, error) {
			var r logRow
			if err := json.Unmarshal(line, &r); err != nil {
				return r, err
			}
			return r, checkLogRow(r)
		})
	}
	return parseCSVLog(data)
}

// parseLines splits JSONL content into rows; see parseMetadata for the rules.
func parseLines[R any](data []byte, parse func([]byte) (R, error)) (rows []R, good int, err error) {
	off := 0
	for lineNo := 1; off < len(data); lineNo++ {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			return rows, off, nil
		}
		line, next := data[off:off+nl], off+nl+1
		if len(bytes.TrimSpace(line)) == 0 {
			off = next
			continue
		}
		r, perr := parse(line)
		if perr != nil {
			if len(bytes.TrimSpace(data[next:])) == 0 {
				return rows, off, nil
			}
			return nil, 0, fmt.Errorf("line %d is not a valid row (%v) but later lines follow", lineNo, perr)
		}
		rows = append(rows, r)
		off = next
	}
	return rows, off, nil
}

func checkLogRow(r logRow) error {
	if !validID(r.ID) {
		return fmt.Errorf("id %q is not a valid sample ID", r.ID)
	}
	if r.ModelProbabilities == nil {
		return fmt.Errorf("row %s has no model_probabilities", r.ID)
	}
	if _, err := base64.StdEncoding.DecodeString(r.Input); err != nil {
		return fmt.Errorf("row %s: input is not base64: %w", r.ID, err)
	}
	return nil
}

// parseCSVLog reads a CSV log: the header, then rows. A torn tail is what
// remains after the last complete row when no complete, valid row follows it.
func parseCSVLog(data []byte) ([]logRow, int, error) {
	if len(data) == 0 {
		return nil, 0, nil
	}
	rd := csv.NewReader(bytes.NewReader(data))
	rd.FieldsPerRecord = -1
	header, err := rd.Read()
	good := int(rd.InputOffset())
	if err != nil || good == 0 || data[good-1] != '\n' {
		if bytes.IndexByte(data, '\n') < 0 || bytes.IndexByte(data, '\n') == len(data)-1 {
			return nil, 0, nil // a torn header: nothing was ever acknowledged
		}
		return nil, 0, fmt.Errorf("the CSV header cannot be read: %v", err)
	}
	if want := LogColumns(); !slices.Equal(header, want) {
		return nil, 0, fmt.Errorf("the CSV header is %q, want %q (a file written by something else?)", header, want)
	}
	var rows []logRow
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			return rows, good, nil
		}
		end := int(rd.InputOffset())
		var r logRow
		if err == nil {
			r, err = csvToLogRow(rec)
		}
		if err == nil && data[end-1] != '\n' {
			err = errors.New("no newline at the end")
		}
		if err != nil {
			// Torn, unless a valid row follows (then it is damage in the middle).
			for {
				rec, rerr := rd.Read()
				if rerr == io.EOF {
					return rows, good, nil
				}
				if rerr != nil {
					continue
				}
				if _, verr := csvToLogRow(rec); verr == nil && data[int(rd.InputOffset())-1] == '\n' {
					return nil, 0, fmt.Errorf("row %d is not a valid row (%v) but later rows follow", len(rows)+1, err)
				}
			}
		}
		rows = append(rows, r)
		good = end
	}
}

// csvStringColumns tells, for each column of LogColumns, whether its JSON
// value is a string: a CSV cell holds a string column's text unquoted and any
// other column's JSON as is.
func csvStringColumns() []bool {
	_, raw, _ := jsonColumns(logRow{})
	str := make([]bool, len(raw))
	for i, r := range raw {
		str[i] = len(r) > 0 && r[0] == '"'
	}
	return str
}

// logRowToCSV returns the CSV record of r, one cell per LogColumns column.
func logRowToCSV(r logRow) ([]string, error) {
	_, raw, err := jsonColumns(r)
	if err != nil {
		return nil, err
	}
	rec := make([]string, len(raw))
	for i, v := range raw {
		if len(v) > 0 && v[0] == '"' {
			if err := json.Unmarshal(v, &rec[i]); err != nil {
				return nil, err
			}
			continue
		}
		rec[i] = string(v)
	}
	return rec, nil
}

// csvToLogRow parses a CSV record written by logRowToCSV.
func csvToLogRow(rec []string) (logRow, error) {
	var r logRow
	cols, str := LogColumns(), csvStringColumns()
	if len(rec) != len(cols) {
		return r, fmt.Errorf("%d fields, want %d", len(rec), len(cols))
	}
	obj := []byte{'{'}
	for i, cell := range rec {
		if i > 0 {
			obj = append(obj, ',')
		}
		obj = strconv.AppendQuote(obj, cols[i]) // column names are plain ASCII
		obj = append(obj, ':')
		if str[i] {
			q, _ := json.Marshal(cell) // a string always marshals
			obj = append(obj, q...)
			continue
		}
		if !json.Valid([]byte(cell)) {
			return r, fmt.Errorf("%s: %q is not a JSON value", cols[i], cell)
		}
		obj = append(obj, cell...)
	}
	obj = append(obj, '}')
	if err := json.Unmarshal(obj, &r); err != nil {
		return r, err
	}
	return r, checkLogRow(r)
}

// Path returns the log file.
func (l *Log[In]) Path() string { return l.path }

// Count returns the number of samples in the log.
func (l *Log[In]) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

// Flag appends s durably; see Log. An invalid sample gets an error wrapping
// ErrInvalidSample and nothing is written.
func (l *Log[In]) Flag(ctx context.Context, s dadc.Sample[In]) error {
	input, err := admitSample(ctx, &s, l.codec, l.now, "log", "not stored")
	if err != nil {
		return err
	}
	r := logRow{SampleMeta: metaUTC(s), Input: base64.StdEncoding.EncodeToString(input)}
	var line []byte
	if l.format == JSONL {
		line, err = json.Marshal(r)
		line = append(line, '\n')
	} else {
		var rec []string
		if rec, err = logRowToCSV(r); err == nil {
			var buf bytes.Buffer
			w := csv.NewWriter(&buf)
			_ = w.Write(rec)
			w.Flush()
			line = buf.Bytes()
		}
	}
	if err != nil {
		return fmt.Errorf("%w: sample %s: %w", ErrInvalidSample, s.ID, err)
	}

	if err := l.gate.enter(); err != nil {
		return err
	}
	defer l.gate.leave()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.broken != nil:
		return l.broken
	case l.ids[s.ID]:
		return nil
	}
	if err := l.appendLocked(line); err != nil {
		return fmt.Errorf("flag: log: appending sample %s: %w", s.ID, err)
	}
	l.ids[s.ID] = true
	return nil
}

// appendLocked writes b with one write, syncs, and truncates back on failure.
func (l *Log[In]) appendLocked(b []byte) error {
	err := appendSynced(l.f, l.path, &l.size, b)
	if errors.Is(err, ErrBroken) {
		l.broken = err
		l.log.Error("flag: cannot undo a failed log append", "file", l.path, "err", err)
	}
	return err
}

// Samples returns the samples in the log, in file order, with decoded inputs.
func (l *Log[In]) Samples(ctx context.Context) ([]dadc.Sample[In], error) {
	if err := l.gate.enter(); err != nil {
		return nil, err
	}
	defer l.gate.leave()
	l.mu.Lock()
	data, err := l.fs.ReadFile(l.path)
	size := l.size
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("flag: log: reading %s: %w", l.path, err)
	}
	rows, _, err := l.parse(data[:min(int64(len(data)), size)])
	if err != nil {
		return nil, fmt.Errorf("flag: log: %s: %w", l.path, err)
	}
	out := make([]dadc.Sample[In], 0, len(rows))
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("flag: log: reading samples: %w", err)
		}
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		b, _ := base64.StdEncoding.DecodeString(r.Input) // checked by parse
		in, err := l.codec.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("flag: log: sample %s: %w", r.ID, err)
		}
		out = append(out, withInput(r.SampleMeta, in))
	}
	return out, nil
}

// Close waits for Flag and Samples calls in progress, closes the file and
// releases the lock. Later calls return ErrClosed. Close is idempotent.
func (l *Log[In]) Close() error {
	if !l.gate.shut() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err := errors.Join(l.f.Close(), unlockFile(l.lock))
	if err != nil {
		return fmt.Errorf("flag: log: close: %w", err)
	}
	return nil
}

// String names the handler in errors and logs.
func (l *Log[In]) String() string { return "flag.Log(" + l.path + ")" }

var (
	_ dadc.Flagger[struct{}]      = (*Log[struct{}])(nil)
	_ dadc.SampleSource[struct{}] = (*Log[struct{}])(nil)
	_ io.Closer                   = (*Log[struct{}])(nil)
)
