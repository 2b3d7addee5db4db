package mnistdata

import "errors"

// ErrNotFound is wrapped when no folder holding the MNIST files can be
// located.
var ErrNotFound = errors.New("mnistdata: MNIST data not found")
