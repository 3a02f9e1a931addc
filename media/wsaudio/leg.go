package wsaudio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/resample"
)

const (
	// writeTimeout bounds each write; a peer that does not read for this long loses the call.
	writeTimeout = 10 * time.Second
	// closeGrace is how long the leg waits for the peer's close frame after sending its own.
	closeGrace = 2 * time.Second
	// outQueue is the capacity of the outbound queue, in Play requests (whole prompts).
	outQueue = 64
	// MaxMarkName bounds mark names; ours are prompt ids.
	MaxMarkName = 256
	// hardLimitFactor sets gorilla's read limit to this multiple of Config.ReadLimit.
	hardLimitFactor = 4
	// maxCloseReason is the room for a reason in a close frame (RFC 6455 §5.5).
	maxCloseReason = 123
)

// Protocol parses a platform's inbound text messages. Its methods run on the leg's reader
// goroutine; errors should be *Violation (anything else ends the call with 1007).
type Protocol interface {
	// Start parses the first message of the stream, the call metadata.
	Start(msg []byte) (Begin, error)
	// Control parses a text message after the first.
	Control(msg []byte) (Control, error)
}

// Begin is what the first message of a stream says.
type Begin struct {
	// Start is the call's metadata, Transport set.
	Start *media.Start
	// Rate is the sample rate of the caller's audio: 8000 or 16000.
	Rate int
	// PlayRate is the sample rate prompts are sent at: 8000 or 16000; 0 means Rate.
	PlayRate int
}

// ControlKind says what a text message after the first asked for.
type ControlKind uint8

// Control kinds.
const (
	// ControlNone: nothing to do (an acknowledgement of a clear, say).
	ControlNone ControlKind = iota
	// ControlDigit: a key press reported by the platform (Digit).
	ControlDigit
	// ControlAck: the platform acknowledged mark Ack (native marks only).
	ControlAck
)

// Control is the meaning of one text message after the first.
type Control struct {
	Kind  ControlKind
	Digit byte
	Ack   uint64
}

// Output describes what a leg sends to its platform.
type Output struct {
	// Wire returns a clip's wire form at playback rate rate. Adapters cache it in the clip.
	Wire func(clip *media.Clip, rate int) *Wire
	// Mark, when not nil, appends to dst the platform's mark message for the mark numbered id
	// (1, 2, …; name is the flow's mark name); the platform's acknowledgement must come back as
	// a ControlAck with that id. nil: the platform acknowledges nothing and marks are emulated
	// from the playback clock.
	Mark func(dst []byte, id uint64, name string) []byte
	// Clear is the text message that discards the platform's queued audio (barge-in).
	Clear []byte
	// Bye, when not nil, is a text message sent before the close frame when the flow hangs up.
	Bye []byte
	// MaxLead bounds how far ahead of real time the playback clock may run; binary audio
	// beyond it waits. 0 sends each prompt at once.
	MaxLead time.Duration
}

// Config configures the legs of one handler.
type Config struct {
	// Transport names the adapter ("vonage", ...) in media.Info and log lines.
	Transport string
	// ReadLimit is the largest inbound message accepted, in bytes; larger ends the call with 1009.
	ReadLimit int64
	// StartTimeout bounds the wait for the metadata after the upgrade; then 1008.
	StartTimeout time.Duration
	// ExactFrames requires every binary message to be exactly one 20 ms frame (Vonage).
	// Otherwise any even length is accepted and reassembled into 20 ms frames.
	ExactFrames bool
	// DTMF chooses which digit sources a leg believes.
	DTMF media.DTMFMode
	// NewDetector makes one in-band detector per call, for audio at the given rate (always
	// media.SampleRate: the receiver gets 8 kHz frames whatever the wire rate); nil: none.
	NewDetector func(rate int) media.ToneDetector
	// Protocol parses the platform's text messages.
	Protocol Protocol
	// Output describes what the leg sends.
	Output Output
	// InvalidPlay is wrapped by Play's error for a nil clip or a bad mark name.
	InvalidPlay error
}

// Leg is one WebSocket L16 stream as a media.Leg. Run creates it and hands it to the serve
// function; its methods are safe for concurrent use.
type Leg struct {
	conn *websocket.Conn
	cfg  *Config
	rx   *media.Receiver
	log  *zap.Logger

	// Reader goroutine only.
	rbuf  []byte
	acc   []int16 // samples of the frame being assembled, at the wire rate
	frame []int16 // 8 kHz frame after resampling
	down  resample.Down
	fsamp int // samples per 20 ms frame at the wire rate

	begin   Begin
	started chan struct{} // closed once the metadata has been accepted

	// Writer goroutine only.
	out       chan play
	clearReq  chan struct{} // capacity 1: a Clear is pending
	clearGen  atomic.Uint64 // Clear calls so far
	sentClear uint64        // clearGen covered by the last clear sent
	cur       play
	hasCur    bool
	idx       int       // next message of cur
	playEnd   time.Time // when the audio sent so far will have played
	due       []dueMark // emulated marks, in playback order
	wbuf      []byte
	pace      *time.Timer
	paceC     <-chan time.Time
	markT     *time.Timer

	mu        sync.Mutex
	pending   []nativeMark // native marks sent and not yet acknowledged, oldest first
	lastID    uint64
	closeCode int
	closeText string
	sendClose bool
	sendBye   bool

	ended      atomic.Bool
	endCh      chan struct{}
	cancel     context.CancelFunc
	readerDone chan struct{}
	writerDone chan struct{}

	stats counters
}

var _ media.Leg = (*Leg)(nil)

// play is one Play request; gen is the clear generation it was queued in.
type play struct {
	wire *Wire
	mark string
	gen  uint64
}

type dueMark struct {
	name string
	at   time.Time
}

type nativeMark struct {
	id   uint64
	name string
}

type counters struct {
	framesIn, framesOut, marksOut, marksIn, lateAcks, clears, drops atomic.Uint64
}

// Stats are a leg's counters, for the end-of-call log line and metrics. They never include
// what the caller keyed.
type Stats struct {
	// FramesIn and FramesOut count 20 ms frames received and sent.
	FramesIn, FramesOut uint64
	// MarksOut counts marks sent (or emulated); MarksIn native acknowledgements received;
	// LateAcks acknowledgements of marks a clear had already settled.
	MarksOut, MarksIn, LateAcks uint64
	// Clears counts clear messages sent.
	Clears uint64
	// Drops counts Play requests refused for backpressure and events the flow did not take.
	Drops uint64
}

func newLeg(conn *websocket.Conn, cfg *Config, log *zap.Logger, cancel context.CancelFunc) *Leg {
	rc := media.ReceiverConfig{Mode: cfg.DTMF}
	if cfg.NewDetector != nil && cfg.DTMF != media.DTMFEvents {
		rc.Detector = cfg.NewDetector(media.SampleRate)
	}
	return &Leg{
		conn:       conn,
		cfg:        cfg,
		rx:         media.NewReceiver(rc),
		log:        log,
		rbuf:       make([]byte, 0, 2048),
		frame:      make([]int16, 0, media.FrameSamples),
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
func (l *Leg) Info() media.Info {
	return media.Info{Transport: l.cfg.Transport, NativeMarks: l.cfg.Output.Mark != nil}
}

// Start returns the stream's metadata (nil before it arrived).
func (l *Leg) Start() *media.Start {
	select {
	case <-l.started:
		return l.begin.Start
	default:
		return nil
	}
}

// Rates returns the stream's inbound and playback sample rates (0 before the metadata).
func (l *Leg) Rates() (in, play int) {
	select {
	case <-l.started:
		return l.begin.Rate, l.begin.PlayRate
	default:
		return 0, 0
	}
}

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	return Stats{
		FramesIn:  l.stats.framesIn.Load(),
		FramesOut: l.stats.framesOut.Load(),
		MarksOut:  l.stats.marksOut.Load(),
		MarksIn:   l.stats.marksIn.Load(),
		LateAcks:  l.stats.lateAcks.Load(),
		Clears:    l.stats.clears.Load(),
		Drops:     l.stats.drops.Load() + l.rx.Stats().Dropped,
	}
}

// Play implements media.Leg: the clip is queued for the writer, which sends it in the
// platform's wire form followed by the mark. It returns an error wrapping Config.InvalidPlay
// for a nil clip or a mark name that is empty, longer than MaxMarkName or not UTF-8,
// media.ErrLegClosed after the leg ended and media.ErrBackpressure when the queue is full.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	if clip == nil || mark == "" || len(mark) > MaxMarkName || !utf8.ValidString(mark) {
		return fmt.Errorf("%w: want a clip and a mark name of 1 to %d bytes of UTF-8", l.cfg.InvalidPlay, MaxMarkName)
	}
	if l.ended.Load() {
		return media.ErrLegClosed
	}
	_, rate := l.Rates()
	if rate == 0 {
		rate = media.SampleRate
	}
	p := play{wire: l.cfg.Output.Wire(clip, rate), mark: mark, gen: l.clearGen.Load()}
	select {
	case l.out <- p:
		return nil
	default:
		l.stats.drops.Add(1)
		media.CountRefusedPrompt()
		return media.ErrBackpressure
	}
}

// Clear implements media.Leg: prompts not yet sent are dropped, the platform is sent its clear
// message, and every mark still pending is reported with Played false.
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

// Hangup implements media.Leg: the leg sends Output.Bye, if any, and closes the socket with
// 1000 and reason; the platform continues its own call flow. The leg's last event is a Hangup
// with media.ErrLegClosed. Later calls do nothing.
func (l *Leg) Hangup(reason string) error {
	l.end(websocket.CloseNormalClosure, reason, media.ErrLegClosed, true, true)
	return nil
}

// Close hangs up (reason "closed") and waits for the leg's goroutines. It is idempotent.
func (l *Leg) Close() error {
	_ = l.Hangup("closed")
	<-l.writerDone
	<-l.readerDone
	return nil
}

// CloseStatus returns the close code and reason the leg ended with (0 while live).
func (l *Leg) CloseStatus() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeCode, l.closeText
}

// end ends the leg once: it records the close frame to send, cancels the call's context,
// wakes the writer and reports the hangup to the flow.
func (l *Leg) end(code int, text string, err error, send, bye bool) {
	l.mu.Lock()
	if l.ended.Load() {
		l.mu.Unlock()
		return
	}
	l.ended.Store(true)
	l.closeCode, l.closeText, l.sendClose, l.sendBye = code, truncReason(text), send, bye
	l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
	close(l.endCh)
	l.rx.Hangup(err)
}

// fail ends the leg for a protocol violation.
func (l *Leg) fail(v *Violation) {
	l.end(v.Code, v.Reason, fmt.Errorf("%w: %s", media.ErrProtocol, v.Reason), true, false)
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
	if l.conn != nil {
		// readMessage refuses messages above ReadLimit with a reason; gorilla's own limit
		// is the backstop that stops a peer from streaming one huge frame at us.
		l.conn.SetReadLimit(hardLimitFactor * l.cfg.ReadLimit)
	}
	for {
		typ, r, err := l.conn.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway):
				l.end(ce.Code, ce.Text, media.ErrHangup, false, false)
			case errors.As(err, &ce):
				l.end(ce.Code, ce.Text, fmt.Errorf("%w: stream closed with %d", media.ErrHangup, ce.Code), false, false)
			default:
				l.end(websocket.CloseAbnormalClosure, "", fmt.Errorf("%s: read: %w", l.cfg.Transport, err), false, false)
			}
			return
		}
		if l.ended.Load() {
			continue // NextReader discards the message
		}
		data, err := l.readMessage(r)
		if err != nil {
			var v *Violation
			if errors.As(err, &v) {
				l.fail(v)
			} else if errors.Is(err, websocket.ErrReadLimit) {
				l.fail(Violate(CloseTooBig, "message larger than %d bytes", l.cfg.ReadLimit))
			}
			continue // a read error shows again from NextReader
		}
		if err := l.handle(typ, data); err != nil {
			var v *Violation
			if !errors.As(err, &v) {
				v = Violate(CloseInvalid, "%v", err)
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
			if int64(len(buf)) > l.cfg.ReadLimit {
				l.rbuf = buf[:0]
				return nil, Violate(CloseTooBig, "message larger than %d bytes", l.cfg.ReadLimit)
			}
			nb := make([]byte, len(buf), min(int64(2*cap(buf)), l.cfg.ReadLimit+1))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			l.rbuf = buf[:0]
			if int64(len(buf)) > l.cfg.ReadLimit {
				return nil, Violate(CloseTooBig, "message larger than %d bytes", l.cfg.ReadLimit)
			}
			return buf, nil
		}
		if err != nil {
			l.rbuf = buf[:0]
			return nil, err
		}
	}
}

// handle processes one message. Audio does not allocate once the leg's buffers have grown.
func (l *Leg) handle(typ int, data []byte) error {
	started := l.Start() != nil
	if typ == websocket.BinaryMessage {
		if !started {
			return Violate(ClosePolicy, "binary audio before the metadata message")
		}
		return l.audio(data)
	}
	if !utf8.Valid(data) {
		return Violate(CloseInvalid, "text message is not UTF-8")
	}
	if !started {
		return l.metadata(data)
	}
	c, err := l.cfg.Protocol.Control(data)
	if err != nil {
		return err
	}
	switch c.Kind {
	case ControlDigit:
		l.rx.Digit(c.Digit, media.SourceEvent)
	case ControlAck:
		return l.ack(c.Ack)
	}
	return nil
}

func (l *Leg) metadata(data []byte) error {
	b, err := l.cfg.Protocol.Start(data)
	if err != nil {
		return err
	}
	if b.Start == nil || !ValidRate(b.Rate) {
		return Violate(ClosePolicy, "unsupported sample rate %d: want 8000 or 16000", b.Rate)
	}
	if b.PlayRate == 0 {
		b.PlayRate = b.Rate
	}
	if !ValidRate(b.PlayRate) {
		return Violate(ClosePolicy, "unsupported playback sample rate %d: want 8000 or 16000", b.PlayRate)
	}
	b.Start.Transport = l.cfg.Transport
	if b.Start.Params == nil {
		b.Start.Params = map[string]string{}
	}
	l.fsamp = b.Rate / 50
	l.acc = make([]int16, 0, l.fsamp)
	l.begin = b
	close(l.started)
	l.rx.Start(b.Start)
	return nil
}

// audio takes one binary message of L16: it completes 20 ms frames at the wire rate and hands
// each, as 8 kHz, to the receiver.
func (l *Leg) audio(data []byte) error {
	if len(data) == 0 {
		return nil // mod_audio_fork's graceful shutdown sends an empty binary frame
	}
	if len(data)%2 != 0 {
		return Violate(CloseInvalid, "binary message of %d bytes: L16 samples are 2 bytes", len(data))
	}
	if fb := 2 * l.fsamp; l.cfg.ExactFrames && len(data) != fb {
		return Violate(CloseInvalid, "binary message of %d bytes: want exactly %d (20 ms at %d Hz)", len(data), fb, l.begin.Rate)
	}
	for len(data) > 0 {
		n := min(len(data)/2, l.fsamp-len(l.acc))
		l.acc = DecodeL16(l.acc, data[:2*n])
		data = data[2*n:]
		if len(l.acc) < l.fsamp {
			break
		}
		frame := l.acc
		if l.begin.Rate == Rate16k {
			l.frame = l.down.Process(l.frame[:0], l.acc)
			frame = l.frame
		}
		l.rx.Audio(frame)
		l.stats.framesIn.Add(1)
		l.acc = l.acc[:0]
	}
	return nil
}

// ack settles native mark id.
func (l *Leg) ack(id uint64) error {
	l.mu.Lock()
	if id == 0 || id > l.lastID {
		l.mu.Unlock()
		return Violate(ClosePolicy, "acknowledgement of mark %d, which was never sent", id)
	}
	i := 0
	for i < len(l.pending) && l.pending[i].id != id {
		i++
	}
	if i == len(l.pending) {
		l.mu.Unlock()
		l.stats.lateAcks.Add(1) // a clear settled it already
		return nil
	}
	name := l.pending[i].name
	l.pending = append(l.pending[:i], l.pending[i+1:]...)
	l.mu.Unlock()
	l.stats.marksIn.Add(1)
	l.rx.Mark(name, true)
	return nil
}

// writeLoop is the leg's only writer: it sends queued prompts, paced by the playback clock,
// marks and clears until the leg ends, then closes the connection.
func (l *Leg) writeLoop() {
	defer close(l.writerDone)
	l.pace = time.NewTimer(time.Hour)
	l.pace.Stop()
	l.markT = time.NewTimer(time.Hour)
	l.markT.Stop()
	defer l.pace.Stop()
	defer l.markT.Stop()
	for {
		markC := l.fireMarks(time.Now())
		var err error
		if l.hasCur && l.paceC == nil {
			select {
			case <-l.endCh:
				l.closeConn()
				return
			case <-l.clearReq:
				err = l.flushClear()
			default:
				err = l.sendNext()
			}
		} else {
			var outC <-chan play
			if !l.hasCur {
				outC = l.out
			}
			select {
			case <-l.endCh:
				l.closeConn()
				return
			case <-l.clearReq:
				err = l.flushClear()
			case p := <-outC:
				err = l.start(p)
			case <-l.paceC:
				l.paceC = nil
			case <-markC:
			}
		}
		if err != nil {
			l.end(websocket.CloseAbnormalClosure, "", fmt.Errorf("%s: write: %w", l.cfg.Transport, err), false, false)
			l.closeConn()
			return
		}
	}
}

// fireMarks reports the emulated marks whose audio has played by now and returns the channel
// of a timer set for the next one (nil when none is pending).
func (l *Leg) fireMarks(now time.Time) <-chan time.Time {
	if l.sentClear < l.clearGen.Load() {
		return nil // a Clear is pending: what it covers is reported unplayed, in order
	}
	for len(l.due) > 0 && !l.due[0].at.After(now) {
		l.rx.Mark(l.due[0].name, true)
		l.due = l.due[1:]
	}
	if len(l.due) == 0 {
		l.due = l.due[:0:0]
		l.markT.Stop()
		return nil
	}
	l.markT.Reset(l.due[0].at.Sub(now))
	return l.markT.C
}

// start begins sending p, or settles it at once when a Clear superseded it.
func (l *Leg) start(p play) error {
	// A clear requested before this prompt goes first, settling the marks before it.
	if err := l.flushClear(); err != nil {
		return err
	}
	if p.gen < l.clearGen.Load() {
		l.rx.Mark(p.mark, false)
		return nil
	}
	l.cur, l.hasCur, l.idx = p, true, 0
	return nil
}

// sendNext sends the current prompt's next message, or arms the pacing timer when the
// playback clock is as far ahead as Output.MaxLead allows.
func (l *Leg) sendNext() error {
	if l.cur.gen < l.clearGen.Load() {
		err := l.flushClear() // barge-in mid-prompt
		l.drop()
		return err
	}
	m := l.cur.wire.Msgs[l.idx]
	now := time.Now()
	if l.playEnd.Before(now) {
		l.playEnd = now
	}
	if lead := l.cfg.Output.MaxLead; lead > 0 && !m.Text && l.playEnd.After(now) {
		if wait := l.playEnd.Add(m.Dur).Sub(now) - lead; wait > 0 {
			l.pace.Reset(wait)
			l.paceC = l.pace.C
			return nil
		}
	}
	typ := websocket.BinaryMessage
	if m.Text {
		typ = websocket.TextMessage
	}
	if err := l.write(typ, m.Data); err != nil {
		return err
	}
	l.playEnd = l.playEnd.Add(m.Dur)
	l.stats.framesOut.Add(uint64(m.Dur / media.FrameDuration))
	l.idx++
	if l.idx < len(l.cur.wire.Msgs) {
		return nil
	}
	name := l.cur.mark
	l.hasCur, l.cur = false, play{}
	l.stats.marksOut.Add(1)
	if l.cfg.Output.Mark == nil {
		l.due = append(l.due, dueMark{name: name, at: l.playEnd})
		return nil
	}
	l.mu.Lock()
	l.lastID++
	id := l.lastID
	l.pending = append(l.pending, nativeMark{id: id, name: name})
	l.mu.Unlock()
	l.wbuf = l.cfg.Output.Mark(l.wbuf[:0], id, name)
	return l.write(websocket.TextMessage, l.wbuf)
}

// drop abandons the current prompt, reporting its mark unplayed.
func (l *Leg) drop() {
	if !l.hasCur {
		return
	}
	l.rx.Mark(l.cur.mark, false)
	l.hasCur, l.cur, l.idx = false, play{}, 0
	l.pace.Stop()
	l.paceC = nil
}

// flushClear sends the clear message if a Clear has not been covered yet, then reports every
// mark pending at that moment, in queue order, as not played. Acknowledgements that arrive
// for them later are ignored.
func (l *Leg) flushClear() error {
	gen := l.clearGen.Load()
	if gen <= l.sentClear {
		return nil
	}
	l.sentClear = gen
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	l.playEnd = time.Now()
	if err := l.write(websocket.TextMessage, l.cfg.Output.Clear); err != nil {
		return err
	}
	l.stats.clears.Add(1)
	for _, m := range pending {
		l.rx.Mark(m.name, false)
	}
	for _, m := range l.due {
		l.rx.Mark(m.name, false)
	}
	l.due = l.due[:0]
	l.drop()
	return nil
}

func (l *Leg) write(typ int, msg []byte) error {
	if err := l.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	return l.conn.WriteMessage(typ, msg)
}

// closeConn finishes the closing handshake: Bye and the close frame (unless the peer closed
// first or the connection failed), a moment for the peer's close frame, then the socket.
func (l *Leg) closeConn() {
	l.mu.Lock()
	code, text, send, bye := l.closeCode, l.closeText, l.sendClose, l.sendBye
	l.mu.Unlock()
	if send {
		if bye && l.cfg.Output.Bye != nil {
			_ = l.write(websocket.TextMessage, l.cfg.Output.Bye)
		}
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
