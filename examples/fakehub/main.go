// Command fakehub serves the fake Hugging Face Hub of package hfhub/hubtest
// standalone, for offline development and for trying Hub clients against it.
//
//	go run ./examples/fakehub -addr 127.0.0.1:8080 -token hf_dev -user alice
//	HF_ENDPOINT=http://127.0.0.1:8080 HF_TOKEN=hf_dev <your client>
//
// State lives in memory and is lost when the process stops. SIGINT or
// SIGTERM shut it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/advspace/advspace/hfhub/hubtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h asked for the usage, which is printed
		}
		fmt.Fprintln(os.Stderr, "fakehub:", err)
		os.Exit(2)
	}
}

// run parses args, serves until ctx is done, then shuts down gracefully.
// ready, when not nil, receives the listening address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("fakehub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fakehub [-addr 127.0.0.1:8080] -token T [-user NAME] [-v]")
		fmt.Fprintln(stderr, "Serves the fake Hugging Face Hub of hfhub/hubtest in memory, for offline development; point HF_ENDPOINT at it.")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8080", "listen address HOST:PORT (port 0 picks a free one)")
	token := fs.String("token", "", "write token the fake accepts (required)")
	user := fs.String("user", hubtest.DefaultUser, "user name owning -token (its default namespace)")
	orgs := fs.String("orgs", "", "comma-separated organisations the user may also write to")
	readToken := fs.String("read-token", "", "optional extra read-only token for the same user")
	commitsPerHour := fs.Int("commits-per-hour", 128, "per-repo commit limit over a sliding hour (negative: unlimited)")
	apiPer5Min := fs.Int("api-per-5min", 0, "API requests per token per 5-minute window (0: unlimited)")
	multipart := fs.Int64("multipart-threshold", 10<<20, "LFS objects larger than this get multipart uploads")
	chunk := fs.Int64("chunk-size", 5<<20, "multipart chunk size in bytes")
	verbose := fs.Bool("v", false, "log every request (tokens are never logged)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: all options are flags, see -h", fs.Args())
	}
	if strings.TrimSpace(*token) == "" {
		return errors.New("-token is required: the bearer token clients must send (e.g. -token hf_dev)")
	}
	if *readToken == *token {
		return errors.New("-read-token must differ from -token")
	}
	info := hubtest.TokenInfo{User: *user, Role: "write"}
	if *orgs != "" {
		info.Orgs = strings.Split(*orgs, ",")
	}
	tokens := map[string]hubtest.TokenInfo{*token: info}
	if *readToken != "" {
		tokens[*readToken] = hubtest.TokenInfo{User: *user, Orgs: info.Orgs, Role: "read"}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	hub := hubtest.New(&hubtest.Options{
		Tokens: tokens, CommitsPerHour: *commitsPerHour, APIRequestsPer5Min: *apiPer5Min,
		MultipartThreshold: *multipart, ChunkSize: *chunk, Logger: logger,
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: hub.Handler(), ReadHeaderTimeout: 10 * time.Second}
	endpoint := "http://" + ln.Addr().String()
	namespaces := *user + "/…"
	if *orgs != "" {
		namespaces += " or " + strings.Join(info.Orgs, "/…, ") + "/…"
	}
	fmt.Fprintf(stdout, "fake Hugging Face Hub serving on %s (user %q: the token writes to repos %s)\nuse: HF_ENDPOINT=%s HF_TOKEN=<the -token value>\n",
		endpoint, *user, namespaces, endpoint)
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(stdout, "fakehub stopped")
	return nil
}
