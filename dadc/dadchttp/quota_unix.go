//go:build unix

package dadchttp

import (
	"errors"
	"syscall"
)

func isQuotaExceeded(err error) bool { return errors.Is(err, syscall.EDQUOT) }
