package redis

import "errors"

var (
	// ErrBadConfig is returned by Config.Validate and Open for a configuration that cannot
	// work. Its messages never include a password.
	ErrBadConfig = errors.New("redis: invalid config")
	// ErrStateLost is returned (wrapped, and matching sessions.ErrUnavailable) by lockout and
	// single-use operations when Redis no longer holds the data this node last saw (it
	// restarted empty, was flushed or failed over to an empty replica), and while the nodes
	// write back what they hold. Callers fail closed; operations work again after the grace.
	ErrStateLost = errors.New("redis: state lost with Redis's data; restoring")

	// errNotConnected is the Status error before the first contact.
	errNotConnected = errors.New("redis: not connected yet")
)
