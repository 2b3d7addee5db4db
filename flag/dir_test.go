package flag

import (
	"context"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

func readRows(t *testing.T, shardDir string) []MetadataRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shardDir, MetadataFile))
	require.NoError(t, err)
	require.True(t, len(data) == 0 || data[len(data)-1] == '\n', "metadata must end with a newline")
	rows, good, err := parseMetadata(data)
	require.NoError(t, err)
	require.Equal(t, len(data), good, "metadata must have no torn line")
	return rows
}

func TestDirRoundTrip(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	d := openTestDir(t, root, &DirOptions{Shard: "shard-a"})
	var want []dadc.Sample[*image.Gray]
	for i := 4; i >= 0; i-- { // flagged newest first: Samples must sort them
		s := testSample(i)
		require.NoError(t, d.Flag(ctx, s))
		want = append([]dadc.Sample[*image.Gray]{s}, want...)
	}
	assert.Equal(t, 5, d.Count())
	assert.Equal(t, "shard-a", d.Shard())
	assert.Equal(t, filepath.Join(root, "data", "shard-a"), d.ShardDir())
	assert.True(t, d.Has("s00003"))
	assert.FileExists(t, filepath.Join(root, ".cache", "huggingface", "advspace.lock"), "the lock lives where uploaders do not look")
	assert.False(t, d.Has("nope"))

	check := func(d *Dir[*image.Gray]) {
		got, err := d.Samples(ctx)
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for i := range want {
			assert.Equal(t, want[i].ID, got[i].ID)
			assert.Equal(t, want[i].Label, got[i].Label)
			assert.Equal(t, want[i].ModelLabel, got[i].ModelLabel)
			assert.Equal(t, want[i].ModelProbabilities, got[i].ModelProbabilities)
			assert.Equal(t, want[i].ModelVersion, got[i].ModelVersion)
			assert.Equal(t, want[i].Round, got[i].Round)
			assert.True(t, want[i].CreatedAt.Equal(got[i].CreatedAt))
			assert.Equal(t, want[i].Session, got[i].Session)
			assert.Equal(t, want[i].Input.Pix, got[i].Input.Pix)
			assert.Equal(t, want[i].Input.Rect, got[i].Input.Rect)
		}
	}
	check(d)

	rows := readRows(t, d.ShardDir())
	require.Len(t, rows, 5)
	assert.Equal(t, "s00004.png", rows[0].FileName)
	assert.Equal(t, time.Date(2026, 11, 26, 10, 0, 4, 0, time.UTC), rows[0].CreatedAt)
	card, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	assert.Equal(t, DefaultCard, string(card))

	require.NoError(t, d.Close())
	d2 := openTestDir(t, root, nil)
	assert.Equal(t, 5, d2.Count())
	assert.NotEqual(t, "shard-a", d2.Shard(), "a new Dir writes a new shard by default")
	assert.Regexp(t, `^\d{8}-[0-9a-f]{8}$`, d2.Shard())
	check(d2)
	// Already stored in another shard: not stored again.
	require.NoError(t, d2.Flag(ctx, testSample(2)))
	assert.Equal(t, 5, d2.Count())
	assert.NoDirExists(t, d2.ShardDir(), "nothing was written to the new shard")
}

func TestDirIdempotent(t *testing.T) {
	ctx := context.Background()
	d := openTestDir(t, t.TempDir(), &DirOptions{Shard: "x"})
	s := testSample(1)
	for range 3 {
		require.NoError(t, d.Flag(ctx, s))
	}
	s.Label = 9 // same ID, different content: the first one stays
	require.NoError(t, d.Flag(ctx, s))
	rows := readRows(t, d.ShardDir())
	require.Len(t, rows, 1)
	assert.Equal(t, 1, rows[0].Label)
	assert.Equal(t, 1, d.Count())
}

func TestDirConcurrentFlags(t *testing.T) {
	const goroutines, perGoroutine = 20, 25
	ctx := context.Background()
	d := openTestDir(t, t.TempDir(), &DirOptions{Shard: "c"})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perGoroutine*2)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				n := g*perGoroutine + i
				errs <- d.Flag(ctx, testSample(n))
				// Race another goroutine's sample too: duplicates must collapse.
				errs <- d.Flag(ctx, testSample((n+perGoroutine)%(goroutines*perGoroutine)))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := goroutines * perGoroutine
	assert.Equal(t, total, d.Count())
	rows := readRows(t, d.ShardDir())
	require.Len(t, rows, total)
	ids := make(map[string]int)
	for _, r := range rows {
		ids[r.ID]++
	}
	assert.Len(t, ids, total, "every ID exactly once")
	entries, err := os.ReadDir(d.ShardDir())
	require.NoError(t, err)
	assert.Len(t, entries, total+1, "one image per row plus metadata.jsonl, no temp files")
	got, err := d.Samples(ctx)
	require.NoError(t, err)
	assert.Len(t, got, total)
}

func TestDirRejectsBadSamples(t *testing.T) {
	good := testSample(1)
	tests := []struct {
		name   string
		modify func(s *dadc.Sample[*image.Gray])
		want   string
	}{
		{"empty ID", func(s *dadc.Sample[*image.Gray]) { s.ID = "" }, "ID"},
		{"path in ID", func(s *dadc.Sample[*image.Gray]) { s.ID = "../evil" }, "ID"},
		{"slash in ID", func(s *dadc.Sample[*image.Gray]) { s.ID = "a/b" }, "ID"},
		{"dot in ID", func(s *dadc.Sample[*image.Gray]) { s.ID = "a.png" }, "ID"},
		{"long ID", func(s *dadc.Sample[*image.Gray]) { s.ID = strings.Repeat("a", 65) }, "ID"},
		{"negative label", func(s *dadc.Sample[*image.Gray]) { s.Label = -1 }, "label -1"},
		{"negative model label", func(s *dadc.Sample[*image.Gray]) { s.ModelLabel = -2 }, "model label -2"},
		{"nil probabilities", func(s *dadc.Sample[*image.Gray]) { s.ModelProbabilities = nil }, "probabilities"},
		{"NaN probability", func(s *dadc.Sample[*image.Gray]) { s.ModelProbabilities = []float64{math.NaN()} }, "finite"},
		{"negative round", func(s *dadc.Sample[*image.Gray]) { s.Round = -1 }, "round"},
		{"nil image", func(s *dadc.Sample[*image.Gray]) { s.Input = nil }, "nil image"},
		{"empty image", func(s *dadc.Sample[*image.Gray]) { s.Input = image.NewGray(image.Rect(0, 0, 0, 0)) }, "empty image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			d := openTestDir(t, root, &DirOptions{Shard: "x"})
			s := good
			s.ModelProbabilities = slices.Clone(good.ModelProbabilities)
			tt.modify(&s)
			err := d.Flag(context.Background(), s)
			require.ErrorIs(t, err, ErrInvalidSample)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, 0, d.Count())
			assert.NoDirExists(t, d.ShardDir(), "nothing written")
		})
	}
}

func TestDirCancelledContext(t *testing.T) {
	d := openTestDir(t, t.TempDir(), &DirOptions{Shard: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := d.Flag(ctx, testSample(1))
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, d.Count())
	assert.NoDirExists(t, d.ShardDir())
}

func TestDirRecoversTornLastLine(t *testing.T) {
	tests := []struct {
		name string
		tail string // appended after two good rows
	}{
		{"partial JSON without newline", `{"file_name":"s00009.png","id":"s000`},
		{"complete JSON without newline", `{"file_name":"s00009.png","id":"s00009","label":1,"model_label":2,"model_probabilities":[1],"model_version":"v","round":0,"created_at":"2026-11-26T10:00:00Z","session":""}`},
		{"garbage line with newline", "\x00\x00\x00\x00\n"},
		{"half a row then newline", `{"file_name":"s00009.png","id":"s0` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ctx := context.Background()
			d := openTestDir(t, root, &DirOptions{Shard: "x"})
			require.NoError(t, d.Flag(ctx, testSample(1)))
			require.NoError(t, d.Flag(ctx, testSample(2)))
			require.NoError(t, d.Close())
			meta := filepath.Join(root, "data", "x", MetadataFile)
			before, err := os.ReadFile(meta)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(meta, append(slices.Clone(before), tt.tail...), 0o644))
			// The torn row's image was written before the row: it is an orphan.
			require.NoError(t, os.WriteFile(filepath.Join(root, "data", "x", "s00009.png"), []byte("png"), 0o644))

			d2 := openTestDir(t, root, &DirOptions{Shard: "x"})
			assert.Equal(t, 2, d2.Count())
			after, err := os.ReadFile(meta)
			require.NoError(t, err)
			assert.Equal(t, before, after, "the torn tail is cut off")
			assert.NoFileExists(t, filepath.Join(root, "data", "x", "s00009.png"))
			// Appending continues cleanly after the repair.
			require.NoError(t, d2.Flag(ctx, testSample(9)))
			assert.Len(t, readRows(t, d2.ShardDir()), 3)
		})
	}
}

func TestDirRefusesDamageBeforeGoodRows(t *testing.T) {
	root := t.TempDir()
	d := openTestDir(t, root, &DirOptions{Shard: "x"})
	require.NoError(t, d.Flag(context.Background(), testSample(1)))
	require.NoError(t, d.Close())
	meta := filepath.Join(root, "data", "x", MetadataFile)
	good, err := os.ReadFile(meta)
	require.NoError(t, err)
	damaged := append([]byte("not json\n"), good...)
	require.NoError(t, os.WriteFile(meta, damaged, 0o644))
	_, err = NewDir(root, GrayPNG(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 1")
	after, err := os.ReadFile(meta)
	require.NoError(t, err)
	assert.Equal(t, damaged, after, "acknowledged rows are never cut away")
}

func TestDirRecoveryRemovesOrphansAndTempFiles(t *testing.T) {
	root := t.TempDir()
	d := openTestDir(t, root, &DirOptions{Shard: "x"})
	require.NoError(t, d.Flag(context.Background(), testSample(1)))
	require.NoError(t, d.Close())
	shard := filepath.Join(root, "data", "x")
	for _, name := range []string{".tmp-s00002.png-123", "s00002.png", "notes.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(shard, name), []byte("x"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, ".tmp-README.md-1"), []byte("x"), 0o644))
	d2 := openTestDir(t, root, &DirOptions{Shard: "x"})
	assert.Equal(t, 1, d2.Count())
	assert.NoFileExists(t, filepath.Join(shard, ".tmp-s00002.png-123"))
	assert.NoFileExists(t, filepath.Join(shard, "s00002.png"))
	assert.FileExists(t, filepath.Join(shard, "notes.txt"), "files that are not ours stay")
	assert.FileExists(t, filepath.Join(shard, "s00001.png"))
}

func TestDirFaultInjection(t *testing.T) {
	tests := []struct {
		name   string
		rule   faultRule
		broken bool
	}{
		{"image temp file cannot be created", faultRule{op: "createtemp", match: "data"}, false},
		{"image write fails", faultRule{op: "write", match: ".tmp-s00002", partial: true}, false},
		{"image sync fails", faultRule{op: "sync", match: ".tmp-s00002"}, false},
		{"image rename fails", faultRule{op: "rename", match: "s00002.png"}, false},
		{"shard folder sync fails", faultRule{op: "syncdir", match: "data/x", times: 1}, false},
		{"metadata write fails half way", faultRule{op: "write", match: MetadataFile, partial: true, times: 1}, false},
		{"metadata write fails", faultRule{op: "write", match: MetadataFile, times: 1}, false},
		{"metadata sync fails", faultRule{op: "sync", match: MetadataFile, times: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ctx := context.Background()
			ffs := &faultFS{}
			d := openTestDir(t, root, &DirOptions{Shard: "x", fs: ffs})
			require.NoError(t, d.Flag(ctx, testSample(1)))
			ffs.add(tt.rule)
			err := d.Flag(ctx, testSample(2))
			require.ErrorIs(t, err, errInjected)
			assert.Contains(t, err.Error(), "s00002")
			assert.Equal(t, 1, d.Count())
			assert.False(t, d.Has("s00002"))
			rows := readRows(t, d.ShardDir()) // checks: no torn or half row
			require.Len(t, rows, 1)
			assert.NoFileExists(t, filepath.Join(d.ShardDir(), "s00002.png"))
			entries, err := os.ReadDir(d.ShardDir())
			require.NoError(t, err)
			for _, e := range entries {
				assert.False(t, strings.HasPrefix(e.Name(), tempPrefix), "temp file %s left behind", e.Name())
			}
			// The disk recovers: the retry stores the sample once.
			ffs.clear()
			require.NoError(t, d.Flag(ctx, testSample(2)))
			assert.Len(t, readRows(t, d.ShardDir()), 2)
			assert.Equal(t, 2, d.Count())
		})
	}
}

func TestDirBrokenAfterFailedRollback(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	ffs := &faultFS{}
	d := openTestDir(t, root, &DirOptions{Shard: "x", fs: ffs})
	require.NoError(t, d.Flag(ctx, testSample(1)))
	ffs.add(faultRule{op: "write", match: MetadataFile, partial: true})
	ffs.add(faultRule{op: "truncate", match: MetadataFile})
	err := d.Flag(ctx, testSample(2))
	require.ErrorIs(t, err, ErrBroken)
	require.ErrorIs(t, err, errInjected)
	ffs.clear()
	require.ErrorIs(t, d.Flag(ctx, testSample(3)), ErrBroken, "no write after an unrepaired failure")
	require.NoError(t, d.Close())

	d2 := openTestDir(t, root, &DirOptions{Shard: "x"})
	assert.Equal(t, 1, d2.Count(), "reopening cuts the half row away")
	require.NoError(t, d2.Flag(ctx, testSample(2)))
	assert.Len(t, readRows(t, d2.ShardDir()), 2)
}

func TestDirDailyShards(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 23, 59, 59, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d := openTestDir(t, root, &DirOptions{DailyShards: true, Shard: "web1", Now: clock})
	assert.Equal(t, "20261126-web1", d.Shard())
	s := testSample(1)
	s.CreatedAt = time.Time{} // the Dir stamps it
	require.NoError(t, d.Flag(ctx, s))
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	assert.Equal(t, "20261127-web1", d.Shard())
	s = testSample(2)
	s.CreatedAt = time.Time{}
	require.NoError(t, d.Flag(ctx, s))
	assert.Equal(t, []string{"20261126-web1", "20261127-web1"}, d.Shards())
	got, err := d.Samples(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "s00001", got[0].ID)
	assert.Equal(t, time.Date(2026, 11, 26, 23, 59, 59, 0, time.UTC), got[0].CreatedAt)
	assert.Equal(t, "s00002", got[1].ID)
}

func TestDirLockAndClose(t *testing.T) {
	root := t.TempDir()
	d, err := NewDir(root, GrayPNG(), nil)
	require.NoError(t, err)
	_, err = NewDir(root, GrayPNG(), nil)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close is idempotent")
	require.ErrorIs(t, d.Flag(context.Background(), testSample(1)), ErrClosed)
	d2, err := NewDir(root, GrayPNG(), nil)
	require.NoError(t, err)
	require.NoError(t, d2.Close())
}

func TestNewDirRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name  string
		root  string
		codec Codec[*image.Gray]
		opts  *DirOptions
		want  string
	}{
		{"empty root", "", GrayPNG(), nil, "root"},
		{"nil codec", t.TempDir(), nil, nil, "codec"},
		{"hidden shard", t.TempDir(), GrayPNG(), &DirOptions{Shard: ".x"}, "shard name"},
		{"shard with slash", t.TempDir(), GrayPNG(), &DirOptions{Shard: "a/b"}, "shard name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDir(tt.root, tt.codec, tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDirCustomCardKept(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "README.md"), []byte("mine"), 0o644))
	d := openTestDir(t, root, &DirOptions{Card: "other"})
	require.NoError(t, d.Close())
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "mine", string(b), "an existing card is never overwritten")
	root2 := t.TempDir()
	openTestDir(t, root2, &DirOptions{Card: "custom card"})
	b, err = os.ReadFile(filepath.Join(root2, "README.md"))
	require.NoError(t, err)
	assert.Equal(t, "custom card", string(b))
}

func TestDirJSONCodec(t *testing.T) {
	type features struct {
		Text  string    `json:"text"`
		Score []float64 `json:"score"`
	}
	ctx := context.Background()
	d, err := NewDir(t.TempDir(), JSONCodec[features](), &DirOptions{Shard: "j"})
	require.NoError(t, err)
	defer d.Close()
	in := features{Text: "hello", Score: []float64{1, 2}}
	require.NoError(t, d.Flag(ctx, dadc.Sample[features]{SampleMeta: dadc.SampleMeta{ID: "t1", ModelProbabilities: []float64{1}}, Input: in}))
	assert.FileExists(t, filepath.Join(d.ShardDir(), "t1.json"))
	got, err := d.Samples(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, in, got[0].Input)
	assert.Equal(t, fmt.Sprint(in), fmt.Sprint(got[0].Input))
}

func TestDirRecoveryRemovesEmptyShards(t *testing.T) {
	root := t.TempDir()
	for _, shard := range []string{"empty-folder", "empty-meta", "torn-only"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "data", shard), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "data", "empty-meta", MetadataFile), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "data", "torn-only", MetadataFile), []byte(`{"file_na`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "data", "torn-only", "x1.png"), []byte("orphan"), 0o644))
	d := openTestDir(t, root, &DirOptions{Shard: "empty-meta"})
	assert.Empty(t, d.Shards())
	for _, shard := range []string{"empty-folder", "empty-meta", "torn-only"} {
		assert.NoDirExists(t, filepath.Join(root, "data", shard))
	}
	require.NoError(t, d.Flag(context.Background(), testSample(1)))
	assert.Equal(t, []string{"empty-meta"}, d.Shards())
	_, err := CheckImageFolder(os.DirFS(root))
	require.NoError(t, err)
}

func TestDirCloseDuringFlags(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	d, err := NewDir(root, GrayPNG(), &DirOptions{Shard: "x"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	someAcked := make(chan struct{}) // closed at the 20th acknowledgement
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				s := testSample(g*50 + i)
				err := d.Flag(ctx, s)
				if err != nil {
					assert.ErrorIs(t, err, ErrClosed)
					return
				}
				mu.Lock()
				acked = append(acked, s.ID)
				if len(acked) == 20 {
					close(someAcked)
				}
				mu.Unlock()
			}
		})
	}
	<-someAcked // Close while flags are in full swing
	require.NoError(t, d.Close())
	wg.Wait()
	d2 := openTestDir(t, root, &DirOptions{Shard: "x"})
	for _, id := range acked {
		assert.True(t, d2.Has(id), "acknowledged %s survives Close", id)
	}
	assert.Equal(t, len(acked), d2.Count(), "nothing unacknowledged was left behind either")
}

func TestDirSamplesSkipsMissingInput(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	d := openTestDir(t, root, &DirOptions{Shard: "x"})
	require.NoError(t, d.Flag(ctx, testSample(1)))
	require.NoError(t, d.Flag(ctx, testSample(2)))
	require.NoError(t, os.Remove(filepath.Join(d.ShardDir(), "s00001.png")))
	got, err := d.Samples(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "s00002", got[0].ID)
}

func TestDirSamplesIgnoresEscapingFileNames(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	d := openTestDir(t, root, &DirOptions{Shard: "x"})
	require.NoError(t, d.Flag(ctx, testSample(1)))
	require.NoError(t, d.Close())
	// A hand-edited row pointing outside the shard folder.
	meta := filepath.Join(root, "data", "x", MetadataFile)
	f, err := os.OpenFile(meta, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"file_name":"../../secret.png","id":"evil","label":1,"model_label":2,"model_probabilities":[1],"model_version":"v","round":0,"created_at":"2026-11-26T10:00:00Z","session":""}` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	d2 := openTestDir(t, root, &DirOptions{Shard: "x"})
	got, err := d2.Samples(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "s00001", got[0].ID)
}

// BenchmarkDirFlag measures durable flags (three fsyncs each) from parallel callers.
func BenchmarkDirFlag(b *testing.B) {
	d, err := NewDir(b.TempDir(), GrayPNG(), &DirOptions{Shard: "bench"})
	require.NoError(b, err)
	defer d.Close()
	var n atomic.Int64
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := testSample(int(n.Add(1)))
			if err := d.Flag(ctx, s); err != nil {
				b.Error(err)
			}
		}
	})
}
