//go:build !unix

package dadchttp

func isQuotaExceeded(error) bool { return false }
