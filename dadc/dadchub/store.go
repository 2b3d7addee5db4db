package dadchub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/hfhub"
)

// Names of the files a Store writes in the model repo.
const (
	WeightsFile = "model.safetensors"
	CardFile    = "advspace.json"
	HistoryFile = "history.json"
	ReadmeFile  = "README.md"
)

// DefaultMaxCommitsPerHour is the default budget of Store.Save: 12 model
// commits in any hour, a tenth of the Hub's limit of about 128 commits per
// repo and hour.
const DefaultMaxCommitsPerHour = 12

// Card is what advspace.json holds: the model's dadc.ModelCard and the
// SHA-256 (hex) of its weights file, which a follower checks after download
// in addition to the Hub's own hash.
type Card struct {
	dadc.ModelCard
	WeightsSHA256 string `json:"weights_sha256"`
}

// Head is the published model at one commit of the model repo.
type Head struct {
	// Commit is the repo's commit id the files were read at.
	Commit string
	// Card is the model's card.
	Card Card
	// History is the round history published with the model (nil if none).
	History *dadc.History
}

// StoreOptions configure NewStore. nil or zero fields mean the defaults.
type StoreOptions struct {
	// Private creates the model repo private if it does not exist.
	Private bool
	// MaxCommitsPerHour caps Save's commits over a sliding hour (default
	// DefaultMaxCommitsPerHour). Commit times are remembered in memory only:
	// a restarted process starts with a fresh budget.
	MaxCommitsPerHour int
	// Logger receives publish reports. Default: discard.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Store is a dadc.ModelStore and dadc.HistoryStore over a Hub model repo
// (its branch: the Repo's revision, "" = main).
//
// Save publishes one commit holding the weights, advspace.json,
// history.json (the last history given to SaveHistory, closed by the new
// round) and README.md: a commit is atomic on the Hub, so a process that
// dies while publishing leaves either the previous model or the new one,
// never half of one. Latest reads advspace.json at the head. Open serves the
// head's model only: older versions stay in the repo's git history (roll
// back by reverting the commit on the Hub), and List returns the head's card.
//
// SaveHistory never commits (a history save every few seconds would use up
// the Hub's commit budget): it keeps the history in a local file (dir), and
// the next Save publishes it. LoadHistory reads the local file, else the
// head's history.json.
type Store struct {
	repo hfhub.Repo
	path string // local history file
	opts StoreOptions
	log  *slog.Logger

	mu      sync.Mutex // serialises Save; guards created and commits
	created bool
	commits []time.Time

	histMu sync.Mutex // guards hist (never held across a Hub request)
	hist   *dadc.History
}

// NewStore returns a Store publishing to the model repo repo (which must be
// of type hfhub.Model) and keeping the round history in the local folder
// dir (created if missing). It does not contact the Hub.
func NewStore(repo hfhub.Repo, dir string, opts *StoreOptions) (*Store, error) {
	if repo.Type() != hfhub.Model {
		return nil, fmt.Errorf("dadchub: NewStore: %s is not a model repo; get one with client.Repo(hfhub.Model, id)", repo)
	}
	if err := repo.ID().Validate(); err != nil {
		return nil, fmt.Errorf("dadchub: NewStore: %w", err)
	}
	if dir == "" {
		return nil, errors.New("dadchub: NewStore: dir is empty; name a local folder for the round history")
	}
	var o StoreOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxCommitsPerHour < 0 {
		return nil, fmt.Errorf("dadchub: NewStore: MaxCommitsPerHour is %d; it must be positive (0 means %d)", o.MaxCommitsPerHour, DefaultMaxCommitsPerHour)
	}
	if o.MaxCommitsPerHour == 0 {
		o.MaxCommitsPerHour = DefaultMaxCommitsPerHour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dadchub: NewStore: %w", err)
	}
	return &Store{repo: repo, path: filepath.Join(dir, HistoryFile), opts: o, log: o.Logger.With("model_repo", repo.ID().String())}, nil
}

// Repo returns the model repo the Store publishes to.
func (s *Store) Repo() hfhub.Repo { return s.repo }

// Commits returns how many commits Save made in the last hour.
func (s *Store) Commits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked()
	return len(s.commits)
}

func (s *Store) pruneLocked() {
	cut := s.opts.Now().Add(-time.Hour)
	i := 0
	for i < len(s.commits) && !s.commits[i].After(cut) {
		i++
	}
	s.commits = s.commits[i:]
}

// Save publishes a model in one commit (see Store). It fails with
// ErrCommitBudget when the hourly budget is used up, and with an error when
// the head already holds card.Version.
func (s *Store) Save(ctx context.Context, card dadc.ModelCard, write func(w io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return fmt.Errorf("dadchub: save %s: writing the weights: %w", card.Version, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	c := Card{ModelCard: card, WeightsSHA256: hex.EncodeToString(sum[:])}
	cardJSON, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("dadchub: save %s: %w", card.Version, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock() // one Save at a time
	s.pruneLocked()
	if len(s.commits) >= s.opts.MaxCommitsPerHour {
		return fmt.Errorf("%w (%d in the last hour)", ErrCommitBudget, len(s.commits))
	}
	if !s.created {
		if _, err := s.repo.Create(ctx, &hfhub.CreateRepoOptions{Private: s.opts.Private, ExistOK: true}); err != nil {
			return fmt.Errorf("dadchub: save %s: creating the model repo: %w", card.Version, err)
		}
		s.created = true
	}
	if head, err := s.head(ctx); err == nil && head.Card.Version == card.Version {
		return fmt.Errorf("dadchub: save: version %s is already the head of %s", card.Version, s.repo)
	}
	s.histMu.Lock()
	last := s.hist
	s.histMu.Unlock()
	hist := publishedHistory(last, card)
	histJSON, err := json.MarshalIndent(hist, "", "  ")
	if err != nil {
		return fmt.Errorf("dadchub: save %s: %w", card.Version, err)
	}
	ops := []hfhub.Operation{
		hfhub.AddBytes(WeightsFile, buf.Bytes()),
		hfhub.AddBytes(CardFile, cardJSON),
		hfhub.AddBytes(HistoryFile, histJSON),
		hfhub.AddBytes(ReadmeFile, readme(s.repo.ID(), c)),
	}
	info, err := s.repo.CreateCommit(ctx, fmt.Sprintf("Publish model %s (round %d)", card.Version, card.Round), ops, nil)
	if err != nil {
		return fmt.Errorf("dadchub: save %s: %w", card.Version, err)
	}
	s.commits = append(s.commits, s.opts.Now())
	s.log.Info("dadchub: published model", "model_version", card.Version, "round", card.Round, "commit", info.OID,
		"commits_last_hour", len(s.commits))
	return nil
}

// publishedHistory is h with the round the new model closes ended and its
// round opened, so that followers see the rounds as they are after the promotion.
func publishedHistory(h *dadc.History, card dadc.ModelCard) *dadc.History {
	out := &dadc.History{SavedAt: card.CreatedAt}
	if h != nil {
		out.ReferenceCleanAccuracy = h.ReferenceCleanAccuracy
		out.Rounds = append(out.Rounds, h.Rounds...)
		out.HeldOutSets = append(out.HeldOutSets, h.HeldOutSets...)
	}
	if len(out.Rounds) > card.Round {
		out.Rounds = out.Rounds[:card.Round]
	}
	if n := len(out.Rounds); n > 0 && out.Rounds[n-1].EndedAt == nil {
		r := out.Rounds[n-1]
		end := card.CreatedAt
		r.EndedAt = &end
		r.Promoted = true
		r.Candidate = card.Version
		r.CleanAccuracy = card.CleanAccuracy
		r.AdversarialAccuracy = card.AdversarialAccuracy
		out.Rounds[n-1] = r
	}
	for len(out.Rounds) < card.Round {
		out.Rounds = append(out.Rounds, dadc.RoundStats{Round: len(out.Rounds), StartedAt: card.CreatedAt})
	}
	out.Rounds = append(out.Rounds, dadc.RoundStats{Round: card.Round, ModelVersion: card.Version, StartedAt: card.CreatedAt})
	return out
}

func readme(id hfhub.RepoID, c Card) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "---\nlibrary_name: advspace\ntags:\n- advspace\n- dynamic-adversarial-data-collection\n---\n\n# %s\n\n", id.Name)
	fmt.Fprintf(&b, "Model `%s`, serving round %d, published by an advspace trainer.\n\n", c.Version, c.Round)
	if c.Parent != "" {
		fmt.Fprintf(&b, "- parent: `%s`\n", c.Parent)
	}
	fmt.Fprintf(&b, "- trained on %d adversarial samples, gated on %d held-out ones\n", c.TrainSamples, c.HeldOutSamples)
	if c.CleanAccuracy != nil {
		fmt.Fprintf(&b, "- clean accuracy: %.4f", *c.CleanAccuracy)
		if c.ReferenceCleanAccuracy != nil {
			fmt.Fprintf(&b, " (fixed reference %.4f)", *c.ReferenceCleanAccuracy)
		}
		b.WriteString("\n")
	}
	if c.AdversarialAccuracy != nil {
		fmt.Fprintf(&b, "- held-out adversarial accuracy: %.4f\n", *c.AdversarialAccuracy)
	}
	for _, r := range c.Reasons {
		fmt.Fprintf(&b, "- gate: %s\n", r)
	}
	fmt.Fprintf(&b, "- weights sha256: `%s`\n\nThe card is `%s`, the round history `%s`.\n", c.WeightsSHA256, CardFile, HistoryFile)
	return b.Bytes()
}

// head reads the card (and history) at the repo's head commit. An empty or
// missing repo gives an error wrapping dadc.ErrNoModel.
func (s *Store) head(ctx context.Context) (Head, error) {
	info, err := s.repo.Info(ctx)
	if err != nil {
		if errors.Is(err, hfhub.ErrRepoNotFound) || errors.Is(err, hfhub.ErrRevisionNotFound) {
			return Head{}, fmt.Errorf("%w: %s: %v", dadc.ErrNoModel, s.repo, err)
		}
		return Head{}, fmt.Errorf("dadchub: reading the head of %s: %w", s.repo, err)
	}
	return s.headAt(ctx, info.SHA)
}

// headAt reads the card and history at commit sha.
func (s *Store) headAt(ctx context.Context, sha string) (Head, error) {
	at := s.repo.At(sha)
	b, err := at.ReadFile(ctx, CardFile)
	if err != nil {
		if errors.Is(err, hfhub.ErrNotFound) {
			return Head{}, fmt.Errorf("%w: %s has no %s at %s", dadc.ErrNoModel, s.repo, CardFile, sha)
		}
		return Head{}, fmt.Errorf("dadchub: reading %s of %s: %w", CardFile, s.repo, err)
	}
	h := Head{Commit: sha}
	if err := json.Unmarshal(b, &h.Card); err != nil || h.Card.Version == "" {
		return Head{}, fmt.Errorf("dadchub: %s of %s at %s is not a model card (%v); publish with a dadchub.Store", CardFile, s.repo, sha, err)
	}
	hb, err := at.ReadFile(ctx, HistoryFile)
	switch {
	case err == nil:
		var hist dadc.History
		if err := json.Unmarshal(hb, &hist); err != nil {
			return Head{}, fmt.Errorf("dadchub: %s of %s at %s: %w", HistoryFile, s.repo, sha, err)
		}
		h.History = &hist
	case !errors.Is(err, hfhub.ErrNotFound):
		return Head{}, fmt.Errorf("dadchub: reading %s of %s: %w", HistoryFile, s.repo, err)
	}
	return h, nil
}

// Head returns the published model at the repo's head (the card and the
// history, not the weights), or an error wrapping dadc.ErrNoModel.
func (s *Store) Head(ctx context.Context) (Head, error) { return s.head(ctx) }

// HeadCommit returns the commit id of the repo's head: one request, the
// cheap check a follower makes. A missing repo gives "" and no error.
func (s *Store) HeadCommit(ctx context.Context) (string, error) {
	info, err := s.repo.Info(ctx)
	if errors.Is(err, hfhub.ErrRepoNotFound) || errors.Is(err, hfhub.ErrRevisionNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("dadchub: reading the head of %s: %w", s.repo, err)
	}
	return info.SHA, nil
}

// Weights downloads the weights of h (at h.Commit) and verifies them: the
// Hub's hash (LFS sha256 or git blob id, checked by the download) and the
// card's WeightsSHA256 (ErrIntegrity).
func (s *Store) Weights(ctx context.Context, h Head) ([]byte, error) {
	b, err := s.repo.At(h.Commit).ReadFile(ctx, WeightsFile)
	if err != nil {
		return nil, fmt.Errorf("dadchub: downloading the weights of %s: %w", h.Card.Version, err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); h.Card.WeightsSHA256 != "" && got != h.Card.WeightsSHA256 {
		return nil, fmt.Errorf("%w: model %s: got %s, the card says %s", ErrIntegrity, h.Card.Version, got, h.Card.WeightsSHA256)
	}
	return b, nil
}

// Latest returns the card at the head, or an error wrapping dadc.ErrNoModel.
func (s *Store) Latest(ctx context.Context) (dadc.ModelCard, error) {
	h, err := s.head(ctx)
	if err != nil {
		return dadc.ModelCard{}, err
	}
	return h.Card.ModelCard, nil
}

// Open returns the weights of version if it is the head's model, else an
// error wrapping dadc.ErrModelNotFound.
func (s *Store) Open(ctx context.Context, version string) (io.ReadCloser, dadc.ModelCard, error) {
	h, err := s.head(ctx)
	if errors.Is(err, dadc.ErrNoModel) {
		return nil, dadc.ModelCard{}, fmt.Errorf("%w: %s (the model repo is empty)", dadc.ErrModelNotFound, version)
	}
	if err != nil {
		return nil, dadc.ModelCard{}, err
	}
	if h.Card.Version != version {
		return nil, dadc.ModelCard{}, fmt.Errorf("%w: %s (the head of %s holds %s; older versions are in the repo's history)", dadc.ErrModelNotFound, version, s.repo, h.Card.Version)
	}
	b, err := s.Weights(ctx, h)
	if err != nil {
		return nil, dadc.ModelCard{}, err
	}
	return io.NopCloser(bytes.NewReader(b)), h.Card.ModelCard, nil
}

// List returns the head's card (none when the repo is empty).
func (s *Store) List(ctx context.Context) ([]dadc.ModelCard, error) {
	c, err := s.Latest(ctx)
	if errors.Is(err, dadc.ErrNoModel) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []dadc.ModelCard{c}, nil
}

// SaveHistory writes h to the local history file (atomically, synced); the
// next Save publishes it.
func (s *Store) SaveHistory(ctx context.Context, h *dadc.History) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("dadchub: saving the history: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := writeSynced(tmp, b); err != nil {
		return fmt.Errorf("dadchub: saving the history: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("dadchub: saving the history: %w", err)
	}
	s.histMu.Lock()
	s.hist = h
	s.histMu.Unlock()
	return nil
}

// LoadHistory returns the local history, else the one published at the
// head, else (nil, nil).
func (s *Store) LoadHistory(ctx context.Context) (*dadc.History, error) {
	b, err := os.ReadFile(s.path)
	if err == nil {
		var h dadc.History
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("dadchub: the history file %s is damaged (%v); move it away to start from the published one", s.path, err)
		}
		s.histMu.Lock()
		s.hist = &h
		s.histMu.Unlock()
		return &h, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dadchub: reading the history: %w", err)
	}
	head, err := s.head(ctx)
	if errors.Is(err, dadc.ErrNoModel) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.histMu.Lock()
	s.hist = head.History
	s.histMu.Unlock()
	return head.History, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
