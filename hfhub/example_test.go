package hfhub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

// Create a dataset repo, commit an image (LFS) and its metadata in one
// commit, and read the metadata back. The fake Hub of hubtest stands in for
// https://huggingface.co.
func Example() {
	srv := hubtest.NewServer(nil)
	defer srv.Close()
	ctx := context.Background()

	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: srv.URL(), Token: hubtest.DefaultToken})
	if err != nil {
		panic(err)
	}
	id, err := hfhub.ParseRepoID("hubtest/flags")
	if err != nil {
		panic(err)
	}
	repo := c.Repo(hfhub.Dataset, id)
	url, err := repo.Create(ctx, &hfhub.CreateRepoOptions{ExistOK: true})
	if err != nil {
		panic(err)
	}
	info, err := repo.CreateCommit(ctx, "Add one sample", []hfhub.Operation{
		hfhub.AddBytes("data/s1/a.png", []byte("\x89PNG\r\n\x1a\n...")),
		hfhub.AddBytes("data/s1/metadata.jsonl", []byte(`{"file_name": "a.png", "label": 7}`+"\n")),
	}, nil)
	if err != nil {
		panic(err)
	}
	var meta bytes.Buffer
	if _, err := repo.Download(ctx, "data/s1/metadata.jsonl", &meta); err != nil {
		panic(err)
	}
	fmt.Println(strings.TrimPrefix(url, srv.URL()))
	fmt.Println("LFS uploads:", info.Uploaded)
	fmt.Print(meta.String())
	// Output:
	// /datasets/hubtest/flags
	// LFS uploads: 1
	// {"file_name": "a.png", "label": 7}
}

func ExampleParseRepoID() {
	_, err := hfhub.ParseRepoID("alice/my--data")
	fmt.Println(errors.Is(err, hfhub.ErrInvalidRepoID))
	fmt.Println(err)
	// Output:
	// true
	// hfhub: invalid repo id "alice/my--data": "--" and ".." are not allowed
}

// Publish safetensors weights with their config and load them back.
func ExamplePushModel() {
	srv := hubtest.NewServer(nil)
	defer srv.Close()
	ctx := context.Background()
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: srv.URL(), Token: hubtest.DefaultToken})
	if err != nil {
		panic(err)
	}
	id := hfhub.RepoID{Namespace: "hubtest", Name: "mnist"}
	weights := []byte("safetensors bytes")
	repo := c.Repo(hfhub.Model, id)
	if _, err := hfhub.PushModel(ctx, repo, map[string][]byte{
		hfhub.ModelWeightsFile: weights,
		hfhub.ModelConfigFile:  []byte(`{"architecture": "mnist-cnn"}`),
	}, nil); err != nil {
		panic(err)
	}
	got, err := repo.ReadFile(ctx, hfhub.ModelWeightsFile)
	if err != nil {
		panic(err)
	}
	fmt.Println(bytes.Equal(got, weights))
	// Output:
	// true
}
