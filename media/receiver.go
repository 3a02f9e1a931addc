package media

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ToneDetector finds DTMF digits in inbound audio. media/dtmf implements it. Process consumes
// samples at the rate the detector was built for, appends each digit whose tone has been
// confirmed to dst and returns it; it must not allocate when dst has room.
type ToneDetector interface {
	Process(dst []byte, pcm []int16) []byte
}

// DTMFMode chooses which digit sources a leg believes.
type DTMFMode uint8

// DTMF modes.
const (
	// DTMFAuto takes the platform's digit events and, when a detector is configured, in-band
	// tones too, reporting a key press that arrives both ways once.
	DTMFAuto DTMFMode = iota
	// DTMFEvents takes only out-of-band digits (platform events, RFC 4733, SIP INFO).
	DTMFEvents
	// DTMFInband takes only digits found in the audio.
	DTMFInband
)

// ParseDTMFMode parses "auto", "events" or "inband" ("" is auto).
func ParseDTMFMode(s string) (DTMFMode, error) {
	switch s {
	case "", "auto":
		return DTMFAuto, nil
	case "events":
		return DTMFEvents, nil
	case "inband":
		return DTMFInband, nil
	}
	return 0, fmt.Errorf("media: dtmf mode %q: want auto, events or inband", s)
}

func (m DTMFMode) String() string {
	switch m {
	case DTMFEvents:
		return "events"
	case DTMFInband:
		return "inband"
	}
	return "auto"
}

// ReceiverConfig configures a Receiver. The zero value is usable.
type ReceiverConfig struct {
	// Buffer is the event channel's capacity. Default 64.
	Buffer int
	// Mode chooses the digit sources. Default DTMFAuto.
	Mode DTMFMode
	// Detector finds in-band digits; nil disables in-band detection.
	Detector ToneDetector
	// DedupWindow is how close in time the same digit from two different sources must be to
	// count as one key press. Default 200 ms.
	DedupWindow time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Receiver is the inbound half every adapter shares: it turns what the adapter reads into the
// leg's ordered Event stream. Start, Digit, Mark and Audio are called from the adapter's read
// loop; Hangup may be called from any goroutine, once or many times. No method blocks: when
// the consumer falls behind, events are dropped and counted.
type Receiver struct {
	cfg    ReceiverConfig
	events chan Event
	digits []byte // in-band scratch, reused

	mu     sync.Mutex
	closed bool
	err    error

	lastDigit  byte
	lastSource DigitSource
	lastAt     time.Time

	dropped    atomic.Uint64
	duplicates atomic.Uint64
	frames     atomic.Uint64
}

// NewReceiver returns a Receiver with cfg's defaults filled in.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 64
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 200 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Receiver{cfg: cfg, events: make(chan Event, cfg.Buffer), digits: make([]byte, 0, 16)}
}

// Events is the channel the leg's Events method returns.
func (r *Receiver) Events() <-chan Event { return r.events }

// Start reports the call's metadata.
func (r *Receiver) Start(s *Start) { r.send(Event{Type: EventStart, Start: s}) }

// Mark reports a mark acknowledgement.
func (r *Receiver) Mark(name string, played bool) {
	r.send(Event{Type: EventMark, Mark: name, Played: played})
}

// Digit reports a key press from src. Digits from a source the mode excludes are ignored, and
// the same digit from a second source within DedupWindow is counted as a duplicate, not sent.
func (r *Receiver) Digit(d byte, src DigitSource) {
	if r.cfg.Mode == DTMFInband && src != SourceInband {
		return
	}
	if r.cfg.Mode == DTMFEvents && src == SourceInband {
		return
	}
	now := r.cfg.Now()
	r.mu.Lock()
	dup := d == r.lastDigit && src != r.lastSource && now.Sub(r.lastAt) < r.cfg.DedupWindow
	if !dup {
		r.lastDigit, r.lastSource, r.lastAt = d, src, now
	}
	r.mu.Unlock()
	if dup {
		r.duplicates.Add(1)
		totals.duplicates.Add(1)
		return
	}
	if src <= SourceInband {
		totals.digits[src].Add(1)
	}
	r.send(Event{Type: EventDTMF, Digit: d, Source: src})
}

// Audio hands the receiver one block of inbound PCM (normally a 20 ms frame). With a detector
// configured and the mode allowing in-band digits, the block is searched for tones.
func (r *Receiver) Audio(pcm []int16) {
	r.frames.Add(1)
	totals.framesIn.Add(1)
	if r.cfg.Detector == nil || r.cfg.Mode == DTMFEvents {
		return
	}
	r.digits = r.cfg.Detector.Process(r.digits[:0], pcm)
	for _, d := range r.digits {
		r.Digit(d, SourceInband)
	}
}

// Hangup ends the stream: it sends EventHangup with err (ErrHangup when nil) and closes the
// channel. Later calls do nothing.
func (r *Receiver) Hangup(err error) {
	if err == nil {
		err = ErrHangup
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	r.err = err
	select {
	case r.events <- Event{Type: EventHangup, Err: err}:
	default:
		r.dropped.Add(1)
		totals.eventsDropped.Add(1)
	}
	close(r.events)
}

// Err returns why the stream ended, or nil while it is live.
func (r *Receiver) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Stats are a receiver's counters, for the end-of-call summary and metrics.
type Stats struct {
	Frames, Dropped, Duplicates uint64
}

// Stats returns the receiver's counters.
func (r *Receiver) Stats() Stats {
	return Stats{Frames: r.frames.Load(), Dropped: r.dropped.Load(), Duplicates: r.duplicates.Load()}
}

func (r *Receiver) send(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	select {
	case r.events <- ev:
	default:
		r.dropped.Add(1)
		totals.eventsDropped.Add(1)
	}
}
