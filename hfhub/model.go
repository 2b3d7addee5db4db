package hfhub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Standard file names of a published model.
const (
	ModelWeightsFile = "model.safetensors"
	ModelConfigFile  = "config.json"
	ModelCardFile    = "README.md"
)

// PushModelOptions configure PushModel. nil means the defaults.
type PushModelOptions struct {
	// Private creates the repo private if it does not exist yet.
	Private bool
	// Revision is the branch to commit to; default "main".
	Revision string
	// Summary is the commit title; default "Upload model with advspace".
	Summary string
}

// PushModel publishes a model to the model repo id in one commit, creating
// the repo if needed. files maps repo paths to contents and must hold at
// least one *.safetensors weights file and config.json (valid JSON);
// README.md (the model card) is generated when absent. Files that did not
// change are not uploaded again.
func PushModel(ctx context.Context, c *Client, id RepoID, files map[string][]byte, opts *PushModelOptions) (*CommitInfo, error) {
	var o PushModelOptions
	if opts != nil {
		o = *opts
	}
	if o.Summary == "" {
		o.Summary = "Upload model with advspace"
	}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(files))
	hasWeights := false
	for p := range files {
		if _, err := CleanPath(p); err != nil {
			return nil, err
		}
		if strings.HasSuffix(p, ".safetensors") {
			hasWeights = true
		}
		paths = append(paths, p)
	}
	if !hasWeights {
		return nil, fmt.Errorf("%w: push model: no *.safetensors weights file (want %s)", ErrInvalidOperation, ModelWeightsFile)
	}
	cfg, ok := files[ModelConfigFile]
	if !ok {
		return nil, fmt.Errorf("%w: push model: %s is missing", ErrInvalidOperation, ModelConfigFile)
	}
	if !json.Valid(cfg) {
		return nil, fmt.Errorf("%w: push model: %s is not valid JSON", ErrInvalidOperation, ModelConfigFile)
	}
	if _, ok := files[ModelCardFile]; !ok {
		paths = append(paths, ModelCardFile)
	}
	sort.Strings(paths)
	ops := make([]Operation, 0, len(paths))
	for _, p := range paths {
		content, ok := files[p]
		if !ok && p == ModelCardFile {
			content = defaultModelCard(id)
		}
		ops = append(ops, AddBytes(p, content))
	}
	if _, err := c.CreateRepo(ctx, Model, id, &CreateRepoOptions{Private: o.Private, ExistOK: true}); err != nil {
		return nil, fmt.Errorf("hfhub: push model: %w", err)
	}
	return c.CreateCommit(ctx, Model, id, o.Revision, ops, &CommitOptions{Summary: o.Summary})
}

// PushModelDir publishes the files of a local folder like PushModel (top
// level files only; sub-folders are ignored).
func PushModelDir(ctx context.Context, c *Client, id RepoID, dir string, opts *PushModelOptions) (*CommitInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("hfhub: push model: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("hfhub: push model: %w", err)
		}
		files[e.Name()] = b
	}
	return PushModel(ctx, c, id, files, opts)
}

func defaultModelCard(id RepoID) []byte {
	return []byte(fmt.Sprintf(`---
library_name: advspace
tags:
- advspace
- dynamic-adversarial-data-collection
---

# %s

Model weights in safetensors format, published with advspace.
`, id.Name))
}

// LoadModelFile downloads one file of a model repo (e.g. model.safetensors)
// into memory, verifying its size and hash.
func LoadModelFile(ctx context.Context, c *Client, id RepoID, revision, filename string) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := c.Download(ctx, Model, id, revision, filename, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
