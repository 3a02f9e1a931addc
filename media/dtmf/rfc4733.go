package dtmf

import (
	"encoding/binary"
	"fmt"
	"time"
)

// RFC 4733 telephone-events: the payload format (§2.3), the receiver procedures (§2.5.2) and
// the sender procedures (§2.5.1) for DTMF (event codes 0-15, §3.2).

// EventLen is the size of one event report (RFC 4733 §2.3).
const EventLen = 4

// EventFlash is the hook-flash event code (RFC 4733 §3.2); receivers ignore it.
const EventFlash = 16

// Event is one RFC 4733 §2.3 event report.
type Event struct {
	// Code is the event: 0-9 the digits, 10 '*', 11 '#', 12-15 A-D, 16 flash.
	Code uint8
	// End is the E bit: this report ends the event.
	End bool
	// Volume is the tone's power as −dBm0, 0-63 (larger is quieter).
	Volume uint8
	// Duration is the event's length so far in RTP timestamp units, counted from the packet's
	// RTP timestamp.
	Duration uint16
}

// ParseEvent reads the first event report of a telephone-event payload. Bytes after the first
// report are not examined; ParseEvents reads them all. The reserved R bit is ignored.
func ParseEvent(payload []byte) (Event, error) {
	if len(payload) < EventLen {
		return Event{}, fmt.Errorf("%w: %d bytes", ErrShortPayload, len(payload))
	}
	return Event{
		Code:     payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3F,
		Duration: binary.BigEndian.Uint16(payload[2:4]),
	}, nil
}

// ParseEvents appends every event report in payload to dst (RFC 4733 §2.5.1.5 allows several
// in one packet). The payload must be a non-empty multiple of EventLen bytes.
func ParseEvents(dst []Event, payload []byte) ([]Event, error) {
	if len(payload) < EventLen || len(payload)%EventLen != 0 {
		return dst, fmt.Errorf("%w: %d bytes is not a whole number of 4-byte reports", ErrShortPayload, len(payload))
	}
	for i := 0; i < len(payload); i += EventLen {
		e, _ := ParseEvent(payload[i:])
		dst = append(dst, e)
	}
	return dst, nil
}

// Marshal returns the 4-byte report. Volume is truncated to its 6 bits.
func (e Event) Marshal() []byte { return e.AppendTo(make([]byte, 0, EventLen)) }

// AppendTo appends the 4-byte report to b.
func (e Event) AppendTo(b []byte) []byte {
	flags := e.Volume & 0x3F
	if e.End {
		flags |= 0x80
	}
	return append(b, e.Code, flags, byte(e.Duration>>8), byte(e.Duration))
}

// Digit returns the DTMF digit of a report (false for flash and other events).
func (e Event) Digit() (byte, bool) {
	if e.Code < 16 {
		return eventDigits[e.Code], true
	}
	return 0, false
}

// eventDigits maps event codes 0-15 to digits (RFC 4733 §3.2, Table 7).
const eventDigits = "0123456789*#ABCD"

// EventCode returns the RFC 4733 event code of a DTMF digit (0-9, *, #, A-D or a-d).
func EventCode(digit byte) (uint8, bool) {
	if digit >= 'a' && digit <= 'd' {
		digit -= 'a' - 'A'
	}
	for i := 0; i < len(eventDigits); i++ {
		if eventDigits[i] == digit {
			return uint8(i), true
		}
	}
	return 0, false
}

// Header holds the RTP header fields (RFC 3550 §5.1) a Receiver needs.
type Header struct {
	PayloadType    uint8
	SSRC           uint32
	SequenceNumber uint16
	Timestamp      uint32
	Marker         bool
}

// KeyPress is one key press received as telephone-events.
type KeyPress struct {
	// Digit is one of 0123456789*#ABCD.
	Digit byte
	// Timestamp is the RTP timestamp of the event's start.
	Timestamp uint32
	// Duration is the event's length as last reported (zero when reported at its start).
	Duration time.Duration
	// Ended tells whether an end report (E bit) was received; false when the event was closed
	// by a timeout, by a newer event, by a new SSRC, or reported at its start.
	Ended bool
}

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	// PayloadType is the telephone-event payload type negotiated for this stream (SDP rtpmap
	// "telephone-event"); packets with another type are refused. Required: dynamic types are
	// 96-127, and peers use many (101, 96, 100, 110, 126...).
	PayloadType uint8
	// ClockRate is the telephone-event RTP clock rate from the rtpmap, in Hz. Default 8000.
	ClockRate int
	// Timeout closes an event that has had no packet for this long (its end packets were
	// lost). Default 250 ms.
	Timeout time.Duration
	// ReportOnStart reports each key press as soon as its first packet arrives (lowest latency,
	// Duration zero) instead of when it ends. Each key press is reported once either way.
	ReportOnStart bool
}

// Validate reports an invalid setting as an error wrapping ErrConfig.
func (c ReceiverConfig) Validate() error {
	if c.PayloadType > 127 {
		return fmt.Errorf("%w: payload type %d: want 0-127", ErrConfig, c.PayloadType)
	}
	if c.ClockRate < 0 || c.ClockRate > 192000 {
		return fmt.Errorf("%w: clock rate %d Hz", ErrConfig, c.ClockRate)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: timeout %v", ErrConfig, c.Timeout)
	}
	return nil
}

// ReceiverStats count what a Receiver did with the packets it was given.
type ReceiverStats struct {
	Packets    uint64 // telephone-event packets handled
	KeyPresses uint64 // key presses reported
	Duplicates uint64 // reports of an event already ended (the redundant end packets)
	Late       uint64 // reports older than the newest event, dropped
	Ignored    uint64 // flash and non-DTMF events
	TimedOut   uint64 // events closed without an end report
}

// Receiver turns the telephone-event packets of one RTP stream into key presses, once each,
// following RFC 4733 §2.5.2: all packets of an event share its RTP timestamp, so duplicates and
// the three redundant end packets are recognised by timestamp, never by event code (a quickly
// typed "11" is two events); a first packet that is lost, or arrives with duration 0, does not
// lose the digit; an event whose end packets are all lost is closed by a newer event, by
// Timeout (Tick, TickRTP) or at Flush; the segments of a long-duration event (§2.5.1.3) are
// merged. It is not safe for concurrent use.
type Receiver struct {
	cfg     ReceiverConfig
	timeout uint32 // Timeout in RTP units

	ssrc     uint32
	haveSSRC bool
	lastTS   uint32 // start timestamp of the newest event segment seen
	haveLast bool

	cur struct {
		open     bool
		code     uint8
		first    uint32 // RTP timestamp of the event's first segment
		seg      uint32 // RTP timestamp of the current segment
		base     uint64 // duration of earlier segments, RTP units
		dur      uint16 // the current segment's largest duration
		ended    bool
		reported bool
		last     time.Time
	}
	scratch [16]Event
	stats   ReceiverStats
}

// NewReceiver returns a receiver for one stream.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClockRate == 0 {
		cfg.ClockRate = 8000
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 250 * time.Millisecond
	}
	return &Receiver{cfg: cfg, timeout: uint32(cfg.Timeout.Seconds() * float64(cfg.ClockRate))}, nil
}

// Accepts tells whether packets of payload type pt are telephone-events for this receiver.
func (r *Receiver) Accepts(pt uint8) bool { return pt == r.cfg.PayloadType }

// Stats returns the receiver's counters.
func (r *Receiver) Stats() ReceiverStats { return r.stats }

// Handle processes one telephone-event packet that arrived at now and appends the key presses
// it completes (or starts, with ReportOnStart) to dst. It returns ErrPayloadType for a packet of
// another payload type and an error wrapping ErrShortPayload for a malformed payload; dst is
// returned unchanged with either. It does not allocate when dst has room.
func (r *Receiver) Handle(dst []KeyPress, h Header, payload []byte, now time.Time) ([]KeyPress, error) {
	if h.PayloadType != r.cfg.PayloadType {
		return dst, ErrPayloadType
	}
	events, err := ParseEvents(r.scratch[:0], payload)
	if err != nil {
		return dst, err
	}
	r.stats.Packets++
	if r.haveSSRC && h.SSRC != r.ssrc {
		dst = r.close(dst) // a new stream: the old one's event cannot continue
		r.haveLast = false
	}
	r.ssrc, r.haveSSRC = h.SSRC, true
	dst = r.Tick(dst, now)
	for i, e := range events {
		if e.Code > 15 {
			r.stats.Ignored++
			continue
		}
		if i < len(events)-1 {
			// An earlier report of a multi-event packet (§2.5.1.5) describes an event that has
			// ended; use it only to end the event in progress.
			if e.End && r.cur.open && e.Code == r.cur.code && !r.cur.ended {
				r.update(e.Duration, now)
				dst = r.end(dst, true)
			}
			continue
		}
		dst = r.report(dst, h.Timestamp, e, now)
	}
	return dst, nil
}

// report applies one report carried with RTP timestamp ts.
func (r *Receiver) report(dst []KeyPress, ts uint32, e Event, now time.Time) []KeyPress {
	if r.haveLast {
		switch diff := int32(ts - r.lastTS); {
		case diff < 0:
			r.stats.Late++ // a straggler from an older event
			return dst
		case diff == 0:
			if !r.cur.open || r.cur.code != e.Code || r.cur.ended {
				r.stats.Duplicates++ // e.g. the 2nd and 3rd end packets
				return dst
			}
			r.update(e.Duration, now)
			if e.End {
				dst = r.end(dst, true)
			}
			return dst
		}
	}
	// A newer segment: either the continuation of a long event (§2.5.1.3) or a new event.
	if r.cur.open && !r.cur.ended && r.cur.code == e.Code && r.cur.dur >= 0x8000 {
		next := r.cur.seg + uint32(r.cur.dur)
		if d := int32(ts - next); d >= -int32(r.cfg.ClockRate/10) && d <= int32(r.cfg.ClockRate/10) {
			r.cur.base += uint64(ts - r.cur.seg)
			r.cur.seg, r.cur.dur, r.cur.last = ts, e.Duration, now
			r.lastTS = ts
			if e.End {
				dst = r.end(dst, true)
			}
			return dst
		}
	}
	dst = r.close(dst)
	r.lastTS, r.haveLast = ts, true
	c := &r.cur
	c.open, c.code, c.first, c.seg, c.base, c.dur, c.ended, c.reported, c.last = true, e.Code, ts, ts, 0, e.Duration, false, false, now
	if r.cfg.ReportOnStart {
		c.reported = true
		r.stats.KeyPresses++
		dst = append(dst, KeyPress{Digit: eventDigits[c.code], Timestamp: c.first})
	}
	if e.End {
		dst = r.end(dst, true)
	}
	return dst
}

func (r *Receiver) update(dur uint16, now time.Time) {
	if dur > r.cur.dur {
		r.cur.dur = dur
	}
	r.cur.last = now
}

// end finishes the current event, reporting it if not yet reported.
func (r *Receiver) end(dst []KeyPress, sawEnd bool) []KeyPress {
	c := &r.cur
	if !c.open || c.ended {
		return dst
	}
	c.ended = true
	if !sawEnd {
		r.stats.TimedOut++
	}
	if !c.reported {
		c.reported = true
		r.stats.KeyPresses++
		units := c.base + uint64(c.dur)
		dst = append(dst, KeyPress{Digit: eventDigits[c.code], Timestamp: c.first,
			Duration: time.Duration(units) * time.Second / time.Duration(r.cfg.ClockRate), Ended: sawEnd})
	}
	return dst
}

// close ends the current event without an end report, if it is still open.
func (r *Receiver) close(dst []KeyPress) []KeyPress {
	if r.cur.open && !r.cur.ended {
		dst = r.end(dst, false)
	}
	return dst
}

// Tick closes an event that has had no packet for Timeout before now, appending it to dst.
// Call it from the stream's read loop or a timer when no telephone-event packet arrives.
func (r *Receiver) Tick(dst []KeyPress, now time.Time) []KeyPress {
	if r.cur.open && !r.cur.ended && now.Sub(r.cur.last) >= r.cfg.Timeout {
		dst = r.close(dst)
	}
	return dst
}

// TickRTP is Tick on the RTP clock: ts is the timestamp of any later packet of the same stream
// (the audio between key presses), and an open event whose reported duration ended Timeout or
// more before ts is closed.
func (r *Receiver) TickRTP(dst []KeyPress, ts uint32) []KeyPress {
	if r.cur.open && !r.cur.ended {
		end := r.cur.seg + uint32(r.cur.dur)
		if d := int32(ts - end); d >= 0 && uint32(d) >= r.timeout {
			dst = r.close(dst)
		}
	}
	return dst
}

// Flush closes the event in progress at the end of the stream.
func (r *Receiver) Flush(dst []KeyPress) []KeyPress { return r.close(dst) }

// Sender builds the telephone-event packets a sender emits for one key press (RFC 4733
// §2.5.1): every packet carries the event's start timestamp, the first has the marker bit, the
// duration grows by Interval in each update, and the final report (E bit) is sent EndRepeats
// times. Events longer than the 16-bit duration field allows are split into segments, each with
// a later timestamp (§2.5.1.3). The zero value is usable: 8 kHz clock, 20 ms interval, volume
// 10 (−10 dBm0), three end packets.
type Sender struct {
	ClockRate  int
	Interval   time.Duration
	Volume     uint8
	EndRepeats int
}

// EventPacket is one packet of a key press.
type EventPacket struct {
	// At is when to send it, from the first packet.
	At time.Duration
	// Timestamp is the RTP timestamp offset from the key press's start (non-zero only in the
	// later segments of a long event).
	Timestamp uint32
	// Marker is the RTP marker bit (set on the first packet of the event).
	Marker bool
	// Event is the report; Event.AppendTo gives the payload.
	Event Event
}

// Packets appends the packets of one key press of digit lasting d to dst.
func (s Sender) Packets(dst []EventPacket, digit byte, d time.Duration) ([]EventPacket, error) {
	code, ok := EventCode(digit)
	if !ok {
		return dst, ErrDigit
	}
	rate, step, vol, repeats := s.ClockRate, s.Interval, s.Volume, s.EndRepeats
	if rate <= 0 {
		rate = 8000
	}
	if step <= 0 {
		step = 20 * time.Millisecond
	}
	if vol == 0 {
		vol = 10
	}
	if repeats <= 0 {
		repeats = 3
	}
	units := func(t time.Duration) uint64 { return uint64(t.Seconds()*float64(rate) + 0.5) }
	total, stepU := units(d), units(step)
	if stepU == 0 {
		stepU = 1
	}
	var segStart uint64
	first := true
	at := time.Duration(0)
	for elapsed := uint64(0); ; elapsed += stepU {
		if elapsed > total {
			elapsed = total
		}
		if elapsed-segStart > 0xFFFF { // start a new segment (§2.5.1.3)
			segStart += 0xFFFF
		}
		final := elapsed == total
		ev := Event{Code: code, Volume: vol, Duration: uint16(elapsed - segStart), End: final}
		n := 1
		if final {
			n = repeats
		}
		for i := 0; i < n; i++ {
			dst = append(dst, EventPacket{At: at, Timestamp: uint32(segStart), Marker: first, Event: ev})
			first = false
			at += step
		}
		if final {
			return dst, nil
		}
	}
}
