package redis

import "errors"

var (
	// ErrBadConfig is returned by Config.Validate and Open for a configuration that cannot
	// work. Its messages never include a password.
	ErrBadConfig = errors.New("redis: invalid config")
)
