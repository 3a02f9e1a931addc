//go:build !unix

package audit

// lockFile is a no-op where flock does not exist: run one writer per data directory.
func lockFile(string) (func() error, error) { return func() error { return nil }, nil }
