package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// GitBlobOID returns the git object id of a blob holding content:
// sha1("blob <len>\x00" + content), the oid the Hub reports for regular files.
func GitBlobOID(content []byte) string {
	return gitObjectOID("blob", content)
}

// SHA256 returns the lowercase hex SHA-256 of content, the oid of an LFS object.
func SHA256(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

// LFSPointer returns the git LFS pointer text stored in git for an LFS file.
func LFSPointer(sha256Hex string, size int64) []byte {
	return []byte("version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256Hex + "\nsize " + strconv.FormatInt(size, 10) + "\n")
}

func gitObjectOID(kind string, content []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s %d\x00", kind, len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// blob is one file at one commit. For an LFS file data holds the pointer text
// (what git stores) and lfs the object it points to.
type blob struct {
	data []byte
	oid  string
	lfs  *lfsRef
}

type lfsRef struct {
	sha256 string
	size   int64
}

// size is the size users see: the real content size for LFS files.
func (b *blob) size() int64 {
	if b.lfs != nil {
		return b.lfs.size
	}
	return int64(len(b.data))
}

func newRegularBlob(content []byte) *blob {
	return &blob{data: content, oid: GitBlobOID(content)}
}

func newLFSBlob(sha string, size int64) *blob {
	ptr := LFSPointer(sha, size)
	return &blob{data: ptr, oid: GitBlobOID(ptr), lfs: &lfsRef{sha256: sha, size: size}}
}

// commit is an immutable snapshot of a whole tree.
type commit struct {
	oid         string
	parent      string
	files       map[string]*blob
	summary     string
	description string
	author      string
	at          time.Time
	changed     []string
	dirOIDs     map[string]string // directory path ("" = root) → git tree oid
}

func newCommit(parent string, files map[string]*blob, summary, description, author string, at time.Time, changed []string) *commit {
	dirs := treeOIDs(files)
	var b strings.Builder
	fmt.Fprintf(&b, "tree %s\n", dirs[""])
	if parent != "" {
		fmt.Fprintf(&b, "parent %s\n", parent)
	}
	sig := fmt.Sprintf("%s <%s@users.noreply.huggingface.co> %d +0000", author, author, at.Unix())
	fmt.Fprintf(&b, "author %s\ncommitter %s\n\n%s\n", sig, sig, summary)
	if description != "" {
		fmt.Fprintf(&b, "\n%s\n", description)
	}
	sort.Strings(changed)
	return &commit{
		oid: gitObjectOID("commit", []byte(b.String())), parent: parent, files: files,
		summary: summary, description: description, author: author, at: at,
		changed: changed, dirOIDs: dirs,
	}
}

// treeOIDs computes real git tree object ids for every directory of files.
func treeOIDs(files map[string]*blob) map[string]string {
	type node struct {
		files map[string]*blob
		dirs  map[string]*node
	}
	newNode := func() *node { return &node{files: map[string]*blob{}, dirs: map[string]*node{}} }
	root := newNode()
	for p, b := range files {
		parts := strings.Split(p, "/")
		n := root
		for _, d := range parts[:len(parts)-1] {
			child, ok := n.dirs[d]
			if !ok {
				child = newNode()
				n.dirs[d] = child
			}
			n = child
		}
		n.files[parts[len(parts)-1]] = b
	}
	out := map[string]string{}
	var hash func(prefix string, n *node) string
	hash = func(prefix string, n *node) string {
		type entry struct {
			sortKey, mode, name string
			oid                 string
		}
		var entries []entry
		for name, b := range n.files {
			entries = append(entries, entry{name, "100644", name, b.oid})
		}
		for name, child := range n.dirs {
			entries = append(entries, entry{name + "/", "40000", name, hash(path.Join(prefix, name), child)})
		}
		// git sorts tree entries by name, directories compared as if they ended with "/".
		sort.Slice(entries, func(i, j int) bool { return entries[i].sortKey < entries[j].sortKey })
		var buf []byte
		for _, e := range entries {
			raw, _ := hex.DecodeString(e.oid)
			buf = append(buf, e.mode+" "+e.name+"\x00"...)
			buf = append(buf, raw...)
		}
		oid := gitObjectOID("tree", buf)
		out[prefix] = oid
		return oid
	}
	hash("", root)
	return out
}

// isBinarySample reports whether a content sample looks binary: a NUL byte or
// invalid UTF-8. truncated says the sample is a prefix of a longer content, so
// a multi-byte rune cut at the end is not held against it.
func isBinarySample(sample []byte, truncated bool) bool {
	for _, c := range sample {
		if c == 0 {
			return true
		}
	}
	if utf8.Valid(sample) {
		return false
	}
	if truncated {
		// Drop up to 3 trailing bytes of an incomplete rune and try again.
		for cut := 1; cut <= 3 && cut <= len(sample); cut++ {
			if utf8.Valid(sample[:len(sample)-cut]) {
				return false
			}
		}
	}
	return true
}

// validRepoPath checks a path inside a repo the way the Hub does: relative,
// no empty, "." or ".." component, no ".git" component, no backslash.
func validRepoPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is absolute; paths in a repo are relative to its root", p)
	case strings.Contains(p, "\\"):
		return fmt.Errorf("path %q contains a backslash; use / as separator", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q contains a NUL byte", p)
	}
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "":
			return fmt.Errorf("path %q has an empty component (double or trailing slash)", p)
		case ".", "..":
			return fmt.Errorf("path %q contains a %q component", p, part)
		case ".git":
			return fmt.Errorf("path %q contains a .git component, which is forbidden", p)
		}
	}
	return nil
}

// matchGitPattern matches a .gitignore/.gitattributes pattern against a
// slash-separated file path. A pattern without a slash (other than a trailing
// one) matches the base name at any depth; otherwise it is anchored at the
// root. "**" matches any number of components.
func matchGitPattern(pattern, p string) bool {
	pattern = strings.TrimSuffix(pattern, "/")
	if pattern == "" {
		return false
	}
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, path.Base(p))
		return ok
	}
	pattern = strings.TrimPrefix(pattern, "/")
	return matchSegments(strings.Split(pattern, "/"), strings.Split(p, "/"))
}

func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return len(segs) > 0
			}
			for i := 0; i <= len(segs); i++ {
				if matchSegments(rest, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// lfsTracked reports whether .gitattributes text marks p as filter=lfs.
// The last matching line that mentions the filter attribute wins.
func lfsTracked(gitattributes, p string) bool {
	tracked := false
	for _, line := range strings.Split(gitattributes, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if strings.HasSuffix(fields[0], "/") || !matchGitPattern(fields[0], p) {
			continue
		}
		for _, attr := range fields[1:] {
			switch {
			case attr == "filter=lfs":
				tracked = true
			case strings.HasPrefix(attr, "filter="), attr == "-filter", attr == "!filter":
				tracked = false
			}
		}
	}
	return tracked
}

// gitIgnored reports whether .gitignore text ignores p (or one of its parent
// directories). Last match wins; "!" negates.
func gitIgnored(gitignore, p string) bool {
	ignored := false
	parts := strings.Split(p, "/")
	for _, line := range strings.Split(gitignore, "\n") {
		line = strings.TrimRight(line, " \r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		negate := strings.HasPrefix(line, "!")
		pattern := strings.TrimPrefix(line, "!")
		dirOnly := strings.HasSuffix(pattern, "/")
		match := false
		// A directory pattern matches any parent directory; a plain one also the file itself.
		for i := 1; i <= len(parts); i++ {
			if i == len(parts) && dirOnly {
				break
			}
			if matchGitPattern(pattern, strings.Join(parts[:i], "/")) {
				match = true
				break
			}
		}
		if match {
			ignored = !negate
		}
	}
	return ignored
}

// DefaultGitAttributes is the .gitattributes the Hub puts in a new model or
// space repo: common binary formats go to LFS.
const DefaultGitAttributes = `*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lfs.* filter=lfs diff=lfs merge=lfs -text
*.lz4 filter=lfs diff=lfs merge=lfs -text
*.mds filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
`

// DefaultDatasetGitAttributes is the .gitattributes the Hub puts in a new
// dataset repo: DefaultGitAttributes plus audio, image and video formats, so
// every PNG or JPEG in a dataset is stored with LFS whatever its size.
const DefaultDatasetGitAttributes = DefaultGitAttributes + `# Audio files - uncompressed
*.pcm filter=lfs diff=lfs merge=lfs -text
*.sam filter=lfs diff=lfs merge=lfs -text
*.raw filter=lfs diff=lfs merge=lfs -text
# Audio files - compressed
*.aac filter=lfs diff=lfs merge=lfs -text
*.flac filter=lfs diff=lfs merge=lfs -text
*.mp3 filter=lfs diff=lfs merge=lfs -text
*.ogg filter=lfs diff=lfs merge=lfs -text
*.wav filter=lfs diff=lfs merge=lfs -text
# Image files - uncompressed
*.bmp filter=lfs diff=lfs merge=lfs -text
*.gif filter=lfs diff=lfs merge=lfs -text
*.png filter=lfs diff=lfs merge=lfs -text
*.tiff filter=lfs diff=lfs merge=lfs -text
# Image files - compressed
*.jpg filter=lfs diff=lfs merge=lfs -text
*.jpeg filter=lfs diff=lfs merge=lfs -text
*.webp filter=lfs diff=lfs merge=lfs -text
# Video files - compressed
*.mp4 filter=lfs diff=lfs merge=lfs -text
*.webm filter=lfs diff=lfs merge=lfs -text
`
