package media

import "sync/atomic"

// totals are the process-wide frame and digit counters every leg adds to as it goes, so that
// the node's metrics move during a call rather than at its end. Adding never blocks a leg.
var totals struct {
	framesIn      atomic.Uint64
	eventsDropped atomic.Uint64
	duplicates    atomic.Uint64
	outLate       atomic.Uint64
	outDropped    atomic.Uint64
	refused       atomic.Uint64
	digits        [SourceInband + 1]atomic.Uint64
}

// Totals are the counters of every leg in this process since it started.
type Totals struct {
	// FramesIn counts inbound audio blocks handed to a Receiver (normally 20 ms each).
	FramesIn uint64
	// EventsDropped counts events a Receiver dropped because the flow fell behind.
	EventsDropped uint64
	// Duplicates counts key presses that arrived from a second source and were reported once.
	Duplicates uint64
	// FramesLate counts outbound frames a paced writer sent more than its tolerance behind
	// schedule (AudioSocket, WebRTC, SIP: the legs that own the playout clock).
	FramesLate uint64
	// FramesDropped counts outbound frames the socket refused (an RTP write that failed).
	FramesDropped uint64
	// PromptsRefused counts prompts a leg refused to queue because the peer did not keep up.
	PromptsRefused uint64
	// Digits counts the digits reported to the flow, by source (index DigitSource).
	Digits [SourceInband + 1]uint64
}

// ReadTotals returns the process-wide counters.
func ReadTotals() Totals {
	t := Totals{
		FramesIn: totals.framesIn.Load(), EventsDropped: totals.eventsDropped.Load(),
		Duplicates: totals.duplicates.Load(), FramesLate: totals.outLate.Load(),
		FramesDropped: totals.outDropped.Load(), PromptsRefused: totals.refused.Load(),
	}
	for i := range t.Digits {
		t.Digits[i] = totals.digits[i].Load()
	}
	return t
}

// CountLateFrame records one outbound frame sent late; paced writers call it.
func CountLateFrame() { totals.outLate.Add(1) }

// CountDroppedFrame records one outbound frame the socket refused.
func CountDroppedFrame() { totals.outDropped.Add(1) }

// CountRefusedPrompt records one prompt a leg refused with ErrBackpressure.
func CountRefusedPrompt() { totals.refused.Add(1) }
