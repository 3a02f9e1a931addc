package asterisk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

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
	// readLimit is the largest inbound message accepted. Asterisk never sends more than
	// 65 535 bytes; larger messages end the call with 1009.
	readLimit = 64 << 10
	// maxEarlyMedia is how many binary messages may arrive before MEDIA_START. Asterisk
	// sometimes sends the first frames of audio ahead of it (asterisk issue #1712, usually
	// within 100 ms); they are dropped. More than a second of them ends the call with 1008.
	maxEarlyMedia = 50
	// maxAhead is how far ahead of real time the leg sends prompt audio. chan_websocket queues
	// about 1000 frames (20 s) and sends MEDIA_XOFF at 900 (18 s); staying within 10 s keeps
	// it below that even before XOFF could arrive, and bounds what a flush throws away.
	maxAhead = 10 * time.Second
	// maxCloseReason is the room for a reason in a close frame (RFC 6455 §5.5).
	maxCloseReason = 123
	// maxVar bounds a metadata value from the URL or a channel variable.
	maxVar = 128
)

// Leg is one chan_websocket connection as a media.Leg. Handler creates it and hands it to the
// serve function; its methods are safe for concurrent use.
type Leg struct {
	conn *websocket.Conn
	rx   *media.Receiver
	log  atomic.Pointer[zap.Logger] // scoped to the call once it has started
	meta media.Start                // caller metadata from the URL (Asterisk's v() option)

	// Reader goroutine only; ctl and codec are fixed before started is closed.
	ctl       ctlFormat
	codec     codec
	frameSize int // optimal_frame_size
	early     int
	rbuf      []byte
	pcm       []int16
	tmp       []int16
	dec       decimator
	st        *media.Start
	started   chan struct{} // closed when MEDIA_START has been accepted

	// Writer goroutine only.
	out       chan play
	clearReq  chan struct{} // capacity 1: a Clear is pending
	clearGen  atomic.Uint64 // Clear calls so far
	sentClear uint64        // clearGen covered by the last FLUSH_MEDIA
	wbuf      []byte
	playhead  time.Time     // when the audio sent so far will have played
	flowWake  chan struct{} // capacity 1: MEDIA_XON arrived
	timer     *time.Timer

	mu         sync.Mutex
	xoff       bool          // Asterisk asked us to stop sending media
	pending    []pendingMark // prompts whose MEDIA_BUFFERING_COMPLETED is awaited, oldest first
	lastID     uint64        // last correlation id issued
	closeCode  int
	closeText  string
	sendClose  bool
	sendHangup bool // send the HANGUP command before the close frame

	ended      atomic.Bool
	endCh      chan struct{}
	cancel     context.CancelFunc
	readerDone chan struct{}
	writerDone chan struct{}

	stats counters
}

var _ media.Leg = (*Leg)(nil)

// play is one Play request. gen is the clear generation it was queued in.
type play struct {
	clip *media.Clip
	mark string
	gen  uint64
}

// pendingMark is a prompt Asterisk is playing: STOP_MEDIA_BUFFERING <id> was sent and
// MEDIA_BUFFERING_COMPLETED <id> will say it has played.
type pendingMark struct {
	id   string
	mark string
}

type counters struct {
	framesIn, early, messagesOut, bytesOut, prompts, marks, clears, stale, xoffs, drained, errors, drops atomic.Uint64
}

// Stats are a leg's counters, for the end-of-call log line and metrics. They never include
// what the caller keyed.
type Stats struct {
	// FramesIn counts binary messages received after MEDIA_START; Early those dropped before.
	FramesIn, Early uint64
	// MessagesOut and BytesOut count binary messages and bytes of audio sent.
	MessagesOut, BytesOut uint64
	// Prompts counts prompts sent whole; Marks the MEDIA_BUFFERING_COMPLETED that came back;
	// Stale those that came back after a flush had already reported them.
	Prompts, Marks, Stale uint64
	// Clears counts FLUSH_MEDIA sent; Drained the QUEUE_DRAINED confirmations.
	Clears, Drained uint64
	// XOFFs counts MEDIA_XOFF received; Errors the ERROR events.
	XOFFs, Errors uint64
	// Drops counts Play requests refused for backpressure and events the receiver dropped.
	Drops uint64
}

func newLeg(conn *websocket.Conn, cfg *Config, meta media.Start, log *zap.Logger, cancel context.CancelFunc) *Leg {
	rc := media.ReceiverConfig{Mode: cfg.DTMF}
	if cfg.NewDetector != nil && cfg.DTMF != media.DTMFEvents {
		rc.Detector = cfg.NewDetector()
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	l := &Leg{
		conn:       conn,
		rx:         media.NewReceiver(rc),
		meta:       meta,
		rbuf:       make([]byte, 0, 1024),
		started:    make(chan struct{}),
		out:        make(chan play, outQueue),
		clearReq:   make(chan struct{}, 1),
		flowWake:   make(chan struct{}, 1),
		timer:      t,
		endCh:      make(chan struct{}),
		cancel:     cancel,
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	l.log.Store(log)
	// The writer answers the peer's close frame (with our own when we are already closing,
	// so our reason is the one the peer reads); the default handler would echo it at once.
	if conn != nil {
		conn.SetCloseHandler(func(int, string) error { return nil })
	}
	return l
}

// Events implements media.Leg.
func (l *Leg) Events() <-chan media.Event { return l.rx.Events() }

// Info implements media.Leg: chan_websocket acknowledges each prompt with
// MEDIA_BUFFERING_COMPLETED once its last frame has gone to the channel.
func (l *Leg) Info() media.Info { return media.Info{Transport: "asterisk", NativeMarks: true} }

// Start returns the call's metadata (nil before MEDIA_START).
func (l *Leg) Start() *media.Start {
	select {
	case <-l.started:
		return l.st
	default:
		return nil
	}
}

// Format returns the media format MEDIA_START announced ("" before it).
func (l *Leg) Format() string {
	select {
	case <-l.started:
		return l.codec.name
	default:
		return ""
	}
}

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	return Stats{
		FramesIn:    l.stats.framesIn.Load(),
		Early:       l.stats.early.Load(),
		MessagesOut: l.stats.messagesOut.Load(),
		BytesOut:    l.stats.bytesOut.Load(),
		Prompts:     l.stats.prompts.Load(),
		Marks:       l.stats.marks.Load(),
		Stale:       l.stats.stale.Load(),
		Clears:      l.stats.clears.Load(),
		Drained:     l.stats.drained.Load(),
		XOFFs:       l.stats.xoffs.Load(),
		Errors:      l.stats.errors.Load(),
		Drops:       l.stats.drops.Load() + l.rx.Stats().Dropped,
	}
}

// Play implements media.Leg: the clip goes to Asterisk between START_MEDIA_BUFFERING and
// STOP_MEDIA_BUFFERING <id>, in binary messages of one second at most; Asterisk frames and
// times it and answers MEDIA_BUFFERING_COMPLETED <id> when its last frame has played, which
// the leg reports as mark. It returns ErrInvalidPlay for a nil clip or a bad mark name,
// media.ErrLegClosed after the leg ended and media.ErrBackpressure when the queue is full.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	if clip == nil || mark == "" || len(mark) > maxMarkName {
		return fmt.Errorf("%w: want a clip and a mark name of 1 to %d bytes", ErrInvalidPlay, maxMarkName)
	}
	if l.ended.Load() {
		return media.ErrLegClosed
	}
	select {
	case l.out <- play{clip: clip, mark: mark, gen: l.clearGen.Load()}:
		return nil
	default:
		l.stats.drops.Add(1)
		media.CountRefusedPrompt()
		return media.ErrBackpressure
	}
}

// Clear implements media.Leg: queued prompts not yet sent are dropped, the one being sent is
// cut short, and Asterisk is sent FLUSH_MEDIA (and REPORT_QUEUE_DRAINED, whose QUEUE_DRAINED
// confirms the flush). Every mark pending is reported with Played false: a flush discards the
// MEDIA_BUFFERING_COMPLETED queued behind the audio.
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

// Hangup implements media.Leg: the leg sends HANGUP, which hangs up the WebSocket channel so
// the dialplan continues after Dial(), then closes the socket with 1000 and reason. The leg's
// last event is a Hangup with media.ErrLegClosed. Later calls do nothing.
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

// end ends the leg once: it records the close frame to send, reports the hangup to the flow,
// cancels the call's context and wakes the writer.
func (l *Leg) end(code int, text string, err error, sendClose, sendHangup bool) bool {
	l.mu.Lock()
	if l.ended.Load() {
		l.mu.Unlock()
		return false
	}
	l.ended.Store(true)
	l.closeCode, l.closeText, l.sendClose, l.sendHangup = code, truncReason(text), sendClose, sendHangup
	l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
	close(l.endCh)
	l.rx.Hangup(err)
	return true
}

// fail ends the leg for a protocol violation by the peer.
func (l *Leg) fail(v *protoError) {
	l.end(v.code, v.msg, fmt.Errorf("%w: %s", media.ErrProtocol, v.msg), true, false)
}

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
				l.end(ce.Code, "", media.ErrHangup, true, false)
			case errors.As(err, &ce):
				l.end(ce.Code, "", fmt.Errorf("%w: connection closed with %d", media.ErrHangup, ce.Code), true, false)
			default:
				l.end(websocket.CloseAbnormalClosure, "", fmt.Errorf("asterisk: read: %w", err), false, false)
			}
			return
		}
		if l.ended.Load() {
			continue // NextReader discards the message
		}
		data, err := l.readMessage(r)
		if err != nil {
			var v *protoError
			if errors.As(err, &v) {
				l.fail(v)
			}
			continue // a read error shows again from NextReader
		}
		if typ == websocket.TextMessage {
			err = l.handleText(data)
		} else {
			err = l.handleBinary(data)
		}
		if err != nil {
			var v *protoError
			if !errors.As(err, &v) {
				v = violation(closeInvalid, "%v", err)
			}
			l.fail(v)
		}
	}
}

// readMessage reads one message into the reused buffer, refusing more than readLimit.
func (l *Leg) readMessage(r io.Reader) ([]byte, error) {
	buf := l.rbuf[:0]
	for {
		if len(buf) == cap(buf) {
			if len(buf) > readLimit {
				l.rbuf = buf[:0]
				return nil, violation(closeTooBig, "message larger than %d bytes", readLimit)
			}
			nb := make([]byte, len(buf), min(2*cap(buf), readLimit+1))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			l.rbuf = buf[:0]
			if len(buf) > readLimit {
				return nil, violation(closeTooBig, "message larger than %d bytes", readLimit)
			}
			return buf, nil
		}
		if err != nil {
			l.rbuf = buf[:0]
			return nil, err
		}
	}
}

// handleBinary takes one message of caller audio. It allocates nothing once the leg's buffers
// exist.
func (l *Leg) handleBinary(p []byte) error {
	if l.st == nil {
		l.early++
		l.stats.early.Add(1)
		if l.early > maxEarlyMedia {
			return violation(closePolicy, "media before MEDIA_START (%d binary messages)", l.early)
		}
		return nil
	}
	c := l.codec
	if n := len(p); n == 0 || n%c.sampleBytes != 0 || n > maxInboundFrames*c.frameBytes() {
		return violation(closeInvalid, "binary message of %d bytes: want whole %s samples, at most %d bytes (200 ms)",
			n, c.name, maxInboundFrames*c.frameBytes())
	}
	l.stats.framesIn.Add(1)
	l.rx.Audio(c.decode(l.pcm, l.tmp, &l.dec, p))
	return nil
}

// handleText takes one control message.
func (l *Leg) handleText(data []byte) error {
	ev, f, err := parseEvent(data)
	if err != nil {
		return err
	}
	if l.st == nil && ev.name != evMediaStart {
		return violation(closePolicy, "%s before MEDIA_START", ev.name)
	}
	if l.st != nil && f != l.ctl {
		return violation(closePolicy, "control message format changed after MEDIA_START")
	}
	switch ev.name {
	case evMediaStart:
		return l.onStart(&ev, f)
	case evDTMFEnd:
		l.rx.Digit(ev.digit, media.SourceEvent)
	case evXOFF:
		l.mu.Lock()
		l.xoff = true
		l.mu.Unlock()
		l.stats.xoffs.Add(1)
	case evXON:
		l.mu.Lock()
		l.xoff = false
		l.mu.Unlock()
		select {
		case l.flowWake <- struct{}{}:
		default:
		}
	case evBufferingEnd:
		return l.onCompleted(ev.id)
	case evQueueDrained:
		l.stats.drained.Add(1)
	case evError:
		return l.onError(ev.errText)
	case evStatus, evMarkDone: // we send neither GET_STATUS nor MARK_MEDIA; harmless
	}
	return nil
}

// onStart accepts MEDIA_START: the format, the call's identity and its metadata.
func (l *Leg) onStart(ev *event, f ctlFormat) error {
	if l.st != nil {
		return violation(closePolicy, "second MEDIA_START")
	}
	c, ok := codecs[ev.format]
	if !ok {
		return violation(closeUnsupported, "format %s is not supported: dial WebSocket with %s", quoteName(ev.format), supportedFormats)
	}
	if ev.passthrough || ev.frameSize == 0 {
		return violation(closeUnsupported, "passthrough mode is not supported: Callproof needs Asterisk to frame and time its prompts (dial WebSocket without p())")
	}
	st := &media.Start{CallID: ev.channelID, StreamID: ev.connectionID, Transport: "asterisk",
		From: l.meta.From, To: l.meta.To, Verstat: l.meta.Verstat, Params: map[string]string{}}
	if st.CallID == "" {
		st.CallID = ev.connectionID
	}
	for k, v := range l.meta.Params {
		st.Params[k] = v
	}
	for name, v := range ev.vars {
		key, ok := strings.CutPrefix(name, "CALLPROOF_")
		if !ok || v == "" {
			continue
		}
		key = strings.ToLower(key)
		if !metaKey(key) {
			continue
		}
		if !validMeta(v) {
			return violation(closeInvalid, "channel variable %s: want at most %d printable characters", name, maxVar)
		}
		setMeta(st, key, v)
	}
	l.ctl, l.codec, l.frameSize = f, c, ev.frameSize
	samples := maxInboundFrames * c.frameBytes() / c.sampleBytes
	l.pcm = make([]int16, samples)
	if c.rate != media.SampleRate {
		l.tmp = make([]int16, samples)
	}
	l.st = st
	l.rx.Start(st)
	close(l.started)
	return nil
}

// onCompleted matches MEDIA_BUFFERING_COMPLETED to the prompt it acknowledges.
func (l *Leg) onCompleted(id string) error {
	l.mu.Lock()
	i := -1
	for j := range l.pending {
		if id == "" || l.pending[j].id == id {
			i = j
			break
		}
	}
	if i < 0 {
		n, err := strconv.ParseUint(id, 10, 64)
		known := id == "" || (err == nil && n >= 1 && n <= l.lastID)
		l.mu.Unlock()
		if !known {
			return violation(closePolicy, "MEDIA_BUFFERING_COMPLETED for a prompt never sent")
		}
		l.stats.stale.Add(1) // a flush reported it already
		return nil
	}
	pm := l.pending[i]
	l.pending = append(l.pending[:i], l.pending[i+1:]...)
	l.mu.Unlock()
	l.stats.marks.Add(1)
	l.rx.Mark(pm.mark, true)
	return nil
}

// onError handles Asterisk's ERROR event: it rejected a command. Passthrough mode rejects the
// buffering commands every prompt relies on, so the call cannot work and ends.
func (l *Leg) onError(text string) error {
	l.stats.errors.Add(1)
	text = strings.ToValidUTF8(text, "?")
	if len(text) > 200 {
		text = text[:200]
	}
	l.log.Load().Warn("asterisk rejected a command", zap.String("error_text", text))
	if strings.Contains(text, "passthrough") {
		return violation(closeUnsupported, "the channel is in passthrough mode: Callproof needs Asterisk to frame and time its prompts (dial WebSocket without p())")
	}
	return nil
}

// metaKey reports whether key is one of the call metadata names.
func metaKey(key string) bool {
	switch key {
	case "from", "to", "verstat", "request", "lang", "account":
		return true
	}
	return false
}

func validMeta(v string) bool {
	return len(v) <= maxVar && utf8.ValidString(v) &&
		!strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f })
}

func setMeta(st *media.Start, key, v string) {
	switch key {
	case "from":
		st.From = v
	case "to":
		st.To = v
	case "verstat":
		st.Verstat = v
	default:
		st.Params[key] = v
	}
}

// superseded reports whether a Clear came after p was queued.
func (l *Leg) superseded(p *play) bool { return p.gen < l.clearGen.Load() }

// writeLoop is the leg's only writer: it sends queued prompts and flushes until the leg ends,
// then closes the connection.
func (l *Leg) writeLoop() {
	defer close(l.writerDone)
	defer l.timer.Stop()
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
			err = l.writePlay(&p)
		}
		if err != nil {
			l.end(websocket.CloseAbnormalClosure, "", fmt.Errorf("asterisk: write: %w", err), false, false)
			l.closeConn()
			return
		}
	}
}

// writePlay sends one prompt: START_MEDIA_BUFFERING, its audio within the flow-control
// window, then STOP_MEDIA_BUFFERING <id>. A prompt superseded by a Clear, before or while it
// is sent, ends after the flush with its mark reported unplayed; no STOP is sent for it, as
// FLUSH_MEDIA ends the bulk transfer.
func (l *Leg) writePlay(p *play) error {
	if l.superseded(p) {
		if err := l.flushClear(); err != nil {
			return err
		}
		l.rx.Mark(p.mark, false)
		return nil
	}
	if err := l.flushClear(); err != nil { // a clear queued before this prompt goes first
		return err
	}
	w := wireFor(p.clip, l.codec)
	if err := l.command(cmdStartBuffering, ""); err != nil {
		return err
	}
	for _, chunk := range w.chunks {
		ok, err := l.waitRoom(p)
		if err != nil {
			return err
		}
		if !ok {
			if l.ended.Load() {
				return nil
			}
			if err := l.flushClear(); err != nil {
				return err
			}
			l.rx.Mark(p.mark, false)
			return nil
		}
		if err := l.write(websocket.BinaryMessage, chunk); err != nil {
			return err
		}
		l.stats.messagesOut.Add(1)
		l.stats.bytesOut.Add(uint64(len(chunk)))
		if now := time.Now(); l.playhead.Before(now) {
			l.playhead = now
		}
		l.playhead = l.playhead.Add(time.Duration(len(chunk)) * time.Second / time.Duration(l.codec.secondBytes()))
	}
	l.mu.Lock()
	l.lastID++
	id := strconv.FormatUint(l.lastID, 10)
	l.pending = append(l.pending, pendingMark{id: id, mark: p.mark})
	l.mu.Unlock()
	l.stats.prompts.Add(1)
	return l.command(cmdStopBuffering, id)
}

// waitRoom waits until the next chunk may go: Asterisk has not sent MEDIA_XOFF (or has sent
// MEDIA_XON since) and less than maxAhead of audio is waiting to play. It returns false when
// the leg ended or p was superseded; a Clear arriving meanwhile is flushed at once.
func (l *Leg) waitRoom(p *play) (bool, error) {
	for {
		if l.ended.Load() || l.superseded(p) {
			return false, nil
		}
		l.mu.Lock()
		xoff := l.xoff
		l.mu.Unlock()
		ahead := time.Until(l.playhead)
		if !xoff && ahead <= maxAhead {
			return true, nil
		}
		var tick <-chan time.Time
		if !xoff {
			l.timer.Reset(ahead - maxAhead)
			tick = l.timer.C
		}
		select {
		case <-l.endCh:
		case <-l.clearReq:
			if err := l.flushClear(); err != nil {
				return false, err
			}
		case <-l.flowWake:
		case <-tick:
		}
		l.timer.Stop()
	}
}

// flushClear sends FLUSH_MEDIA and REPORT_QUEUE_DRAINED if a Clear has not been covered yet,
// and reports every pending mark as not played.
func (l *Leg) flushClear() error {
	gen := l.clearGen.Load()
	if gen <= l.sentClear {
		return nil
	}
	l.sentClear = gen
	if err := l.command(cmdFlush, ""); err != nil {
		return err
	}
	if err := l.command(cmdReportDrained, ""); err != nil {
		return err
	}
	l.stats.clears.Add(1)
	l.playhead = time.Now()
	l.mu.Lock()
	marks := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, m := range marks {
		l.rx.Mark(m.mark, false)
	}
	return nil
}

func (l *Leg) command(cmd, id string) error {
	l.wbuf = appendCommand(l.wbuf[:0], l.ctl, cmd, id)
	return l.write(websocket.TextMessage, l.wbuf)
}

func (l *Leg) write(typ int, msg []byte) error {
	if err := l.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	return l.conn.WriteMessage(typ, msg)
}

// closeConn finishes the call: HANGUP when we hang up, then the close frame (unless the peer
// closed first or the connection failed), a moment for the peer's close frame, then the
// socket.
func (l *Leg) closeConn() {
	l.mu.Lock()
	code, text, send, hangup := l.closeCode, l.closeText, l.sendClose, l.sendHangup
	l.mu.Unlock()
	select {
	case <-l.started: // ctl is set
		if hangup {
			_ = l.command(cmdHangup, "")
		}
	default: // no MEDIA_START: the format of commands is unknown
	}
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
