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
	// Summary is the commit title; default "Upload model with advspace".
	Summary string
}

// PushModel publishes a model to the model repo r (on its branch, "" =
// main) in one commit, creating the repo if needed. files maps repo paths to
// contents and must hold at least one *.safetensors weights file and
// config.json (valid JSON); README.md (the model card) is generated when
// absent. Files that did not change are not uploaded again. A repo of
// another type than Model gives ErrInvalidOperation.
func PushModel(ctx context.Context, r Repo, files map[string][]byte, opts *PushModelOptions) (*CommitInfo, error) {
	var o PushModelOptions
	if opts != nil {
		o = *opts
	}
	if o.Summary == "" {
		o.Summary = "Upload model with advspace"
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	if r.typ != Model {
		return nil, fmt.Errorf("%w: push model: %s is not a model repo", ErrInvalidOperation, r)
	}
	id := r.id
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
	if _, err := r.Create(ctx, &CreateRepoOptions{Private: o.Private, ExistOK: true}); err != nil {
		return nil, fmt.Errorf("hfhub: push model: %w", err)
	}
	return r.CreateCommit(ctx, o.Summary, ops, nil)
}

// PushModelDir publishes the files of the local folder dir like PushModel
// (top level files only; sub-folders and hidden files are ignored).
func PushModelDir(ctx context.Context, r Repo, dir LocalPath, opts *PushModelOptions) (*CommitInfo, error) {
	entries, err := os.ReadDir(string(dir))
	if err != nil {
		return nil, fmt.Errorf("hfhub: push model: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(string(dir), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("hfhub: push model: %w", err)
		}
		files[e.Name()] = b
	}
	return PushModel(ctx, r, files, opts)
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

// ReadFile downloads the file at path (e.g. "model.safetensors") at r's
// revision ("" = main) into memory, verifying its size and hash like
// Download.
func (r Repo) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := r.Download(ctx, path, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
