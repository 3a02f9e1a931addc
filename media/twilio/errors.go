package twilio

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate finds.
	ErrConfig = errors.New("twilio: invalid config")
	// ErrSignature means a request's X-Twilio-Signature was absent or did not match; the
	// request is refused with 403 before any WebSocket upgrade.
	ErrSignature = errors.New("twilio: bad signature")
	// ErrInvalidPlay is returned by Leg.Play for a nil clip or an empty or oversized mark name.
	ErrInvalidPlay = errors.New("twilio: invalid play request")
	// ErrRejected is returned by Dial when the server refused the WebSocket upgrade (the
	// message carries the HTTP status).
	ErrRejected = errors.New("twilio: stream rejected")
	// ErrClientClosed is returned by Client methods after the stream has closed.
	ErrClientClosed = errors.New("twilio: client closed")
)
