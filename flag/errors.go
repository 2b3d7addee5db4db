package flag

import "errors"

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrInvalidSample is returned when a sample cannot be stored as given (bad
	// ID, negative label, missing or non-finite probabilities, ...). Nothing is
	// written.
	ErrInvalidSample = errors.New("flag: invalid sample")
	// ErrClosed is returned by Flag after Close.
	ErrClosed = errors.New("flag: handler closed")
	// ErrLocked is returned when another Dir, Log or Outbox (in this or another
	// process) already uses the folder.
	ErrLocked = errors.New("flag: folder is in use by another handler (close it first, or use another folder)")
	// ErrBroken is returned by a handler that could not undo a failed write
	// and refuses further writes until it is reopened, which repairs the file.
	ErrBroken = errors.New("flag: handler stopped after a failed rollback; reopen it to recover")
)
