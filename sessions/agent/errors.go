package agent

import "errors"

var (
	// ErrClosed is returned by Publish after Close.
	ErrClosed = errors.New("agent: hub closed")
)
