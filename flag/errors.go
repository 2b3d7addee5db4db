package flag

import (
	"errors"
	"fmt"
)

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
	// ErrNotImageFolder is wrapped by the error of CheckImageFolder.
	ErrNotImageFolder = errors.New("flag: not a valid ImageFolder dataset")
	// ErrHubCommitLimit is returned by Hub.Flush when the hourly commit
	// budget (HubOptions.MaxCommitsPerHour) is spent: the pending samples
	// are safe on local disk and are pushed when the budget allows.
	ErrHubCommitLimit = errors.New("flag: hub: hourly commit limit reached; pending samples stay on local disk and are pushed later")
	// ErrRecordLogClosed is returned by RecordLog.Append after Close.
	ErrRecordLogClosed = errors.New("flag: the validation record log is closed")
)

// PendingError is returned by Close (of an Outbox or a Hub) when acknowledged
// samples were not delivered yet. Nothing is lost: they wait on local disk,
// and the next handler opened on the same folder sends them.
type PendingError struct {
	// Handler is "outbox" or "hub".
	Handler string
	// Samples is the number of samples still waiting.
	Samples int
	// Where is the local folder they wait in.
	Where string
	// Next says what sends them.
	Next string
	// Err is the last delivery error, if any.
	Err error
}

func (e *PendingError) Error() string {
	s := fmt.Sprintf("flag: %s: %d samples not delivered yet; they wait in %s and %s", e.Handler, e.Samples, e.Where, e.Next)
	if e.Err != nil {
		s += ": last error: " + e.Err.Error()
	}
	return s
}

// Unwrap returns the last delivery error.
func (e *PendingError) Unwrap() error { return e.Err }
