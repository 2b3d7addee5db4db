// Command mnist-bench measures the MNIST network's speed on this machine and,
// when Debian's python3-torch is installed, the PyTorch anchor in the same
// run, and prints the ratio table:
//
//	go run ./examples/mnist-bench [-torch auto|off|PYTHON] [-steps 400] [-json]
//
// It measures training (batch 64, Adam, dropout, through mnist.Train on the
// full MNIST training set), single-image prediction latency and allocations,
// batch prediction (1,000 images per call, all cores), and preprocessing of
// the web page's snapshot (84x84, as the page sends it and as the canvas's
// own PNG of the same drawing) and of a 280x280 and a 4000x4000 PNG
// drawing. The PyTorch side is torch_baseline.py (the seed's network in
// torch, 2 threads, SGD, one epoch), embedded in this command. Absolute
// times drift with the machine's load: compare the ratios, which come from
// one run. Preprocessing and single-image prediction are the best of five
// runs each, and also report CPU time per operation, which a busy machine
// disturbs less than wall time.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/internal/cputime"
	"github.com/advspace/advspace/internal/kernels"
	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/mnistdata"
)

//go:embed torch_baseline.py
var torchBaseline []byte

// pageSnapshot is what the web page sends to predict, captured from
// Chromium: a seven drawn with the page's pen on its white canvas, scaled
// to 84x84 and encoded by the page itself as an 8-bit greyscale PNG with
// no filter and stored (uncompressed) deflate blocks, 7,208 bytes.
//
//go:embed page-snapshot-84.png
var pageSnapshot []byte

// canvasSnapshot is the same 84x84 canvas as Chromium's own PNG encoder
// writes it (canvas.toDataURL, the same bytes as toBlob): 8-bit RGBA,
// filtered and deflate-compressed, 2,091 bytes. The page sent this before it
// encoded its own; its luminance is pageSnapshot's, pixel for pixel.
//
//go:embed canvas-rgba-84.png
var canvasSnapshot []byte

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var usage usageError
		switch {
		case errors.Is(err, flag.ErrHelp):
			return // -h: the usage is printed
		case errors.As(err, &usage):
			os.Exit(2) // the flag package printed what is wrong and the usage
		}
		fmt.Fprintln(os.Stderr, "mnist-bench:", err)
		os.Exit(1)
	}
}

// usageError is a command line the flag package refused (it has said why).
type usageError struct{ error }

// goFigures are the Go side's measurements.
type goFigures struct {
	TrainSamplesPerS  float64 `json:"train_samples_per_s"`
	PredictLatencyUS  float64 `json:"infer_latency_us"`
	PredictAllocs     float64 `json:"infer_allocs"`
	PredictIntoAllocs float64 `json:"infer_into_allocs"`
	BatchImagesPerS   float64 `json:"batch_infer_per_s"`
	PredictCPUUS      float64 `json:"infer_cpu_us"`
	Preprocess84MS    float64 `json:"preprocess_84_ms"`     // the page's snapshot (grey PNG)
	Preprocess84CPU   float64 `json:"preprocess_84_cpu_ms"` // the page's snapshot (grey PNG)
	// The same drawing as the canvas's own RGBA PNG.
	PreprocessRGBA84MS  float64 `json:"preprocess_84_rgba_ms"`
	PreprocessRGBA84CPU float64 `json:"preprocess_84_rgba_cpu_ms"`
	Preprocess280MS     float64 `json:"preprocess_280_ms"`
	Preprocess4000MS    float64 `json:"preprocess_4000_ms"`
	Preprocess280CPU    float64 `json:"preprocess_280_cpu_ms"`
	Preprocess4000CPU   float64 `json:"preprocess_4000_cpu_ms"`
	// The 4000x4000 drawing again, scaled up smoothly (bilinear) rather
	// than by repeating pixels, so that few rows repeat the one above.
	PreprocessSmoothMS  float64 `json:"preprocess_4000_smooth_ms"`
	PreprocessSmoothCPU float64 `json:"preprocess_4000_smooth_cpu_ms"`
	Kernels             string  `json:"kernels"`
	GOMAXPROCS          int     `json:"gomaxprocs"`
}

// torchFigures are torch_baseline.py's output.
type torchFigures struct {
	Framework        string  `json:"framework"`
	Threads          int     `json:"threads"`
	TrainSamplesPerS float64 `json:"train_samples_per_s"`
	InferLatencyUS   float64 `json:"infer_latency_us"`
	BatchInferPerS   float64 `json:"batch_infer_per_s"`
	TestAcc          float64 `json:"test_acc"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mnist-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	torch := fs.String("torch", "auto", `PyTorch anchor: "auto" (run it when /usr/bin/python3 has torch), "off", or a python3 path`)
	steps := fs.Int("steps", 400, "training steps to time (batch 64)")
	asJSON := fs.Bool("json", false, "print the figures as one JSON object instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *torch != "auto" && *torch != "off" {
		// An anchor asked for by name must work: checked before the
		// minute of Go timings, not after.
		if out, err := exec.CommandContext(ctx, *torch, "-c", "import torch").CombinedOutput(); err != nil {
			return fmt.Errorf("-torch %s cannot import torch (%v%s); give a python3 that has it (Debian: apt-get install -y python3-torch), -torch auto or -torch off",
				*torch, err, strings.TrimSpace(" "+lastLine(out)))
		}
	}
	if *steps < 20 {
		return fmt.Errorf("-steps %d is too few to time; use at least 20", *steps)
	}
	dir, err := mnistdata.Dir(ctx)
	if err != nil {
		return fmt.Errorf("finding the MNIST data: %w", err)
	}
	train, test, err := mnist.LoadDataDir(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "kernels: %s, GOMAXPROCS %d\n", kernels.Features(), runtime.GOMAXPROCS(0))
	var g goFigures
	g.Kernels, g.GOMAXPROCS = kernels.Features(), runtime.GOMAXPROCS(0)
	fmt.Fprintln(stderr, "timing Go training...")
	if g.TrainSamplesPerS, err = timeTraining(ctx, train, *steps); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "timing Go prediction...")
	if err := timePrediction(ctx, test, &g); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "timing preprocessing...")
	if err := timePreprocessing(test, &g); err != nil {
		return err
	}
	var tf *torchFigures
	if py := pythonFor(*torch); py != "" {
		fmt.Fprintln(stderr, "running the PyTorch anchor (one epoch)...")
		if tf, err = runTorch(ctx, py, dir); err != nil {
			fmt.Fprintf(stderr, "PyTorch anchor failed, showing Go figures only: %v\n", err)
		}
	} else if *torch != "off" {
		fmt.Fprintln(stderr, "PyTorch not found (apt-get install -y python3-torch); showing Go figures only")
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"go": g, "torch": tf})
	}
	printTable(stdout, &g, tf)
	return nil
}

// timeTraining trains for steps batches of 64 and returns samples/s over
// all but the first 10 steps (which build the graph and warm the caches).
func timeTraining(ctx context.Context, train *mnist.Dataset, steps int) (float64, error) {
	const warm = 10
	var start time.Time
	var end time.Time
	cfg := &mnist.TrainConfig{Steps: steps, Seed: 1, Progress: func(p mnist.TrainProgress) {
		if p.EpochDone {
			return
		}
		switch p.Step {
		case warm:
			start = time.Now()
		case steps:
			end = time.Now()
		}
	}}
	if _, err := mnist.Train(ctx, nil, train, cfg); err != nil {
		return 0, fmt.Errorf("training: %w", err)
	}
	return float64((steps-warm)*mnist.DefaultBatchSize) / end.Sub(start).Seconds(), nil
}

func timePrediction(ctx context.Context, test *mnist.Dataset, g *goFigures) error {
	w, err := mnist.Pretrained()
	if err != nil {
		return err
	}
	m, err := mnist.NewModel(w, nil)
	if err != nil {
		return err
	}
	// Single images, one after the other, as the web app's requests.
	for i := range 200 {
		if _, err := m.PredictPixels(ctx, test.Pixels(i)); err != nil {
			return err
		}
	}
	// The best of five runs, as for preprocessing, which the page's snapshot
	// is compared with.
	const reps = 20000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	wall, cpu, err := bestOfFive(reps, func(i int) error {
		_, err := m.PredictPixels(ctx, test.Pixels(i%test.Len()))
		return err
	})
	if err != nil {
		return err
	}
	runtime.ReadMemStats(&after)
	g.PredictLatencyUS, g.PredictCPUUS = wall.Seconds()*1e6, cpu.Seconds()*1e6
	g.PredictAllocs = float64(after.Mallocs-before.Mallocs) / reps
	// The allocation-free path: one Prediction reused, as a server's worker can.
	var p dadc.Prediction
	runtime.ReadMemStats(&before)
	for i := range reps / 10 {
		if err := m.PredictPixelsInto(ctx, test.Pixels(i%test.Len()), &p); err != nil {
			return err
		}
	}
	runtime.ReadMemStats(&after)
	g.PredictIntoAllocs = float64(after.Mallocs-before.Mallocs) / (reps / 10)
	// Batches of 1,000, as torch_baseline.py.
	ins := make([]*image.Gray, test.Len())
	for i := range ins {
		ins[i] = test.Gray(i)
	}
	best := time.Duration(1 << 62)
	for range 3 {
		t0 := time.Now()
		for lo := 0; lo < len(ins); lo += 1000 {
			if _, err := m.PredictBatch(ctx, ins[lo:min(lo+1000, len(ins))]); err != nil {
				return err
			}
		}
		best = min(best, time.Since(t0))
	}
	g.BatchImagesPerS = float64(len(ins)) / best.Seconds()
	return nil
}

// drawing returns a PNG of MNIST test digit i drawn black on a white,
// opaque side x side canvas (as a browser canvas snapshot), scaled to 70%
// of the canvas: by repeating pixels, or smoothly (bilinear), which leaves
// few rows equal to the one above.
func drawing(test *mnist.Dataset, i, side int, smooth bool) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	px := test.Pixels(i)
	digit := side * 7 / 10
	off := (side - digit) / 2
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= mnist.Side || y >= mnist.Side {
			return 0
		}
		return float64(px[y*mnist.Side+x])
	}
	for y := range side {
		for x := range side {
			v := uint8(0)
			if dx, dy := x-off, y-off; dx >= 0 && dy >= 0 && dx < digit && dy < digit {
				if smooth {
					fx := (float64(dx)+0.5)*mnist.Side/float64(digit) - 0.5
					fy := (float64(dy)+0.5)*mnist.Side/float64(digit) - 0.5
					x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
					ax, ay := fx-float64(x0), fy-float64(y0)
					top := at(x0, y0)*(1-ax) + at(x0+1, y0)*ax
					bottom := at(x0, y0+1)*(1-ax) + at(x0+1, y0+1)*ax
					v = uint8(math.Round(top*(1-ay) + bottom*ay))
				} else {
					v = px[(dy*mnist.Side/digit)*mnist.Side+dx*mnist.Side/digit]
				}
			}
			img.SetNRGBA(x, y, color.NRGBA{255 - v, 255 - v, 255 - v, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// timePreprocessing times mnist.Preprocess on the web page's snapshot (its
// canvas scaled down to 84x84: as the page encodes it, and as Chromium's
// canvas encodes it) and on drawings encoded by image/png: 280x280, the
// page's canvas at full size, and 4000x4000.
func timePreprocessing(test *mnist.Dataset, g *goFigures) error {
	for _, c := range []struct {
		name       string
		snapshot   []byte // or a drawing of side x side pixels
		side, reps int
		smooth     bool
		dst, cpu   *float64
	}{
		{"the page's snapshot", pageSnapshot, 0, 20000, false, &g.Preprocess84MS, &g.Preprocess84CPU},
		{"the canvas's RGBA snapshot", canvasSnapshot, 0, 20000, false, &g.PreprocessRGBA84MS, &g.PreprocessRGBA84CPU},
		{"the 280x280 drawing", nil, 280, 1000, false, &g.Preprocess280MS, &g.Preprocess280CPU},
		{"the 4000x4000 drawing", nil, 4000, 10, false, &g.Preprocess4000MS, &g.Preprocess4000CPU},
		{"the smooth 4000x4000 drawing", nil, 4000, 10, true, &g.PreprocessSmoothMS, &g.PreprocessSmoothCPU},
	} {
		data := c.snapshot
		if data == nil {
			var err error
			if data, err = drawing(test, 0, c.side, c.smooth); err != nil {
				return err
			}
		}
		if _, err := mnist.Preprocess(data, nil); err != nil {
			return fmt.Errorf("preprocessing %s: %w", c.name, err)
		}
		wall, cpu, err := bestOfFive(c.reps, func(int) error {
			_, err := mnist.Preprocess(data, nil)
			return err
		})
		if err != nil {
			return err
		}
		*c.dst, *c.cpu = wall.Seconds()*1e3, cpu.Seconds()*1e3
	}
	return nil
}

// bestOfFive calls fn reps times (with i from 0 to reps-1) in five runs of
// reps/5 and returns the fastest run's wall and CPU time per call: a busy
// machine only ever slows a run down.
func bestOfFive(reps int, fn func(i int) error) (wall, cpu time.Duration, err error) {
	wall, cpu = time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	n := reps / 5
	for run := range 5 {
		t0, c0 := time.Now(), cpuTime()
		for i := run * n; i < (run+1)*n; i++ {
			if err := fn(i); err != nil {
				return 0, 0, err
			}
		}
		wall = min(wall, time.Since(t0)/time.Duration(n))
		cpu = min(cpu, (cpuTime()-c0)/time.Duration(n))
	}
	return wall, cpu, nil
}

// cpuTime returns the CPU time the process has used so far, or 0 where it
// is not known (the CPU column then reads 0).
func cpuTime() time.Duration {
	d, _ := cputime.Process()
	return d
}

// lastLine returns the last non-empty line of out.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// pythonFor returns the python3 to run the anchor with, or "" for none.
func pythonFor(flagValue string) string {
	switch flagValue {
	case "off":
		return ""
	case "auto":
		py := "/usr/bin/python3"
		if exec.Command(py, "-c", "import torch").Run() != nil {
			return ""
		}
		return py
	default:
		return flagValue
	}
}

func runTorch(ctx context.Context, python, dataDir string) (*torchFigures, error) {
	tmp, err := os.MkdirTemp("", "mnist-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	script := filepath.Join(tmp, "torch_baseline.py")
	if err := os.WriteFile(script, torchBaseline, 0o600); err != nil {
		return nil, err
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, python, script, dataDir, "--threads", fmt.Sprint(runtime.GOMAXPROCS(0)))
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, bytes.TrimSpace(errOut.Bytes()))
	}
	var tf torchFigures
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &tf); err != nil {
		return nil, fmt.Errorf("reading the anchor's output %q: %w", out.String(), err)
	}
	if tf.TrainSamplesPerS <= 0 || tf.InferLatencyUS <= 0 || tf.BatchInferPerS <= 0 {
		return nil, errors.New("the anchor's output lacks figures")
	}
	return &tf, nil
}

func printTable(w io.Writer, g *goFigures, tf *torchFigures) {
	fmt.Fprintf(w, "kernels: %s, GOMAXPROCS %d", g.Kernels, g.GOMAXPROCS)
	if tf != nil {
		fmt.Fprintf(w, "; anchor: %s, %d threads", tf.Framework, tf.Threads)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | advspace | PyTorch | advspace / PyTorch | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	row := func(name, ours, theirs, ratio, target string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, ours, theirs, ratio, target)
	}
	var tTrain, tLat, tBatch, rTrain, rLat, rBatch = "", "", "", "", "", ""
	if tf != nil {
		tTrain = fmt.Sprintf("%.0f samples/s", tf.TrainSamplesPerS)
		tLat = fmt.Sprintf("%.1f µs", tf.InferLatencyUS)
		tBatch = fmt.Sprintf("%.0f images/s", tf.BatchInferPerS)
		rTrain = fmt.Sprintf("%.2f×", g.TrainSamplesPerS/tf.TrainSamplesPerS)
		rLat = fmt.Sprintf("%.3f× (time)", g.PredictLatencyUS/tf.InferLatencyUS)
		rBatch = fmt.Sprintf("%.2f×", g.BatchImagesPerS/tf.BatchInferPerS)
	}
	row("training, batch 64", fmt.Sprintf("%.0f samples/s", g.TrainSamplesPerS), tTrain, rTrain, "≥ 1.5×")
	row("single-image predict", fmt.Sprintf("%.1f µs (CPU %.1f µs), %.0f allocs (%.0f reusing a Prediction)", g.PredictLatencyUS, g.PredictCPUUS, g.PredictAllocs, g.PredictIntoAllocs), tLat, rLat, "≤ 0.1×")
	row("batch predict", fmt.Sprintf("%.0f images/s", g.BatchImagesPerS), tBatch, rBatch, "≥ 3×")
	snapshot := func(name string, ms, cpu float64) {
		row(name, fmt.Sprintf("%.1f µs (CPU %.1f µs)", ms*1e3, cpu*1e3), "", fmt.Sprintf("%.2f× our predict", ms*1e3/g.PredictLatencyUS), "< 1× our predict")
	}
	snapshot("preprocessing the page's snapshot (84×84 grey PNG, stored blocks, as the page encodes it)", g.Preprocess84MS, g.Preprocess84CPU)
	snapshot("… the same canvas as Chromium's RGBA PNG (toBlob, as the page sent before)", g.PreprocessRGBA84MS, g.PreprocessRGBA84CPU)
	row("preprocessing a 280×280 PNG", fmt.Sprintf("%.2f ms (CPU %.2f ms)", g.Preprocess280MS, g.Preprocess280CPU), "", "", "≤ 0.5 ms")
	row("preprocessing a 4000×4000 PNG", fmt.Sprintf("%.1f ms (CPU %.1f ms)", g.Preprocess4000MS, g.Preprocess4000CPU), "", "", "≤ 40 ms")
	row("… the same, scaled up smoothly", fmt.Sprintf("%.1f ms (CPU %.1f ms)", g.PreprocessSmoothMS, g.PreprocessSmoothCPU), "", "", "≤ 40 ms")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Times are wall-clock; CPU is the process's CPU time per operation (it includes the garbage collector's share).")
}
