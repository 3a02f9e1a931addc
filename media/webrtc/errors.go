package webrtc

import "errors"

var (
	// ErrConfig wraps every problem Config.Validate finds.
	ErrConfig = errors.New("webrtc: invalid config")
	// ErrBadOffer means an offer was not a usable SDP offer (400 Bad Request).
	ErrBadOffer = errors.New("webrtc: bad offer")
	// ErrNoCodec means an offer had no audio section offering PCMU or PCMA both ways
	// (406 Not Acceptable).
	ErrNoCodec = errors.New("webrtc: offer has no PCMU or PCMA audio")
	// ErrInvalidPlay is returned by Leg.Play for a nil clip or an empty or oversized mark name.
	ErrInvalidPlay = errors.New("webrtc: invalid play request")
	// ErrMediaTimeout ends a call that received no RTP for Config.MediaTimeout.
	ErrMediaTimeout = errors.New("webrtc: no inbound media")
	// ErrICE ends a call whose ICE connection failed or was lost.
	ErrICE = errors.New("webrtc: ice connection lost")
	// ErrShutdown ends the calls still live when the Handler closes.
	ErrShutdown = errors.New("webrtc: server shutting down")
	// ErrRejected is returned by Dial when the server refused the offer; the message carries
	// the HTTP status.
	ErrRejected = errors.New("webrtc: offer rejected")
	// ErrClientClosed is returned by Client methods after the call has ended.
	ErrClientClosed = errors.New("webrtc: client closed")
)
