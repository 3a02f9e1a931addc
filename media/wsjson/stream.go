package wsjson

import (
	"context"
	"errors"
	"fmt"
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
	// closeGrace is how long a side waits for the peer's close frame after sending its own.
	closeGrace = 2 * time.Second
	// OutQueue is the capacity of a stream's outbound queue, in Play requests (whole prompts).
	// The writer empties it as fast as the socket takes whole prompts, so it holds only the
	// prompts a flow queues back to back (a re-prompt after invalid_input, verified then
	// goodbye) while the one before is being written.
	OutQueue = 16
	// eventBuffer is the capacity of the leg's event channel: digits and marks waiting for the
	// flow. A caller keys at most about six digits a second, so it covers five seconds of a
	// flow that does not read.
	eventBuffer = 32
	// readBufferSize is the read buffer of a stream read by its own goroutine, and the least a
	// larger one is given. A polled stream reads into its poller's buffer and keeps a buffer of
	// its own only while a frame is incomplete.
	readBufferSize = 4096
	// MaxMarkName bounds mark names; ours are prompt ids.
	MaxMarkName = 256
)

// ValidMark reports whether name may be sent as a mark: 1 to MaxMarkName bytes of UTF-8.
func ValidMark(name string) bool {
	return name != "" && len(name) <= MaxMarkName && utf8.ValidString(name)
}

// Config configures a Stream.
type Config struct {
	// Name is the adapter's name, prefixed to transport errors ("twilio: read: ...").
	Name string
	// ReadLimit is the largest inbound message accepted, in bytes; larger ones end the call
	// with 1009. It must be positive.
	ReadLimit int64
	// DTMF and NewDetector configure the stream's media.Receiver (see media.ReceiverConfig).
	DTMF        media.DTMFMode
	NewDetector func() media.ToneDetector
	// Handle processes one inbound text message on the reader goroutine. A *Violation it
	// returns ends the call with that close code; any other error ends it with 1007.
	Handle func(data []byte) error
	// Cancel, when set, is called first when the stream ends: it cancels the call's context.
	Cancel context.CancelFunc
}

// Wire is a dialect's outbound message shapes, fixed once the stream has started.
type Wire struct {
	// Codec encodes prompts.
	Codec Codec
	// MediaPrefix opens a media message up to its media member: `{"event":"media"` plus, for
	// Twilio, `,"streamSid":"MZ…"`. A Chunks element completes it.
	MediaPrefix []byte
	// MarkPrefix opens a mark message up to the mark's name: `{"event":"mark",…,"mark":{"name":`.
	// The quoted name and `}}` complete it.
	MarkPrefix []byte
	// Clear is the whole clear message.
	Clear []byte
}

// Counters are a stream's statistics, updated atomically. They never include what the caller
// keyed.
type Counters struct {
	// FramesIn and FramesOut count media messages received (and accepted) and sent.
	FramesIn, FramesOut atomic.Uint64
	// Drops counts Play requests refused for backpressure and inbound frames the dialect
	// ignored (another track).
	Drops atomic.Uint64
	// MarksOut and MarksIn count marks sent and echoes received; Clears counts clears sent.
	MarksOut, MarksIn, Clears atomic.Uint64
	// Gaps counts holes in the inbound audio, as the dialect detects them.
	Gaps atomic.Uint64
}

// StreamStats are a snapshot of a stream's counters, for end-of-call log lines and metrics.
// They never include what the caller keyed.
type StreamStats struct {
	// FramesIn and FramesOut count media messages received and sent.
	FramesIn, FramesOut uint64
	// Drops counts Play requests refused for backpressure, inbound frames ignored (another
	// track) and events the receiver dropped because the flow fell behind.
	Drops uint64
	// MarksOut and MarksIn count marks sent and echoes received; Clears counts clears sent.
	MarksOut, MarksIn, Clears uint64
	// Gaps counts holes in the inbound audio, as the dialect detects them.
	Gaps uint64
}

// Stats returns a snapshot of the stream's counters.
func (s *Stream) Stats() StreamStats {
	c := &s.count
	return StreamStats{
		FramesIn:  c.FramesIn.Load(),
		FramesOut: c.FramesOut.Load(),
		Drops:     c.Drops.Load() + s.rx.Stats().Dropped,
		MarksOut:  c.MarksOut.Load(),
		MarksIn:   c.MarksIn.Load(),
		Clears:    c.Clears.Load(),
		Gaps:      c.Gaps.Load(),
	}
}

// SentMark is a mark on its way through the platform's playback queue.
type SentMark struct {
	Name string
	// Cleared is true once a clear was sent (or the prompt superseded) before the echo.
	Cleared bool
}

// MarkQueue is the FIFO of marks sent and not yet echoed, oldest first. Its methods are safe
// for concurrent use.
type MarkQueue struct {
	mu    sync.Mutex
	marks []SentMark
}

// Sent appends a mark.
func (q *MarkQueue) Sent(name string, cleared bool) {
	q.mu.Lock()
	q.marks = append(q.marks, SentMark{Name: name, Cleared: cleared})
	q.mu.Unlock()
}

// ClearAll flags every pending mark as cleared: its echo will report the audio discarded.
func (q *MarkQueue) ClearAll() {
	q.mu.Lock()
	for i := range q.marks {
		q.marks[i].Cleared = true
	}
	q.mu.Unlock()
}

// Ack removes and returns the oldest pending mark named name; ok is false when none is.
func (q *MarkQueue) Ack(name []byte) (m SentMark, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.marks {
		if q.marks[i].Name == string(name) {
			m = q.marks[i]
			q.marks = append(q.marks[:i], q.marks[i+1:]...)
			return m, true
		}
	}
	return SentMark{}, false
}

// Len is the number of pending marks.
func (q *MarkQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.marks)
}

// Reset forgets every pending mark.
func (q *MarkQueue) Reset() {
	q.mu.Lock()
	q.marks = q.marks[:0]
	q.mu.Unlock()
}

// Stream is the working half of a Twilio-style JSON media leg: it reads messages within the
// read limit and hands each to the dialect, owns the only writer (prompts, marks, clears), the
// FIFO of marks awaiting their echo and the end of the call. Adapters wrap it in their Leg.
// Its methods are safe for concurrent use unless they say otherwise.
type Stream struct {
	ws     wsConn
	polled *pconn // set when the poller reads the connection (Linux, plain TCP)
	cfg    Config
	rx     *media.Receiver
	count  Counters
	marks  MarkQueue
	base   *zap.Logger                // set by the Acceptor before Run
	log    atomic.Pointer[zap.Logger] // base scoped to the call, once started

	start   *media.Start
	wire    Wire          // set by Started before started is closed
	started chan struct{} // closed when the dialect reported start

	// The writer runs only while there is something to send (most of a call is spent waiting
	// for the caller), so a stream holds one goroutine, its reader, between prompts. There is
	// at most one writer at a time: kick starts one when none is running.
	out       chan play
	clearReq  chan struct{} // capacity 1: a Clear is pending
	clearGen  atomic.Uint64 // Clear calls so far
	sentClear uint64        // clearGen value covered by the last clear sent; writer only
	wmu       sync.Mutex
	running   bool // Run was called: writers may start
	writing   bool // a writer is running
	closeOnce sync.Once

	mu        sync.Mutex
	closeCode int
	closeText string
	sendClose bool

	ended      atomic.Bool
	endCh      chan struct{} // closed when the stream ends
	readerDone chan struct{}
	closed     chan struct{} // closed when the connection has been closed
}

// play is one Play request: a clip and the mark after it. gen is the clear generation it was
// queued in; a later Clear supersedes it.
type play struct {
	clip *media.Clip
	mark string
	gen  uint64
}

// New returns a stream on conn, freshly upgraded; Run starts it. From then on the stream
// reads and writes the connection's frames itself: conn's own read and write methods must not
// be used. conn may be nil for a stream driven only through its dialect's handler (tests).
func New(conn *websocket.Conn, cfg Config) *Stream {
	rc := media.ReceiverConfig{Mode: cfg.DTMF, Buffer: eventBuffer}
	if cfg.NewDetector != nil && cfg.DTMF != media.DTMFEvents {
		rc.Detector = cfg.NewDetector()
	}
	s := &Stream{
		cfg:        cfg,
		rx:         media.NewReceiver(rc),
		started:    make(chan struct{}),
		out:        make(chan play, OutQueue),
		clearReq:   make(chan struct{}, 1),
		endCh:      make(chan struct{}),
		readerDone: make(chan struct{}),
		closed:     make(chan struct{}),
	}
	if conn != nil {
		s.ws.nc = conn.NetConn()
		s.ws.src = conn.NetConn()
	}
	return s
}

// Run starts the reader goroutine; a writer runs whenever there is something to send. Close
// waits for them.
func (s *Stream) Run() {
	if s.polled == nil {
		go s.readLoop()
	} else if err := s.polled.start(); err != nil {
		s.End(websocket.CloseInternalServerErr, "", fmt.Errorf("%s: poll: %w", s.cfg.Name, err), false)
		close(s.readerDone)
	}
	s.wmu.Lock()
	s.running = true
	s.wmu.Unlock()
	if s.ended.Load() || len(s.out) > 0 || len(s.clearReq) > 0 {
		s.kick()
	}
}

// kick starts a writer unless one is running (or Run has not been called).
func (s *Stream) kick() {
	s.wmu.Lock()
	if s.writing || !s.running {
		s.wmu.Unlock()
		return
	}
	s.writing = true
	s.wmu.Unlock()
	go s.writeLoop()
}

// Events is the leg's event channel.
func (s *Stream) Events() <-chan media.Event { return s.rx.Events() }

// Receiver is where the dialect reports audio and digits.
func (s *Stream) Receiver() *media.Receiver { return s.rx }

// Counters are the stream's statistics.
func (s *Stream) Counters() *Counters { return &s.count }

// Marks is the FIFO of marks awaiting their echo.
func (s *Stream) Marks() *MarkQueue { return &s.marks }

// Logger is the Acceptor's logger scoped to the call once the stream has started, else a no-op
// logger.
func (s *Stream) Logger() *zap.Logger {
	if l := s.log.Load(); l != nil {
		return l
	}
	return zap.NewNop()
}

// Started records the call's metadata and outbound wire shapes and reports EventStart. The
// dialect calls it once, from the reader goroutine.
func (s *Stream) Started(st *media.Start, w Wire) {
	s.start, s.wire = st, w
	if s.base != nil {
		s.log.Store(s.base.With(zap.String("call", st.CallID), zap.String("stream", st.StreamID)))
	}
	s.rx.Start(st)
	close(s.started)
}

// Start returns the call's metadata (nil before Started).
func (s *Stream) Start() *media.Start {
	select {
	case <-s.started:
		return s.start
	default:
		return nil
	}
}

// Err is why the stream ended, or nil while it is live.
func (s *Stream) Err() error { return s.rx.Err() }

// CloseStatus is the close code and reason the stream ended with (0 while it is live).
func (s *Stream) CloseStatus() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeCode, s.closeText
}

// Play queues clip followed by mark, which the caller has checked with ValidMark. It returns
// media.ErrLegClosed after the stream ended and media.ErrBackpressure when the queue is full.
func (s *Stream) Play(clip *media.Clip, mark string) error {
	if s.ended.Load() {
		return media.ErrLegClosed
	}
	select {
	case s.out <- play{clip: clip, mark: mark, gen: s.clearGen.Load()}:
		s.kick()
		return nil
	default:
		s.count.Drops.Add(1)
		media.CountRefusedPrompt()
		return media.ErrBackpressure
	}
}

// Clear drops queued prompts not yet sent, sends the clear message, and has every mark still
// pending come back with Played false.
func (s *Stream) Clear() error {
	if s.ended.Load() {
		return media.ErrLegClosed
	}
	s.clearGen.Add(1)
	select {
	case s.clearReq <- struct{}{}:
	default: // a clear is already pending; it covers this one
	}
	s.kick()
	return nil
}

// Hangup closes the socket with 1000 and reason; the leg's last event is a Hangup with
// media.ErrLegClosed. Later calls do nothing.
func (s *Stream) Hangup(reason string) error {
	s.End(websocket.CloseNormalClosure, reason, media.ErrLegClosed, true)
	return nil
}

// Close hangs up (reason "closed") and waits for the stream's goroutines. It is idempotent;
// call it only after Run.
func (s *Stream) Close() error {
	_ = s.Hangup("closed")
	<-s.closed
	<-s.readerDone
	return nil
}

// End ends the stream once: it records the close frame to send (when send is true), reports
// the hangup with err, cancels the call's context and wakes the writer. It reports whether
// this call ended it.
func (s *Stream) End(code int, reason string, err error, send bool) bool {
	s.mu.Lock()
	if s.ended.Load() {
		s.mu.Unlock()
		return false
	}
	s.ended.Store(true)
	s.closeCode, s.closeText, s.sendClose = code, TruncReason(reason), send
	s.mu.Unlock()
	if s.cfg.Cancel != nil {
		s.cfg.Cancel() // first, so a flow that sees the hangup finds its context done
	}
	close(s.endCh)
	s.rx.Hangup(err)
	s.kick() // the writer closes the connection
	return true
}

// Fail ends the stream for a protocol violation.
func (s *Stream) Fail(v *Violation) {
	s.End(v.Code, v.Reason, fmt.Errorf("%w: %s", media.ErrProtocol, v.Reason), true)
}

// Ack matches a mark echo with the oldest pending mark of that name and reports it to the
// flow, played unless a clear came first. An echo of a mark never sent is a 1008 violation.
func (s *Stream) Ack(name []byte) error {
	m, ok := s.marks.Ack(name)
	if !ok {
		return Violationf(ClosePolicy, "mark %s was never sent", QuoteName(name))
	}
	s.count.MarksIn.Add(1)
	s.rx.Mark(m.Name, !m.Cleared)
	return nil
}

// readLoop reads messages until the connection fails or closes. After the stream has ended it
// keeps reading, discarding, so the peer's close frame completes the closing handshake.
func (s *Stream) readLoop() {
	defer close(s.readerDone)
	for {
		op, data, err := s.ws.next(s.cfg.ReadLimit)
		if !s.deliver(op, data, err) {
			return
		}
	}
}

// deliver handles what the reader got: a message for the dialect, errTooBig, or the error that
// ends the connection, for which it reports false. After the stream has ended messages are
// discarded.
func (s *Stream) deliver(op int, data []byte, err error) bool {
	if err != nil && err != errTooBig {
		s.readFailed(err)
		return false
	}
	switch {
	case s.ended.Load():
		// discarded
	case op != opText:
		s.Fail(Violationf(CloseUnsupported, "binary frames are not part of the protocol"))
	case err == errTooBig:
		s.Fail(Violationf(CloseTooBig, "message larger than %d bytes", s.cfg.ReadLimit))
	default:
		if err := s.cfg.Handle(data); err != nil {
			var v *Violation
			if !errors.As(err, &v) {
				v = Violationf(CloseInvalid, "%v", err)
			}
			s.Fail(v)
		}
	}
	return true
}

// readFailed ends the stream for the reader's last error: the peer's close frame, or a
// connection that failed or was closed.
func (s *Stream) readFailed(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway):
		s.End(ce.Code, "", media.ErrHangup, false)
	case errors.As(err, &ce):
		s.End(ce.Code, "", fmt.Errorf("%w: stream closed with %d", media.ErrHangup, ce.Code), false)
	default:
		s.End(websocket.CloseAbnormalClosure, "", fmt.Errorf("%s: read: %w", s.cfg.Name, err), false)
	}
}

// writeLoop is the stream's writer: once the stream has started it sends queued prompts and
// clears until nothing is left, and returns; once the stream has ended it closes the
// connection instead.
func (s *Stream) writeLoop() {
	select {
	case <-s.started: // the wire shapes are known
	case <-s.endCh:
		s.closeConn()
		return
	}
	for {
		select {
		case <-s.endCh:
			s.closeConn()
			return
		default:
		}
		var err error
		select {
		case <-s.endCh:
			s.closeConn()
			return
		case <-s.clearReq:
			err = s.flushClear()
		case p := <-s.out:
			err = s.writePlay(p)
		default:
			s.wmu.Lock()
			if len(s.out) == 0 && len(s.clearReq) == 0 && !s.ended.Load() {
				s.writing = false // the next Play, Clear or End starts another writer
				s.wmu.Unlock()
				return
			}
			s.wmu.Unlock()
			continue
		}
		if err != nil {
			s.End(websocket.CloseAbnormalClosure, "", fmt.Errorf("%s: write: %w", s.cfg.Name, err), false)
			s.closeConn()
			return
		}
	}
}

// flushClear sends the clear message if a Clear has not been covered yet; every mark then
// pending is reported unplayed when it comes back.
func (s *Stream) flushClear() error {
	gen := s.clearGen.Load()
	if gen <= s.sentClear {
		return nil
	}
	s.sentClear = gen
	s.marks.ClearAll()
	bp := getWbuf()
	defer putWbuf(bp)
	*bp = append((*bp)[:maxHeader], s.wire.Clear...)
	if err := s.write(*bp); err != nil {
		return err
	}
	s.count.Clears.Add(1)
	return nil
}

// writePlay sends a prompt's media messages and its mark. A prompt superseded by a Clear is
// not sent (or no longer sent); its mark still goes out, flagged as cleared, so the flow gets
// exactly one mark event per Play.
func (s *Stream) writePlay(p play) error {
	bp := getWbuf()
	defer putWbuf(bp)
	superseded := p.gen < s.clearGen.Load()
	if !superseded {
		if err := s.flushClear(); err != nil { // a clear queued before this prompt goes first
			return err
		}
		for _, chunk := range ChunksFor(p.clip, s.wire.Codec) {
			if s.ended.Load() {
				return nil
			}
			if p.gen < s.clearGen.Load() {
				break // barge-in mid-prompt; the clear follows
			}
			*bp = append(append((*bp)[:maxHeader], s.wire.MediaPrefix...), chunk...)
			if err := s.write(*bp); err != nil {
				return err
			}
			s.count.FramesOut.Add(1)
		}
	}
	s.marks.Sent(p.mark, superseded)
	*bp = append(AppendString(append((*bp)[:maxHeader], s.wire.MarkPrefix...), p.mark), '}', '}')
	if err := s.write(*bp); err != nil {
		return err
	}
	s.count.MarksOut.Add(1)
	return nil
}

// write sends buf[maxHeader:] as one text message.
func (s *Stream) write(buf []byte) error {
	return s.ws.writeText(buf, time.Now().Add(writeTimeout))
}

// closeConn finishes the closing handshake: it sends the close frame (unless the peer closed
// first or the connection failed), waits a moment for the peer's, then closes the socket and
// waits for the reader.
func (s *Stream) closeConn() {
	s.closeOnce.Do(s.closeConnOnce)
}

func (s *Stream) closeConnOnce() {
	defer close(s.closed)
	s.mu.Lock()
	code, text, send := s.closeCode, s.closeText, s.sendClose
	s.mu.Unlock()
	if send {
		if err := s.ws.writeClose(code, text, time.Now().Add(writeTimeout)); err == nil {
			t := time.NewTimer(closeGrace)
			select {
			case <-s.readerDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	s.ws.waitReplies() // a pong or close echo of the reader's goes out first
	_ = s.ws.nc.Close()
	<-s.readerDone
}
