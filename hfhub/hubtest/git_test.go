package hubtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGitObjectIDs(t *testing.T) {
	// Value from huggingface_hub's utils/sha.py docstring.
	assert.Equal(t, "b45ef6fec89518d314f546fd6c3025367b721684", GitBlobOID([]byte("Hello, World!")))
	assert.Equal(t, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", GitBlobOID(nil))
	assert.Equal(t, "4b825dc642cb6eb9a060e54bf8d69288fbee4904", treeOIDs(map[string]*blob{})[""], "the empty tree")
	assert.Len(t, LFSPointer(strings.Repeat("a", 64), 48213), 130, "a pointer for a 5-digit size is 130 bytes")
}

// TestTreeOIDsMatchGit compares our tree ids with git's own when git is installed.
func TestTreeOIDsMatchGit(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	files := map[string][]byte{
		"README.md": []byte("# hi\n"), "data/s1/metadata.jsonl": []byte("{}\n"), "data/s1/a.png": []byte("png"),
		"data-x.txt": []byte("sorts between data and data/"), "data/z.txt": []byte("z"),
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	blobs := map[string]*blob{}
	for p, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), content, 0o644))
		blobs[p] = newRegularBlob(content)
		assert.Equal(t, git("hash-object", p), blobs[p].oid)
	}
	git("add", "-A")
	assert.Equal(t, git("write-tree"), treeOIDs(blobs)[""])
	assert.Equal(t, git("rev-parse", git("write-tree")+":data/s1"), treeOIDs(blobs)["data/s1"])
}

func TestGitPatterns(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"*.png", "a.png", true},
		{"*.png", "data/s1/a.png", true},
		{"*.png", "a.png.txt", false},
		{"*.tar.*", "x.tar.gz", true},
		{"*tfevents*", "runs/events.out.tfevents.123", true},
		{"saved_model/**/*", "saved_model/v1/vars/x", true},
		{"saved_model/**/*", "other/saved_model/x", false},
		{"/top.txt", "top.txt", true},
		{"/top.txt", "sub/top.txt", false},
		{"data/*.csv", "data/a.csv", true},
		{"data/*.csv", "data/sub/a.csv", false},
		{"**/logs", "a/b/logs", true},
		{"logs/**", "logs/a/b", true},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, matchGitPattern(tt.pattern, tt.path), "%s vs %s", tt.pattern, tt.path)
	}

	attrs := "*.png filter=lfs diff=lfs merge=lfs -text\nsmall/*.png -filter\n*.bin filter=lfs\n# *.txt filter=lfs\n"
	assert.True(t, lfsTracked(attrs, "a/b.png"))
	assert.False(t, lfsTracked(attrs, "small/b.png"), "a later line unsets the filter")
	assert.False(t, lfsTracked(attrs, "a.txt"), "comments are ignored")
	assert.True(t, lfsTracked(DefaultDatasetGitAttributes, "data/x.jpeg"))
	assert.False(t, lfsTracked(DefaultGitAttributes, "data/x.jpeg"))
	assert.False(t, lfsTracked(DefaultDatasetGitAttributes, "data/metadata.jsonl"))

	ignore := "*.log\n!keep.log\nbuild/\n/root-only\n"
	for p, want := range map[string]bool{
		"a.log": true, "x/keep.log": false, "build/out/x": true, "build": false,
		"root-only": true, "sub/root-only": false, "src/main.go": false,
	} {
		assert.Equal(t, want, gitIgnored(ignore, p), p)
	}
}

func TestBinarySample(t *testing.T) {
	euro := []byte("price: 10€")
	tests := []struct {
		name      string
		sample    []byte
		truncated bool
		want      bool
	}{
		{"text", []byte("hello\n"), false, false},
		{"NUL byte", []byte("he\x00llo"), false, true},
		{"invalid utf-8", []byte{0xff, 0xfe, 'a'}, false, true},
		{"utf-8", euro, false, false},
		{"rune cut at the sample end", euro[:len(euro)-1], true, false},
		{"rune cut but not truncated", euro[:len(euro)-1], false, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, isBinarySample(tt.sample, tt.truncated), tt.name)
	}
}

func TestValidRepoPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"a.txt": true, "data/s1/a.png": true, ".gitattributes": true, ".github/x": true,
		"": false, "/a": false, "a//b": false, "a/": false, "./a": false, "a/../b": false,
		".git": false, "x/.git/config": false, `a\b`: false,
	} {
		assert.Equal(t, ok, validRepoPath(p) == nil, "%q", p)
	}
}
