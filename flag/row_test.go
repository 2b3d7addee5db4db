package flag

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
)

// recordSample has a non-UTC, sub-second CreatedAt, which every store must
// write in UTC with the sub-second digits.
func recordSample() dadc.Sample[int] {
	return dadc.Sample[int]{Input: 7, SampleMeta: dadc.SampleMeta{
		ID: "r1", Label: 3, ModelLabel: 8, ModelProbabilities: []float64{0.25, 0.75},
		ModelVersion: "r0-x", Round: 2, Session: "s<1>",
		CreatedAt: time.Date(2026, 11, 26, 12, 30, 0, 500_000_000, time.FixedZone("CEST", 2*3600)),
	}}
}

// The one sample record keeps the on-disk formats byte for byte: these lines
// are what the stores wrote before dadc.SampleMeta existed.
func TestSampleRecordOnDiskFormat(t *testing.T) {
	const (
		row  = `{"file_name":"r1.json","id":"r1","label":3,"model_label":8,"model_probabilities":[0.25,0.75],"model_version":"r0-x","round":2,"created_at":"2026-11-26T10:30:00.5Z","session":"s\u003c1\u003e"}` + "\n"
		line = `{"id":"r1","label":3,"model_label":8,"model_probabilities":[0.25,0.75],"model_version":"r0-x","round":2,"created_at":"2026-11-26T10:30:00.5Z","session":"s\u003c1\u003e","input":"Nw=="}` + "\n"
		csv  = "id,label,model_label,model_probabilities,model_version,round,created_at,session,input\n" +
			`r1,3,8,"[0.25,0.75]",r0-x,2,2026-11-26T10:30:00.5Z,s<1>,Nw==` + "\n"
	)
	ctx := t.Context()
	root := t.TempDir()

	d, err := NewDir(filepath.Join(root, "ds"), JSONCodec[int](), &DirOptions{Shard: "a"})
	require.NoError(t, err)
	require.NoError(t, d.Flag(ctx, recordSample()))
	got, err := os.ReadFile(filepath.Join(d.ShardDir(), MetadataFile))
	require.NoError(t, err)
	assert.Equal(t, row, string(got), "metadata row")
	require.NoError(t, d.Close())

	for _, tt := range []struct {
		format LogFormat
		want   string
	}{{JSONL, line}, {CSV, csv}} {
		path := filepath.Join(root, "log."+tt.format.String())
		l, err := NewLog(path, tt.format, JSONCodec[int](), nil)
		require.NoError(t, err)
		require.NoError(t, l.Flag(ctx, recordSample()))
		require.NoError(t, l.Close())
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, tt.want, string(got), "%v log", tt.format)

		// And an existing file reads back as the same sample.
		l, err = NewLog(path, tt.format, JSONCodec[int](), nil)
		require.NoError(t, err)
		list, err := l.Samples(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		want := recordSample()
		want.CreatedAt = want.CreatedAt.UTC()
		assert.Equal(t, want, list[0], "%v log read back", tt.format)
		require.NoError(t, l.Close())
	}

	// A dataset written before reads back with every field.
	d, err = NewDir(filepath.Join(root, "ds"), JSONCodec[int](), nil)
	require.NoError(t, err)
	defer d.Close()
	list, err := d.Samples(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	want := recordSample()
	want.CreatedAt = want.CreatedAt.UTC()
	assert.Equal(t, want, list[0])
}

// An Outbox queue record written before dadc.SampleMeta existed is delivered
// with every field.
func TestSampleRecordOutboxFormat(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, pendingDirName), 0o755))
	old := `{"version":1,"seq":1,"enqueued_at":"2026-11-26T10:30:01Z","sample":{"id":"r1","label":3,"model_label":8,"model_probabilities":[0.25,0.75],"model_version":"r0-x","round":2,"created_at":"2026-11-26T10:30:00.5Z","session":"s\u003c1\u003e"},"input_ext":".json","input":"Nw=="}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, pendingDirName, "r1.json"), []byte(old), 0o644))
	next := dadctest.NewFlagger[int](nil)
	o, err := NewOutbox(dir, next, JSONCodec[int](), nil)
	require.NoError(t, err)
	require.NoError(t, o.Flush(t.Context()))
	require.NoError(t, o.Close())
	want := recordSample()
	want.CreatedAt = want.CreatedAt.UTC()
	assert.Equal(t, []dadc.Sample[int]{want}, next.Stored())
}
