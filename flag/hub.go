package flag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/hfhub"
)

// HubOptions configure a Hub. A nil *HubOptions and zero fields mean the
// defaults.
type HubOptions struct {
	// Revision is the branch to push to. Default "main".
	Revision string
	// Private creates the repo private if it does not exist yet.
	Private bool
	// Interval is the longest time a flag waits before it is pushed. Default 5 minutes.
	Interval time.Duration
	// MaxBatch pushes as soon as that many new samples wait. Default 100.
	MaxBatch int
	// MaxCommitsPerHour caps commits over a sliding hour, below the Hub's
	// limit of about 128 per repo. Default 100.
	MaxCommitsPerHour int
	// MaxFilesPerCommit caps the inputs carried by one commit (a long backlog
	// goes out in several). Default 1000.
	MaxFilesPerCommit int
	// MinBackoff and MaxBackoff bound the wait after a failed push (doubling,
	// or longer when the Hub asks for it with Retry-After). Defaults 30 s and
	// 10 minutes. Flush does not wait for the backoff.
	MinBackoff, MaxBackoff time.Duration
	// CloseTimeout bounds the final push in Close. Default 1 minute.
	CloseTimeout time.Duration
	// PushTimeout bounds one push (one commit with its uploads), so that a
	// Hub that stops answering cannot stall the scheduler. Default 10 minutes.
	PushTimeout time.Duration
	// Logger receives push reports and Hub errors. Default: discard.
	Logger *slog.Logger
	// Records is this process's validation record log (verdicts and
	// retractions), opened on the same dataset folder as the Dir. Each
	// append schedules a push the way a flagged sample does (it counts
	// towards MaxBatch). Nil: the validation records found at start are
	// still pushed, but appends made later are pushed only by the next Hub
	// opened on the folder.
	Records *RecordLog
}

// Hub is a dadc.Flagger that stores every sample in a local Dir and pushes
// what the Dir stores to a Hugging Face Hub dataset repo in batched commits.
//
// Acknowledgement is local durability: Flag returns once Dir.Flag has written
// and synced the sample. Hub errors never fail Flag; they delay the upload.
//
// The Hub is a push scheduler that the Dir notifies of each durable append
// (also of samples flagged on the Dir directly); it never re-reads what the
// Dir already knows. One background goroutine pushes (pushes never overlap)
// every Interval or as soon as MaxBatch new samples wait, whichever comes
// first, and never more than MaxCommitsPerHour commits in any hour (commit
// times are remembered across restarts). After a failed push it waits
// MinBackoff, doubling up to MaxBackoff, or what the Hub asked for.
//
// One commit carries, for each shard with new rows: the new input files and
// the shard's whole metadata.jsonl up to the last pushed row; every
// validation record file (validations/<shard>.jsonl, see RecordLog) that
// grew, whole, up to its last complete line as of the push; and README.md
// (the dataset card) if the repo lacks one. Record files, like metadata
// files, do not count towards MaxFilesPerCommit. Since a shard and a record
// file are append-only and owned by one writer, pushing a prefix of one
// again is idempotent: unchanged files are dropped as no-ops by the client.
//
// What was pushed is recorded in a state file under
// <root>/.cache/huggingface/advspace-hub/ (a folder upload tools and the
// datasets loader skip), written atomically after each commit, with the
// pushed size of each record file. That record is a cached remote fact, so
// the Hub checks it against the repo before its first push and again whenever the repo changed under it (a commit it did
// not make, or a repo that vanished): rows the record claims but the repo
// lacks (a dataset deleted and created again, files removed) are pushed
// again, and a warning says how many; record files the repo lacks, or holds
// shorter than recorded, are pushed again whole.
//
// Adding the card is the one commit made against the head seen when checking
// (parent commit), so that a card another writer added meanwhile is not
// overwritten; the resulting conflict (HTTP 412) is resolved by checking
// again and is not an error.
//
// Every file access goes through the Dir's file system. Flush pushes
// everything pending now (ignoring Interval and backoff but not the hourly
// budget). Close refuses new flags, makes a final push bounded by
// CloseTimeout and stops the scheduler; it does not close the Dir, which
// belongs to whoever constructed it. All methods are safe for concurrent use.
type Hub[In any] struct {
	repo  hfhub.Repo
	dir   *Dir[In]
	fs    fileSystem
	opts  HubOptions
	log   *slog.Logger
	state string // state file path

	ctx       context.Context // the base context: cancelled by Close after the final push
	cancel    context.CancelFunc
	unwatch   func()
	unwatchRL func() // stops watching HubOptions.Records; no-op without it
	wake      chan struct{}
	flushReq  chan flushRequest
	done      chan struct{}

	gate gate // Flag calls in progress; shut by Close

	mu      sync.Mutex // guards the fields below
	shards  map[string]*hubShard
	order   []string               // shard names, in the order they became known
	recs    map[string]*hubRecords // validation record files, by base name
	recOrd  []string               // their names, in the order they became known
	fresh   int                    // rows and records appended since the last push attempt
	commits int                    // commits made by this Hub

	sched hubSchedule // owned by the scheduler goroutine
}

// hubShard is what the Hub knows of one shard: every durable row (from the
// Dir) and how many of them the repo has (from the state, checked).
type hubShard struct {
	rows   []dirRow
	pushed int
}

// hubRecords is what the Hub knows of one validation record file: how many
// bytes of complete lines it has locally and how many the repo holds.
type hubRecords struct {
	size, pushed int64
}

type flushRequest struct {
	ctx   context.Context
	reply chan error
}

var unsafeStateChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// NewHub returns a Hub pushing what dir stores to the dataset repo id
// through client, and starts its scheduler. It checks the arguments and the
// token but does not contact the Hub: the repo is created (exist-ok) and the
// local record checked on the first push, so a Hub that is down at start
// delays uploads instead of failing.
func NewHub[In any](client *hfhub.Client, id hfhub.RepoID, dir *Dir[In], opts *HubOptions) (*Hub[In], error) {
	if client == nil {
		return nil, errors.New("flag: NewHub: client is nil; make one with hfhub.NewClient")
	}
	if dir == nil {
		return nil, errors.New("flag: NewHub: dir is nil; the Hub stores samples in a local flag.Dir first")
	}
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("flag: NewHub: %w", err)
	}
	if !client.HasToken() {
		return nil, fmt.Errorf("flag: NewHub: %w", hfhub.ErrNoToken)
	}
	var o HubOptions
	if opts != nil {
		o = *opts
	}
	if o.Interval < 0 || o.MaxBatch < 0 || o.MaxCommitsPerHour < 0 || o.MaxFilesPerCommit < 0 {
		return nil, errors.New("flag: NewHub: Interval, MaxBatch, MaxCommitsPerHour and MaxFilesPerCommit must not be negative")
	}
	o.Interval = cmpOr(o.Interval, 5*time.Minute)
	o.MaxBatch = cmpOr(o.MaxBatch, 100)
	o.MaxCommitsPerHour = cmpOr(o.MaxCommitsPerHour, 100)
	o.MaxFilesPerCommit = cmpOr(o.MaxFilesPerCommit, 1000)
	o.MinBackoff = cmpOr(max(o.MinBackoff, 0), 30*time.Second)
	o.MaxBackoff = cmpOr(max(o.MaxBackoff, 0), 10*time.Minute)
	o.CloseTimeout = cmpOr(max(o.CloseTimeout, 0), time.Minute)
	o.PushTimeout = cmpOr(max(o.PushTimeout, 0), 10*time.Minute)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Revision = cmpOr(o.Revision, "main")
	repo := client.Repo(hfhub.Dataset, id).At(o.Revision)
	h := &Hub[In]{
		repo:      repo,
		dir:       dir,
		fs:        dir.fs,
		opts:      o,
		log:       o.Logger.With("repo", id.String()),
		state:     filepath.Join(dir.Root(), ".cache", "huggingface", "advspace-hub", id.Namespace+"--"+id.Name+"@"+unsafeStateChars.ReplaceAllString(repo.Revision(), "_")+".json"),
		wake:      make(chan struct{}, 1),
		flushReq:  make(chan flushRequest),
		done:      make(chan struct{}),
		shards:    make(map[string]*hubShard),
		recs:      make(map[string]*hubRecords),
		unwatchRL: func() {},
	}
	st, err := h.loadState()
	if err != nil {
		return nil, err
	}
	if o.Records != nil {
		want, err1 := filepath.Abs(filepath.Join(dir.Root(), ValidationsDir))
		got, err2 := filepath.Abs(filepath.Dir(o.Records.Path()))
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("flag: NewHub: %w", err)
		}
		if want != got {
			return nil, fmt.Errorf("flag: NewHub: HubOptions.Records writes to %s, not to the dataset folder %s; open the record log on the Dir's root", o.Records.Path(), dir.Root())
		}
	}
	h.sched.st = st
	// Watch this process's record log first (so that no append is missed),
	// then take the record files already on disk.
	var live string
	if o.Records != nil {
		size, stop := o.Records.watch(h.recordAppended)
		live = filepath.Base(o.Records.Path())
		h.unwatchRL = stop
		h.mu.Lock()
		h.adoptRecordsLocked(live, size)
		h.mu.Unlock()
	}
	if err := h.scanRecords(live); err != nil {
		h.unwatchRL()
		return nil, err
	}
	// Register with the Dir and take its rows in one step, then match them
	// with the record of what was pushed.
	shards, unwatch := dir.watch(h.appended)
	h.unwatch = unwatch
	h.mu.Lock()
	for _, s := range shards {
		h.adoptShardLocked(s)
	}
	pending := h.pendingAllLocked()
	h.mu.Unlock()
	h.sched.needCheck = true
	h.sched.lastAttempt = time.Now()
	if pending > 0 {
		h.sched.lastAttempt = time.Time{} // a recovered backlog goes out right away
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go h.run()
	return h, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// appended is the Dir's notification of a durable row. It runs under the
// Dir's lock: it only records the row and wakes the scheduler.
func (h *Hub[In]) appended(shard string, row dirRow) {
	h.mu.Lock()
	sh := h.shards[shard]
	if sh == nil {
		sh = &hubShard{}
		h.shards[shard] = sh
		h.order = append(h.order, shard)
	}
	sh.rows = append(sh.rows, row)
	h.fresh++
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// recordAppended is a RecordLog's notification of a durable append. It runs
// under the log's lock: it only records the size and wakes the scheduler.
func (h *Hub[In]) recordAppended(file string, size int64) {
	h.mu.Lock()
	r := h.recs[file]
	if r == nil {
		r = &hubRecords{}
		h.recs[file] = r
		h.recOrd = append(h.recOrd, file)
	}
	r.size = max(r.size, size)
	h.fresh++
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// pendingLocked counts the rows stored locally and not on the Hub. h.mu is held.
func (h *Hub[In]) pendingLocked() int {
	n := 0
	for _, sh := range h.shards {
		n += len(sh.rows) - sh.pushed
	}
	return n
}

// pendingRecordsLocked counts the record files that grew since their last
// push. h.mu is held.
func (h *Hub[In]) pendingRecordsLocked() int {
	n := 0
	for _, r := range h.recs {
		if r.size > r.pushed {
			n++
		}
	}
	return n
}

// pendingAllLocked counts what waits: rows and record files. h.mu is held.
func (h *Hub[In]) pendingAllLocked() int { return h.pendingLocked() + h.pendingRecordsLocked() }

// Flag stores s in the local Dir; it returns once the sample is durable there
// and never fails because of the Hub.
func (h *Hub[In]) Flag(ctx context.Context, s dadc.Sample[In]) error {
	if err := h.gate.enter(); err != nil {
		return err
	}
	defer h.gate.leave()
	return h.dir.Flag(ctx, s)
}

// Samples lists the samples of the local Dir (dadc.SampleSource).
func (h *Hub[In]) Samples(ctx context.Context) ([]dadc.Sample[In], error) { return h.dir.Samples(ctx) }

// Pending returns the number of samples stored locally and not (known to be)
// on the Hub yet.
func (h *Hub[In]) Pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pendingLocked()
}

// PendingRecords returns the number of validation record files (one per
// writer) with complete lines not (known to be) on the Hub yet.
func (h *Hub[In]) PendingRecords() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pendingRecordsLocked()
}

// Commits returns the number of commits this Hub made.
func (h *Hub[In]) Commits() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.commits
}

// Flush pushes every pending sample and validation record now and returns
// when they are on the Hub, or the error that stopped it (pending samples stay safe on disk and the
// scheduler keeps trying). It returns ErrHubCommitLimit when the hourly
// budget is spent, and ErrClosed after Close.
func (h *Hub[In]) Flush(ctx context.Context) error {
	req := flushRequest{ctx: ctx, reply: make(chan error, 1)}
	select {
	case h.flushReq <- req:
	case <-h.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("flag: hub flush: %w", ctx.Err())
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("flag: hub flush: %w", ctx.Err())
	}
}

// Close refuses new flags, waits for those in progress, pushes what is
// pending (bounded by CloseTimeout) and stops the scheduler. It does not
// close the Dir or the record log. When samples stay unpushed, Close returns
// a *PendingError saying how many and where they wait (a new Hub over the
// same folder pushes them); validation records left unpushed are logged as a
// warning (the next Hub pushes them too); a failure that leaves nothing
// unpushed is only logged. Close is idempotent.
func (h *Hub[In]) Close() error {
	if !h.gate.shut() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.CloseTimeout)
	defer cancel()
	err := h.Flush(ctx)
	h.cancel()
	<-h.done
	h.unwatch()
	h.unwatchRL()
	if n := h.PendingRecords(); n > 0 {
		h.log.Warn("flag: hub: validation records not pushed yet; the next Hub opened on the folder pushes them",
			"files", n, "where", filepath.Join(h.dir.Root(), ValidationsDir), "err", err)
	}
	if n := h.Pending(); n > 0 {
		return &PendingError{Handler: "hub", Samples: n, Where: h.dir.Root(), Err: err,
			Next: "are pushed to " + h.repo.String() + " by the next Hub opened on that folder"}
	}
	if err != nil && h.PendingRecords() == 0 {
		h.log.Warn("flag: hub: the final push reported an error, but every sample and record is on the Hub", "err", err)
	}
	return nil
}

// String names the handler in errors and logs.
func (h *Hub[In]) String() string { return "flag.Hub(" + h.repo.String() + ")" }

var (
	_ dadc.Flagger[struct{}]      = (*Hub[struct{}])(nil)
	_ dadc.Flusher                = (*Hub[struct{}])(nil)
	_ dadc.SampleSource[struct{}] = (*Hub[struct{}])(nil)
)
