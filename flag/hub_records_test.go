package flag

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

func TestHubPushesValidationRecordsWithSamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHubFixture(t)
		d, h := f.openHub(t, "w1", HubOptions{Interval: time.Minute, MaxBatch: 1})
		ctx := t.Context()
		log, err := OpenRecordLog(f.root, d.Shard(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = log.Close() })

		require.NoError(t, h.Flag(ctx, testSample(0)))
		synctest.Wait()
		require.Len(t, newCommits(f), 1)
		_, ok := f.srv.File("dataset", hubTestID.String(), "main", ValidationsDir+"/w1.jsonl")
		assert.False(t, ok, "no records yet, no file")

		rec := dadc.ValidationRecord{Kind: dadc.RecordRetraction, SampleID: testSample(0).ID, Session: "s", CreatedAt: time.Now().UTC()}
		require.NoError(t, log.Append(ctx, rec))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		assert.Len(t, newCommits(f), 1, "a record alone makes no commit")

		require.NoError(t, h.Flag(ctx, testSample(1)))
		synctest.Wait()
		commits := newCommits(f)
		require.Len(t, commits, 2)
		assert.Contains(t, commits[1].Changed, ValidationsDir+"/w1.jsonl", "the records go with the next samples")
		b, ok := f.srv.File("dataset", hubTestID.String(), "main", ValidationsDir+"/w1.jsonl")
		require.True(t, ok)
		recs, _, err := parseRecords(b)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, testSample(0).ID, recs[0].SampleID)
	})
}
