package flag_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/flag"
)

func verdictAt(id, session string, v dadc.Verdict, at time.Time) dadc.ValidationRecord {
	return dadc.ValidationRecord{Kind: dadc.RecordVerdict, SampleID: id, Session: session, Verdict: v, CreatedAt: at}
}

func TestRecordLogAppendAndRead(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a, err := flag.OpenRecordLog(root, "shard-a", nil)
	require.NoError(t, err)
	b, err := flag.OpenRecordLog(root, "shard-b", nil)
	require.NoError(t, err)
	seven := 7
	require.NoError(t, a.Append(ctx, verdictAt("s1", "v1", dadc.VerdictCorrect, t0.Add(2*time.Second))))
	require.NoError(t, b.Append(ctx, dadc.ValidationRecord{Kind: dadc.RecordVerdict, SampleID: "s1", Session: "v2", Verdict: dadc.VerdictIncorrect, Label: &seven, CreatedAt: t0}))
	require.NoError(t, a.Append(ctx, dadc.ValidationRecord{Kind: dadc.RecordRetraction, SampleID: "s1", Session: "w", CreatedAt: t0.Add(time.Second)}))
	require.NoError(t, a.Close())
	require.NoError(t, a.Close(), "Close twice is fine")
	require.ErrorIs(t, a.Append(ctx, verdictAt("s1", "v3", dadc.VerdictCorrect, t0)), flag.ErrRecordLogClosed)
	require.NoError(t, b.Close())

	assert.FileExists(t, filepath.Join(root, flag.ValidationsDir, "shard-a.jsonl"))
	recs, err := flag.ReadRecords(root)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	assert.Equal(t, "v2", recs[0].Session, "ordered by created_at across shards")
	assert.Equal(t, 7, *recs[0].Label)
	assert.Equal(t, dadc.RecordRetraction, recs[1].Kind)
	assert.Equal(t, "v1", recs[2].Session)
	assert.True(t, recs[2].CreatedAt.Equal(t0.Add(2*time.Second)))
}

func TestRecordLogTornTail(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	l, err := flag.OpenRecordLog(root, "s", nil)
	require.NoError(t, err)
	require.NoError(t, l.Append(ctx, verdictAt("x", "v1", dadc.VerdictFlagged, time.Unix(1, 0).UTC())))
	require.NoError(t, l.Close())
	path := filepath.Join(root, flag.ValidationsDir, "s.jsonl")
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	// A crash in the middle of the next append.
	require.NoError(t, os.WriteFile(path, append(append([]byte{}, good...), `{"kind":"verdict","sample_id":"x","ses`...), 0o644))

	recs, err := flag.ReadRecords(root)
	require.NoError(t, err, "a reader skips another writer's torn tail")
	require.Len(t, recs, 1)

	l, err = flag.OpenRecordLog(root, "s", nil)
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, good, got, "the writer cuts its torn tail off")
	require.NoError(t, l.Append(ctx, verdictAt("x", "v2", dadc.VerdictCorrect, time.Unix(2, 0).UTC())))
	require.NoError(t, l.Close())
	recs, err = flag.ReadRecords(root)
	require.NoError(t, err)
	require.Len(t, recs, 2, "the next record starts on a line of its own")
}

func TestRecordLogErrors(t *testing.T) {
	root := t.TempDir()
	for _, shard := range []string{"", "../up", "a/b", ".hidden"} {
		_, err := flag.OpenRecordLog(root, shard, nil)
		assert.ErrorContains(t, err, "must be 1 to 128 letters", shard)
	}
	// A damaged line with good lines after it is not a torn tail: refuse.
	dir := filepath.Join(root, flag.ValidationsDir)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	bad := "{\"kind\":\"verdict\",\"sample_id\":\"x\",\"session\":\"a\",\"verdict\":\"correct\"}\nnot json\n{\"kind\":\"verdict\",\"sample_id\":\"x\",\"session\":\"b\",\"verdict\":\"correct\"}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.jsonl"), []byte(bad), 0o644))
	_, err := flag.ReadRecords(root)
	assert.ErrorContains(t, err, "line 2 is not a validation record")
	assert.ErrorContains(t, err, "repair it by hand")
	_, err = flag.OpenRecordLog(root, "bad", nil)
	assert.ErrorContains(t, err, "line 2")

	recs, err := flag.ReadRecords(filepath.Join(root, "nothing-here"))
	require.NoError(t, err)
	assert.Empty(t, recs, "no folder: no records")
	_, err = flag.OpenRecordLog(root, "ok", nil)
	require.NoError(t, err)
	require.ErrorIs(t, func() error {
		l, _ := flag.OpenRecordLog(root, "ok2", nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		defer l.Close()
		return l.Append(ctx, verdictAt("x", "v", dadc.VerdictCorrect, time.Now()))
	}(), context.Canceled)
}

// TestRecordLogCloseWhileAppending: Close waits for the appends in progress;
// every Append either returns nil and its record is in the file, or returns
// ErrRecordLogClosed and wrote nothing. Run it with -race.
func TestRecordLogCloseWhileAppending(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	l, err := flag.OpenRecordLog(root, "s", nil)
	require.NoError(t, err)
	const writers, each = 4, 50
	acked := make(chan string, writers*each)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				err := l.Append(ctx, verdictAt(id, "v", dadc.VerdictCorrect, time.Unix(int64(i), 0).UTC()))
				if err != nil {
					assert.ErrorIs(t, err, flag.ErrRecordLogClosed)
					return
				}
				acked <- id
			}
		})
	}
	close(start)
	first := <-acked // at least one append ran before Close
	require.NoError(t, l.Close())
	wg.Wait()
	close(acked)
	recs, err := flag.ReadRecords(root)
	require.NoError(t, err)
	stored := make(map[string]bool, len(recs))
	for _, r := range recs {
		stored[r.SampleID] = true
	}
	assert.True(t, stored[first], "acknowledged record %s is in the file", first)
	n := 1
	for id := range acked {
		assert.True(t, stored[id], "acknowledged record %s is in the file", id)
		n++
	}
	assert.Equal(t, n, len(recs), "nothing but acknowledged records was written")
}
