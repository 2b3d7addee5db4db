package flag

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/internal/backoff"
	"github.com/advspace/advspace/internal/randid"
)

// OutboxOptions configures an Outbox. A nil *OutboxOptions and zero fields
// mean the defaults.
type OutboxOptions struct {
	// MinBackoff is the pause after the first failed delivery; each further
	// consecutive failure doubles it, up to MaxBackoff. A random jitter of up
	// to half the pause is subtracted so that many outboxes do not retry in
	// lockstep. Defaults: 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one call of the next handler. Default 1m.
	AttemptTimeout time.Duration
	// Workers is the number of concurrent deliveries. Default 1, which
	// delivers in enqueue order.
	Workers int
	// Logger receives delivery failures and recovery reports. Default: discard.
	Logger *slog.Logger
	// Now stamps samples without CreatedAt and enqueue times. Default time.Now.
	// (Backoff waits use the monotonic clock of package time.)
	Now func() time.Time
	// OnDeliver, if set, is called (from a worker goroutine) after a sample
	// was delivered and its pending file removed, before Backlog drops. It
	// must not block for long.
	OnDeliver func(id string)
	// IsPermanent reports whether a delivery error will never go away for this
	// sample, so that retrying is pointless. Such samples are moved to the
	// failed/ folder (kept on disk, never dropped) and logged. Default: errors
	// wrapping ErrInvalidSample or dadc.ErrInvalidLabel.
	IsPermanent func(err error) bool

	// fs replaces the operating system in tests (fault injection).
	fs fileSystem
}

// Outbox is a durable local queue in front of a slow or unreliable Flagger
// (a webhook, the Hub, another machine).
//
// Flag writes the sample to its own file, dir/pending/<id>.json (temporary
// file, fsync, rename, fsync of the folder), and returns nil as soon as that
// file is durable: the sample is acknowledged without waiting for the next
// handler. Background workers deliver pending samples to next in enqueue
// order; a pending file is removed only after next.Flag returned nil. When
// next fails, delivery pauses with exponential backoff and jitter (the
// failed sample stays first in line) and resumes by itself. Pending files are
// re-read on start, so delivery survives restarts and crashes.
//
// Delivery is at least once: a crash after next.Flag succeeded but before
// the pending file was removed delivers that sample again after the restart.
// The next handler must therefore be idempotent by sample ID, as the
// dadc.Flagger contract requires (Dir, Log and Hub are), which makes the
// end-to-end result exactly once.
//
// Samples that next rejects permanently (see OutboxOptions.IsPermanent) are
// moved to dir/failed/ instead of blocking the queue forever; undecodable
// pending files go there too. Nothing acknowledged is deleted.
//
// The Outbox takes an exclusive lock on dir (one Outbox per folder at a
// time). It implements dadc.Flagger, dadc.Flusher and io.Closer; all methods
// are safe for concurrent use.
type Outbox[In any] struct {
	dir        string
	pendingDir string
	failedDir  string
	next       dadc.Flagger[In]
	codec      Codec[In]
	fs         fileSystem
	log        *slog.Logger
	now        func() time.Time
	minBackoff time.Duration
	maxBackoff time.Duration
	attemptTO  time.Duration
	onDeliver  func(string)
	permanent  func(error) bool
	lock       *os.File

	ctx    context.Context // cancelled by Close; parent of delivery attempts
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers
	gate   gate           // Flag calls in progress; shut by Close

	mu        sync.Mutex
	entries   map[string]*outboxEntry // every known pending ID (being written, queued or in flight)
	queue     []*outboxEntry          // queued entries, sorted by seq
	seq       uint64
	backlog   int // durable, not yet delivered
	failures  int // consecutive failed attempts
	retryAt   time.Time
	lastErr   error
	wake      chan struct{} // buffered(1): a worker should look at the queue
	changed   chan struct{} // closed and replaced whenever backlog changes
	delivered atomic.Int64
	failed    atomic.Int64
	dead      atomic.Int64
}

type outboxEntry struct {
	id      string
	seq     uint64
	path    string
	written chan struct{} // closed when the enqueue finished (successfully or not)
	durable bool
}

// outboxRecord is the content of a pending file.
type outboxRecord struct {
	Version    int             `json:"version"`
	Seq        uint64          `json:"seq"`
	EnqueuedAt time.Time       `json:"enqueued_at"`
	Sample     dadc.SampleMeta `json:"sample"`
	Ext        string          `json:"input_ext"`
	Input      []byte          `json:"input"` // the codec's bytes, base64 in JSON
}

const (
	pendingDirName = "pending"
	failedDirName  = "failed"
	recordExt      = ".json"
)

// NewOutbox opens (creating if needed) the queue folder dir, loads the
// samples still pending there and starts delivering them to next.
func NewOutbox[In any](dir string, next dadc.Flagger[In], codec Codec[In], opts *OutboxOptions) (*Outbox[In], error) {
	if dir == "" {
		return nil, errors.New("flag: NewOutbox: folder is empty; give a folder for the queue")
	}
	if next == nil {
		return nil, errors.New("flag: NewOutbox: next handler is nil; give the Flagger to deliver to")
	}
	if codec == nil {
		return nil, errors.New("flag: NewOutbox: codec is nil; use flag.GrayPNG() for images or flag.JSONCodec")
	}
	if opts == nil {
		opts = &OutboxOptions{}
	}
	if opts.MinBackoff < 0 || opts.MaxBackoff < 0 || opts.AttemptTimeout < 0 || opts.Workers < 0 {
		return nil, errors.New("flag: NewOutbox: backoffs, timeout and workers must not be negative")
	}
	o := &Outbox[In]{
		dir:        dir,
		pendingDir: filepath.Join(dir, pendingDirName),
		failedDir:  filepath.Join(dir, failedDirName),
		next:       next,
		codec:      codec,
		fs:         cmp.Or[fileSystem](opts.fs, osFS{}),
		log:        opts.Logger,
		now:        opts.Now,
		minBackoff: cmp.Or(opts.MinBackoff, time.Second),
		maxBackoff: cmp.Or(opts.MaxBackoff, 5*time.Minute),
		attemptTO:  cmp.Or(opts.AttemptTimeout, time.Minute),
		onDeliver:  opts.OnDeliver,
		permanent:  opts.IsPermanent,
		entries:    make(map[string]*outboxEntry),
		wake:       make(chan struct{}, 1),
		changed:    make(chan struct{}),
	}
	if o.maxBackoff < o.minBackoff {
		return nil, fmt.Errorf("flag: NewOutbox: MaxBackoff %v is below MinBackoff %v", o.maxBackoff, o.minBackoff)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.permanent == nil {
		o.permanent = func(err error) bool {
			return errors.Is(err, ErrInvalidSample) || errors.Is(err, dadc.ErrInvalidLabel)
		}
	}
	if err := o.fs.MkdirAll(o.pendingDir, 0o755); err != nil {
		return nil, fmt.Errorf("flag: NewOutbox: creating %s: %w", o.pendingDir, err)
	}
	lock, err := lockFile(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("flag: NewOutbox: locking %s: %w", dir, err)
	}
	o.lock = lock
	if err := o.load(); err != nil {
		_ = unlockFile(lock)
		return nil, err
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	workers := cmp.Or(opts.Workers, 1)
	for range workers {
		o.wg.Go(o.work)
	}
	if o.backlog > 0 {
		o.log.Info("flag: outbox resumes pending deliveries", "dir", dir, "pending", o.backlog)
	}
	return o, nil
}

// load reads the pending folder: leftover temporary files are removed,
// undecodable files moved to failed/, the rest queued in enqueue order.
func (o *Outbox[In]) load() error {
	entries, err := o.fs.ReadDir(o.pendingDir)
	if err != nil {
		return fmt.Errorf("flag: NewOutbox: listing %s: %w", o.pendingDir, err)
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(o.pendingDir, name)
		if strings.HasPrefix(name, tempPrefix) {
			if err := o.fs.Remove(path); err != nil {
				return fmt.Errorf("flag: NewOutbox: removing %s: %w", path, err)
			}
			o.log.Info("flag: outbox removed a temporary file left by a crash (never acknowledged)", "file", path)
			continue
		}
		if e.IsDir() || !strings.HasSuffix(name, recordExt) {
			continue
		}
		rec, err := o.readRecord(path)
		if err != nil || rec.Sample.ID+recordExt != name {
			o.log.Error("flag: outbox moves an unreadable pending file to failed/", "file", path, "err", err)
			if err := o.moveToFailed(path); err != nil {
				return fmt.Errorf("flag: NewOutbox: %w", err)
			}
			continue
		}
		ent := &outboxEntry{id: rec.Sample.ID, seq: rec.Seq, path: path, written: closedChan(), durable: true}
		o.entries[ent.id] = ent
		o.queue = append(o.queue, ent)
		o.seq = max(o.seq, rec.Seq)
	}
	slices.SortFunc(o.queue, func(a, b *outboxEntry) int { return cmp.Compare(a.seq, b.seq) })
	o.backlog = len(o.queue)
	return nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (o *Outbox[In]) readRecord(path string) (outboxRecord, error) {
	var rec outboxRecord
	b, err := o.fs.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, err
	}
	if rec.Version != 1 {
		return rec, fmt.Errorf("unknown pending file version %d", rec.Version)
	}
	if !validID(rec.Sample.ID) {
		return rec, fmt.Errorf("invalid sample ID %q", rec.Sample.ID)
	}
	return rec, nil
}

func (o *Outbox[In]) moveToFailed(path string) error {
	if err := o.fs.MkdirAll(o.failedDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.failedDir, err)
	}
	dst := filepath.Join(o.failedDir, filepath.Base(path))
	if _, err := o.fs.Stat(dst); err == nil {
		dst = filepath.Join(o.failedDir, strings.TrimSuffix(filepath.Base(path), recordExt)+"-"+randid.Hex(4)+recordExt)
	}
	if err := o.fs.Rename(path, dst); err != nil {
		return fmt.Errorf("moving %s to %s: %w", path, dst, err)
	}
	if err := o.fs.SyncDir(o.failedDir); err != nil {
		return fmt.Errorf("syncing %s: %w", o.failedDir, err)
	}
	if err := o.fs.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("syncing %s: %w", filepath.Dir(path), err)
	}
	return nil
}

// Flag enqueues s durably and returns nil once its pending file is on disk;
// delivery to the next handler happens in the background. A sample whose ID
// is already pending is not enqueued again. An invalid sample gets an error
// wrapping ErrInvalidSample and nothing is written.
func (o *Outbox[In]) Flag(ctx context.Context, s dadc.Sample[In]) error {
	input, err := admitSample(ctx, &s, o.codec, o.now, "outbox", "not enqueued")
	if err != nil {
		return err
	}
	if err := o.gate.enter(); err != nil {
		return err
	}
	defer o.gate.leave()
	var ent *outboxEntry
	for ent == nil {
		o.mu.Lock()
		if prev, ok := o.entries[s.ID]; ok {
			o.mu.Unlock()
			select {
			case <-prev.written:
			case <-ctx.Done():
				return fmt.Errorf("flag: outbox: sample %s not enqueued: %w", s.ID, ctx.Err())
			}
			o.mu.Lock()
			durable := prev.durable
			o.mu.Unlock()
			if durable {
				return nil // already pending (or delivered meanwhile): durable either way
			}
			continue // that enqueue failed; try ourselves
		}
		o.seq++
		ent = &outboxEntry{
			id:      s.ID,
			seq:     o.seq,
			path:    filepath.Join(o.pendingDir, s.ID+recordExt),
			written: make(chan struct{}),
		}
		o.entries[s.ID] = ent
		o.mu.Unlock()
	}

	rec := outboxRecord{
		Version: 1, Seq: ent.seq, EnqueuedAt: o.now().UTC(),
		Sample: metaUTC(s),
		Ext:    o.codec.Ext(),
		Input:  input,
	}
	data, err := json.Marshal(rec)
	if err == nil {
		err = writeFileAtomic(o.fs, ent.path, data)
		if err != nil {
			_ = o.fs.Remove(ent.path) // the rename may have happened before a failed folder sync
		}
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	defer close(ent.written)
	if err != nil {
		delete(o.entries, s.ID)
		o.notifyLocked() // a Flush may be counting this enqueue
		return fmt.Errorf("flag: outbox: enqueueing sample %s: %w", s.ID, err)
	}
	ent.durable = true
	o.insertLocked(ent)
	o.backlog++
	o.notifyLocked()
	return nil
}

// insertLocked puts ent into the queue at its place by seq.
func (o *Outbox[In]) insertLocked(ent *outboxEntry) {
	i, _ := slices.BinarySearchFunc(o.queue, ent.seq, func(e *outboxEntry, seq uint64) int { return cmp.Compare(e.seq, seq) })
	o.queue = slices.Insert(o.queue, i, ent)
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// notifyLocked wakes Flush waiters.
func (o *Outbox[In]) notifyLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// work is one delivery worker.
func (o *Outbox[In]) work() {
	for {
		ent, ok := o.take()
		if !ok {
			return
		}
		o.deliver(ent)
	}
}

// take waits for a queued entry that may be attempted now; false once the
// Outbox is closing.
func (o *Outbox[In]) take() (*outboxEntry, bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		o.mu.Lock()
		if o.ctx.Err() != nil {
			o.mu.Unlock()
			return nil, false
		}
		var wait <-chan time.Time
		if len(o.queue) > 0 {
			d := time.Until(o.retryAt)
			if d <= 0 {
				ent := o.queue[0]
				o.queue = o.queue[1:]
				if len(o.queue) > 0 {
					// Wake tokens coalesce: pass one on so that another
					// idle worker takes the next sample.
					select {
					case o.wake <- struct{}{}:
					default:
					}
				}
				o.mu.Unlock()
				return ent, true
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			wait = timer.C
		}
		o.mu.Unlock()
		select {
		case <-o.ctx.Done():
			return nil, false
		case <-o.wake:
		case <-wait:
		}
	}
}

func (o *Outbox[In]) deliver(ent *outboxEntry) {
	rec, err := o.readRecord(ent.path)
	var s dadc.Sample[In]
	if err == nil {
		var in In
		if in, err = o.codec.Decode(rec.Input); err == nil {
			s = withInput(rec.Sample, in)
		}
	}
	if err != nil {
		o.log.Error("flag: outbox moves an unreadable pending file to failed/", "file", ent.path, "err", err)
		if merr := o.moveToFailed(ent.path); merr != nil {
			o.retry(ent, fmt.Errorf("pending file %s is unreadable (%v) and cannot be moved: %w", ent.path, err, merr))
			return
		}
		o.dead.Add(1)
		o.finish(ent)
		return
	}

	actx, cancel := context.WithTimeout(o.ctx, o.attemptTO)
	err = o.next.Flag(actx, s)
	cancel()
	switch {
	case err == nil:
		if rerr := o.fs.Remove(ent.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			// Harmless: the sample is delivered again after a restart and next ignores it.
			o.log.Warn("flag: outbox cannot remove a delivered pending file", "file", ent.path, "err", rerr)
		} else if serr := o.fs.SyncDir(o.pendingDir); serr != nil {
			o.log.Warn("flag: outbox cannot sync the pending folder", "dir", o.pendingDir, "err", serr)
		}
		o.delivered.Add(1)
		o.mu.Lock()
		o.failures = 0
		o.retryAt = time.Time{}
		o.mu.Unlock()
		if o.onDeliver != nil {
			o.onDeliver(ent.id) // before finish, so that a Flush returning has seen every call
		}
		o.finish(ent)
	case o.ctx.Err() != nil:
		// Closing: the attempt was cancelled, the sample stays pending.
		o.mu.Lock()
		o.insertLocked(ent)
		o.mu.Unlock()
	case o.permanent(err):
		o.log.Error("flag: outbox: next handler rejected a sample permanently; moved to failed/", "id", ent.id, "err", err)
		if merr := o.moveToFailed(ent.path); merr != nil {
			o.retry(ent, errors.Join(err, merr))
			return
		}
		o.dead.Add(1)
		o.finish(ent)
	default:
		o.retry(ent, err)
	}
}

// retry puts ent back first in line and pauses delivery with backoff.
func (o *Outbox[In]) retry(ent *outboxEntry, err error) {
	o.failed.Add(1)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures++
	pause := o.backoff(o.failures)
	o.retryAt = time.Now().Add(pause)
	o.lastErr = err
	o.log.Warn("flag: outbox delivery failed; will retry", "id", ent.id, "attempt_failures", o.failures, "retry_in", pause, "err", err)
	o.insertLocked(ent)
	o.notifyLocked()
}

// backoff is the pause after n consecutive failures: MinBackoff·2^(n-1),
// capped at MaxBackoff, minus up to half of it at random.
func (o *Outbox[In]) backoff(n int) time.Duration {
	p := backoff.Policy{Min: o.minBackoff, Max: o.maxBackoff, Jitter: 0.5}
	return p.Delay(n-1, rand.Float64())
}

// finish forgets a delivered (or dead-lettered) entry.
func (o *Outbox[In]) finish(ent *outboxEntry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.entries[ent.id] == ent {
		delete(o.entries, ent.id)
	}
	o.backlog--
	o.notifyLocked()
}

// Backlog returns the number of acknowledged samples not yet delivered.
func (o *Outbox[In]) Backlog() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.backlog
}

// Delivered returns the number of samples delivered since NewOutbox.
func (o *Outbox[In]) Delivered() int64 { return o.delivered.Load() }

// Failed returns the number of failed delivery attempts since NewOutbox.
func (o *Outbox[In]) Failed() int64 { return o.failed.Load() }

// DeadLettered returns the number of samples moved to failed/ since NewOutbox.
func (o *Outbox[In]) DeadLettered() int64 { return o.dead.Load() }

// OutboxStats is a snapshot of an Outbox's counters, for metrics and dashboards.
type OutboxStats struct {
	Backlog      int    `json:"backlog"`
	Delivered    int64  `json:"delivered"`
	Failed       int64  `json:"failed"`
	DeadLettered int64  `json:"dead_lettered"`
	LastError    string `json:"last_error,omitempty"`
}

// Stats returns the current counters.
func (o *Outbox[In]) Stats() OutboxStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := OutboxStats{
		Backlog:      o.backlog,
		Delivered:    o.delivered.Load(),
		Failed:       o.failed.Load(),
		DeadLettered: o.dead.Load(),
	}
	if o.lastErr != nil {
		st.LastError = o.lastErr.Error()
	}
	return st
}

// Flush delivers everything pending now: it cuts short a running backoff
// pause and waits until the backlog is empty, then flushes the next handler
// if it is a dadc.Flusher. If the next handler keeps failing, Flush keeps
// retrying (with backoff) until ctx is done and then returns an error that
// wraps ctx.Err() and the last delivery error; the samples stay pending.
func (o *Outbox[In]) Flush(ctx context.Context) error {
	if o.gate.isShut() {
		return ErrClosed
	}
	o.mu.Lock()
	o.retryAt = time.Time{}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	o.mu.Unlock()
	for {
		o.mu.Lock()
		n, changed, last := o.backlog+o.writingLocked(), o.changed, o.lastErr
		o.mu.Unlock()
		closed := o.gate.isShut()
		if n == 0 {
			break
		}
		if closed {
			return fmt.Errorf("flag: outbox flush: %d samples still pending (they stay on disk): %w", n, ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			err := ctx.Err()
			if last != nil {
				err = errors.Join(err, fmt.Errorf("last delivery error: %w", last))
			}
			return fmt.Errorf("flag: outbox flush: %d samples still pending: %w", n, err)
		}
	}
	if f, ok := o.next.(dadc.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			return fmt.Errorf("flag: outbox flush: next handler: %w", err)
		}
	}
	return nil
}

// writingLocked counts enqueues still writing their pending file.
func (o *Outbox[In]) writingLocked() int {
	n := 0
	for _, e := range o.entries {
		if !e.durable {
			n++
		}
	}
	return n
}

// Close stops the workers (cancelling a delivery in progress, which stays
// pending), waits for Flag calls in progress and releases the folder lock. It
// does not close the next handler, which belongs to whoever constructed it.
// Pending samples stay on disk and are delivered by the next Outbox opened on
// the same folder; call Flush first to deliver them now. When some do stay,
// Close returns a *PendingError that says how many and where they wait.
// Close is idempotent (a second call returns nil); later Flag calls return
// ErrClosed.
func (o *Outbox[In]) Close() error {
	if !o.gate.shut() {
		return nil
	}
	o.mu.Lock()
	o.notifyLocked() // a running Flush sees the gate shut and returns
	o.mu.Unlock()
	o.cancel()
	o.wg.Wait()
	if err := unlockFile(o.lock); err != nil {
		return fmt.Errorf("flag: outbox close: %w", err)
	}
	o.mu.Lock()
	n, last := o.backlog, o.lastErr
	o.mu.Unlock()
	if n > 0 {
		return &PendingError{Handler: "outbox", Samples: n, Where: o.pendingDir, Err: last,
			Next: "are delivered when an Outbox is opened on " + o.dir + " again"}
	}
	return nil
}

// String names the handler in errors and logs.
func (o *Outbox[In]) String() string { return "flag.Outbox(" + o.dir + ")" }

var (
	_ dadc.Flagger[struct{}] = (*Outbox[struct{}])(nil)
	_ dadc.Flusher           = (*Outbox[struct{}])(nil)
	_ io.Closer              = (*Outbox[struct{}])(nil)
)
