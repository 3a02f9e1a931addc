package wsjson

import "errors"

var (
	// ErrSyntax is the Scanner's verdict on text that is not JSON (RFC 8259).
	ErrSyntax = errors.New("wsjson: invalid JSON")
	// ErrDepth is the Scanner's verdict on values nested deeper than sixteen levels.
	ErrDepth = errors.New("wsjson: JSON nested too deep")
)
