package flag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

// FolderSummary describes a dataset folder that CheckImageFolder accepted.
type FolderSummary struct {
	// Shards is the number of shard folders under data/.
	Shards int
	// Rows is the number of metadata rows (examples) in all shards.
	Rows int
	// Columns are the metadata columns, sorted.
	Columns []string
}

// imageExts are the extensions the datasets ImageFolder builder treats as images.
var imageExts = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".bmp": true,
	".webp": true, ".tif": true, ".tiff": true,
}

// CheckImageFolder checks a dataset folder (for instance os.DirFS(dir.Root()),
// or files fetched from the Hub into an fstest.MapFS) against the rules that
// the Hugging Face datasets ImageFolder loader and dataset viewer apply to the
// layout Dir writes, for both the old (< 3.4, image-driven) and the new
// (metadata-driven) loader:
//
//   - README.md has YAML front matter with a "default" config whose train
//     split has the path "data/**";
//   - every visible entry of data/ is a shard folder with a metadata.jsonl and
//     no sub-folders (metadata files cannot sit below image folders);
//   - every metadata line is a complete JSON object whose file_name is
//     relative to its folder (not absolute, no "..", no "://") and names a
//     file that exists there;
//   - every row of every shard has the same columns with the same JSON types;
//   - every image file in a shard has a row, and no ID appears twice.
//
// It returns all problems found, joined, in an error wrapping ErrNotImageFolder.
func CheckImageFolder(fsys fs.FS) (FolderSummary, error) {
	var (
		sum      FolderSummary
		problems []error
		schema   map[string]string // column → JSON type, from the first row
		schemaAt string
		ids      = make(map[string]string)
	)
	report := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if card, err := fs.ReadFile(fsys, "README.md"); err != nil {
		report("README.md: %v", err)
	} else if err := checkCardConfigs(card); err != nil {
		report("README.md: %v", err)
	}

	entries, err := fs.ReadDir(fsys, DataDir)
	if err != nil {
		report("%s: %v", DataDir, err)
	}
	for _, e := range entries {
		if hidden(e.Name()) {
			continue
		}
		shard := path.Join(DataDir, e.Name())
		if !e.IsDir() {
			report("%s: a file directly under data/ has no metadata folder; put it in a shard folder", shard)
			continue
		}
		sum.Shards++
		files, err := fs.ReadDir(fsys, shard)
		if err != nil {
			report("%s: %v", shard, err)
			continue
		}
		present := make(map[string]bool, len(files))
		for _, f := range files {
			switch {
			case hidden(f.Name()):
			case f.IsDir():
				report("%s/%s: sub-folder inside a shard (images there would not match this shard's metadata)", shard, f.Name())
			case f.Name() != MetadataFile && strings.HasPrefix(f.Name(), "metadata."):
				report("%s/%s: a second metadata file; all metadata files must be %s", shard, f.Name(), MetadataFile)
			default:
				present[f.Name()] = true
			}
		}
		metaPath := path.Join(shard, MetadataFile)
		data, err := fs.ReadFile(fsys, metaPath)
		if err != nil {
			report("%s: %v", metaPath, err)
			continue
		}
		if len(bytes.TrimSpace(data)) == 0 {
			report("%s: has no rows; remove the empty shard folder", metaPath)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			report("%s: the last line is torn (no newline at the end)", metaPath)
		}
		referenced := make(map[string]bool)
		for i, line := range bytes.Split(data, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			at := fmt.Sprintf("%s:%d", metaPath, i+1)
			var row map[string]any
			if err := json.Unmarshal(line, &row); err != nil {
				report("%s: not a JSON object: %v", at, err)
				continue
			}
			sum.Rows++
			types := make(map[string]string, len(row))
			for k, v := range row {
				types[k] = jsonType(v)
			}
			if schema == nil {
				schema, schemaAt = types, at
			} else if diff := schemaDiff(schema, types); diff != "" {
				report("%s: columns differ from %s (%s); the loader needs identical features in every metadata file", at, schemaAt, diff)
			}
			name, ok := row["file_name"].(string)
			switch {
			case !ok || name == "":
				report("%s: file_name is missing or not a string", at)
				continue
			case path.IsAbs(name) || strings.HasPrefix(name, "/") || strings.Contains(name, `\`):
				report("%s: file_name %q must be relative to the metadata folder", at, name)
				continue
			case strings.Contains(name, "://"):
				report("%s: file_name %q must be a path, not a URL", at, name)
				continue
			case slices.Contains(strings.Split(name, "/"), ".."):
				report("%s: file_name %q must not contain ..", at, name)
				continue
			}
			if referenced[name] {
				report("%s: file_name %q has two rows", at, name)
			}
			referenced[name] = true
			if _, err := fs.Stat(fsys, path.Join(shard, name)); err != nil {
				report("%s: file_name %q: %v", at, name, err)
			}
			if id, ok := row["id"].(string); ok {
				if prev, dup := ids[id]; dup {
					report("%s: id %q is already used at %s", at, id, prev)
				} else {
					ids[id] = at
				}
			}
		}
		for name := range present {
			if imageExts[strings.ToLower(path.Ext(name))] && !referenced[name] {
				report("%s/%s: image without a metadata row (the datasets loader < 3.4 rejects it)", shard, name)
			}
		}
	}
	for k := range schema {
		sum.Columns = append(sum.Columns, k)
	}
	slices.Sort(sum.Columns)
	if len(problems) > 0 {
		return sum, fmt.Errorf("%w: %w", ErrNotImageFolder, errors.Join(problems...))
	}
	return sum, nil
}

// hidden reports whether the datasets loader ignores a file or folder name.
func hidden(name string) bool { return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "__") }

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "list"
	default:
		return "object"
	}
}

// schemaDiff describes how two rows' columns differ; "" when they agree. A
// null agrees with any type (the loader reads it as a missing value).
func schemaDiff(want, got map[string]string) string {
	var diffs []string
	for k, t := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, "missing "+k)
		case g != t && g != "null" && t != "null":
			diffs = append(diffs, fmt.Sprintf("%s is %s, not %s", k, g, t))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+k)
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, ", ")
}

var (
	frontMatterRe = regexp.MustCompile(`(?s)\A---\r?\n(.*?)\r?\n---\r?\n`)
	cardLineRes   = []*regexp.Regexp{
		regexp.MustCompile(`(?m)^configs:\s*$`),
		regexp.MustCompile(`(?m)^-\s+config_name:\s*["']?default["']?\s*$`),
		regexp.MustCompile(`(?m)^\s+data_files:\s*$`),
		regexp.MustCompile(`(?m)^\s+-\s+split:\s*["']?train["']?\s*$`),
		regexp.MustCompile(`(?m)^\s+path:\s*["']?data/\*\*["']?\s*$`),
	}
)

// checkCardConfigs checks the configs YAML of a dataset card, line by line in
// the shape DefaultCard uses (the package has no YAML parser).
func checkCardConfigs(card []byte) error {
	m := frontMatterRe.FindSubmatch(card)
	if m == nil {
		return errors.New("no YAML front matter (the card must start with a --- block)")
	}
	yaml := m[1]
	for _, re := range cardLineRes {
		loc := re.FindIndex(yaml)
		if loc == nil {
			return fmt.Errorf("front matter lacks a line matching %q (configs: default config, train split, path \"data/**\")", re.String())
		}
		yaml = yaml[loc[1]:] // the next line must come after this one
	}
	return nil
}
