package sip

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate finds.
	ErrConfig = errors.New("sip: invalid config")
	// ErrNoPorts means no UDP port in Config's RTP range was free for a new call; the INVITE is
	// answered 503.
	ErrNoPorts = errors.New("sip: no free RTP port")
	// ErrSDP wraps every reason a session description is refused: unparseable, no audio
	// stream, no G.711 codec, an address we cannot send to. Peers get 488 Not Acceptable Here.
	ErrSDP = errors.New("sip: unacceptable session description")
	// ErrRTPTimeout is the Hangup event's error when the caller's RTP stopped for longer than
	// Config.RTPTimeout; the leg sends BYE.
	ErrRTPTimeout = errors.New("sip: no RTP from the caller")
	// ErrInvalidPlay is returned by Leg.Play for a nil clip or an empty or oversized mark name.
	ErrInvalidPlay = errors.New("sip: invalid play request")
	// ErrShutdown is the Hangup event's error for calls ended because the server stopped.
	ErrShutdown = errors.New("sip: server shutting down")
	// ErrRejected is returned by Dial when the server answered the INVITE with a final status
	// other than 2xx (the message carries the status, never a body).
	ErrRejected = errors.New("sip: call rejected")
	// ErrClientClosed is returned by Client methods after the call has ended.
	ErrClientClosed = errors.New("sip: client closed")
)
