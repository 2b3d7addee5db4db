package hfhub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
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

// Any URL that goes into an error, a log line or a page first loses its
// credentials.
func ExampleRedactURL() {
	fmt.Println(hfhub.RedactURL("http://user:hf_abc@hub.example/api?token=hf_abc&recursive=true"))
	fmt.Println(hfhub.RedactURL("https://s3.example/obj?X-Amz-Signature=f00&partNumber=2"))
	// Output:
	// http://REDACTED@hub.example/api?token=REDACTED&recursive=true
	// https://s3.example/obj?X-Amz-Signature=REDACTED&partNumber=2
}

// Upload a local folder into a folder of a dataset repo on a branch; the
// local path has its own type, so it cannot be swapped with the repo path.
func ExampleRepo_UploadFolder() {
	srv := hubtest.NewServer(nil)
	defer srv.Close()
	ctx := context.Background()
	c, err := hfhub.NewClient(&hfhub.Options{Endpoint: srv.URL(), Token: hubtest.DefaultToken})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "flags")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "metadata.jsonl"), []byte(`{"file_name": "a.png", "label": 7}`+"\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	repo := c.Repo(hfhub.Dataset, hfhub.RepoID{Namespace: hubtest.DefaultUser, Name: "flags"})
	if _, err := repo.Create(ctx, nil); err != nil {
		log.Fatal(err)
	}
	info, err := repo.UploadFolder(ctx, hfhub.LocalPath(dir), &hfhub.UploadFolderOptions{PathInRepo: "data/shard-1"})
	if err != nil {
		log.Fatal(err)
	}
	files, err := repo.ListTree(ctx, "data/shard-1", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Empty, len(files), files[0].Path)
	// Output: false 1 data/shard-1/metadata.jsonl
}
