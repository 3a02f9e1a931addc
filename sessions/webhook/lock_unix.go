//go:build unix

package webhook

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock on path (created if missing): two processes
// replaying and compacting one journal would lose each other's writes. The lock goes with
// the process.
func lockFile(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: open lock file: %v", ErrUnavailable, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: the webhook queue is locked by another process", ErrUnavailable)
		}
		return nil, fmt.Errorf("%w: lock: %v", ErrUnavailable, err)
	}
	return f.Close, nil
}
