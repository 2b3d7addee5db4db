package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/mnistdata"
)

// simConfig is what one simulation plays.
type simConfig struct {
	Rounds        int
	Families      []family
	FlagsPerRound int
	Seed          int64
	Out           string
	Short         bool
	Verbose       bool
	DataDir       string
	Stderr        io.Writer
	// NoGate promotes every candidate (a GateFunc that always says yes).
	NoGate bool
	// FineTune overrides the retrain recipe's defaults (zero fields keep them).
	FineTune mnist.FineTuneConfig
}

// roundResult is one line of the simulator's table: one pass of a family's
// drawings followed by a retrain (pass 0: the start).
type roundResult struct {
	Pass int `json:"pass"`
	// LoopRound is the loop's round after the pass (it advances only on promotion).
	LoopRound int    `json:"loop_round"`
	Family    string `json:"family,omitempty"`
	Submitted int    `json:"submitted"`
	Flags     int    `json:"flags"`
	// ErrorRate is Flags/Submitted: how often the round's drawings fooled the serving model.
	ErrorRate float64 `json:"error_rate"`
	// Decision is "promoted", "rejected" or "failed" (empty for round 0).
	Decision string `json:"decision,omitempty"`
	// Reason is the gate's recorded reason.
	Reason       string  `json:"reason,omitempty"`
	ModelVersion string  `json:"model_version"`
	RetrainSecs  float64 `json:"retrain_seconds,omitempty"`
	// CleanAccuracy is the serving model's accuracy on the clean test images after the round.
	CleanAccuracy float64 `json:"clean_accuracy"`
	// Unseen maps each family to the serving model's accuracy on its unseen drawings after the round.
	Unseen map[string]float64 `json:"unseen"`
}

// simReport is the JSON file's content.
type simReport struct {
	Families     []string      `json:"families"`
	Passes       int           `json:"passes"`
	FlagsPerPass int           `json:"flags_per_pass"`
	Seed         int64         `json:"seed"`
	Short        bool          `json:"short"`
	CleanImages  int           `json:"clean_images"`
	UnseenImages int           `json:"unseen_images_per_family"`
	Results      []roundResult `json:"results"`
}

// memFlagger keeps flagged samples in memory (the simulator's people need no durability).
type memFlagger struct {
	mu sync.Mutex
	n  int
}

func (f *memFlagger) Flag(ctx context.Context, s dadc.Sample[*image.Gray]) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return ctx.Err()
}

func simulate(ctx context.Context, cfg simConfig, stdout io.Writer) (*simReport, error) {
	dir := cfg.DataDir
	if dir == "" {
		d, err := mnistdata.Dir(ctx)
		if err != nil {
			return nil, err
		}
		dir = d
	}
	train, test, err := mnist.LoadDataDir(dir)
	if err != nil {
		return nil, err
	}
	drawnN, unseenN, cleanN := 3000, 1000, test.Len()
	if cfg.Short {
		drawnN, unseenN, cleanN = 1500, 300, 2000
	}
	clean := test
	if cleanN < test.Len() {
		clean = test.Subset(rand.New(rand.NewSource(cfg.Seed)).Perm(test.Len())[:cleanN])
	}
	// Families come from the last 15,000 training digits; each family splits
	// its own shuffle of them into disjoint drawn and unseen parts.
	const srcFrom = 45000
	fams := make([]drawings, 0, len(cfg.Families))
	seen := map[string]bool{}
	for i, f := range cfg.Families {
		if seen[f.name] {
			continue
		}
		seen[f.name] = true
		perm := rand.New(rand.NewSource(cfg.Seed + int64(i)*7919)).Perm(train.Len() - srcFrom)
		for k := range perm {
			perm[k] += srcFrom
		}
		fams = append(fams, makeDrawings(f, train, perm[:drawnN], perm[drawnN:drawnN+unseenN], cfg.Seed+int64(i)))
	}
	byName := map[string]*drawings{}
	for i := range fams {
		byName[fams[i].family.name] = &fams[i]
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.Verbose {
		logger = slog.New(slog.NewTextHandler(cfg.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	w, err := mnist.Pretrained()
	if err != nil {
		return nil, err
	}
	ft := cfg.FineTune
	ft.Seed = cfg.Seed
	model, err := mnist.NewModel(w, &mnist.ModelOptions{Replay: train, FineTune: &ft, Logger: logger})
	if err != nil {
		return nil, err
	}
	loop, cleanup, err := newSimLoop(model, clean, cfg, logger)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	defer func() { _ = loop.Close(context.WithoutCancel(ctx)) }()

	rep := &simReport{Passes: cfg.Rounds, FlagsPerPass: cfg.FlagsPerRound, Seed: cfg.Seed, Short: cfg.Short,
		CleanImages: clean.Len(), UnseenImages: unseenN}
	for _, f := range fams {
		rep.Families = append(rep.Families, f.family.name)
	}
	measure := func(r *roundResult) error {
		m, ok := loop.Model().(*mnist.Model)
		if !ok {
			return fmt.Errorf("the loop serves a %T, want *mnist.Model", loop.Model())
		}
		r.ModelVersion = m.Version()
		ev, err := m.EvaluateDataset(ctx, clean)
		if err != nil {
			return err
		}
		r.CleanAccuracy = ev.Accuracy
		r.Unseen = map[string]float64{}
		for _, f := range fams {
			ev, err := m.EvaluateDataset(ctx, f.unseen)
			if err != nil {
				return err
			}
			r.Unseen[f.family.name] = ev.Accuracy
		}
		return nil
	}
	start := roundResult{}
	if err := measure(&start); err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, start)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "pass\tround\tfamily\tsubmitted\tflags\terror%\tdecision\tretrain s\tclean%"
	for _, f := range fams {
		header += "\tunseen " + f.family.name + "%"
	}
	fmt.Fprintln(tw, header+"\t")
	printRow(tw, start, fams)

	cursor := map[string]int{}
	for r := 1; r <= cfg.Rounds; r++ {
		f := byName[cfg.Families[(r-1)%len(cfg.Families)].name]
		res := roundResult{Pass: r, Family: f.family.name}
		for res.Flags < cfg.FlagsPerRound && cursor[f.family.name] < f.drawn.Len() {
			i := cursor[f.family.name]
			cursor[f.family.name]++
			fr, err := loop.Flag(ctx, f.drawn.Gray(i), int(f.drawn.Labels[i]), "sim")
			if err != nil {
				return nil, err
			}
			res.Submitted++
			if fr.Fooled {
				res.Flags++
			}
		}
		if res.Submitted > 0 {
			res.ErrorRate = float64(res.Flags) / float64(res.Submitted)
		}
		if res.Flags == 0 {
			return nil, fmt.Errorf("round %d: no drawing of family %s fooled the model (%d submitted); nothing to retrain on", r, f.family.name, res.Submitted)
		}
		t0 := time.Now()
		if err := loop.Retrain(ctx); err != nil {
			return nil, fmt.Errorf("round %d: %w", r, err)
		}
		if err := loop.WaitIdle(ctx); err != nil {
			return nil, err
		}
		res.RetrainSecs = time.Since(t0).Seconds()
		st := loop.Stats()
		res.Decision, res.Reason = lastDecision(st)
		res.LoopRound = st.Round
		if err := measure(&res); err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, res)
		printRow(tw, res, fams)
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	for _, r := range rep.Results[1:] {
		if r.Reason != "" {
			fmt.Fprintf(stdout, "pass %d %s: %s\n", r.Pass, r.Decision, r.Reason)
		}
	}
	if err := writeOutputs(cfg.Out, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

func printRow(w io.Writer, r roundResult, fams []drawings) {
	line := fmt.Sprintf("%d\t%d\t%s\t%d\t%d\t%.1f\t%s\t%.1f\t%.2f", r.Pass, r.LoopRound, r.Family, r.Submitted, r.Flags, 100*r.ErrorRate, r.Decision, r.RetrainSecs, 100*r.CleanAccuracy)
	for _, f := range fams {
		line += fmt.Sprintf("\t%.1f", 100*r.Unseen[f.family.name])
	}
	fmt.Fprintln(w, line+"\t")
}

func writeOutputs(dir string, rep *simReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sim.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sim.svg"), []byte(plotSVG(rep)), 0o644)
}

// plotSVG draws two panels over the rounds: every family's unseen-drawing
// accuracy (0-100%), and clean accuracy (zoomed).
func plotSVG(rep *simReport) string {
	const W, H, left, top, pw, ph, gap = 720, 520, 60, 30, 560, 260, 60
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}
	n := len(rep.Results)
	x := func(i int) float64 {
		if n == 1 {
			return left
		}
		return left + float64(i)*pw/float64(n-1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="18">unseen-drawing accuracy per family (%%) after each pass</text>`+"\n", left)
	axes := func(y0 float64, lo, hi float64, fmtTick string) {
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", left, y0, pw, ph/2*2)
		for k := 0; k <= 4; k++ {
			v := lo + (hi-lo)*float64(k)/4
			y := y0 + ph - float64(k)*ph/4
			fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">`+fmtTick+`</text>`+"\n", left-4, y+4, v)
		}
		for i := range n {
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%d</text>`+"\n", x(i), y0+ph+14, i)
		}
	}
	line := func(y0, lo, hi float64, vals []float64, color string) {
		var pts []string
		for i, v := range vals {
			y := y0 + ph - (v-lo)/(hi-lo)*ph
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(i), y, color)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
	}
	axes(top, 0, 100, "%.0f")
	for k, name := range rep.Families {
		vals := make([]float64, n)
		for i, r := range rep.Results {
			vals[i] = 100 * r.Unseen[name]
		}
		c := colors[k%len(colors)]
		line(top, 0, 100, vals, c)
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", left+pw+8, top+16+16*k, c, name)
	}
	y2 := float64(top + ph + gap)
	lo, hi := 100.0, 0.0
	clean := make([]float64, n)
	for i, r := range rep.Results {
		clean[i] = 100 * r.CleanAccuracy
		lo, hi = min(lo, clean[i]), max(hi, clean[i])
	}
	lo, hi = lo-0.5, hi+0.5
	fmt.Fprintf(&b, `<text x="%d" y="%.0f">clean MNIST test accuracy (%%)</text>`+"\n", left, y2-8)
	axesSmall := func() {
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", left, y2, pw, ph/2)
	}
	axesSmall()
	phs := float64(ph / 2)
	var pts []string
	for i, v := range clean {
		y := y2 + phs - (v-lo)/(hi-lo)*phs
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="black"/><text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.2f</text>`+"\n", x(i), y, x(i), y-6, v)
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="black" stroke-width="2" points="%s"/>`+"\n", strings.Join(pts, " "))
	for i, r := range rep.Results {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" font-size="10">%d %s</text>`+"\n", x(i), y2+phs+14, i, r.Decision)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
