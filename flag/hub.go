package flag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/hfhub"
)

// HubOptions configure a Hub. A nil *HubOptions is not allowed (Repo is
// required); zero fields mean the defaults.
type HubOptions struct {
	// Repo is the Hub dataset repo, "owner/name" (required).
	Repo string
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
	// MinBackoff and MaxBackoff bound the wait after a failed push (doubling).
	// Defaults 30 s and 10 minutes. Flush does not wait for the backoff.
	MinBackoff, MaxBackoff time.Duration
	// CloseTimeout bounds the final push in Close. Default 1 minute.
	CloseTimeout time.Duration
	// PushTimeout bounds one push (one commit with its uploads), so that a
	// Hub that stops answering cannot stall the scheduler. Default 10 minutes.
	PushTimeout time.Duration
	// Logger receives push reports and Hub errors. Default: discard.
	Logger *slog.Logger
	// Now is the clock for scheduling and the commit budget. Default time.Now.
	Now func() time.Time
	// Revision is the branch to push to. Default "main".
	Revision string
}

// Hub is a dadc.Flagger that stores every sample in a local Dir and pushes
// the Dir to a Hugging Face Hub dataset repo in batched commits.
//
// Acknowledgement is local durability: Flag returns once Dir.Flag has
// written and synced the sample. Hub errors never fail Flag; they delay the
// upload. A background scheduler (one goroutine; pushes never overlap)
// pushes every Interval or as soon as MaxBatch new samples wait, whichever
// comes first, and never more than MaxCommitsPerHour commits in any hour
// (commit times are remembered across restarts). After a failed push it
// waits MinBackoff, doubling up to MaxBackoff, or what the Hub asked for.
//
// One commit carries, for each shard with new rows: the new input files
// (uploaded through LFS by the client) and the shard's whole metadata.jsonl
// up to the last pushed row, plus README.md (the dataset card with the
// configs YAML) the first time, if the repo lacks one. Since a shard is
// append-only and owned by one writer, pushing a prefix of it is idempotent:
// a re-push sends the same paths with the same content, which the client
// drops as no-ops (no re-upload, no duplicate row, possibly no commit).
//
// Progress is a state file, <root>/.cache/huggingface/advspace-hub/<owner>--<name>@<rev>.json
// (a folder upload tools and the datasets loader skip), holding for each
// shard the rows and bytes pushed, the last commit id and recent commit
// times. It is written atomically after each successful commit. On start,
// every shard of the Dir (this process's and earlier ones') is compared with
// it and whatever was not pushed goes out first. A crash between a commit
// and the state write only causes the harmless re-push described above.
//
// parentCommit is used only where it prevents a real race: a commit that
// adds README.md because the repo had none is made with the head seen when
// checking, so a card another writer added meanwhile is not overwritten (the
// 412 leads to a re-check). Other commits touch only this writer's shard
// paths, so a parent check would only turn other writers' commits into
// spurious conflicts.
//
// Flush pushes everything pending now (ignoring Interval and backoff but not
// the hourly budget). Close refuses new flags, makes a final push bounded by
// CloseTimeout and stops the scheduler; it does not close the Dir, which
// belongs to the caller. All methods are safe for concurrent use.
type Hub[In any] struct {
	client *hfhub.Client
	dir    *Dir[In]
	repo   hfhub.RepoID
	opts   HubOptions
	log    *slog.Logger
	state  string // state file path

	pending  atomic.Int64 // samples stored locally, not yet pushed
	fresh    atomic.Int64 // samples flagged since the last push attempt
	commits  atomic.Int64 // commits made by this Hub
	wake     chan struct{}
	flushReq chan flushRequest
	stop     chan struct{}
	done     chan struct{}

	mu     sync.Mutex // guards closed and in-flight Flag calls
	closed bool
	active sync.WaitGroup

	// Owned by the scheduler goroutine (and NewHub before it starts).
	st          hubState
	repoReady   bool
	lastAttempt time.Time
	nextTry     time.Time
	failures    int
}

type flushRequest struct {
	ctx   context.Context
	reply chan error
}

// hubState is the state file.
type hubState struct {
	Repo     string                   `json:"repo"`
	Revision string                   `json:"revision"`
	Shards   map[string]hubShardState `json:"shards"`
	Last     string                   `json:"last_commit,omitempty"`
	CardDone bool                     `json:"card_pushed,omitempty"`
	Times    []time.Time              `json:"commit_times,omitempty"`
}

type hubShardState struct {
	Rows  int   `json:"rows"`
	Bytes int64 `json:"bytes"`
}

var unsafeStateChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// NewHub returns a Hub pushing dir to the dataset repo opts.Repo through
// client, and starts its scheduler. It checks the options and the token but
// does not contact the Hub: the repo is created (exist-ok) on the first push,
// so a Hub that is down at start delays uploads instead of failing.
func NewHub[In any](client *hfhub.Client, dir *Dir[In], opts *HubOptions) (*Hub[In], error) {
	if client == nil {
		return nil, errors.New("flag: NewHub: client is nil; make one with hfhub.NewClient")
	}
	if dir == nil {
		return nil, errors.New("flag: NewHub: dir is nil; the Hub stores samples in a local flag.Dir first")
	}
	if opts == nil || opts.Repo == "" {
		return nil, errors.New("flag: NewHub: HubOptions.Repo is empty; give the dataset repo as \"owner/name\"")
	}
	id, err := hfhub.ParseRepoID(opts.Repo)
	if err != nil {
		return nil, fmt.Errorf("flag: NewHub: %w", err)
	}
	if !client.HasToken() {
		return nil, fmt.Errorf("flag: NewHub: %w", hfhub.ErrNoToken)
	}
	o := *opts
	if o.Interval < 0 || o.MaxBatch < 0 || o.MaxCommitsPerHour < 0 || o.MaxFilesPerCommit < 0 {
		return nil, errors.New("flag: NewHub: Interval, MaxBatch, MaxCommitsPerHour and MaxFilesPerCommit must not be negative")
	}
	if o.Interval == 0 {
		o.Interval = 5 * time.Minute
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 100
	}
	if o.MaxCommitsPerHour == 0 {
		o.MaxCommitsPerHour = 100
	}
	if o.MaxFilesPerCommit == 0 {
		o.MaxFilesPerCommit = 1000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 30 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = time.Minute
	}
	if o.PushTimeout <= 0 {
		o.PushTimeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Revision == "" {
		o.Revision = "main"
	}
	h := &Hub[In]{
		client:   client,
		dir:      dir,
		repo:     id,
		opts:     o,
		log:      o.Logger.With("repo", id.String()),
		state:    filepath.Join(dir.Root(), ".cache", "huggingface", "advspace-hub", id.Namespace+"--"+id.Name+"@"+unsafeStateChars.ReplaceAllString(o.Revision, "_")+".json"),
		wake:     make(chan struct{}, 1),
		flushReq: make(chan flushRequest),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if err := h.loadState(); err != nil {
		return nil, err
	}
	snap, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	h.pending.Store(int64(snap.pending))
	h.lastAttempt = o.Now()
	if snap.pending > 0 {
		h.lastAttempt = time.Time{} // recovered backlog: push right away
	}
	go h.run()
	return h, nil
}

func (h *Hub[In]) loadState() error {
	h.st = hubState{Repo: h.repo.String(), Revision: h.opts.Revision, Shards: map[string]hubShardState{}}
	b, err := os.ReadFile(h.state)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("flag: hub: reading state %s: %w", h.state, err)
	}
	var st hubState
	if err := json.Unmarshal(b, &st); err != nil {
		// The file is written atomically, so this is outside damage. Starting
		// over is safe: re-pushing is idempotent.
		h.log.Warn("flag: hub: state file unreadable, re-checking everything with the Hub", "path", h.state, "err", err)
		return nil
	}
	if st.Shards == nil {
		st.Shards = map[string]hubShardState{}
	}
	h.st = st
	return nil
}

func (h *Hub[In]) saveState() error {
	b, err := json.MarshalIndent(h.st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.state), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(osFS{}, h.state, append(b, '\n'))
}

// Flag stores s in the local Dir; it returns once the sample is durable there
// and never fails because of the Hub.
func (h *Hub[In]) Flag(ctx context.Context, s dadc.Sample[In]) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	h.active.Add(1)
	h.mu.Unlock()
	defer h.active.Done()
	had := h.dir.Has(s.ID)
	if err := h.dir.Flag(ctx, s); err != nil {
		return err
	}
	if !had {
		h.pending.Add(1)
		h.fresh.Add(1)
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return nil
}

// Samples lists the samples of the local Dir (dadc.SampleSource).
func (h *Hub[In]) Samples(ctx context.Context) ([]dadc.Sample[In], error) { return h.dir.Samples(ctx) }

// Pending returns the number of samples stored locally but not pushed yet.
// It is exact after each push attempt; in between, two concurrent flags of
// one new ID may count twice.
func (h *Hub[In]) Pending() int { return int(h.pending.Load()) }

// Commits returns the number of commits this Hub made.
func (h *Hub[In]) Commits() int { return int(h.commits.Load()) }

// Flush pushes every pending sample now and returns when they are on the Hub,
// or the error that stopped it (pending samples stay safe on disk and the
// scheduler keeps trying). It returns ErrHubCommitLimit when the hourly
// budget is spent.
func (h *Hub[In]) Flush(ctx context.Context) error {
	req := flushRequest{ctx: ctx, reply: make(chan error, 1)}
	select {
	case h.flushReq <- req:
	case <-h.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close refuses new flags, waits for those in progress, pushes what is
// pending (bounded by CloseTimeout) and stops the scheduler. If the final
// push fails, the error says so; the samples stay on disk and a new Hub over
// the same folder pushes them. Close does not close the Dir.
func (h *Hub[In]) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	h.active.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.CloseTimeout)
	defer cancel()
	err := h.Flush(ctx)
	close(h.stop)
	<-h.done
	if err != nil {
		return fmt.Errorf("flag: hub: final push: %d samples stay on local disk for the next start: %w", h.Pending(), err)
	}
	return nil
}

// run is the scheduler goroutine.
func (h *Hub[In]) run() {
	defer close(h.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-h.stop:
			return
		case req := <-h.flushReq:
			req.reply <- h.flush(req.ctx)
		case <-h.wake:
			h.maybePush()
		case <-timer.C:
			h.maybePush()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(h.nextWake())
	}
}

// nextWake is how long the scheduler sleeps before re-checking. Flags and
// Flush wake it early, so with an injected clock the decisions still follow
// that clock.
func (h *Hub[In]) nextWake() time.Duration {
	now := h.opts.Now()
	if h.pending.Load() == 0 {
		return h.opts.Interval
	}
	due := h.lastAttempt.Add(h.opts.Interval)
	if h.nextTry.After(due) {
		due = h.nextTry
	}
	if open := h.budgetOpens(now); open.After(due) {
		due = open
	}
	return min(max(due.Sub(now), 10*time.Millisecond), h.opts.Interval)
}

// budgetOpens returns when the next commit fits in the hourly budget (now if it does).
func (h *Hub[In]) budgetOpens(now time.Time) time.Time {
	cutoff := now.Add(-time.Hour)
	h.st.Times = slices.DeleteFunc(h.st.Times, func(t time.Time) bool { return !t.After(cutoff) })
	if len(h.st.Times) < h.opts.MaxCommitsPerHour {
		return now
	}
	return h.st.Times[len(h.st.Times)-h.opts.MaxCommitsPerHour].Add(time.Hour)
}

func (h *Hub[In]) maybePush() {
	if h.pending.Load() == 0 {
		return
	}
	now := h.opts.Now()
	due := h.fresh.Load() >= int64(h.opts.MaxBatch) || !now.Before(h.lastAttempt.Add(h.opts.Interval))
	if !due || now.Before(h.nextTry) || now.Before(h.budgetOpens(now)) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.PushTimeout)
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer cancel()
	if _, err := h.pushOnce(ctx); err != nil {
		h.log.Warn("flag: hub: push failed; samples are safe locally and will be retried", "pending", h.Pending(), "retry_at", h.nextTry, "err", err)
	}
}

// flush pushes until nothing is pending.
func (h *Hub[In]) flush(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := h.opts.Now()
		if open := h.budgetOpens(now); now.Before(open) {
			snap, err := h.snapshot()
			if err != nil {
				return err
			}
			if snap.pending == 0 {
				return nil
			}
			return fmt.Errorf("%w (%d commits in the last hour; next at %s)", ErrHubCommitLimit, len(h.st.Times), open.UTC().Format(time.RFC3339))
		}
		pctx, cancel := context.WithTimeout(ctx, h.opts.PushTimeout)
		more, err := h.pushOnce(pctx)
		cancel()
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// shardSnapshot is what a shard holds locally beyond the pushed state.
type shardSnapshot struct {
	name    string
	content []byte // metadata.jsonl up to the last complete line
	ends    []int  // ends[i] = byte offset just after row i
	files   []string
	pushed  int // rows already pushed (from the state)
}

type snapshot struct {
	shards  []shardSnapshot
	pending int
}

// snapshot reads every shard's metadata.jsonl (complete lines only: an
// append in progress is picked up next time) and compares it with the state.
func (h *Hub[In]) snapshot() (snapshot, error) {
	var snap snapshot
	names := h.dir.Shards()
	if entries, err := os.ReadDir(filepath.Join(h.dir.Root(), DataDir)); err == nil {
		for _, e := range entries {
			if e.IsDir() && !slices.Contains(names, e.Name()) && shardPattern.MatchString(e.Name()) {
				names = append(names, e.Name())
			}
		}
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(h.dir.Root(), DataDir, name, MetadataFile))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return snap, fmt.Errorf("flag: hub: reading shard %s: %w", name, err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		} else {
			b = nil
		}
		sh := shardSnapshot{name: name, content: b}
		off := 0
		for off < len(b) {
			end := off + bytes.IndexByte(b[off:], '\n') + 1
			row, err := parseRow(b[off:end])
			if err != nil {
				return snap, fmt.Errorf("flag: hub: shard %s: %w", name, err)
			}
			sh.files = append(sh.files, row.FileName)
			sh.ends = append(sh.ends, end)
			off = end
		}
		ps := h.st.Shards[name]
		sh.pushed = ps.Rows
		if ps.Rows > len(sh.ends) || (ps.Rows > 0 && int64(sh.ends[ps.Rows-1]) != ps.Bytes) {
			// The local shard does not match what we pushed (replaced or
			// restored from elsewhere): push it all again; unchanged files are no-ops.
			h.log.Warn("flag: hub: local shard differs from the pushed state; re-pushing it", "shard", name)
			sh.pushed = 0
		}
		snap.pending += len(sh.ends) - sh.pushed
		snap.shards = append(snap.shards, sh)
	}
	return snap, nil
}

// pushOnce makes at most one commit with up to MaxFilesPerCommit new inputs.
// It reports whether more remain to push.
func (h *Hub[In]) pushOnce(ctx context.Context) (more bool, err error) {
	now := h.opts.Now()
	h.lastAttempt = now
	h.fresh.Store(0)
	defer func() {
		if err != nil {
			h.failures++
			wait := h.opts.MinBackoff << min(h.failures-1, 20)
			wait = min(wait, h.opts.MaxBackoff)
			if ra := hfhub.RetryAfterOf(err); ra > wait {
				wait = ra
			}
			h.nextTry = now.Add(wait)
		} else {
			h.failures = 0
			h.nextTry = time.Time{}
		}
	}()
	snap, err := h.snapshot()
	if err != nil {
		return false, err
	}
	h.pending.Store(int64(snap.pending))
	if snap.pending == 0 {
		return false, nil // nothing to push; the card goes with the first samples
	}
	if !h.repoReady {
		if _, err := h.client.Repo(hfhub.Dataset, h.repo).Create(ctx, &hfhub.CreateRepoOptions{Private: h.opts.Private, ExistOK: true}); err != nil {
			return false, fmt.Errorf("flag: hub: creating dataset repo: %w", err)
		}
		h.repoReady = true
	}
	var ops []hfhub.Operation
	var commitOpts hfhub.CommitOptions
	if !h.st.CardDone {
		head, hasCard, err := h.remoteCard(ctx)
		if err != nil {
			return false, err
		}
		if !hasCard {
			card, err := os.ReadFile(filepath.Join(h.dir.Root(), "README.md"))
			if errors.Is(err, os.ErrNotExist) {
				card = []byte(DefaultCard)
			} else if err != nil {
				return false, fmt.Errorf("flag: hub: reading the dataset card: %w", err)
			}
			ops = append(ops, hfhub.AddBytes("README.md", card))
			commitOpts.ParentCommit = head
		}
	}
	budget := h.opts.MaxFilesPerCommit
	newState := map[string]hubShardState{}
	taken, shardsTouched := 0, 0
	for _, sh := range snap.shards {
		n := min(len(sh.ends)-sh.pushed, budget)
		if n <= 0 {
			continue
		}
		for _, f := range sh.files[sh.pushed : sh.pushed+n] {
			ops = append(ops, hfhub.AddFile(path.Join(DataDir, sh.name, f), hfhub.LocalPath(filepath.Join(h.dir.Root(), DataDir, sh.name, filepath.FromSlash(f)))))
		}
		rows := sh.pushed + n
		ops = append(ops, hfhub.AddBytes(path.Join(DataDir, sh.name, MetadataFile), sh.content[:sh.ends[rows-1]]))
		newState[sh.name] = hubShardState{Rows: rows, Bytes: int64(sh.ends[rows-1])}
		budget -= n
		taken += n
		shardsTouched++
		if budget == 0 {
			break
		}
	}
	commitOpts.Description = fmt.Sprintf("Pushed by advspace flag.Hub from %d shard(s).", shardsTouched)
	info, err := h.client.Repo(hfhub.Dataset, h.repo).At(h.opts.Revision).CreateCommit(ctx, fmt.Sprintf("Add %d flagged samples", taken), ops, &commitOpts)
	if err != nil {
		if errors.Is(err, hfhub.ErrPreconditionFailed) {
			h.log.Info("flag: hub: the repo changed while adding the dataset card; re-checking")
		}
		return false, fmt.Errorf("flag: hub: commit: %w", err)
	}
	for name, s := range newState {
		h.st.Shards[name] = s
	}
	h.st.CardDone = true
	h.st.Last = info.OID
	if !info.Empty {
		h.st.Times = append(h.st.Times, h.opts.Now())
		h.commits.Add(1)
	}
	if err := h.saveState(); err != nil {
		// The commit is on the Hub; the next push re-sends it as no-ops.
		return false, fmt.Errorf("flag: hub: saving state %s: %w", h.state, err)
	}
	left := snap.pending - taken
	h.pending.Store(int64(left))
	h.log.Info("flag: hub: pushed", "samples", taken, "commit", info.OID, "uploaded", info.Uploaded, "skipped", info.Skipped, "empty", info.Empty, "pending", left)
	return left > 0, nil
}

// remoteCard reports the branch head and whether the repo has a README.md.
func (h *Hub[In]) remoteCard(ctx context.Context) (head string, has bool, err error) {
	info, err := h.client.Repo(hfhub.Dataset, h.repo).At(h.opts.Revision).Info(ctx)
	if err != nil {
		return "", false, fmt.Errorf("flag: hub: checking the dataset card: %w", err)
	}
	entries, err := h.client.Repo(hfhub.Dataset, h.repo).At(h.opts.Revision).ListTree(ctx, "", nil)
	if err != nil {
		return "", false, fmt.Errorf("flag: hub: checking the dataset card: %w", err)
	}
	for _, e := range entries {
		if e.Path == "README.md" && !e.IsDir() {
			return info.SHA, true, nil
		}
	}
	return info.SHA, false, nil
}

var (
	_ dadc.Flagger[struct{}]      = (*Hub[struct{}])(nil)
	_ dadc.Flusher                = (*Hub[struct{}])(nil)
	_ dadc.SampleSource[struct{}] = (*Hub[struct{}])(nil)
)
