// Command mnist-space serves the adversarial MNIST web app: people draw
// digits and try to fool the model; drawings that fool it are stored in a
// local ImageFolder dataset (and optionally pushed to a Hugging Face Hub
// dataset), and the model is retrained on them in the background every few
// flags.
//
//	go run ./examples/mnist-space [-addr :7860] [-data ./adversarial-data] [-retrain-every 10]
//	                              [-weights FILE] [-hub-dataset owner/name [-hub-private]]
//	                              [-trust-proxy CIDR,...] [-validations 2] [-confirm-threshold 0.9]
//	                              [-role standalone|replica|trainer -hub-model owner/name]
//	                              [-hub-push-every 5m] [-model-check-every 60s]
//
// Roles: standalone (the default) serves, flags and retrains alone. Several
// servers share one model through the Hub: each -role replica serves the page
// and the API, pushes its flags to its own shard of -hub-dataset (at most one
// commit per -hub-push-every), never retrains, and checks -hub-model every
// -model-check-every (jittered) for a newly published model, which it
// downloads, verifies and swaps in. One -role trainer reads every shard of
// -hub-dataset (only files it has not read), retrains and gates on the union,
// and publishes each promoted model to -hub-model in one commit (weights,
// card, round history); it serves /healthz, /metrics and /api/stats only.
//
// The Hub token comes from HF_TOKEN (or the huggingface_hub token file), the
// endpoint from HF_ENDPOINT. The default -addr :7860 listens on every
// interface (what a container or a Hugging Face Space needs); use
// -addr 127.0.0.1:7860 to serve this machine only. Behind a reverse proxy,
// -trust-proxy names the proxies whose X-Forwarded-For header is believed,
// so that the flag rate limit applies per person rather than per proxy.
//
// Labels people can trust: a flag whose label disagrees with a model that is
// at least -confirm-threshold sure of its own answer (default 0.9; 2 turns
// this off) is stored only after the person confirms it. Every stored
// sample is shown to other people for validation; it trains only once
// -validations of them (default 2) confirm its label, and never once as
// many reject it or its writer retracts it. -validations 0 turns validation
// off (every flag that is not retracted trains), which suits a single
// person running the app alone: with K > 0 nobody else validates and
// nothing trains. The verdicts and retractions are append-only records in
// the dataset folder (validations/<shard>.jsonl), read back at start and,
// with -hub-dataset, pushed to the Hub with the samples.
// SIGINT or SIGTERM shut it down gracefully: no new connections, in-flight
// requests finish, a running retrain is cancelled, pending Hub uploads are
// pushed, exit 0.
//
// The program is wiring only: the model is package mnist, the web app
// packages dadc/dadchttp and mnist/mnistweb, the storage package flag.
// Whoever constructs a part closes it: main closes them in reverse order of
// construction.
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
	"strings"
	"syscall"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/dadc/dadchub"
	"github.com/advspace/advspace/flag"
	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/mnistdata"
	"github.com/advspace/advspace/mnist/mnistweb"
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
	addr := fs.String("addr", ":7860", "address to listen on (host:port); the default listens on every interface, 127.0.0.1:7860 on this machine only")
	data := fs.String("data", "./adversarial-data", "local dataset folder for the flagged samples (ImageFolder layout)")
	retrainEvery := fs.Int("retrain-every", 10, "retrain after this many flagged samples in a round")
	weights := fs.String("weights", "", "safetensors weights file to serve instead of the embedded pretrained model")
	hubDataset := fs.String("hub-dataset", "", "also push flags to this Hugging Face dataset repo (owner/name); token from HF_TOKEN")
	hubPrivate := fs.Bool("hub-private", false, "create the -hub-dataset repo private if it does not exist")
	trustProxy := fs.String("trust-proxy", "", "comma-separated IPs or CIDR prefixes of reverse proxies whose X-Forwarded-For/Forwarded header names the client (for the flag rate limit); nobody else's is believed")
	validations := fs.Int("validations", 2, "matching verdicts by other people that verify (or reject) a flagged sample; only verified samples train; 0: every flag trains")
	confirmThreshold := fs.Float64("confirm-threshold", dadchttp.DefaultConfirmThreshold, "ask the person to confirm a label when the model is at least this sure of another (0-1; 2 turns it off)")
	keepModels := fs.Int("keep-models", dadc.DefaultKeepModels, "promoted model versions kept in DATA/.advspace/loop for rollback (the serving one is always kept)")
	mnistDir := fs.String("mnist-dir", "", "folder with the MNIST IDX files (default: the copy in the GoMNIST module; see ADVSPACE_MNIST_DIR)")
	roleName := fs.String("role", roleStandalone, "standalone (serve, flag and retrain alone), replica (serve and flag into its own shard of -hub-dataset, follow the model published in -hub-model, never retrain) or trainer (read every shard of -hub-dataset, retrain, publish promoted models to -hub-model)")
	hubModel := fs.String("hub-model", "", "Hugging Face model repo (owner/name) a trainer publishes promoted models to and replicas follow; with -role replica or trainer")
	pushEvery := fs.Duration("hub-push-every", defaultPushEvery, "how often a writer commits its pending flags to -hub-dataset (one commit per interval at most, besides the final push at shutdown)")
	checkEvery := fs.Duration("model-check-every", dadchub.DefaultCheckInterval, "how often (jittered by ±20%) a replica checks -hub-model for a new model, and a trainer reads -hub-dataset for new flags")
	modelCommits := fs.Int("hub-model-commits-per-hour", dadchub.DefaultMaxCommitsPerHour, "most models a trainer publishes to -hub-model in any hour")
	fineTuneSteps := fs.Int("fine-tune-steps", 0, "Adam steps of one retrain (0: the model's default, 1000); fewer make retrains faster and weaker, for tests and small machines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mnist-space [-role standalone|replica|trainer] [-addr :7860] [-data DIR] [-retrain-every N] [-weights FILE] [-hub-dataset owner/name] [-hub-model owner/name] [-hub-push-every 5m] [-model-check-every 60s] [-trust-proxy CIDR,...] [-validations K] [-confirm-threshold P] [-keep-models N] [-fine-tune-steps N]")
		fmt.Fprintln(stderr, "Serves the adversarial MNIST web app. Hub token from HF_TOKEN, endpoint from HF_ENDPOINT.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, goflag.ErrHelp) {
			return 0 // -h asked for the usage, which is printed
		}
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
	if *validations < 0 {
		return usage("-validations must be 0 (every flag trains) or more, not %d", *validations)
	}
	if !(*confirmThreshold > 0) {
		return usage("-confirm-threshold must be above 0 (for instance 0.9; 2 turns confirmation off), not %v", *confirmThreshold)
	}
	if *data == "" {
		return usage("-data must name a folder")
	}
	if *keepModels < 1 {
		return usage("-keep-models must be at least 1, not %d", *keepModels)
	}
	proxies, err := dadchttp.ParseTrustedProxies(*trustProxy)
	if err != nil {
		return usage("-trust-proxy: %v", err)
	}
	role := *roleName
	switch role {
	case roleStandalone:
		if *hubModel != "" {
			return usage("-hub-model is for -role replica or trainer; a standalone server keeps its models in -data")
		}
	case roleReplica, roleTrainer:
		if *hubDataset == "" || *hubModel == "" {
			return usage("-role %s needs -hub-dataset owner/name (the shared flags) and -hub-model owner/name (the published models)", role)
		}
		if _, err := hfhub.ParseRepoID(*hubModel); err != nil {
			return usage("-hub-model: %v", err)
		}
		if role == roleReplica && *weights != "" {
			return usage("-weights is not for -role replica: a replica serves the model published in -hub-model; give -weights to the trainer, which publishes it")
		}
	default:
		return usage("-role must be standalone, replica or trainer, not %q", role)
	}
	if *pushEvery <= 0 {
		return usage("-hub-push-every must be a positive duration such as 5m, not %s", *pushEvery)
	}
	if *checkEvery <= 0 {
		return usage("-model-check-every must be a positive duration such as 60s, not %s", *checkEvery)
	}
	if *modelCommits < 1 {
		return usage("-hub-model-commits-per-hour must be at least 1, not %d", *modelCommits)
	}
	if *fineTuneSteps < 0 {
		return usage("-fine-tune-steps must be 0 (the default) or more, not %d", *fineTuneSteps)
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
			return usage("-hub-dataset needs a Hugging Face token with write access (-role %s): set HF_TOKEN (create one at https://huggingface.co/settings/tokens)", role)
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

	// Listen before anything is created on disk: a failed start (the port
	// is taken) must leave no new data folder behind.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return usage("-addr %s: %v", *addr, err)
	}
	// Everything below is closed in reverse order of construction, by the
	// code that constructed it; every Close is safe to repeat.
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		closers = nil
		return errors.Join(errs...)
	}
	closers = append(closers, func() error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})

	train, test := loadMNIST(ctx, *mnistDir, getenv, log)
	modelOpts := &mnist.ModelOptions{Replay: train, Logger: log}
	if *fineTuneSteps > 0 {
		modelOpts.FineTune = &mnist.FineTuneConfig{Steps: *fineTuneSteps}
	}
	model, err := mnist.NewModel(w, modelOpts)
	if err != nil {
		_ = closeAll()
		return fail("building the model: %v", err)
	}

	dir, err := flag.NewDir(*data, flag.GrayPNG(), &flag.DirOptions{Logger: log})
	if err != nil {
		_ = closeAll()
		return fail("opening the dataset folder %s: %v", *data, err)
	}
	closers = append(closers, dir.Close)
	// Verdicts and retractions: append-only, one file per writer, in the
	// dataset folder next to data/, read back and replayed by the app.
	records, err := flag.ReadRecords(*data)
	if err != nil {
		_ = closeAll()
		return fail("reading the validation records of %s: %v", *data, err)
	}
	recLog, err := flag.OpenRecordLog(*data, dir.Shard(), &flag.RecordLogOptions{Logger: log})
	if err != nil {
		_ = closeAll()
		return fail("opening the validation record log in %s: %v", *data, err)
	}
	closers = append(closers, recLog.Close)
	vals, err := dadc.NewValidations(*validations, mnist.Classes)
	if err != nil {
		_ = closeAll()
		return fail("%v", err)
	}
	trainable := func(m dadc.SampleMeta) bool { return vals.Trainable(m.ID) }
	var (
		flagger dadc.Flagger[*image.Gray] = dir
		backlog func() int
		hub     *flag.Hub[*image.Gray]
	)
	// A trainer's Dir is its local copy of every shard it read from the Hub:
	// it never pushes (the writers own their shards).
	if hubClient != nil && role != roleTrainer {
		id, _ := hfhub.ParseRepoID(*hubDataset) // validated above
		hub, err = flag.NewHub(hubClient, id, dir, &flag.HubOptions{Private: *hubPrivate, Logger: log, Records: recLog,
			Interval: *pushEvery, MaxBatch: pushMaxBatch, MaxCommitsPerHour: commitsPerHour(*pushEvery)})
		if err != nil {
			_ = closeAll()
			return fail("-hub-dataset %s: %v", *hubDataset, err)
		}
		closers = append(closers, hub.Close)
		flagger, backlog = hub, hub.Pending
	}
	var clean []dadc.Example[*image.Gray]
	if test != nil {
		clean = test.Examples()
	}
	var (
		store    dadc.ModelStore
		hubStore *dadchub.Store
		policy   = dadc.EveryN(*retrainEvery)
	)
	switch role {
	case roleStandalone:
		// Promoted models and the round history live in the data folder (a
		// dot folder, so that a push of the dataset leaves them out): a
		// restart serves the latest promoted model and shows the same stats.
		local, err := dadc.NewLocalStore(filepath.Join(*data, ".advspace", "loop"), &dadc.LocalStoreOptions{
			WeightsName: "model.safetensors", Keep: *keepModels, Logger: log})
		if err != nil {
			_ = closeAll()
			return fail("opening the model store in %s: %v", *data, err)
		}
		store = local
	default:
		id, _ := hfhub.ParseRepoID(*hubModel) // validated above
		hubStore, err = dadchub.NewStore(hubClient.Repo(hfhub.Model, id), filepath.Join(*data, ".advspace", "hub-model"),
			&dadchub.StoreOptions{MaxCommitsPerHour: *modelCommits, Logger: log})
		if err != nil {
			_ = closeAll()
			return fail("-hub-model %s: %v", *hubModel, err)
		}
		if role == roleTrainer {
			// The trainer's promotions are published to M, one commit each.
			store = hubStore
		} else {
			// A replica never retrains: it serves what M says.
			policy = dadc.Manual()
		}
	}
	if *weights != "" {
		log.Info("mnist-space: -weights forces the model to serve; it is stored as the latest version", "weights", *weights, "version", model.Version())
	}
	loop, err := dadc.NewLoop[*image.Gray](model, flagger, policy, mnist.Classes, &dadc.Options[*image.Gray]{
		CleanTest:       clean,
		Store:           store,
		Loader:          mnist.Loader(modelOpts),
		ServeGivenModel: *weights != "",
		// Only samples verified by other people train; retracted and
		// rejected ones never do (with -validations 0, all but retracted).
		Trainable: trainable,
		Logger:    log,
	})
	if err != nil {
		_ = closeAll()
		return fail("starting the loop: %v", err)
	}
	// The loop cancels a running retrain and flushes the flagger; it leaves
	// closing the flagger to us.
	closers = append(closers, func() error {
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return loop.Close(cctx)
	})

	// The Hub side of a replica or a trainer runs until shutdown.
	bgCtx, bgCancel := context.WithCancel(context.Background())
	bgDone := make(chan struct{})
	closers = append(closers, func() error { bgCancel(); <-bgDone; return nil })
	switch role {
	case roleReplica:
		follower, err := dadchub.NewFollower[*image.Gray](hubStore, mnist.Loader(modelOpts), loop, loop.Stats().ModelVersion,
			&dadchub.FollowerOptions{Interval: *checkEvery, Logger: log})
		if err != nil {
			close(bgDone)
			_ = closeAll()
			return fail("%v", err)
		}
		// Serve what M holds from the first request on: one check before
		// listening (a Hub that is down leaves the current model serving).
		cctx, cancel := context.WithTimeout(ctx, *checkEvery)
		if _, err := follower.Check(cctx); err != nil {
			log.Warn("mnist-space: could not read the published model; serving the current one until the next check", "hub_model", *hubModel, "error", err)
		}
		cancel()
		go func() { defer close(bgDone); _ = follower.Run(bgCtx) }()
	case roleTrainer:
		dsID, _ := hfhub.ParseRepoID(*hubDataset)
		reader, err := dadchub.NewReader(hubClient.Repo(hfhub.Dataset, dsID), flag.GrayPNG().Decode,
			filepath.Join(*data, ".advspace", "hub-reader.json"))
		if err != nil {
			close(bgDone)
			_ = closeAll()
			return fail("-hub-dataset %s: %v", *hubDataset, err)
		}
		for _, s := range loop.Samples(0) {
			vals.AddSample(s.SampleMeta)
		}
		vals.Replay(records)
		go func() { defer close(bgDone); readShards(bgCtx, reader, loop, vals, *checkEvery, log) }()
	default:
		close(bgDone)
	}

	clientKey, keyDesc := dadchttp.RemoteIP, "the connection's peer address"
	if len(proxies) > 0 {
		clientKey = dadchttp.ForwardedClientIP(proxies)
		keyDesc = "X-Forwarded-For (or Forwarded) from the trusted proxies " + *trustProxy + ", else the peer address"
	}
	app, err := mnistweb.New(loop, &mnistweb.Options{
		HubDataset: *hubDataset,
		HTTP: &dadchttp.Options{Logger: log, Backlog: backlog, ClientKey: clientKey, ConfirmThreshold: *confirmThreshold,
			Validation: &dadchttp.ValidationOptions{Validations: vals, Persist: recLog.Append, Records: records},
			Models:     store, ModelFileName: "model.safetensors"},
	})
	if err != nil {
		_ = closeAll()
		return fail("%v", err)
	}
	closers = append(closers, app.Close)
	var handler http.Handler = app
	if role == roleTrainer {
		handler = trainerRoutes(app)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for the event streams, which end when the app closes.
	srv.RegisterOnShutdown(func() { _ = app.Close() })
	url := baseURL(ln.Addr())
	st := loop.Stats()
	log.Info("mnist-space: serving", "role", role, "hub_model", *hubModel, "listen", listenDesc(ln.Addr()), "url", url, "data", *data, "model", st.ModelVersion,
		"flagged", st.FlaggedTotal, "retrain_every", *retrainEvery, "validations", *validations, "validation_records", len(records), "hub_dataset", *hubDataset)
	log.Info("mnist-space: the flag rate limit keys clients by " + keyDesc)
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
	// The server is down; close the rest in reverse order of construction:
	// the app, the loop, the Hub pusher, the Dir, the listener.
	if err := closeAll(); err != nil {
		log.Error("mnist-space: closing", "error", err)
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
		d, err := mnistdata.Dir(ctx)
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

// listenDesc says where a listener really listens: "every interface, port
// 7860" for an unspecified address, else the address.
func listenDesc(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return fmt.Sprintf("every interface, port %d (%s)", tcp.Port, strings.TrimSuffix(a.String(), fmt.Sprintf(":%d", tcp.Port)))
}
