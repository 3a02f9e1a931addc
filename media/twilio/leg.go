package twilio

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/wsjson"
)

// Reader states.
const (
	stateNew       = iota // waiting for "connected"
	stateConnected        // waiting for "start"
	stateStarted          // streaming
)

// Leg is one Twilio media stream as a media.Leg. Handler creates it and hands it to the serve
// function; its methods are safe for concurrent use.
type Leg struct {
	s *wsjson.Stream

	// Reader goroutine only.
	p       wsjson.Parser
	msg     wsjson.Message
	frame   wsjson.MediaFrame
	state   int
	lastSeq uint64
	haveSeq bool
	nextTS  uint64 // timestamp where the next frame should start, ms
	haveTS  bool
	sid     []byte // streamSid, to compare with each message's
	ubuf    []byte // μ-law payload
	pcm     []int16
}

var _ media.Leg = (*Leg)(nil)

// Stats are a leg's counters, for the end-of-call log line and metrics. They never include
// what the caller keyed.
type Stats struct {
	// FramesIn and FramesOut count media messages received and sent.
	FramesIn, FramesOut uint64
	// Drops counts Play requests refused for backpressure, inbound frames ignored (another
	// track) and events the receiver dropped because the flow fell behind.
	Drops uint64
	// MarksOut and MarksIn count marks sent and echoes received; Clears counts clears sent.
	MarksOut, MarksIn, Clears uint64
	// Gaps counts inbound frames whose timestamp skipped ahead of the audio received (Twilio
	// skips frames in silence).
	Gaps uint64
}

func newLeg(conn *websocket.Conn, cfg *Config, cancel context.CancelFunc) *Leg {
	l := &Leg{ // ubuf and pcm grow to the frames the platform sends (20 ms: 160 samples)
		p: wsjson.Parser{Keys: wsjson.Keys{Seq: "sequenceNumber", StreamID: "streamSid"}},
	}
	l.s = wsjson.New(conn, wsjson.Config{
		Name:        "twilio",
		ReadLimit:   cfg.ReadLimit,
		DTMF:        cfg.DTMF,
		NewDetector: cfg.NewDetector,
		Handle:      l.handle,
		Cancel:      cancel,
	})
	return l
}

// Events implements media.Leg.
func (l *Leg) Events() <-chan media.Event { return l.s.Events() }

// Info implements media.Leg.
func (l *Leg) Info() media.Info { return media.Info{Transport: "twilio", NativeMarks: true} }

// Start returns the stream's metadata (nil before "start" arrived).
func (l *Leg) Start() *media.Start { return l.s.Start() }

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats { return Stats(l.s.Stats()) }

// Play implements media.Leg: the clip goes to Twilio as media messages of at most one second
// each, then a mark named mark. It returns ErrInvalidPlay for a nil clip or a bad mark name,
// media.ErrLegClosed after the leg ended and media.ErrBackpressure when the queue is full.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	if clip == nil || !wsjson.ValidMark(mark) {
		return fmt.Errorf("%w: want a clip and a mark name of 1 to %d bytes of UTF-8", ErrInvalidPlay, wsjson.MaxMarkName)
	}
	return l.s.Play(clip, mark)
}

// Clear implements media.Leg: queued prompts not yet sent are dropped, Twilio is sent "clear",
// and every mark still pending comes back with Played false.
func (l *Leg) Clear() error { return l.s.Clear() }

// Hangup implements media.Leg: the socket closes with 1000 and reason, so Twilio continues the
// TwiML after </Connect>. The leg's last event is a Hangup with media.ErrLegClosed. Later calls
// do nothing.
func (l *Leg) Hangup(reason string) error { return l.s.Hangup(reason) }

// Close hangs up (reason "closed") and waits for the leg's goroutines. It is idempotent.
func (l *Leg) Close() error { return l.s.Close() }

// handle processes one text message. It allocates nothing for media, dtmf and mark messages
// once the leg's buffers have grown to the frame size. Errors are *wsjson.Violation.
func (l *Leg) handle(data []byte) error {
	m := &l.msg
	if err := l.p.Parse(data, m); err != nil {
		return err
	}
	if !m.HasEvent {
		return wsjson.Violationf(wsjson.CloseInvalid, "message has no event")
	}
	if string(m.Event) == "connected" {
		if l.state != stateNew {
			return wsjson.Violationf(wsjson.ClosePolicy, "second connected message")
		}
		l.state = stateConnected
		return nil
	}
	if err := l.checkSeq(m); err != nil {
		return err
	}
	if l.state == stateStarted && m.HasStreamID && !bytes.Equal(m.StreamID, l.sid) {
		return wsjson.Violationf(wsjson.ClosePolicy, "streamSid differs from the one in start")
	}
	switch string(m.Event) {
	case "start":
		return l.onStart(m)
	case "media", "dtmf", "mark":
		if l.state != stateStarted {
			return wsjson.Violationf(wsjson.ClosePolicy, "%s before start", m.Event)
		}
	case "stop":
		l.s.End(websocket.CloseNormalClosure, "stream stopped", media.ErrHangup, true)
		return nil
	default:
		return wsjson.Violationf(wsjson.ClosePolicy, "unknown event %s", wsjson.QuoteName(m.Event))
	}
	switch string(m.Event) {
	case "media":
		return l.onMedia(m.Media)
	case "dtmf":
		return l.s.ReadDTMF(&l.p, m.DTMF)
	default:
		return l.s.ReadMark(&l.p, m.Mark)
	}
}

// checkSeq parses sequenceNumber and requires it to increase.
func (l *Leg) checkSeq(m *wsjson.Message) error {
	if !m.HasSeq {
		return wsjson.Violationf(wsjson.CloseInvalid, "%s message has no sequenceNumber", wsjson.QuoteName(m.Event))
	}
	seq, ok := wsjson.ParseCounter(m.Seq)
	if !ok {
		return wsjson.Violationf(wsjson.CloseInvalid, "sequenceNumber is not a decimal counter")
	}
	if l.haveSeq && seq <= l.lastSeq {
		return wsjson.Violationf(wsjson.ClosePolicy, "sequenceNumber %d after %d", seq, l.lastSeq)
	}
	l.lastSeq, l.haveSeq = seq, true
	return nil
}

func (l *Leg) onStart(m *wsjson.Message) error {
	switch l.state {
	case stateNew:
		return wsjson.Violationf(wsjson.ClosePolicy, "start before connected")
	case stateStarted:
		return wsjson.Violationf(wsjson.ClosePolicy, "second start")
	}
	if m.Start == nil {
		return wsjson.Violationf(wsjson.CloseInvalid, "start message has no start object")
	}
	f, err := l.parseStart(m.Start)
	if err != nil {
		return err
	}
	switch {
	case !wsjson.ValidID(f.callSid):
		return wsjson.Violationf(wsjson.CloseInvalid, "start.callSid is missing or malformed")
	case !wsjson.ValidID(f.streamSid):
		return wsjson.Violationf(wsjson.CloseInvalid, "start.streamSid is missing or malformed")
	case m.HasStreamID && string(m.StreamID) != f.streamSid:
		return wsjson.Violationf(wsjson.ClosePolicy, "streamSid differs from start.streamSid")
	case f.format.Encoding != "" && f.format.Encoding != "audio/x-mulaw":
		return wsjson.Violationf(wsjson.ClosePolicy, "unsupported media encoding %s", wsjson.QuoteName([]byte(f.format.Encoding)))
	case f.format.SampleRate != 0 && f.format.SampleRate != media.SampleRate:
		return wsjson.Violationf(wsjson.ClosePolicy, "unsupported sample rate %d", f.format.SampleRate)
	case f.format.Channels != 0 && f.format.Channels != 1:
		return wsjson.Violationf(wsjson.ClosePolicy, "unsupported channel count %d", f.format.Channels)
	}
	st := &media.Start{CallID: f.callSid, StreamID: f.streamSid, Transport: "twilio", Params: map[string]string{}}
	for k, v := range f.params {
		switch k {
		case "from":
			st.From = v
		case "to":
			st.To = v
		case "verstat":
			st.Verstat = v
		default:
			st.Params[k] = v
		}
	}
	l.sid = []byte(f.streamSid)
	q := wsjson.AppendString(nil, f.streamSid)
	l.state = stateStarted
	l.s.Started(st, wsjson.Wire{
		Codec:       wsjson.Ulaw,
		MediaPrefix: append([]byte(`{"event":"media","streamSid":`), q...),
		MarkPrefix:  append(append([]byte(`{"event":"mark","streamSid":`), q...), `,"mark":{"name":`...),
		Clear:       append(append([]byte(`{"event":"clear","streamSid":`), q...), '}'),
	})
	return nil
}

// startFields is a "start" message's body. It is parsed once per call and may allocate.
type startFields struct {
	streamSid, accountSid, callSid string
	params                         map[string]string
	format                         wsjson.Format
}

func (l *Leg) parseStart(raw []byte) (*startFields, error) {
	f := &startFields{}
	err := l.p.Fields(raw, func(k []byte, s *wsjson.Scanner) error {
		switch string(k) {
		case "streamSid", "accountSid", "callSid":
			v, err := wsjson.StringValue(s, "start", k)
			if err != nil {
				return err
			}
			switch string(k) {
			case "streamSid":
				f.streamSid = string(v)
			case "accountSid":
				f.accountSid = string(v)
			default:
				f.callSid = string(v)
			}
			return nil
		case "customParameters":
			var err error
			f.params, err = wsjson.StringMap(s, "start.customParameters")
			return err
		case "mediaFormat":
			return wsjson.ReadFormat(s, "start.mediaFormat", "sampleRate", &f.format)
		}
		return s.Skip(1)
	})
	return f, err
}

func (l *Leg) onMedia(raw []byte) error {
	fr := &l.frame
	inbound, err := l.s.ReadMedia(&l.p, raw, true, &l.ubuf, fr)
	if err != nil || !inbound { // <Connect><Stream> carries the caller only
		return err
	}
	if l.haveTS && fr.Timestamp > l.nextTS+uint64(media.FrameDuration/time.Millisecond) {
		l.s.Counters().Gaps.Add(1)
	}
	l.nextTS, l.haveTS = fr.Timestamp+uint64(len(fr.Audio)/(media.SampleRate/1000)), true
	if cap(l.pcm) < len(fr.Audio) {
		l.pcm = make([]int16, len(fr.Audio))
	}
	l.s.Receiver().Audio(media.DecodeUlaw(l.pcm[:cap(l.pcm)], fr.Audio))
	return nil
}
