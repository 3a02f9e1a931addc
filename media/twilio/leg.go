package twilio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/callproof/callproof/media"
)

const (
	// writeTimeout bounds each write to the socket; a peer that does not read for this long
	// loses the call.
	writeTimeout = 10 * time.Second
	// closeGrace is how long the leg waits for the peer's close frame after sending its own.
	closeGrace = 2 * time.Second
	// outQueue is the capacity of the outbound queue, in Play requests (whole prompts).
	outQueue = 64
	// maxMarkName bounds mark names; ours are prompt ids.
	maxMarkName = 256
	// maxCloseReason is the room for a reason in a close frame (RFC 6455 §5.5: 125 bytes of
	// payload, two of them the code).
	maxCloseReason = 123
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
	conn  *websocket.Conn
	rx    *media.Receiver
	limit int64

	// Reader goroutine only.
	p       parser
	msg     inbound
	state   int
	lastSeq uint64
	haveSeq bool
	nextTS  uint64 // timestamp where the next frame should start, ms
	haveTS  bool
	sid     []byte // streamSid, to compare with each message's
	rbuf    []byte // message
	ubuf    []byte // μ-law payload
	pcm     []int16

	start   *media.Start
	started chan struct{} // closed when "start" has been accepted

	// Writer goroutine only (prefixes are set before started is closed).
	out         chan play
	clearReq    chan struct{} // capacity 1: a Clear is pending
	clearGen    atomic.Uint64 // Clear calls so far
	sentClear   uint64        // clearGen value covered by the last clear sent
	wbuf        []byte
	mediaPrefix []byte // {"event":"media","streamSid":"MZ…"
	markPrefix  []byte // {"event":"mark","streamSid":"MZ…","mark":{"name":
	clearMsg    []byte // {"event":"clear","streamSid":"MZ…"}

	mu        sync.Mutex
	marks     []sentMark // marks sent and not yet echoed, oldest first
	closeCode int
	closeText string
	sendClose bool

	ended      atomic.Bool
	endCh      chan struct{} // closed when the leg ends
	cancel     context.CancelFunc
	readerDone chan struct{}
	writerDone chan struct{}

	stats counters
}

var _ media.Leg = (*Leg)(nil)

// play is one Play request: a clip's cached wire form and the mark after it. gen is the clear
// generation it was queued in; a later Clear supersedes it.
type play struct {
	wire *wireClip
	mark string
	gen  uint64
}

// sentMark is a mark on its way through Twilio's playback queue.
type sentMark struct {
	name    string
	cleared bool // a clear was sent (or the play superseded) before it came back
}

// counters are a leg's atomically updated statistics.
type counters struct {
	framesIn, framesOut, drops, marksOut, marksIn, clears, gaps atomic.Uint64
}

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
	rc := media.ReceiverConfig{Mode: cfg.DTMF}
	if cfg.NewDetector != nil && cfg.DTMF != media.DTMFEvents {
		rc.Detector = cfg.NewDetector()
	}
	return &Leg{
		conn:       conn,
		rx:         media.NewReceiver(rc),
		limit:      cfg.ReadLimit,
		rbuf:       make([]byte, 0, 1024),
		ubuf:       make([]byte, 0, 512),
		pcm:        make([]int16, 512),
		started:    make(chan struct{}),
		out:        make(chan play, outQueue),
		clearReq:   make(chan struct{}, 1),
		endCh:      make(chan struct{}),
		cancel:     cancel,
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// Events implements media.Leg.
func (l *Leg) Events() <-chan media.Event { return l.rx.Events() }

// Info implements media.Leg.
func (l *Leg) Info() media.Info { return media.Info{Transport: "twilio", NativeMarks: true} }

// Start returns the stream's metadata (nil before "start" arrived).
func (l *Leg) Start() *media.Start {
	select {
	case <-l.started:
		return l.start
	default:
		return nil
	}
}

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	rs := l.rx.Stats()
	return Stats{
		FramesIn:  l.stats.framesIn.Load(),
		FramesOut: l.stats.framesOut.Load(),
		Drops:     l.stats.drops.Load() + rs.Dropped,
		MarksOut:  l.stats.marksOut.Load(),
		MarksIn:   l.stats.marksIn.Load(),
		Clears:    l.stats.clears.Load(),
		Gaps:      l.stats.gaps.Load(),
	}
}

// Play implements media.Leg: the clip goes to Twilio as media messages of at most one second
// each, then a mark named mark. It returns ErrInvalidPlay for a nil clip or a bad mark name,
// media.ErrLegClosed after the leg ended and media.ErrBackpressure when the queue is full.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	if clip == nil || mark == "" || len(mark) > maxMarkName || !utf8.ValidString(mark) {
		return fmt.Errorf("%w: want a clip and a mark name of 1 to %d bytes of UTF-8", ErrInvalidPlay, maxMarkName)
	}
	if l.ended.Load() {
		return media.ErrLegClosed
	}
	p := play{wire: wireFor(clip), mark: mark, gen: l.clearGen.Load()}
	select {
	case l.out <- p:
		return nil
	default:
		l.stats.drops.Add(1)
		return media.ErrBackpressure
	}
}

// Clear implements media.Leg: queued prompts not yet sent are dropped, Twilio is sent "clear",
// and every mark still pending comes back with Played false.
func (l *Leg) Clear() error {
	if l.ended.Load() {
		return media.ErrLegClosed
	}
	l.clearGen.Add(1)
	select {
	case l.clearReq <- struct{}{}:
	default: // a clear is already pending; it covers this one
	}
	return nil
}

// Hangup implements media.Leg: the socket closes with 1000 and reason, so Twilio continues the
// TwiML after </Connect>. The leg's last event is a Hangup with media.ErrLegClosed. Later calls
// do nothing.
func (l *Leg) Hangup(reason string) error {
	l.end(websocket.CloseNormalClosure, reason, media.ErrLegClosed, true)
	return nil
}

// Close hangs up (reason "closed") and waits for the leg's goroutines. It is idempotent.
func (l *Leg) Close() error {
	_ = l.Hangup("closed")
	<-l.writerDone
	<-l.readerDone
	return nil
}

// end ends the leg once: it records the close frame to send, reports the hangup to the flow,
// cancels the call's context and wakes the writer. It reports whether this call ended it.
func (l *Leg) end(code int, text string, err error, send bool) bool {
	l.mu.Lock()
	if l.ended.Load() {
		l.mu.Unlock()
		return false
	}
	l.ended.Store(true)
	l.closeCode, l.closeText, l.sendClose = code, truncReason(text), send
	l.mu.Unlock()
	if l.cancel != nil {
		l.cancel() // first, so a flow that sees the hangup finds its context done
	}
	close(l.endCh)
	l.rx.Hangup(err)
	return true
}

// fail ends the leg for a protocol violation.
func (l *Leg) fail(v *protoError) {
	l.end(v.code, v.msg, fmt.Errorf("%w: %s", media.ErrProtocol, v.msg), true)
}

// truncReason cuts s to fit a close frame, at a rune boundary.
func truncReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	s = s[:maxCloseReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// readLoop reads messages until the connection fails or closes. After the leg has ended it
// keeps reading, discarding, so the peer's close frame completes the closing handshake.
func (l *Leg) readLoop() {
	defer close(l.readerDone)
	for {
		typ, r, err := l.conn.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway):
				l.end(ce.Code, "", media.ErrHangup, false)
			case errors.As(err, &ce):
				l.end(ce.Code, "", fmt.Errorf("%w: stream closed with %d", media.ErrHangup, ce.Code), false)
			default:
				l.end(websocket.CloseAbnormalClosure, "", fmt.Errorf("twilio: read: %w", err), false)
			}
			return
		}
		if l.ended.Load() {
			continue // NextReader discards the message
		}
		if typ != websocket.TextMessage {
			l.fail(violation(closeUnsupported, "binary frames are not part of the protocol"))
			continue
		}
		data, err := l.readMessage(r)
		if err != nil {
			var v *protoError
			if errors.As(err, &v) {
				l.fail(v)
			}
			continue // a read error shows again from NextReader
		}
		if err := l.handle(data); err != nil {
			var v *protoError
			if !errors.As(err, &v) {
				v = violation(closeInvalid, "%v", err)
			}
			l.fail(v)
		}
	}
}

// readMessage reads one message into the reused buffer, refusing more than the read limit.
func (l *Leg) readMessage(r io.Reader) ([]byte, error) {
	buf := l.rbuf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > l.limit {
				l.rbuf = buf[:0]
				return nil, violation(closeTooBig, "message larger than %d bytes", l.limit)
			}
			n := min(int64(2*cap(buf)), l.limit+1)
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			l.rbuf = buf[:0]
			if int64(len(buf)) > l.limit {
				return nil, violation(closeTooBig, "message larger than %d bytes", l.limit)
			}
			return buf, nil
		}
		if err != nil {
			l.rbuf = buf[:0]
			return nil, err
		}
	}
}

// handle processes one text message. It allocates nothing for media, dtmf and mark messages
// once the leg's buffers have grown to the frame size. Errors are *protoError.
func (l *Leg) handle(data []byte) error {
	if !utf8.Valid(data) {
		return violation(closeInvalid, "text message is not UTF-8")
	}
	m := &l.msg
	if err := l.p.parse(data, m); err != nil {
		return err
	}
	if !m.hasEvent {
		return violation(closeInvalid, "message has no event")
	}
	if string(m.event) == "connected" {
		if l.state != stateNew {
			return violation(closePolicy, "second connected message")
		}
		l.state = stateConnected
		return nil
	}
	if err := l.checkSeq(m); err != nil {
		return err
	}
	if l.state == stateStarted && m.hasSid && !bytes.Equal(m.streamSid, l.sid) {
		return violation(closePolicy, "streamSid differs from the one in start")
	}
	switch string(m.event) {
	case "start":
		return l.onStart(m)
	case "media", "dtmf", "mark":
		if l.state != stateStarted {
			return violation(closePolicy, "%s before start", m.event)
		}
	case "stop":
		l.end(websocket.CloseNormalClosure, "stream stopped", media.ErrHangup, true)
		return nil
	default:
		return violation(closePolicy, "unknown event %s", quoteName(m.event))
	}
	switch string(m.event) {
	case "media":
		return l.onMedia(m.media)
	case "dtmf":
		return l.onDTMF(m.dtmf)
	default:
		return l.onMark(m.mark)
	}
}

// checkSeq parses sequenceNumber and requires it to increase.
func (l *Leg) checkSeq(m *inbound) error {
	if !m.hasSeq {
		return violation(closeInvalid, "%s message has no sequenceNumber", quoteName(m.event))
	}
	seq, ok := parseCounter(m.seq)
	if !ok {
		return violation(closeInvalid, "sequenceNumber is not a decimal counter")
	}
	if l.haveSeq && seq <= l.lastSeq {
		return violation(closePolicy, "sequenceNumber %d after %d", seq, l.lastSeq)
	}
	l.lastSeq, l.haveSeq = seq, true
	return nil
}

func (l *Leg) onStart(m *inbound) error {
	switch l.state {
	case stateNew:
		return violation(closePolicy, "start before connected")
	case stateStarted:
		return violation(closePolicy, "second start")
	}
	if m.start == nil {
		return violation(closeInvalid, "start message has no start object")
	}
	f, err := l.p.parseStart(m.start)
	if err != nil {
		return err
	}
	switch {
	case !validSid(f.callSid):
		return violation(closeInvalid, "start.callSid is missing or malformed")
	case !validSid(f.streamSid):
		return violation(closeInvalid, "start.streamSid is missing or malformed")
	case m.hasSid && string(m.streamSid) != f.streamSid:
		return violation(closePolicy, "streamSid differs from start.streamSid")
	case f.encoding != "" && f.encoding != "audio/x-mulaw":
		return violation(closePolicy, "unsupported media encoding %s", quoteName([]byte(f.encoding)))
	case f.sampleRate != 0 && f.sampleRate != media.SampleRate:
		return violation(closePolicy, "unsupported sample rate %d", f.sampleRate)
	case f.channels != 0 && f.channels != 1:
		return violation(closePolicy, "unsupported channel count %d", f.channels)
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
	q := appendJSONString(nil, f.streamSid)
	l.mediaPrefix = append([]byte(`{"event":"media","streamSid":`), q...)
	l.markPrefix = append(append([]byte(`{"event":"mark","streamSid":`), q...), `,"mark":{"name":`...)
	l.clearMsg = append(append([]byte(`{"event":"clear","streamSid":`), q...), '}')
	l.start = st
	l.state = stateStarted
	l.rx.Start(st)
	close(l.started)
	return nil
}

func (l *Leg) onMedia(raw []byte) error {
	if raw == nil {
		return violation(closeInvalid, "media message has no media object")
	}
	var f mediaFields
	if err := l.p.parseMedia(raw, &f); err != nil {
		return err
	}
	if !f.hasPayload || !f.hasChunk || !f.hasTimestamp {
		return violation(closeInvalid, "media needs payload, chunk and timestamp")
	}
	if _, ok := parseCounter(f.chunk); !ok {
		return violation(closeInvalid, "media.chunk is not a decimal counter")
	}
	ts, ok := parseCounter(f.timestamp)
	if !ok {
		return violation(closeInvalid, "media.timestamp is not a decimal counter")
	}
	ulaw, err := decodePayload(&l.ubuf, f.payload)
	if err != nil {
		return err
	}
	if len(f.track) != 0 && string(f.track) != "inbound" {
		l.stats.drops.Add(1) // <Connect><Stream> carries the caller only
		return nil
	}
	l.stats.framesIn.Add(1)
	if l.haveTS && ts > l.nextTS+uint64(media.FrameDuration/time.Millisecond) {
		l.stats.gaps.Add(1)
	}
	l.nextTS, l.haveTS = ts+uint64(len(ulaw)/(media.SampleRate/1000)), true
	if cap(l.pcm) < len(ulaw) {
		l.pcm = make([]int16, len(ulaw))
	}
	l.rx.Audio(media.DecodeUlaw(l.pcm[:cap(l.pcm)], ulaw))
	return nil
}

func (l *Leg) onDTMF(raw []byte) error {
	if raw == nil {
		return violation(closeInvalid, "dtmf message has no dtmf object")
	}
	d, ok, err := l.p.stringMember(raw, "dtmf", "digit")
	if err != nil {
		return err
	}
	if !ok || len(d) != 1 || strings.IndexByte("0123456789*#ABCD", d[0]) < 0 {
		return violation(closeInvalid, "dtmf.digit is not one of 0-9, *, #, A-D")
	}
	l.rx.Digit(d[0], media.SourceEvent)
	return nil
}

func (l *Leg) onMark(raw []byte) error {
	if raw == nil {
		return violation(closeInvalid, "mark message has no mark object")
	}
	name, ok, err := l.p.stringMember(raw, "mark", "name")
	if err != nil {
		return err
	}
	if !ok {
		return violation(closeInvalid, "mark.name is missing")
	}
	l.mu.Lock()
	i := 0
	for i < len(l.marks) && l.marks[i].name != string(name) {
		i++
	}
	if i == len(l.marks) {
		l.mu.Unlock()
		return violation(closePolicy, "mark %s was never sent", quoteName(name))
	}
	sm := l.marks[i]
	l.marks = append(l.marks[:i], l.marks[i+1:]...)
	l.mu.Unlock()
	l.stats.marksIn.Add(1)
	l.rx.Mark(sm.name, !sm.cleared)
	return nil
}

// writeLoop is the leg's only writer: it sends queued prompts and clears until the leg ends,
// then closes the connection.
func (l *Leg) writeLoop() {
	defer close(l.writerDone)
	for {
		select {
		case <-l.endCh:
			l.closeConn()
			return
		default:
		}
		var err error
		select {
		case <-l.endCh:
			l.closeConn()
			return
		case <-l.clearReq:
			err = l.flushClear()
		case p := <-l.out:
			err = l.writePlay(p)
		}
		if err != nil {
			l.end(websocket.CloseAbnormalClosure, "", fmt.Errorf("twilio: write: %w", err), false)
			l.closeConn()
			return
		}
	}
}

// flushClear sends "clear" if a Clear has not been covered yet; every mark then pending is
// reported unplayed when it comes back.
func (l *Leg) flushClear() error {
	gen := l.clearGen.Load()
	if gen <= l.sentClear {
		return nil
	}
	l.sentClear = gen
	l.mu.Lock()
	for i := range l.marks {
		l.marks[i].cleared = true
	}
	l.mu.Unlock()
	if err := l.write(l.clearMsg); err != nil {
		return err
	}
	l.stats.clears.Add(1)
	return nil
}

// writePlay sends a prompt's media messages and its mark. A prompt superseded by a Clear is
// not sent (or no longer sent); its mark still goes out, flagged as cleared, so the flow gets
// exactly one mark event per Play.
func (l *Leg) writePlay(p play) error {
	superseded := p.gen < l.clearGen.Load()
	if !superseded {
		if err := l.flushClear(); err != nil { // a clear queued before this prompt goes first
			return err
		}
		for _, chunk := range p.wire.chunks {
			if l.ended.Load() {
				return nil
			}
			if p.gen < l.clearGen.Load() {
				break // barge-in mid-prompt; the clear follows
			}
			l.wbuf = append(append(l.wbuf[:0], l.mediaPrefix...), chunk...)
			if err := l.write(l.wbuf); err != nil {
				return err
			}
			l.stats.framesOut.Add(1)
		}
	}
	l.mu.Lock()
	l.marks = append(l.marks, sentMark{name: p.mark, cleared: superseded})
	l.mu.Unlock()
	l.wbuf = append(appendJSONString(append(l.wbuf[:0], l.markPrefix...), p.mark), '}', '}')
	if err := l.write(l.wbuf); err != nil {
		return err
	}
	l.stats.marksOut.Add(1)
	return nil
}

func (l *Leg) write(msg []byte) error {
	if err := l.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	return l.conn.WriteMessage(websocket.TextMessage, msg)
}

// closeConn finishes the closing handshake: it sends the close frame (unless the peer closed
// first or the connection failed), waits a moment for the peer's, then closes the socket and
// waits for the reader.
func (l *Leg) closeConn() {
	l.mu.Lock()
	code, text, send := l.closeCode, l.closeText, l.sendClose
	l.mu.Unlock()
	if send {
		msg := websocket.FormatCloseMessage(code, text)
		if err := l.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeTimeout)); err == nil {
			t := time.NewTimer(closeGrace)
			select {
			case <-l.readerDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	_ = l.conn.Close()
	<-l.readerDone
}
