package dadchub_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchub"
	"github.com/advspace/advspace/dadc/dadctest"
	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

const modelID = "hubtest/model"

func newHub(t *testing.T) (*hubtest.Server, *hfhub.Client) {
	t.Helper()
	hub := hubtest.New(nil)
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: "http://hub.test", Token: hubtest.DefaultToken,
		HTTPClient: &http.Client{Transport: hub.Transport()}})
	require.NoError(t, err)
	return hub, c
}

func modelRepo(t *testing.T, c *hfhub.Client) hfhub.Repo {
	id, err := hfhub.ParseRepoID(modelID)
	require.NoError(t, err)
	return c.Repo(hfhub.Model, id)
}

func weights(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

// publishCommits are the model repo's commits other than its creation.
func publishCommits(hub *hubtest.Server) []hubtest.Commit {
	var out []hubtest.Commit
	for _, c := range hub.Commits("model", modelID) {
		if len(c.Changed) == 1 && c.Changed[0] == ".gitattributes" {
			continue
		}
		out = append(out, c)
	}
	return out
}

func TestStore_SaveIsOneCommitAndLatestReadsIt(t *testing.T) {
	hub, c := newHub(t)
	ctx := t.Context()
	s, err := dadchub.NewStore(modelRepo(t, c), t.TempDir(), nil)
	require.NoError(t, err)

	_, err = s.Latest(ctx)
	require.ErrorIs(t, err, dadc.ErrNoModel)
	h, err := s.LoadHistory(ctx)
	require.NoError(t, err)
	require.Nil(t, h)

	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, s.SaveHistory(ctx, &dadc.History{Rounds: []dadc.RoundStats{{Round: 0, ModelVersion: "v0", Flags: 7, StartedAt: start}}}))
	require.Empty(t, publishCommits(hub), "SaveHistory never commits")

	card := dadc.ModelCard{Version: "v1", Round: 1, Parent: "v0", TrainSamples: 5, CreatedAt: start.Add(time.Hour)}
	require.NoError(t, s.Save(ctx, card, weights("W1")))
	commits := publishCommits(hub)
	require.Len(t, commits, 1)
	assert.ElementsMatch(t, []string{dadchub.WeightsFile, dadchub.CardFile, dadchub.HistoryFile, dadchub.ReadmeFile}, commits[0].Changed,
		"weights, card, history and README in one commit")

	got, err := s.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, "v1", got.Version)
	assert.Equal(t, 1, got.Round)
	assert.Equal(t, "v0", got.Parent)

	r, gotCard, err := s.Open(ctx, "v1")
	require.NoError(t, err)
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	assert.Equal(t, "W1", string(b))
	assert.Equal(t, "v1", gotCard.Version)
	_, _, err = s.Open(ctx, "v0")
	require.ErrorIs(t, err, dadc.ErrModelNotFound)
	list, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)

	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.NotNil(t, head.History)
	require.Len(t, head.History.Rounds, 2, "the published history has the round the model opens")
	assert.True(t, head.History.Rounds[0].Promoted)
	assert.Equal(t, 7, head.History.Rounds[0].Flags)
	assert.NotNil(t, head.History.Rounds[0].EndedAt)
	assert.Equal(t, "v1", head.History.Rounds[1].ModelVersion)
	assert.Nil(t, head.History.Rounds[1].EndedAt)

	require.Error(t, s.Save(ctx, card, weights("W1")), "the head's version again")
	assert.Len(t, publishCommits(hub), 1)

	// A fresh process without the local history reads the published one.
	s2, err := dadchub.NewStore(modelRepo(t, c), t.TempDir(), nil)
	require.NoError(t, err)
	h, err = s2.LoadHistory(ctx)
	require.NoError(t, err)
	require.NotNil(t, h)
	assert.Len(t, h.Rounds, 2)
}

func TestStore_CommitBudget(t *testing.T) {
	hub, c := newHub(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := dadchub.NewStore(modelRepo(t, c), t.TempDir(), &dadchub.StoreOptions{MaxCommitsPerHour: 2, Now: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, s.Save(ctx, dadc.ModelCard{Version: "a"}, weights("A")))
	require.NoError(t, s.Save(ctx, dadc.ModelCard{Version: "b", Round: 1}, weights("B")))
	err = s.Save(ctx, dadc.ModelCard{Version: "c", Round: 2}, weights("C"))
	require.ErrorIs(t, err, dadchub.ErrCommitBudget)
	assert.Len(t, publishCommits(hub), 2)
	assert.Equal(t, 2, s.Commits())
	now = now.Add(time.Hour + time.Second)
	require.NoError(t, s.Save(ctx, dadc.ModelCard{Version: "c", Round: 2}, weights("C")))
	assert.Len(t, publishCommits(hub), 3)
}

func TestStore_FailedPublishLeavesThePreviousModel(t *testing.T) {
	hub, c := newHub(t)
	ctx := t.Context()
	s, err := dadchub.NewStore(modelRepo(t, c), t.TempDir(), nil)
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, dadc.ModelCard{Version: "a"}, weights("A")))
	hub.InjectFault(hubtest.Fault{Op: hubtest.OpCommit, Status: http.StatusBadRequest, Message: "refused"})
	require.Error(t, s.Save(ctx, dadc.ModelCard{Version: "b", Round: 1}, weights("B")))
	hub.ClearFaults()
	got, err := s.Latest(ctx)
	require.NoError(t, err)
	assert.Equal(t, "a", got.Version)
	w, ok := hub.File("model", modelID, "main", dadchub.WeightsFile)
	require.True(t, ok)
	assert.Equal(t, "A", string(w), "weights and card are never from different models")
}

func TestNewStore_Errors(t *testing.T) {
	_, c := newHub(t)
	id, _ := hfhub.ParseRepoID(modelID)
	for _, tc := range []struct {
		name string
		repo hfhub.Repo
		dir  string
		opts *dadchub.StoreOptions
		want string
	}{
		{"dataset repo", c.Repo(hfhub.Dataset, id), t.TempDir(), nil, "not a model repo"},
		{"no dir", c.Repo(hfhub.Model, id), "", nil, "dir is empty"},
		{"negative budget", c.Repo(hfhub.Model, id), t.TempDir(), &dadchub.StoreOptions{MaxCommitsPerHour: -1}, "MaxCommitsPerHour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dadchub.NewStore(tc.repo, tc.dir, tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// adopter records what a Follower adopts.
type adopter struct {
	cards []dadc.ModelCard
	hists []*dadc.History
	err   error
}

func (a *adopter) Adopt(_ context.Context, m dadc.Model[int], card dadc.ModelCard, hist *dadc.History) error {
	if a.err != nil {
		return a.err
	}
	a.cards = append(a.cards, card)
	a.hists = append(a.hists, hist)
	return nil
}

var intLoader = dadc.LoaderFunc[int](func(_ context.Context, card dadc.ModelCard, r io.Reader) (dadc.Model[int], error) {
	if _, err := io.ReadAll(r); err != nil {
		return nil, err
	}
	return dadctest.NewModel(card.Version, 10, func(int) int { return 0 }), nil
})

func TestFollower_AdoptsEachPublishedModelOnce(t *testing.T) {
	hub, c := newHub(t)
	ctx := t.Context()
	s, err := dadchub.NewStore(modelRepo(t, c), t.TempDir(), nil)
	require.NoError(t, err)
	target := &adopter{}
	f, err := dadchub.NewFollower[int](s, intLoader, target, "v0", &dadchub.FollowerOptions{Interval: time.Second})
	require.NoError(t, err)

	changed, err := f.Check(ctx)
	require.NoError(t, err, "an empty model repo is no error")
	assert.False(t, changed)

	require.NoError(t, s.Save(ctx, dadc.ModelCard{Version: "v0"}, weights("W0")))
	changed, err = f.Check(ctx)
	require.NoError(t, err)
	assert.False(t, changed, "the version that serves is not downloaded again")

	require.NoError(t, s.SaveHistory(ctx, &dadc.History{Rounds: []dadc.RoundStats{{Round: 0, ModelVersion: "v0"}}}))
	require.NoError(t, s.Save(ctx, dadc.ModelCard{Version: "v1", Round: 1, Parent: "v0"}, weights("W1")))
	hub.ResetRequests()
	changed, err = f.Check(ctx)
	require.NoError(t, err)
	assert.True(t, changed)
	require.Len(t, target.cards, 1)
	assert.Equal(t, "v1", target.cards[0].Version)
	require.NotNil(t, target.hists[0])
	assert.Len(t, target.hists[0].Rounds, 2)
	assert.NotEmpty(t, hub.RequestsFor(hubtest.OpResolve), "downloaded")

	hub.ResetRequests()
	changed, err = f.Check(ctx)
	require.NoError(t, err)
	assert.False(t, changed)
	assert.Len(t, hub.Requests(), 1, "an unchanged head costs one request")
	assert.Len(t, target.cards, 1)
}

func TestFollower_RefusesWeightsThatDoNotMatchTheCard(t *testing.T) {
	hub, c := newHub(t)
	ctx := t.Context()
	s, err := dadchub.NewStore(modelRepo(t, c), t.TempDir(), nil)
	require.NoError(t, err)
	card, err := json.Marshal(dadchub.Card{ModelCard: dadc.ModelCard{Version: "evil", Round: 1}, WeightsSHA256: strings.Repeat("0", 64)})
	require.NoError(t, err)
	require.NoError(t, hub.CreateRepo("model", modelID, false))
	_, err = hub.Seed("model", modelID, "main", "tampered", map[string][]byte{dadchub.CardFile: card, dadchub.WeightsFile: []byte("X")})
	require.NoError(t, err)
	target := &adopter{}
	f, err := dadchub.NewFollower[int](s, intLoader, target, "v0", nil)
	require.NoError(t, err)
	_, err = f.Check(ctx)
	require.ErrorIs(t, err, dadchub.ErrIntegrity)
	assert.Empty(t, target.cards, "nothing adopted")
}

func TestFollower_AdoptErrorIsRetried(t *testing.T) {
	_, c := newHub(t)
	ctx := t.Context()
	s, err := dadchub.NewStore(modelRepo(t, c), t.TempDir(), nil)
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, dadc.ModelCard{Version: "v1", Round: 1}, weights("W1")))
	target := &adopter{err: errors.New("busy")}
	f, err := dadchub.NewFollower[int](s, intLoader, target, "v0", nil)
	require.NoError(t, err)
	_, err = f.Check(ctx)
	require.ErrorContains(t, err, "busy")
	target.err = nil
	changed, err := f.Check(ctx)
	require.NoError(t, err)
	assert.True(t, changed, "a failed adoption is tried again at the next check")
}

func dataset(t *testing.T, c *hfhub.Client) hfhub.Repo {
	id, err := hfhub.ParseRepoID("hubtest/flags")
	require.NoError(t, err)
	return c.Repo(hfhub.Dataset, id)
}

func row(id string, label int) string {
	b, _ := json.Marshal(map[string]any{"file_name": id + ".txt", "id": id, "label": label, "round": 0, "session": "s"})
	return string(b) + "\n"
}

func TestReader_ReadsOnlyWhatIsNew(t *testing.T) {
	hub, c := newHub(t)
	ctx := t.Context()
	state := filepath.Join(t.TempDir(), "state", "reader.json")
	decode := func(b []byte) (string, error) { return string(b), nil }
	r, err := dadchub.NewReader(dataset(t, c), decode, state)
	require.NoError(t, err)

	b, err := r.Read(ctx)
	require.NoError(t, err, "a missing dataset is empty")
	assert.Empty(t, b.Samples)

	require.NoError(t, hub.CreateRepo("dataset", "hubtest/flags", false))
	rec := `{"kind":"verdict","sample_id":"a1","session":"x","verdict":"correct","created_at":"2026-01-01T00:00:00Z"}` + "\n"
	_, err = hub.Seed("dataset", "hubtest/flags", "main", "shard a", map[string][]byte{
		"data/a/metadata.jsonl": []byte(row("a1", 3) + row("a2", 4)),
		"data/a/a1.txt":         []byte("in-a1"), "data/a/a2.txt": []byte("in-a2"),
		"validations/a.jsonl": []byte(rec),
	})
	require.NoError(t, err)
	b, err = r.Read(ctx)
	require.NoError(t, err)
	require.Len(t, b.Samples, 2)
	assert.Equal(t, "a1", b.Samples[0].ID)
	assert.Equal(t, "in-a1", b.Samples[0].Input)
	assert.Equal(t, 4, b.Samples[1].Label)
	require.Len(t, b.Records, 1)
	assert.Equal(t, "a1", b.Records[0].SampleID)

	again, err := r.Read(ctx)
	require.NoError(t, err)
	assert.Len(t, again.Samples, 2, "not committed: read again")
	require.NoError(t, r.Commit(b))
	again, err = r.Read(ctx)
	require.NoError(t, err)
	assert.Empty(t, again.Samples)
	assert.Empty(t, again.Records)

	// Shard a grows, shard b appears: only the new rows are read.
	_, err = hub.Seed("dataset", "hubtest/flags", "main", "more", map[string][]byte{
		"data/a/metadata.jsonl": []byte(row("a1", 3) + row("a2", 4) + row("a3", 5)),
		"data/a/a3.txt":         []byte("in-a3"),
		"data/b/metadata.jsonl": []byte(row("b1", 1)),
		"data/b/b1.txt":         []byte("in-b1"),
	})
	require.NoError(t, err)
	hub.ResetRequests()
	b, err = r.Read(ctx)
	require.NoError(t, err)
	var ids []string
	for _, s := range b.Samples {
		ids = append(ids, s.ID)
	}
	assert.Equal(t, []string{"a3", "b1"}, ids)
	assert.Empty(t, b.Records)
	assert.Equal(t, 4, b.Files, "two metadata files and two inputs downloaded, nothing else")
	require.NoError(t, r.Commit(b))

	// A restarted reader keeps the samples read, reads the records again.
	r2, err := dadchub.NewReader(dataset(t, c), decode, state)
	require.NoError(t, err)
	b, err = r2.Read(ctx)
	require.NoError(t, err)
	assert.Empty(t, b.Samples)
	assert.Len(t, b.Records, 1)
}

func TestReader_DamagedInput(t *testing.T) {
	hub, c := newHub(t)
	require.NoError(t, hub.CreateRepo("dataset", "hubtest/flags", false))
	_, err := hub.Seed("dataset", "hubtest/flags", "main", "bad", map[string][]byte{
		"data/a/metadata.jsonl": []byte("{not json}\n"),
	})
	require.NoError(t, err)
	r, err := dadchub.NewReader(dataset(t, c), func(b []byte) (string, error) { return string(b), nil }, filepath.Join(t.TempDir(), "s.json"))
	require.NoError(t, err)
	_, err = r.Read(t.Context())
	require.ErrorContains(t, err, "not a metadata row")

	bad := filepath.Join(t.TempDir(), "s.json")
	require.NoError(t, os.WriteFile(bad, []byte("{"), 0o644))
	_, err = dadchub.NewReader(dataset(t, c), func(b []byte) (string, error) { return string(b), nil }, bad)
	require.ErrorContains(t, err, "damaged")
}
