package flag

import (
	"context"
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goodRow = `{"file_name":"a.png","id":"a","label":1,"model_label":2,"model_probabilities":[0.1,0.9],"model_version":"v","round":0,"created_at":"2026-11-26T10:00:00Z","session":""}` + "\n"

func goodFolder() fstest.MapFS {
	return fstest.MapFS{
		"README.md":                        {Data: []byte(DefaultCard)},
		"data/s1/metadata.jsonl":           {Data: []byte(goodRow)},
		"data/s1/a.png":                    {Data: []byte("png")},
		"data/s2/metadata.jsonl":           {Data: []byte(`{"file_name":"b.png","id":"b","label":3,"model_label":2,"model_probabilities":[1],"model_version":"v","round":1,"created_at":"2026-11-26T10:00:00Z","session":null}` + "\n")},
		"data/s2/b.png":                    {Data: []byte("png")},
		"data/s2/.tmp-c.png-1":             {Data: []byte("hidden files are ignored")},
		"data/.advspace.lock":              {Data: nil},
		"data/__pycache__/x.png":           {Data: []byte("ignored")},
		".cache/huggingface/advspace.lock": {Data: nil},
		"data/s1/.cache/whatever":          {Data: nil},
	}
}

func TestCheckImageFolder(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m fstest.MapFS)
		want   string // "" = valid
	}{
		{"valid", func(fstest.MapFS) {}, ""},
		{"no card", func(m fstest.MapFS) { delete(m, "README.md") }, "README.md"},
		{"card without front matter", func(m fstest.MapFS) { m["README.md"] = &fstest.MapFile{Data: []byte("# hi\n")} }, "front matter"},
		{"card with other path", func(m fstest.MapFS) {
			m["README.md"] = &fstest.MapFile{Data: []byte("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: \"*.csv\"\n---\n")}
		}, "data/"},
		{"missing metadata", func(m fstest.MapFS) { delete(m, "data/s1/metadata.jsonl") }, "data/s1/metadata.jsonl"},
		{"empty metadata", func(m fstest.MapFS) { m["data/s1/metadata.jsonl"] = &fstest.MapFile{} }, "no rows"},
		{"torn line", func(m fstest.MapFS) {
			m["data/s1/metadata.jsonl"] = &fstest.MapFile{Data: []byte(goodRow[:len(goodRow)-1])}
		}, "torn"},
		{"not JSON", func(m fstest.MapFS) { m["data/s1/metadata.jsonl"] = &fstest.MapFile{Data: []byte(goodRow + "oops\n")} }, "not a JSON object"},
		{"absolute file_name", func(m fstest.MapFS) {
			m["data/s1/metadata.jsonl"] = &fstest.MapFile{Data: []byte(`{"file_name":"/a.png","id":"a","label":1,"model_label":2,"model_probabilities":[0.1],"model_version":"v","round":0,"created_at":"x","session":""}` + "\n")}
		}, "relative"},
		{"escaping file_name", func(m fstest.MapFS) {
			m["data/s1/metadata.jsonl"] = &fstest.MapFile{Data: []byte(`{"file_name":"../s2/b.png","id":"a","label":1,"model_label":2,"model_probabilities":[0.1],"model_version":"v","round":0,"created_at":"x","session":""}` + "\n")}
		}, ".."},
		{"URL file_name", func(m fstest.MapFS) {
			m["data/s1/metadata.jsonl"] = &fstest.MapFile{Data: []byte(`{"file_name":"http://x/a.png","id":"a","label":1,"model_label":2,"model_probabilities":[0.1],"model_version":"v","round":0,"created_at":"x","session":""}` + "\n")}
		}, "URL"},
		{"missing image", func(m fstest.MapFS) { delete(m, "data/s1/a.png") }, "a.png"},
		{"image without row", func(m fstest.MapFS) { m["data/s1/z.png"] = &fstest.MapFile{Data: []byte("png")} }, "without a metadata row"},
		{"different columns", func(m fstest.MapFS) {
			m["data/s2/metadata.jsonl"] = &fstest.MapFile{Data: []byte(`{"file_name":"b.png","id":"b","label":3}` + "\n")}
		}, "columns differ"},
		{"different types", func(m fstest.MapFS) {
			m["data/s2/metadata.jsonl"] = &fstest.MapFile{Data: []byte(`{"file_name":"b.png","id":"b","label":"3","model_label":2,"model_probabilities":[1],"model_version":"v","round":1,"created_at":"x","session":""}` + "\n")}
		}, "label is string"},
		{"duplicate id", func(m fstest.MapFS) {
			m["data/s2/metadata.jsonl"] = &fstest.MapFile{Data: []byte(`{"file_name":"b.png","id":"a","label":3,"model_label":2,"model_probabilities":[1],"model_version":"v","round":1,"created_at":"x","session":""}` + "\n")}
		}, "already used"},
		{"file directly in data", func(m fstest.MapFS) { m["data/x.png"] = &fstest.MapFile{Data: []byte("png")} }, "directly under data/"},
		{"nested folder", func(m fstest.MapFS) { m["data/s1/sub/c.png"] = &fstest.MapFile{Data: []byte("png")} }, "sub-folder"},
		{"second metadata file", func(m fstest.MapFS) { m["data/s1/metadata.csv"] = &fstest.MapFile{Data: []byte("file_name\n")} }, "second metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := goodFolder()
			tt.modify(m)
			sum, err := CheckImageFolder(m)
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, 2, sum.Shards)
				assert.Equal(t, 2, sum.Rows)
				assert.Equal(t, sortedMetadataColumns(), sum.Columns)
				return
			}
			require.ErrorIs(t, err, ErrNotImageFolder)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// sortedMetadataColumns is MetadataColumns in sorted order.
func sortedMetadataColumns() []string {
	return []string{"created_at", "file_name", "id", "label", "model_label", "model_probabilities", "model_version", "round", "session"}
}

func TestDirLayoutPassesImageFolderCheck(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	for shard := range 3 {
		d, err := NewDir(root, GrayPNG(), nil) // a new shard per Dir, as per process
		require.NoError(t, err)
		for i := range 5 {
			s := testSample(shard*10 + i)
			if i == 0 {
				s.Session = "" // empty session still has the column
			}
			require.NoError(t, d.Flag(ctx, s))
		}
		require.NoError(t, d.Close())
	}
	sum, err := CheckImageFolder(os.DirFS(root))
	require.NoError(t, err)
	assert.Equal(t, 3, sum.Shards)
	assert.Equal(t, 15, sum.Rows)
	assert.ElementsMatch(t, MetadataColumns(), sum.Columns)
}
