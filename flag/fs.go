package flag

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/advspace/advspace/internal/randid"
)

// fileSystem is the small slice of the operating system that the durable
// handlers use. Production code uses osFS; tests swap in a wrapper that injects
// write and sync failures, which is the only practical way to simulate a full
// or failing disk without special mounts.
type fileSystem interface {
	MkdirAll(path string, perm fs.FileMode) error
	CreateTemp(dir, pattern string) (file, error)
	OpenFile(name string, flag int, perm fs.FileMode) (file, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	Truncate(name string, size int64) error
	// SyncDir makes the directory's entries (creations, renames, removals) durable.
	SyncDir(dir string) error
}

// file is the part of *os.File the handlers need.
type file interface {
	Write(p []byte) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	Sync() error
	Close() error
	Name() string
	Truncate(size int64) error
}

// appendSynced writes b to f, whose length is *size and whose name is name,
// with one write and syncs it, growing *size on success. On failure it
// truncates f back to *size so that no partial or unsynced bytes stay visible
// and returns the failure; if even that fails the file's content is unknown
// and the error wraps ErrBroken: the caller must stop writing to it (recovery
// on reopen repairs the file).
func appendSynced(f file, name string, size *int64, b []byte) error {
	n, err := f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		*size += int64(n)
		return nil
	}
	if terr := f.Truncate(*size); terr != nil {
		return fmt.Errorf("%w: %s: %w", ErrBroken, name, errors.Join(err, terr))
	}
	return err
}

// readRepaired reads the append-only file at path (a missing file is empty),
// parses it with parse, which returns the rows and the length of the valid
// prefix, and cuts off a torn last line (an unacknowledged write interrupted
// by a crash) durably. It returns the rows, the repaired size and whether the
// file existed. Damage before the last line is an error: cutting it off would
// drop acknowledged rows.
func readRepaired[R any](fsys fileSystem, log *slog.Logger, path string, parse func([]byte) ([]R, int, error)) (rows []R, size int64, existed bool, err error) {
	data, err := fsys.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, false, fmt.Errorf("reading %s: %w", path, err)
	}
	existed = err == nil
	rows, good, err := parse(data)
	if err != nil {
		return nil, 0, existed, fmt.Errorf("%s: %w; move the damaged file away or repair it by hand", path, err)
	}
	if good < len(data) {
		log.Warn("flag: cutting off a torn last line (an unacknowledged write interrupted by a crash)",
			"file", path, "bytes", len(data)-good)
		if err := truncateSync(fsys, path, int64(good)); err != nil {
			return nil, 0, existed, fmt.Errorf("repairing %s: %w", path, err)
		}
	}
	return rows, int64(good), existed, nil
}

// truncateSync truncates the file at path to size and syncs it.
func truncateSync(fsys fileSystem, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// osFS is the real file system.
type osFS struct{}

func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// CreateTemp is os.CreateTemp with the permission of every other file the
// package writes (filePerm, less the umask) instead of os.CreateTemp's 0600,
// because the temporary file becomes a stored input, card or record.
func (osFS) CreateTemp(dir, pattern string) (file, error) {
	prefix, suffix := pattern, ""
	if i := strings.LastIndex(pattern, "*"); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for range 100 {
		name := filepath.Join(dir, prefix+randid.Hex(6)+suffix)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return nil, fmt.Errorf("creating a temporary file in %s: too many name collisions", dir)
}
func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}
func (osFS) Rename(oldpath, newpath string) error       { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                   { return os.Remove(name) }
func (osFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (osFS) Truncate(name string, size int64) error     { return os.Truncate(name, size) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic writes data to path so that a reader (or a restart after a
// crash) sees either the old content or the new, never a mix: temp file in the
// same directory, fsync, rename, fsync of the directory. The temp file name
// starts with tempPrefix so that recovery can recognise and delete leftovers.
func writeFileAtomic(fsys fileSystem, path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir)
	f, err := fsys.CreateTemp(dir, tempPrefix+base+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = fsys.Rename(tmp, path); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

// filePerm is the permission of every file the package creates (before the
// umask): readable by all, like files made by cp or the datasets library.
const filePerm fs.FileMode = 0o644

// tempPrefix starts the name of every temporary file the package creates. The
// leading dot also hides such files from the Hugging Face datasets loader,
// which ignores files whose names start with ".".
const tempPrefix = ".tmp-"
