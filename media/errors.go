package media

import "errors"

var (
	// ErrLegClosed is returned by an action on a leg whose call has ended.
	ErrLegClosed = errors.New("media: leg closed")
	// ErrBackpressure is returned when a leg's outbound queue is full; the peer is not reading.
	ErrBackpressure = errors.New("media: outbound queue full")
	// ErrHangup is the reason carried by a Hangup event when the caller or platform ended the call.
	ErrHangup = errors.New("media: caller hung up")
	// ErrProtocol wraps every violation of a platform's wire protocol by the peer.
	ErrProtocol = errors.New("media: protocol error")
	// ErrBadAudio is returned by NewClip for audio that is not 8 kHz PCM16 frames.
	ErrBadAudio = errors.New("media: bad audio")
)
