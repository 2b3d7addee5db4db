//go:build !unix

package flag

import "os"

// lockFile only creates the lock file on systems without flock: there the
// caller must make sure that one process at a time uses a folder.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
}

func unlockFile(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
