// Command hub-push uploads a local dataset folder (for instance the
// ImageFolder that examples/mnist-space writes) to a Hugging Face Hub dataset
// repo, in as few commits as the Hub allows, and prints the commit URL.
//
// Usage:
//
//	HF_TOKEN=hf_... go run ./examples/hub-push -repo owner/name [-private] [-message TEXT] DIR
//
// Flags may come before or after DIR ("hub-push DIR -repo owner/name" works
// too); after "--" every argument is taken as the folder.
//
// Everything is checked before anything is uploaded: the repo id, the token
// (HF_TOKEN, HUGGING_FACE_HUB_TOKEN or the token file, and then with the
// Hub), and that DIR is a folder with files. The repo is created if it does
// not exist. Files that are already on the Hub with the same content are not
// uploaded again, so running it twice is harmless and an interrupted run is
// resumed by running it again. HF_ENDPOINT points it at another Hub (for
// example examples/fakehub); an HF_ENDPOINT carrying credentials
// (user:password@ or ?token=...) is refused, and no URL it prints ever
// shows a credential.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/advspace/advspace/hfhub"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code: 0 success, 2 bad
// usage or input (nothing was sent), 1 the upload failed.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hub-push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", "", "dataset repo to upload to, owner/name (required)")
	private := fs.Bool("private", false, "create the repo private if it does not exist")
	message := fs.String("message", "Upload dataset with advspace hub-push", "commit message")
	revision := fs.String("revision", "main", "branch to commit to")
	maxFiles := fs.Int("max-files-per-commit", hfhub.DefaultMaxFilesPerCommit, "split larger folders into several commits")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hub-push -repo owner/name [-private] [-message TEXT] DIR   (flags may also follow DIR)")
		fmt.Fprintln(stderr, "Uploads the folder DIR to the Hugging Face dataset repo owner/name. Token from HF_TOKEN.")
		fs.PrintDefaults()
	}
	folders, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // -h asked for the usage, which is printed
	}
	if err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "hub-push: "+format+"\n", a...)
		return code
	}
	if *repo == "" {
		return fail(2, "-repo is required: give the dataset repo as owner/name, e.g. -repo alice/mnist-adversarial")
	}
	id, err := hfhub.ParseRepoID(*repo)
	if err != nil {
		return fail(2, "%v", err)
	}
	if len(folders) != 1 {
		return fail(2, "give exactly one folder to upload (got %d arguments: %q); see -h", len(folders), folders)
	}
	dir := folders[0]
	if *maxFiles <= 0 {
		return fail(2, "-max-files-per-commit must be positive")
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fail(2, "folder %s does not exist", dir)
	case err != nil:
		return fail(2, "cannot read %s: %v", dir, err)
	case !st.IsDir():
		return fail(2, "%s is a file; give the dataset folder that contains it", dir)
	}
	files, err := hfhub.FolderFiles(hfhub.LocalPath(dir), nil)
	if err != nil {
		return fail(2, "%v", err)
	}
	if len(files) == 0 {
		return fail(2, "folder %s has no files to upload", dir)
	}
	token, err := hfhub.ResolveTokenFrom(getenv)
	if err != nil {
		return fail(2, "%v", err)
	}
	if token == "" {
		return fail(2, "no Hugging Face token: set HF_TOKEN to a write token (https://huggingface.co/settings/tokens)")
	}
	client, err := hfhub.NewClient(&hfhub.Options{Endpoint: getenv("HF_ENDPOINT"), Token: token, UserAgent: "advspace-hub-push"})
	if err != nil {
		return fail(2, "%v", err)
	}

	// Check the token with the Hub before uploading anything.
	user, err := client.WhoAmI(ctx)
	switch {
	case errors.Is(err, hfhub.ErrUnauthorized):
		return fail(1, "the Hub rejected the token: check HF_TOKEN (it is invalid or expired)")
	case err != nil:
		return fail(1, "cannot reach the Hub at %s: %v", hfhub.RedactURL(client.Endpoint()), err)
	case !user.CanWrite():
		return fail(1, "the token of %s is read-only: create a token with the write role and set HF_TOKEN to it", user.Name)
	}
	hubRepo := client.Repo(hfhub.Dataset, id).At(*revision)
	url, err := hubRepo.Create(ctx, &hfhub.CreateRepoOptions{Private: *private, ExistOK: true})
	if err != nil {
		if errors.Is(err, hfhub.ErrForbidden) || errors.Is(err, hfhub.ErrUnauthorized) {
			return fail(1, "%s may not create or write %s: %v", user.Name, id, err)
		}
		return fail(1, "creating the repo %s: %v", id, err)
	}
	fmt.Fprintf(stderr, "hub-push: uploading %d files from %s to %s\n", len(files), dir, hfhub.RedactURL(url))
	info, err := hubRepo.UploadFolder(ctx, hfhub.LocalPath(dir), &hfhub.UploadFolderOptions{Summary: *message, MaxFilesPerCommit: *maxFiles})
	if err != nil {
		if errors.Is(err, hfhub.ErrForbidden) {
			return fail(1, "%s may not write to %s: %v", user.Name, id, err)
		}
		return fail(1, "upload failed (run the same command again to resume; files already uploaded are skipped): %v", err)
	}
	if info.Empty {
		fmt.Fprintf(stderr, "hub-push: nothing changed, every file is already on the Hub\n")
	} else {
		fmt.Fprintf(stderr, "hub-push: %d files uploaded to LFS, %d unchanged\n", info.Uploaded, info.Skipped)
	}
	fmt.Fprintln(stdout, hfhub.RedactURL(info.URL))
	return 0
}

// parseInterleaved parses args with fs, taking flags both before and after
// the positional arguments, which it returns in order. After "--" every
// argument is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
