//go:build !unix

package webhook

// lockFile is a no-op where flock does not exist: run one queue per data directory.
func lockFile(string) (func() error, error) { return func() error { return nil }, nil }
