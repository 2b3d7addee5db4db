// Command mnist-space serves the adversarial MNIST web app: people draw
// digits and try to fool the model; drawings that fool it are stored in a
// local ImageFolder dataset (and optionally pushed to a Hugging Face Hub
// dataset), and the model is retrained on them in the background every few
// flags.
//
//	go run ./examples/mnist-space [-addr :7860] [-data ./adversarial-data] [-retrain-every 10]
//	                              [-weights FILE] [-hub-dataset owner/name [-hub-private]]
//
// The Hub token comes from HF_TOKEN (or the huggingface_hub token file), the
// endpoint from HF_ENDPOINT. SIGINT or SIGTERM shut it down gracefully: no
// new connections, in-flight requests finish, a running retrain is
// cancelled, pending Hub uploads are pushed, exit 0.
package main

import (
	"context"
	"errors"
	goflag "flag"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/examples/mnist-space/space"
	"github.com/advspace/advspace/flag"
	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/mnist"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil))
}

// Server timeouts. WriteTimeout bounds a whole answer (predictions take
// milliseconds); the event stream extends its own deadline per write.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 90 * time.Second
)

// run is the program; it returns the exit code: 0 after a clean shutdown
// (ctx cancelled), 2 for bad flags or configuration, 1 for other failures.
// ready, if not nil, is called with the base URL once the server listens.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(url string)) int {
	fs := goflag.NewFlagSet("mnist-space", goflag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":7860", "address to listen on (host:port)")
	data := fs.String("data", "./adversarial-data", "local dataset folder for the flagged samples (ImageFolder layout)")
	retrainEvery := fs.Int("retrain-every", 10, "retrain after this many flagged samples in a round")
	weights := fs.String("weights", "", "safetensors weights file to serve instead of the embedded pretrained model")
	hubDataset := fs.String("hub-dataset", "", "also push flags to this Hugging Face dataset repo (owner/name); token from HF_TOKEN")
	hubPrivate := fs.Bool("hub-private", false, "create the -hub-dataset repo private if it does not exist")
	mnistDir := fs.String("mnist-dir", "", "folder with the MNIST IDX files (default: the copy in the GoMNIST module; see ADVSPACE_MNIST_DIR)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mnist-space [-addr :7860] [-data DIR] [-retrain-every N] [-weights FILE] [-hub-dataset owner/name]")
		fmt.Fprintln(stderr, "Serves the adversarial MNIST web app. Hub token from HF_TOKEN, endpoint from HF_ENDPOINT.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mnist-space: "+format+"\n", a...)
		return 2
	}
	fail := func(format string, a ...any) int {
		log.Error(fmt.Sprintf(format, a...))
		return 1
	}
	if fs.NArg() != 0 {
		return usage("unexpected arguments %q: everything is set with flags; see -h", fs.Args())
	}
	if *retrainEvery < 1 {
		return usage("-retrain-every must be at least 1, not %d", *retrainEvery)
	}
	if *data == "" {
		return usage("-data must name a folder")
	}

	// The Hub client first: a missing token is a configuration error that
	// must stop the program before anything else happens.
	var hubClient *hfhub.Client
	if *hubDataset != "" {
		if _, err := hfhub.ParseRepoID(*hubDataset); err != nil {
			return usage("-hub-dataset: %v", err)
		}
		token, err := hfhub.ResolveTokenFrom(getenv)
		if err != nil {
			return usage("-hub-dataset: reading the Hugging Face token: %v", err)
		}
		if token == "" {
			return usage("-hub-dataset needs a Hugging Face token with write access: set HF_TOKEN (create one at https://huggingface.co/settings/tokens)")
		}
		hubClient, err = hfhub.NewClient(&hfhub.Options{Endpoint: getenv("HF_ENDPOINT"), Token: token, Logger: log})
		if err != nil {
			return usage("-hub-dataset: %v", err)
		}
	}

	w, err := loadWeights(*weights)
	if err != nil {
		return usage("%v", err)
	}
	train, test := loadMNIST(ctx, *mnistDir, getenv, log)
	model, err := mnist.NewModel(w, &mnist.ModelOptions{Replay: train, Logger: log})
	if err != nil {
		return fail("building the model: %v", err)
	}

	dir, err := flag.NewDir(*data, flag.GrayPNG(), &flag.DirOptions{Logger: log})
	if err != nil {
		return fail("opening the dataset folder %s: %v", *data, err)
	}
	var (
		flagger dadc.Flagger[*image.Gray] = dir
		backlog func() int
		hub     *flag.Hub[*image.Gray]
	)
	if hubClient != nil {
		id, _ := hfhub.ParseRepoID(*hubDataset) // validated above
		hub, err = flag.NewHub(hubClient, id, dir, &flag.HubOptions{Private: *hubPrivate, Logger: log})
		if err != nil {
			_ = dir.Close()
			return fail("-hub-dataset %s: %v", *hubDataset, err)
		}
		flagger, backlog = hub, hub.Pending
	}
	var clean []dadc.Example[*image.Gray]
	if test != nil {
		clean = test.Examples()
	}
	loop, err := dadc.NewLoop(model, flagger, dadc.EveryN(*retrainEvery), &dadc.Options[*image.Gray]{
		Classes:   mnist.Classes,
		CleanTest: clean,
		Logger:    log,
	})
	if err != nil {
		if hub != nil {
			_ = hub.Close()
		}
		_ = dir.Close()
		return fail("starting the loop: %v", err)
	}
	// closeLoop shuts down in reverse order of construction: the Loop
	// (cancels a running retrain, flushes the Hub), then the Hub, then the Dir.
	closeLoop := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err := loop.Close(cctx)
		if hub != nil {
			err = errors.Join(err, hub.Close())
		}
		return errors.Join(err, dir.Close())
	}

	sp, err := space.New(space.Config{Loop: loop, Logger: log, HubDataset: *hubDataset, Backlog: backlog})
	if err != nil {
		_ = closeLoop()
		return fail("%v", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = closeLoop()
		return usage("-addr %s: %v", *addr, err)
	}
	srv := &http.Server{
		Handler:           sp,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(func() { _ = sp.Close() })
	url := baseURL(ln.Addr())
	st := loop.Stats()
	log.Info("mnist-space: serving", "url", url, "data", *data, "model", st.ModelVersion,
		"flagged", st.FlaggedTotal, "retrain_every", *retrainEvery, "hub_dataset", *hubDataset)
	if ready != nil {
		ready(url)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	code := 0
	select {
	case <-ctx.Done():
		log.Info("mnist-space: shutting down: finishing requests in flight")
	case err := <-serveErr:
		log.Error("mnist-space: server stopped", "error", err)
		code = 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("mnist-space: shutdown", "error", err)
		code = 1
	}
	if err := closeLoop(); err != nil {
		log.Error("mnist-space: closing the loop", "error", err)
		code = 1
	}
	if code == 0 {
		log.Info("mnist-space: stopped")
	}
	return code
}

func loadWeights(path string) (*mnist.Weights, error) {
	if path == "" {
		w, err := mnist.Pretrained()
		if err != nil {
			return nil, fmt.Errorf("embedded pretrained weights: %w", err)
		}
		return w, nil
	}
	w, err := mnist.LoadWeightsFile(path)
	if err != nil {
		return nil, fmt.Errorf("-weights %s: %w", path, err)
	}
	return w, nil
}

// loadMNIST finds the MNIST training set (replayed while retraining) and test
// set (the clean set of the promotion gate). Without the full set it falls
// back to the small subset in testdata/mnist, and without that to none (the
// gate then checks nothing), saying so in the log.
func loadMNIST(ctx context.Context, dir string, getenv func(string) string, log *slog.Logger) (train, test *mnist.Dataset) {
	if dir == "" {
		if d := getenv("ADVSPACE_MNIST_DIR"); d != "" {
			dir = d
		}
	}
	if dir == "" {
		d, err := mnist.DefaultDataDir(ctx)
		if err != nil {
			log.Warn("mnist-space: MNIST data not found", "error", err)
		}
		dir = d
	}
	if dir != "" {
		start := time.Now()
		train, test, err := mnist.LoadDataDir(dir)
		if err == nil {
			log.Info("mnist-space: MNIST loaded", "dir", dir, "train", train.Len(), "test", test.Len(), "took", time.Since(start).Round(time.Millisecond))
			return train, test
		}
		log.Warn("mnist-space: cannot load MNIST", "dir", dir, "error", err)
	}
	for _, sub := range []string{filepath.Join("testdata", "mnist"), filepath.Join("..", "..", "testdata", "mnist")} {
		if train, test, err := mnist.LoadDataDir(sub); err == nil {
			log.Warn("mnist-space: using the small MNIST subset: the retrain gate is less precise and retraining replays less data", "dir", sub, "train", train.Len(), "test", test.Len())
			return train, test
		}
	}
	log.Warn("mnist-space: no MNIST data: retrains replay no clean data and the gate checks nothing")
	return nil, nil
}

// baseURL is the URL to open for a listener's address.
func baseURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String() + "/"
	}
	host := "localhost"
	if !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
		if tcp.IP.To4() == nil {
			host = "[" + host + "]"
		}
	}
	return fmt.Sprintf("http://%s:%d/", host, tcp.Port)
}
