package flag_test

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/flag"
	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

func digit(level uint8) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range g.Pix {
		g.Pix[i] = level
	}
	return g
}

func sample(id string, label, modelLabel int) dadc.Sample[*image.Gray] {
	return dadc.Sample[*image.Gray]{Input: digit(200), SampleMeta: dadc.SampleMeta{
		ID: id, Label: label, ModelLabel: modelLabel,
		ModelProbabilities: []float64{0.1, 0.9}, ModelVersion: "r0-demo",
		CreatedAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	}}
}

// A Dir stores flags as a Hugging Face ImageFolder dataset.
func ExampleNewDir() {
	root, _ := os.MkdirTemp("", "example-dir-")
	defer os.RemoveAll(root)
	ctx := context.Background()

	d, err := flag.NewDir(root, flag.GrayPNG(), &flag.DirOptions{Shard: "server-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = d.Flag(ctx, sample("a1", 7, 1))
	_ = d.Flag(ctx, sample("a1", 7, 1)) // same ID: stored once
	_ = d.Flag(ctx, sample("a2", 3, 8))
	fmt.Println("stored:", d.Count())
	_ = d.Close()

	meta, _ := os.ReadFile(filepath.Join(root, "data", "server-1", "metadata.jsonl"))
	fmt.Print(string(meta))
	sum, err := flag.CheckImageFolder(os.DirFS(root))
	fmt.Println("shards:", sum.Shards, "rows:", sum.Rows, "valid:", err == nil)
	// Output:
	// stored: 2
	// {"file_name":"a1.png","id":"a1","label":7,"model_label":1,"model_probabilities":[0.1,0.9],"model_version":"r0-demo","round":0,"created_at":"2026-11-26T12:00:00Z","session":""}
	// {"file_name":"a2.png","id":"a2","label":3,"model_label":8,"model_probabilities":[0.1,0.9],"model_version":"r0-demo","round":0,"created_at":"2026-11-26T12:00:00Z","session":""}
	// shards: 1 rows: 2 valid: true
}

// An Outbox acknowledges at once and delivers in the background, retrying
// while the next handler fails.
func ExampleNewOutbox() {
	dir, _ := os.MkdirTemp("", "example-outbox-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	calls := 0
	unreliable := flag.Func[*image.Gray](func(_ context.Context, s dadc.Sample[*image.Gray]) error {
		calls++ // one worker: calls never overlap
		if calls <= 2 {
			return fmt.Errorf("503 service unavailable")
		}
		fmt.Println("delivered", s.ID)
		return nil
	})
	o, err := flag.NewOutbox(dir, unreliable, flag.GrayPNG(), &flag.OutboxOptions{MinBackoff: time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer o.Close()
	_ = o.Flag(ctx, sample("b1", 2, 5))
	if err := o.Flush(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("backlog:", o.Backlog(), "failed attempts:", o.Failed())
	// Output:
	// delivered b1
	// backlog: 0 failed attempts: 2
}

// A Log writes one CSV row per flag, like Gradio's CSVLogger.
func ExampleNewLog() {
	dir, _ := os.MkdirTemp("", "example-log-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "flags.csv")

	l, err := flag.NewLog(path, flag.CSV, flag.GrayPNG(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = l.Flag(context.Background(), sample("c1", 4, 9))
	_ = l.Close()
	data, _ := os.ReadFile(path)
	fmt.Printf("%.148s...\n", data) // the input column is the PNG in base64
	// Output:
	// id,label,model_label,model_probabilities,model_version,round,created_at,session,input
	// c1,4,9,"[0.1,0.9]",r0-demo,0,2026-11-26T12:00:00Z,,iVBORw0KGgo...
}

// FanOut reports which handlers failed.
func ExampleNewFanOut() {
	ok := flag.Func[*image.Gray](func(context.Context, dadc.Sample[*image.Gray]) error { return nil })
	down := flag.Func[*image.Gray](func(context.Context, dadc.Sample[*image.Gray]) error {
		return fmt.Errorf("connection refused")
	})
	err := flag.NewFanOut(ok, down).Flag(context.Background(), sample("d1", 1, 2))
	fmt.Println(err)
	// Output:
	// flag: fan-out flag: 1 of 2 handlers failed; [1] dadc.FlaggerFunc[*image.Gray]: connection refused
}

// A Hub in front of a local Dir: flags are acknowledged once on local disk,
// and pushed to a Hub dataset in batched commits (here forced by Flush).
// Parts are closed in the reverse order of construction.
func ExampleNewHub() {
	srv := hubtest.NewServer(nil) // stands in for https://huggingface.co
	defer srv.Close()
	root, _ := os.MkdirTemp("", "example-hub-")
	defer os.RemoveAll(root)

	client, err := hfhub.NewClient(&hfhub.Options{Endpoint: srv.URL(), Token: hubtest.DefaultToken})
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := flag.NewDir(root, flag.GrayPNG(), &flag.DirOptions{Shard: "server-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dir.Close()
	ctx := context.Background()
	// Samples stored while no Hub was configured (or it was down) ...
	for _, id := range []string{"h1", "h2", "h3"} {
		if err := dir.Flag(ctx, sample(id, 7, 1)); err != nil {
			fmt.Println(err)
			return
		}
	}
	// ... are pushed by the Hub it gets, in one commit.
	repo := hfhub.RepoID{Namespace: hubtest.DefaultUser, Name: "mnist-adversarial"}
	hub, err := flag.NewHub(client, repo, dir, &flag.HubOptions{MaxBatch: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hub.Close()
	if err := hub.Flush(ctx); err != nil {
		fmt.Println(err)
		return
	}
	// New flags go through the Hub: durable in the Dir at once, on the Hub
	// with the next batch (every Interval, MaxBatch flags, or Flush).
	if err := hub.Flag(ctx, sample("h4", 7, 1)); err != nil {
		fmt.Println(err)
		return
	}
	if err := hub.Flush(ctx); err != nil {
		fmt.Println(err)
		return
	}
	meta, _ := srv.File("dataset", repo.String(), "main", "data/server-1/metadata.jsonl")
	fmt.Println("pending:", hub.Pending(), "commits:", hub.Commits(), "rows on the Hub:", strings.Count(string(meta), "\n"))
	// Output:
	// pending: 0 commits: 2 rows on the Hub: 4
}
