package media

import (
	"time"
)

// SampleRate is the rate of the PCM the flow and the prompts work in, in Hz.
const SampleRate = 8000

// FrameDuration is the length of one frame on every real-time path.
const FrameDuration = 20 * time.Millisecond

// FrameSamples is the number of samples in one 20 ms frame at SampleRate.
const FrameSamples = SampleRate / 50

// EventType tells what an Event carries.
type EventType uint8

// Event types, in the order a call normally produces them.
const (
	// EventStart carries the call's metadata; it is the first event of every leg.
	EventStart EventType = iota + 1
	// EventDTMF carries one key press.
	EventDTMF
	// EventMark reports that the audio queued before a mark has been played or discarded.
	EventMark
	// EventHangup is the last event of a leg; Err says why the leg ended.
	EventHangup
)

func (t EventType) String() string {
	switch t {
	case EventStart:
		return "start"
	case EventDTMF:
		return "dtmf"
	case EventMark:
		return "mark"
	case EventHangup:
		return "hangup"
	}
	return "unknown"
}

// DigitSource tells how a key press reached us.
type DigitSource uint8

// Digit sources.
const (
	// SourceEvent is a platform's digit event (Twilio "dtmf", Vonage "websocket:dtmf", ...).
	SourceEvent DigitSource = iota + 1
	// SourceRFC4733 is an RTP telephone-event (RFC 4733).
	SourceRFC4733
	// SourceSIPInfo is a SIP INFO request with a DTMF body.
	SourceSIPInfo
	// SourceInband is a tone pair found in the audio by a ToneDetector.
	SourceInband
)

func (s DigitSource) String() string {
	switch s {
	case SourceEvent:
		return "event"
	case SourceRFC4733:
		return "rfc4733"
	case SourceSIPInfo:
		return "sip_info"
	case SourceInband:
		return "inband"
	}
	return "unknown"
}

// Start is the call metadata a leg reports first.
type Start struct {
	// CallID is the platform's call id where it has one (Twilio callSid), else one we made.
	CallID string
	// StreamID is the platform's id for this media stream (Twilio streamSid), if any.
	StreamID string
	// Transport names the adapter: "twilio", "telnyx", "sip", "webrtc", ...
	Transport string
	// From and To are the caller's and the dialled number as the platform gave them (E.164
	// where it can). From is personal data: log it only through MaskPhone.
	From, To string
	// Verstat is the STIR/SHAKEN verification status the platform reported, or "".
	Verstat string
	// Params are the remaining stream parameters (request, lang, account, ...).
	Params map[string]string
}

// Param returns the stream parameter name, or "".
func (s *Start) Param(name string) string {
	if s == nil || s.Params == nil {
		return ""
	}
	return s.Params[name]
}

// Event is one thing that happened on a leg. Which fields are set depends on Type.
type Event struct {
	Type EventType
	// Start is set for EventStart.
	Start *Start
	// Digit is one of "0123456789*#ABCD", set for EventDTMF.
	Digit byte
	// Source is set for EventDTMF.
	Source DigitSource
	// Mark is the mark's name, set for EventMark.
	Mark string
	// Played is false for a mark whose audio was discarded by Clear rather than played.
	Played bool
	// Err is why the leg ended, set for EventHangup: ErrHangup for a caller or platform
	// hang-up, a wrapped ErrProtocol for a misbehaving peer, or a transport error.
	Err error
}

// Info describes a leg's capabilities; the flow uses it to choose timeouts and pacing.
type Info struct {
	// Transport names the adapter, as in Start.Transport.
	Transport string
	// NativeMarks is true when the platform itself acknowledges marks after playback
	// (Twilio, Telnyx, ...); otherwise the leg emits them from its own playback clock.
	NativeMarks bool
}

// Leg is one call leg as the flow sees it. Implementations live in the adapter packages.
//
// Events delivers the leg's events in order, starting with EventStart and ending with exactly
// one EventHangup, after which the channel is closed. Actions never block on the network: they
// queue work for the leg's writer and return ErrLegClosed once the leg has ended or
// ErrBackpressure when the peer does not keep up.
type Leg interface {
	// Events returns the leg's event channel.
	Events() <-chan Event
	// Play queues a clip followed by a mark named mark; when the clip has played (or was
	// discarded by Clear) the leg reports EventMark with that name.
	Play(clip *Clip, mark string) error
	// Clear discards queued audio (barge-in). Marks queued before it are reported with
	// Played false.
	Clear() error
	// Hangup ends the leg: the stream closes so the platform continues its own call flow
	// (or the call ends where the transport has no flow of its own). reason is recorded.
	Hangup(reason string) error
	// Info describes the leg.
	Info() Info
}
