package flag

import (
	"errors"
	"fmt"
	"image"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/advspace/advspace/dadc"
)

// testImage returns a 28x28 grayscale image whose pixels depend on seed, so
// that round trips can be compared pixel by pixel.
func testImage(seed int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range g.Pix {
		g.Pix[i] = uint8((i*7 + seed*13) % 256)
	}
	return g
}

var baseTime = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func testSample(i int) dadc.Sample[*image.Gray] {
	return dadc.Sample[*image.Gray]{Input: testImage(i), SampleMeta: dadc.SampleMeta{
		ID:                 fmt.Sprintf("s%05d", i),
		Label:              i % 10,
		ModelLabel:         (i + 1) % 10,
		ModelProbabilities: []float64{0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2},
		ModelVersion:       "r0-abc123",
		Round:              i / 100,
		CreatedAt:          baseTime.Add(time.Duration(i) * time.Second),
		Session:            "sess-" + fmt.Sprint(i%3),
	}}
}

// faultFS wraps the real file system and fails chosen operations, to
// simulate a full or failing disk.
type faultFS struct {
	osFS
	mu    sync.Mutex
	rules []faultRule
}

type faultRule struct {
	op      string // "write", "sync", "rename", "truncate", "createtemp", "syncdir", "open"
	match   string // substring of the path
	partial bool   // for "write": write half of the bytes before failing
	times   int    // how many times to fire; 0 = always
}

var errInjected = errors.New("injected fault: no space left on device")

func (f *faultFS) add(r faultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
}

func (f *faultFS) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// fire reports whether op on path must fail, and whether partially.
func (f *faultFS) fire(op, path string) (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rules {
		r := &f.rules[i]
		if r.op != op || !strings.Contains(path, r.match) || r.times < 0 {
			continue
		}
		if r.times > 0 {
			r.times--
			if r.times == 0 {
				r.times = -1 // used up
			}
		}
		return true, r.partial
	}
	return false, false
}

func (f *faultFS) CreateTemp(dir, pattern string) (file, error) {
	if bad, _ := f.fire("createtemp", dir); bad {
		return nil, errInjected
	}
	fl, err := f.osFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: fl, fs: f}, nil
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	if bad, _ := f.fire("open", name); bad {
		return nil, errInjected
	}
	fl, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: fl, fs: f}, nil
}

func (f *faultFS) Rename(o, n string) error {
	if bad, _ := f.fire("rename", n); bad {
		return errInjected
	}
	return f.osFS.Rename(o, n)
}

func (f *faultFS) SyncDir(dir string) error {
	if bad, _ := f.fire("syncdir", dir); bad {
		return errInjected
	}
	return f.osFS.SyncDir(dir)
}

type faultFile struct {
	file
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if bad, partial := f.fs.fire("write", f.Name()); bad {
		if partial {
			n, _ := f.file.Write(p[:len(p)/2])
			return n, errInjected
		}
		return 0, errInjected
	}
	return f.file.Write(p)
}

func (f *faultFile) Sync() error {
	if bad, _ := f.fs.fire("sync", f.Name()); bad {
		return errInjected
	}
	return f.file.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if bad, _ := f.fs.fire("truncate", f.Name()); bad {
		return errInjected
	}
	return f.file.Truncate(size)
}

func openTestDir(t *testing.T, root string, opts *DirOptions) *Dir[*image.Gray] {
	t.Helper()
	d, err := NewDir(root, GrayPNG(), opts)
	if err != nil {
		t.Fatalf("NewDir: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// noSyncFS is the real file system without fsync, for tests about something
// else than durability (the Hub's scheduling) that write many files: syncs
// dominate their run time on a busy machine. Durability has its own tests.
type noSyncFS struct{ osFS }

func (noSyncFS) SyncDir(string) error { return nil }

func (n noSyncFS) CreateTemp(dir, pattern string) (file, error) {
	f, err := n.osFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (n noSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	f, err := n.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ file }

func (noSyncFile) Sync() error { return nil }
