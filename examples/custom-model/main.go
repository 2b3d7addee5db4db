// Command custom-model runs the whole dadc loop with a model that has nothing
// to do with images: a nearest-prototype (1-NN) classifier of points in the unit
// square, with a flagger that is a plain function appending JSON lines to a
// file. It shows what it takes to plug your own parts into package dadc:
//
//   - a type that implements dadc.Model[Point] (Predict, Version) and the
//     optional dadc.Trainer[Point] (Train returns a new model);
//   - a dadc.FlaggerFunc that stores a sample durably (written and synced)
//     before returning nil;
//   - a clean test set for the gate and a retrain policy.
//
// Simulated people submit random points with their true class; the points
// the model gets wrong are flagged, every -retrain-every flags a retrain
// runs in the background, and the candidate serves only if it passes the
// gate. At the end the program prints the loop's statistics as JSON.
//
// Usage:
//
//	go run ./examples/custom-model [-submissions 400] [-retrain-every 20] [-seed 1] [-data DIR]
//	go run ./examples/custom-model -http 127.0.0.1:8080 [-retrain-every 20] [-data DIR]
//
// The simulation is deterministic for a given seed. With -http the program
// serves the same model and loop over the same HTTP API as the MNIST app
// (package dadchttp), with a point as JSON instead of a drawing:
//
//	curl -s -d '{"point": {"x": 0.42, "y": 0.3}}' -H 'Content-Type: application/json' localhost:8080/api/predict
//	curl -s -d '{"point": {"x": 0.42, "y": 0.3}, "label": 1}' -H 'Content-Type: application/json' localhost:8080/api/flag
//	curl -s localhost:8080/api/stats
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/advspace/advspace/dadc"
)

// Point is the model's input: two features in [0,1).
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// classes names the classes; the true class of a point is truth(p).
var classes = []string{"west", "south-east", "north-east"}

// truth is the ground truth the simulated people know: the west band, and the
// east split at y = 0.5, with a north-east corner that reaches south.
func truth(p Point) int {
	switch {
	case p.X < 0.4:
		return 0
	case p.Y >= 0.5 || (p.X > 0.85 && p.Y > 0.3):
		return 2
	default:
		return 1
	}
}

// prototype is a labelled point the model compares inputs with.
type prototype struct {
	P     Point
	Label int
}

// ProtoModel classifies a point by its nearest prototype. Retraining adds the
// adversarial samples as prototypes. It is immutable, hence safe for
// concurrent Predict, and Train returns a new model.
type ProtoModel struct {
	version string
	protos  []prototype
}

var (
	_ dadc.Model[Point]   = (*ProtoModel)(nil)
	_ dadc.Trainer[Point] = (*ProtoModel)(nil)
)

// newProtoModel returns a model whose prototypes are the training points.
func newProtoModel(version string, train []dadc.Example[Point]) *ProtoModel {
	m := &ProtoModel{version: version}
	for _, e := range train {
		m.protos = append(m.protos, prototype{e.Input, e.Label})
	}
	return m
}

// Version names the model.
func (m *ProtoModel) Version() string { return m.version }

// Predict returns, per class, a softmax over minus the distance to the
// class's nearest prototype (scaled so that close calls stay uncertain).
func (m *ProtoModel) Predict(ctx context.Context, p Point) (dadc.Prediction, error) {
	if err := ctx.Err(); err != nil {
		return dadc.Prediction{}, err
	}
	if math.IsNaN(p.X) || math.IsNaN(p.Y) {
		return dadc.Prediction{}, errors.New("custom-model: the point has a NaN coordinate")
	}
	nearest := make([]float64, len(classes))
	for c := range nearest {
		nearest[c] = math.Inf(1)
	}
	for _, q := range m.protos {
		nearest[q.Label] = min(nearest[q.Label], math.Hypot(p.X-q.P.X, p.Y-q.P.Y))
	}
	pred := dadc.Prediction{Probabilities: make([]float64, len(classes)), ModelVersion: m.version}
	sum := 0.0
	for c, d := range nearest {
		pred.Probabilities[c] = math.Exp(-20 * d) // Exp(-Inf) = 0 for a class without prototypes
		sum += pred.Probabilities[c]
	}
	for c := range pred.Probabilities {
		pred.Probabilities[c] /= sum
		if pred.Probabilities[c] > pred.Probabilities[pred.Label] {
			pred.Label = c
		}
	}
	return pred, nil
}

// Train returns a new model with every adversarial sample added as a prototype.
func (m *ProtoModel) Train(ctx context.Context, req dadc.TrainRequest[Point]) (dadc.Model[Point], error) {
	next := &ProtoModel{version: req.Version, protos: slices.Clone(m.protos)}
	for i, s := range req.Samples {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next.protos = append(next.protos, prototype{s.Input, s.Label})
		if req.Progress != nil {
			req.Progress(float64(i+1) / float64(len(req.Samples)))
		}
	}
	return next, nil
}

// jsonlFlagger returns a Flagger that appends each sample as a JSON line to
// path and syncs the file before acknowledging. Samples whose ID is already
// in the file are not written again.
func jsonlFlagger(path string) (dadc.FlaggerFunc[Point], func() error, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the sample log: %w", err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var row struct{ ID string }
		if err := json.Unmarshal(sc.Bytes(), &row); err == nil {
			seen[row.ID] = true
		}
	}
	if err := sc.Err(); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("reading the sample log: %w", err)
	}
	var mu sync.Mutex
	flag := func(ctx context.Context, s dadc.Sample[Point]) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		row := struct {
			dadc.Sample[Point]
			X float64 `json:"x"`
			Y float64 `json:"y"`
		}{s, s.Input.X, s.Input.Y}
		line, err := json.Marshal(row)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[s.ID] {
			return nil
		}
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("sample log: %w", err)
		}
		// A failed write or sync may leave part of the line behind; cut the
		// file back so that the next sample does not land on a torn line.
		if _, err := f.Write(append(line, '\n')); err != nil {
			_ = f.Truncate(st.Size())
			return fmt.Errorf("writing sample %s: %w", s.ID, err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Truncate(st.Size())
			return fmt.Errorf("syncing sample %s: %w", s.ID, err)
		}
		seen[s.ID] = true
		return nil
	}
	return flag, f.Close, nil
}

func randomPoints(rng *rand.Rand, n int) []dadc.Example[Point] {
	out := make([]dadc.Example[Point], n)
	for i := range out {
		p := Point{rng.Float64(), rng.Float64()}
		out[i] = dadc.Example[Point]{Input: p, Label: truth(p)}
	}
	return out
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code (2: bad usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("custom-model", flag.ContinueOnError)
	fs.SetOutput(stderr)
	submissions := fs.Int("submissions", 400, "how many points the simulated people submit")
	every := fs.Int("retrain-every", 20, "retrain after this many flags in a round")
	seed := fs.Uint64("seed", 1, "random seed (the run is deterministic for a seed)")
	dataDir := fs.String("data", "", "folder for samples.jsonl (default: a temporary folder, removed at the end)")
	verbose := fs.Bool("v", false, "log the loop's steps to stderr")
	httpAddr := fs.String("http", "", "serve the model over the HTTP API on this address (host:port) instead of simulating people")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h asked for the usage, which is printed
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "custom-model: "+format+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, "unexpected arguments %q; see -h", fs.Args())
	}
	if *submissions < 1 || *every < 1 {
		return fail(2, "-submissions and -retrain-every must be at least 1")
	}
	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "custom-model-*")
		if err != nil {
			return fail(1, "%v", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(1, "%v", err)
	}

	rng := rand.New(rand.NewPCG(*seed, 42))
	model := newProtoModel("proto-r0", randomPoints(rng, 30))
	flagger, closeLog, err := jsonlFlagger(filepath.Join(dir, "samples.jsonl"))
	if err != nil {
		return fail(1, "%v", err)
	}
	defer closeLog()

	logger := slog.New(slog.DiscardHandler)
	if *verbose || *httpAddr != "" {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	loop, err := dadc.NewLoop[Point](model, flagger, dadc.EveryN(*every), len(classes), &dadc.Options[Point]{
		CleanTest:  randomPoints(rng, 1000),
		Logger:     logger,
		NewVersion: func(round int) string { return fmt.Sprintf("proto-r%d", round) },
	})
	if err != nil {
		return fail(1, "%v", err)
	}
	if *httpAddr != "" {
		if err := serve(ctx, *httpAddr, loop, logger, nil); err != nil {
			return fail(1, "%v", err)
		}
		return 0
	}
	// Collect the retrain outcomes as they happen; the channel closes at Close.
	events, cancelEvents := loop.Subscribe(64)
	defer cancelEvents()
	var outcomes []string
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for e := range events {
			switch e.Kind {
			case dadc.EventModelPromoted, dadc.EventModelRejected, dadc.EventRetrainFailed:
				outcomes = append(outcomes, fmt.Sprintf("round %d: %s (clean accuracy %.3f, held-out adversarial accuracy %.3f)",
					e.Round, e.Message, e.CleanAccuracy, e.AdversarialAccuracy))
			}
		}
	}()

	for i := range *submissions {
		// People probe near the boundaries, where they suspect the model is weak.
		p := Point{rng.Float64(), rng.Float64()}
		if i%2 == 0 {
			p.X = 0.4 + 0.1*(rng.Float64()-0.5)
		}
		res, err := loop.Flag(ctx, p, truth(p), fmt.Sprintf("person-%d", i%7))
		if err != nil {
			_ = loop.Close(context.Background())
			return fail(1, "flag %d: %v", i, err)
		}
		if res.Retraining {
			// People are slower than this trainer: let the retrain finish
			// before the next submission, so that the run is deterministic.
			if err := loop.WaitIdle(ctx); err != nil {
				_ = loop.Close(context.Background())
				return fail(1, "%v", err)
			}
		}
	}
	if err := loop.WaitIdle(ctx); err != nil {
		_ = loop.Close(context.Background())
		return fail(1, "%v", err)
	}
	st := loop.Stats()
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := loop.Close(closeCtx); err != nil {
		return fail(1, "%v", err)
	}
	<-collected
	for _, line := range outcomes {
		fmt.Fprintln(stdout, line)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return fail(1, "%v", err)
	}
	return 0
}
