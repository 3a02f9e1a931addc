package asterisk

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate finds.
	ErrConfig = errors.New("asterisk: invalid config")
	// ErrInvalidPlay is returned by Leg.Play for a nil clip or an empty or oversized mark name.
	ErrInvalidPlay = errors.New("asterisk: invalid play request")
	// ErrRejected is returned by Dial when the server refused the WebSocket upgrade (the
	// message carries the HTTP status).
	ErrRejected = errors.New("asterisk: connection rejected")
	// ErrClientClosed is returned by Client methods after the connection has closed.
	ErrClientClosed = errors.New("asterisk: client closed")
)
