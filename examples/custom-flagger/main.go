// Command custom-flagger shows how to write your own flag handler and make it
// reliable with the building blocks of package flag.
//
// The handler, WebhookFlagger, is what a user of the library would write: it
// POSTs every flagged sample as JSON to a webhook. A webhook can be slow or
// down, so the program puts it behind a flag.Outbox (a durable local queue:
// a flag is acknowledged once it is on local disk, and delivered in the
// background with backoff, also after a restart) and fans out to a local
// flag.Dir as well. The dadc Loop drives the flow with a trivial model.
//
// The program starts its own webhook server on 127.0.0.1 (a free port, which
// it prints), which refuses
// the first -fail-first requests with 503 to show the Outbox retrying, submits
// a few inputs, closes the Loop (which flushes the Outbox) and prints what the
// webhook received. It exits 0 when every stored flag reached the webhook
// exactly once.
//
// Usage:
//
//	go run ./examples/custom-flagger [-data DIR] [-fail-first 2]
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/advspace/advspace/dadc"
	advflag "github.com/advspace/advspace/flag"
)

// WebhookPayload is the JSON body WebhookFlagger sends: the sample's
// metadata (the columns of dadc.SampleMeta) and the input as an image.
type WebhookPayload struct {
	dadc.SampleMeta
	// Image is the input as a PNG data URL.
	Image string `json:"image"`
}

// WebhookFlagger is a custom dadc.Flagger: it POSTs each sample to URL.
//
// The Flagger contract asks for idempotence by sample ID. A webhook cannot
// promise that by itself, so every request carries the header
// "Idempotency-Key: <sample ID>" and the receiving side must ignore a key it
// has already seen (the server below does). Safe for concurrent use.
type WebhookFlagger struct {
	URL    string
	Client *http.Client // nil: a client with a 10 s timeout
}

// Flag sends s and returns nil only on a 2xx answer.
func (w *WebhookFlagger) Flag(ctx context.Context, s dadc.Sample[*image.Gray]) error {
	png, err := advflag.GrayPNG().Encode(s.Input)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	body, err := json.Marshal(WebhookPayload{
		SampleMeta: s.SampleMeta,
		Image:      "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
	})
	if err != nil {
		return fmt.Errorf("webhook: encoding sample %s: %w", s.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", s.ID)
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: posting sample %s: %w", s.ID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: posting sample %s: %s", s.ID, resp.Status)
	}
	return nil
}

// receiver is the webhook server: it records each Idempotency-Key once.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	requests  int
	refused   int
	seen      map[string]bool
	got       []WebhookPayload
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var p WebhookPayload
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&p); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || key != p.ID {
		http.Error(w, "Idempotency-Key header must be the sample id", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.requests <= rc.failFirst {
		rc.refused++
		http.Error(w, "busy, try again later", http.StatusServiceUnavailable)
		return
	}
	if !rc.seen[key] {
		rc.seen[key] = true
		rc.got = append(rc.got, p)
	}
	w.WriteHeader(http.StatusNoContent)
}

// brightnessModel is a trivial dadc.Model: it reads the digit from the mean
// pixel brightness (0-25 → 0, 26-51 → 1, ...). Easy to fool on purpose.
type brightnessModel struct{}

func (brightnessModel) Version() string { return "brightness-v1" }

func (brightnessModel) Predict(ctx context.Context, in *image.Gray) (dadc.Prediction, error) {
	if in == nil || len(in.Pix) == 0 {
		return dadc.Prediction{}, errors.New("brightness model: empty image")
	}
	sum := 0
	for _, p := range in.Pix {
		sum += int(p)
	}
	label := min(9, sum/len(in.Pix)*10/256)
	probs := make([]float64, 10)
	for i := range probs {
		probs[i] = 0.02
	}
	probs[label] = 0.82
	return dadc.Prediction{Label: label, Probabilities: probs, ModelVersion: "brightness-v1"}, nil
}

func uniform(level uint8) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range g.Pix {
		g.Pix[i] = level
	}
	return g
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	var usage usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// -h: the usage is printed.
	case errors.As(err, &usage):
		stop()
		os.Exit(2) // the flag package printed what is wrong and the usage
	default:
		fmt.Fprintln(os.Stderr, "custom-flagger:", err)
		stop()
		os.Exit(1)
	}
}

// usageError is a command line the flag package refused (it has said why).
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("custom-flagger", flag.ContinueOnError)
	data := fs.String("data", "", "folder for the local dataset and the outbox (default: a temporary folder, removed at exit)")
	failFirst := fs.Int("fail-first", 2, "the webhook refuses this many first requests with 503")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *failFirst < 0 {
		return errors.New("-fail-first must not be negative")
	}
	if *data == "" {
		tmp, err := os.MkdirTemp("", "custom-flagger-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*data = tmp
	}

	// The webhook server, on loopback only.
	rc := &receiver{failFirst: *failFirst, seen: map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/flags"
	fmt.Fprintln(stdout, "webhook listening on", url)

	// The handlers: a local ImageFolder dataset, and the webhook behind a
	// durable outbox. FanOut acknowledges a flag once both accepted it, and
	// the outbox accepts as soon as the sample is on local disk.
	//
	// Whoever constructs a part closes it: each Close is deferred right after
	// its constructor, so the parts close in the reverse order of
	// construction (Loop, Outbox, Dir) on every path. Close is idempotent, so
	// the explicit Loop.Close below makes the deferred one a no-op.
	dir, err := advflag.NewDir(filepath.Join(*data, "dataset"), advflag.GrayPNG(), nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dir.Close()) }()
	outbox, err := advflag.NewOutbox(filepath.Join(*data, "outbox"), dadc.Flagger[*image.Gray](&WebhookFlagger{URL: url}), advflag.GrayPNG(),
		&advflag.OutboxOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, outbox.Close()) }() // reports samples that stay queued
	handlers := advflag.NewFanOut[*image.Gray](dir, outbox)

	n := 0
	loop, err := dadc.NewLoop[*image.Gray](brightnessModel{}, handlers, dadc.Manual(), 10, &dadc.Options[*image.Gray]{
		NewID: func() string { n++; return fmt.Sprintf("flag-%04d", n) }, // deterministic output
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, loop.Close(context.Background())) }()

	submissions := []struct {
		level uint8
		label int
	}{{10, 0}, {40, 7}, {100, 3}, {130, 5}, {200, 1}, {250, 9}, {240, 4}}
	for _, s := range submissions {
		res, err := loop.Flag(ctx, uniform(s.level), s.label, "demo-session")
		if err != nil {
			return err
		}
		if res.Fooled {
			fmt.Fprintf(stdout, "brightness %3d, person says %d, model says %d: fooled, stored as %s\n", s.level, s.label, res.Prediction.Label, res.Sample.ID)
		} else {
			fmt.Fprintf(stdout, "brightness %3d, person says %d, model says %d: not fooled, nothing stored\n", s.level, s.label, res.Prediction.Label)
		}
	}
	stored := loop.Stats().FlaggedTotal

	// Close flushes the outbox: it waits until the webhook took everything.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := loop.Close(cctx); err != nil {
		return err
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	fmt.Fprintf(stdout, "webhook answered %d requests, refused %d with 503 (the outbox retried them)\n", rc.requests, rc.refused)
	fmt.Fprintf(stdout, "webhook received %d flags:\n", len(rc.got))
	got := slices.Clone(rc.got)
	slices.SortFunc(got, func(a, b WebhookPayload) int { return strings.Compare(a.ID, b.ID) })
	for _, p := range got {
		fmt.Fprintf(stdout, "  %s label=%d model_label=%d model=%s session=%s image=%t\n",
			p.ID, p.Label, p.ModelLabel, p.ModelVersion, p.Session, strings.HasPrefix(p.Image, "data:image/png;base64,"))
	}
	if len(got) != stored {
		return fmt.Errorf("the webhook received %d flags, want %d", len(got), stored)
	}
	return nil
}
