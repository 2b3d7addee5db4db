package flag

import (
	"bytes"
	"fmt"
	"image"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

// testVerdict is a verdict by validator session v<i> on sample i.
func testVerdict(i int, v dadc.Verdict) dadc.ValidationRecord {
	return dadc.ValidationRecord{Kind: dadc.RecordVerdict, SampleID: testSample(i).ID, Session: fmt.Sprintf("v%d", i),
		Verdict: v, CreatedAt: baseTime.Add(time.Duration(i) * time.Minute)}
}

// testRetraction is the writer of sample i withdrawing it.
func testRetraction(i int) dadc.ValidationRecord {
	return dadc.ValidationRecord{Kind: dadc.RecordRetraction, SampleID: testSample(i).ID, Session: testSample(i).Session,
		CreatedAt: baseTime.Add(time.Duration(i)*time.Minute + time.Second)}
}

// openHubWithRecords opens the record log of shard on the fixture's root and
// a Dir (same shard) and Hub watching it; all are closed at the end.
func (f *hubFixture) openHubWithRecords(t *testing.T, shard string, opts HubOptions) (*Dir[*image.Gray], *Hub[*image.Gray], *RecordLog) {
	t.Helper()
	rl, err := OpenRecordLog(f.root, shard, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rl.Close() })
	opts.Records = rl
	d, h := f.openHub(t, shard, opts)
	return d, h, rl
}

// hubRecords returns the Hub's copy of validations/<shard>.jsonl, parsed,
// after checking it is byte for byte a prefix of the local file made of
// complete lines.
func (f *hubFixture) hubRecords(t *testing.T, shard string) []dadc.ValidationRecord {
	t.Helper()
	remote, ok := f.srv.File("dataset", hubTestRepo, "main", ValidationsDir+"/"+shard+".jsonl")
	require.True(t, ok, "validations/%s.jsonl is on the Hub", shard)
	local, err := os.ReadFile(filepath.Join(f.root, ValidationsDir, shard+".jsonl"))
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(local, remote), "the Hub's copy is a prefix of the local file")
	require.True(t, len(remote) == 0 || remote[len(remote)-1] == '\n', "only complete lines are pushed")
	recs, good, err := parseRecords(remote)
	require.NoError(t, err)
	require.Equal(t, len(remote), good, "every pushed line is a record")
	return recs
}

// preuploadPaths returns the file paths each preupload request (one per
// commit attempt) asked about, in order.
func preuploadPaths(f *hubFixture) []string {
	var out []string
	for _, r := range f.srv.RequestsFor(hubtest.OpPreupload) {
		out = append(out, string(r.Body))
	}
	return out
}

func TestHubPushesRecordsWithSamplesInOneCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h, rl := f.openHubWithRecords(t, "w1", HubOptions{Interval: time.Minute, MaxBatch: 50})
		ctx := t.Context()
		for i := range 3 {
			require.NoError(t, h.Flag(ctx, testSample(i)))
		}
		require.NoError(t, rl.Append(ctx, testVerdict(0, dadc.VerdictCorrect)))
		require.NoError(t, rl.Append(ctx, testVerdict(1, dadc.VerdictIncorrect)))
		require.NoError(t, rl.Append(ctx, testRetraction(2)))
		assert.Equal(t, 3, h.Pending())
		assert.Equal(t, 1, h.PendingRecords())
		synctest.Wait()
		assert.Empty(t, newCommits(f), "records wait for the interval like samples")

		time.Sleep(61 * time.Second)
		synctest.Wait()
		commits := newCommits(f)
		require.Len(t, commits, 1, "samples and records go out together")
		assert.Contains(t, commits[0].Changed, "validations/w1.jsonl")
		assert.Contains(t, commits[0].Changed, "data/w1/metadata.jsonl")
		assert.Equal(t, "Add 3 flagged samples and the validation records of 1 writer(s)", commits[0].Summary)
		assert.Zero(t, h.Pending())
		assert.Zero(t, h.PendingRecords())
		recs := f.hubRecords(t, "w1")
		require.Len(t, recs, 3)
		assert.Equal(t, dadc.RecordRetraction, recs[2].Kind, "the Hub copy records the retraction")
		assert.Equal(t, testSample(2).ID, recs[2].SampleID)
		f.checkHubDataset(t, ids(0, 3))

		// A record alone schedules a push too, after the interval.
		require.NoError(t, rl.Append(ctx, testVerdict(0, dadc.VerdictFlagged)))
		synctest.Wait()
		assert.Len(t, newCommits(f), 1)
		time.Sleep(61 * time.Second)
		synctest.Wait()
		commits = newCommits(f)
		require.Len(t, commits, 2)
		assert.Equal(t, []string{"validations/w1.jsonl"}, commits[1].Changed)
		assert.Equal(t, "Add the validation records of 1 writer(s)", commits[1].Summary)
		assert.Len(t, f.hubRecords(t, "w1"), 4)

		// The card shows the records as a second config; the default stays first.
		card := string(f.srv.Files("dataset", hubTestRepo, "main")["README.md"])
		def, val := strings.Index(card, "- config_name: default"), strings.Index(card, "- config_name: validations")
		require.GreaterOrEqual(t, def, 0)
		assert.Greater(t, val, def, "the default config comes first")
		assert.Contains(t, card, "  default: true\n")
		assert.Contains(t, card, `path: "validations/*.jsonl"`)
		require.NoError(t, h.Close())
	})
}

func TestHubRecordsCountTowardsMaxBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h, rl := f.openHubWithRecords(t, "w1", HubOptions{Interval: time.Hour, MaxBatch: 3})
		ctx := t.Context()
		require.NoError(t, h.Flag(ctx, testSample(0)))
		require.NoError(t, rl.Append(ctx, testVerdict(0, dadc.VerdictCorrect)))
		synctest.Wait()
		assert.Empty(t, newCommits(f))
		require.NoError(t, rl.Append(ctx, testVerdict(1, dadc.VerdictCorrect)))
		synctest.Wait()
		require.Len(t, newCommits(f), 1, "a sample and two records make MaxBatch 3: pushed at once")
		assert.Len(t, f.hubRecords(t, "w1"), 2)
		require.NoError(t, h.Close())
	})
}

// An append made while a push is under way (here: before the file is read
// for the upload) is not in that push's commit, which carries the file up to
// its size when the push began; Flush then pushes it in a second commit.
func TestHubRecordsAppendedDuringAPush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		_, h, rl := f.openHubWithRecords(t, "w1", HubOptions{})
		ctx := t.Context()
		require.NoError(t, rl.Append(ctx, testVerdict(0, dadc.VerdictCorrect)))
		var once sync.Once
		f.tr.setBefore(func(r *http.Request) {
			if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/preupload/") {
				once.Do(func() { assert.NoError(t, rl.Append(ctx, testVerdict(1, dadc.VerdictIncorrect))) })
			}
		})
		require.NoError(t, h.Flush(ctx))
		commits := newCommits(f)
		require.Len(t, commits, 2, "the record appended during the first commit went out in a second")
		first, ok := f.srv.File("dataset", hubTestRepo, commits[0].OID, "validations/w1.jsonl")
		require.True(t, ok)
		recs, good, err := parseRecords(first)
		require.NoError(t, err)
		assert.Equal(t, len(first), good)
		require.Len(t, recs, 1, "the first commit has the file as of its push")
		assert.Len(t, f.hubRecords(t, "w1"), 2)
		assert.Zero(t, h.PendingRecords())
		require.NoError(t, h.Close())
	})
}

func TestHubRecordsRestartPushesOnlyWhatGrew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		ctx := t.Context()
		d1, h1, rl1 := f.openHubWithRecords(t, "w1", HubOptions{})
		require.NoError(t, h1.Flag(ctx, testSample(0)))
		require.NoError(t, rl1.Append(ctx, testVerdict(0, dadc.VerdictCorrect)))
		require.NoError(t, h1.Close())
		require.NoError(t, rl1.Close())
		require.NoError(t, d1.Close())
		require.Len(t, newCommits(f), 1)

		// Another writer's file, pushed by the next process.
		d2, h2, rl2 := f.openHubWithRecords(t, "w2", HubOptions{})
		require.NoError(t, rl2.Append(ctx, testVerdict(5, dadc.VerdictFlagged)))
		require.NoError(t, h2.Flush(ctx))
		require.Len(t, newCommits(f), 2)
		require.NoError(t, h2.Close())
		require.NoError(t, rl2.Close())
		require.NoError(t, d2.Close())

		// Offline, w1's log grows (a verdict acknowledged, then the process
		// died before its push); w2's does not.
		rl1, err := OpenRecordLog(f.root, "w1", nil)
		require.NoError(t, err)
		require.NoError(t, rl1.Append(ctx, testRetraction(0)))
		require.NoError(t, rl1.Close())

		f.srv.ResetRequests()
		d3, h3, _ := f.openHubWithRecords(t, "w3", HubOptions{}) // the backlog goes out at start
		require.NoError(t, h3.Flush(ctx))
		assert.Zero(t, h3.PendingRecords())
		bodies := preuploadPaths(f)
		require.Len(t, bodies, 1, "one commit for what grew")
		assert.Contains(t, bodies[0], "validations/w1.jsonl")
		assert.NotContains(t, bodies[0], "validations/w2.jsonl", "an unchanged file is not sent again")
		assert.NotContains(t, bodies[0], "data/", "no sample is sent again")
		commits := newCommits(f)
		require.Len(t, commits, 3)
		assert.Equal(t, []string{"validations/w1.jsonl"}, commits[2].Changed)
		recs := f.hubRecords(t, "w1")
		require.Len(t, recs, 2)
		assert.Equal(t, dadc.RecordRetraction, recs[1].Kind)
		assert.Len(t, f.hubRecords(t, "w2"), 1)

		// Nothing grew: a restart makes no commit and sends nothing.
		require.NoError(t, h3.Close())
		require.NoError(t, d3.Close())
		f.srv.ResetRequests()
		_, h4, _ := f.openHubWithRecords(t, "w3", HubOptions{})
		require.NoError(t, h4.Flush(ctx))
		require.NoError(t, h4.Close())
		assert.Empty(t, f.srv.RequestsFor(hubtest.OpPreupload))
		assert.Len(t, newCommits(f), 3)
	})
}

// A torn last line (a write a crash interrupted) is never pushed, in a file
// the Hub finds at start; once repaired and appended to, the file goes out
// with the new line.
func TestHubNeverPushesATornRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		ctx := t.Context()
		rl, err := OpenRecordLog(f.root, "w0", nil)
		require.NoError(t, err)
		require.NoError(t, rl.Append(ctx, testVerdict(0, dadc.VerdictCorrect)))
		require.NoError(t, rl.Close())
		path := filepath.Join(f.root, ValidationsDir, "w0.jsonl")
		good, err := os.ReadFile(path)
		require.NoError(t, err)
		torn := append(bytes.Clone(good), `{"kind":"verdict","sample_id":"s00001","ses`...)
		require.NoError(t, os.WriteFile(path, torn, 0o644))

		d, h := f.openHub(t, "w1", HubOptions{})
		require.NoError(t, h.Flush(ctx))
		remote, ok := f.srv.File("dataset", hubTestRepo, "main", "validations/w0.jsonl")
		require.True(t, ok)
		assert.Equal(t, string(good), string(remote), "the complete lines only")
		require.NoError(t, h.Close())
		require.NoError(t, d.Close())

		// The writer comes back: opening cuts the torn line off, and the next
		// append goes out.
		_, h2, rl2 := f.openHubWithRecords(t, "w0", HubOptions{})
		require.NoError(t, rl2.Append(ctx, testVerdict(1, dadc.VerdictFlagged)))
		require.NoError(t, h2.Flush(ctx))
		recs := f.hubRecords(t, "w0")
		require.Len(t, recs, 2)
		assert.Equal(t, testSample(1).ID, recs[1].SampleID)
		require.NoError(t, h2.Close())
	})
}

func TestHubRecordsBackAfterTheRepoIsCreatedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		ctx := t.Context()
		d1, h1, rl1 := f.openHubWithRecords(t, "w1", HubOptions{})
		require.NoError(t, h1.Flag(ctx, testSample(0)))
		require.NoError(t, rl1.Append(ctx, testVerdict(0, dadc.VerdictCorrect)))
		require.NoError(t, rl1.Append(ctx, testRetraction(0)))
		require.NoError(t, h1.Flush(ctx))
		require.Len(t, f.hubRecords(t, "w1"), 2)

		// While running: the repo is deleted and created again; the next push
		// (of a new record only) notices the foreign head and sends it all.
		f.deleteRepo(t)
		require.NoError(t, f.srv.CreateRepo("dataset", hubTestRepo, false))
		require.NoError(t, rl1.Append(ctx, testVerdict(1, dadc.VerdictFlagged)))
		require.NoError(t, h1.Flush(ctx))
		assert.Len(t, f.hubRecords(t, "w1"), 3)
		f.checkHubDataset(t, ids(0, 1))
		require.NoError(t, h1.Close())
		require.NoError(t, rl1.Close())
		require.NoError(t, d1.Close())
		assert.Contains(t, f.logText(), "the Hub lacks validation records the push record says were pushed")

		// At a restart: the repo is created again while nothing runs.
		f.deleteRepo(t)
		require.NoError(t, f.srv.CreateRepo("dataset", hubTestRepo, false))
		_, h2, _ := f.openHubWithRecords(t, "w2", HubOptions{})
		require.NoError(t, h2.Flush(ctx))
		require.NoError(t, h2.Close())
		assert.Len(t, f.hubRecords(t, "w1"), 3, "the records are back")
		f.checkHubDataset(t, ids(0, 1))
	})
}

func TestNewHubRejectsARecordLogOfAnotherFolder(t *testing.T) {
	f := &hubFixture{root: t.TempDir()}
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: "http://hub.test", Token: hubTestToken})
	require.NoError(t, err)
	d, err := NewDir(f.root, GrayPNG(), &DirOptions{Shard: "w1", fs: noSyncFS{}})
	require.NoError(t, err)
	defer d.Close()
	other := t.TempDir()
	rl, err := OpenRecordLog(other, "w1", nil)
	require.NoError(t, err)
	defer rl.Close()
	_, err = NewHub(c, hubTestID, d, &HubOptions{Records: rl})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "open the record log on the Dir's root")
	assert.NoDirExists(t, filepath.Join(f.root, ".cache", "huggingface", "advspace-hub"), "a refused Hub changes nothing")
}
