package telnyx

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate finds.
	ErrConfig = errors.New("telnyx: invalid config")
	// ErrInvalidPlay is returned by Leg.Play for a nil clip or an empty or oversized mark name.
	ErrInvalidPlay = errors.New("telnyx: invalid play request")
	// ErrRejected is returned by Dial when the server refused the WebSocket upgrade (the
	// message carries the HTTP status: 401 without a stream token, 403 with a wrong one).
	ErrRejected = errors.New("telnyx: stream rejected")
	// ErrClientClosed is returned by Client methods after the stream has closed.
	ErrClientClosed = errors.New("telnyx: client closed")
	// ErrServerProtocol is what Client.Err reports when the server sent something Telnyx
	// would answer with an error frame.
	ErrServerProtocol = errors.New("telnyx: server broke the protocol")
)
