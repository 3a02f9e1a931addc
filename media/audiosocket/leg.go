package audiosocket

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callproof/callproof/media"
)

const (
	// writeTimeout bounds each frame write; a peer that stops reading for this long loses
	// the call.
	writeTimeout = 5 * time.Second
	// closeGrace is how long the leg waits, after sending its hangup frame, for Asterisk to
	// close its side before the socket is closed anyway.
	closeGrace = 2 * time.Second
	// outQueue is the capacity of the outbound queue, in Play requests (whole prompts).
	outQueue = 64
	// maxMarkName bounds mark names; ours are prompt ids.
	maxMarkName = 256
	// maxLate is how far behind its schedule the playout clock may fall (a GC pause, a busy
	// host) and still catch up; beyond it the clock restarts from now rather than send a
	// burst, which Asterisk would play garbled (telephony-protocols §6.1).
	maxLate = 3 * media.FrameDuration
)

// Leg is one AudioSocket connection as a media.Leg. Server creates it and hands it to the
// serve function; its methods are safe for concurrent use.
type Leg struct {
	conn net.Conn
	rx   *media.Receiver
	idle time.Duration
	uuid string
	st   *media.Start

	// Reader goroutine only.
	fr  frameReader
	pcm [maxPayload / 2]int16

	// Writer goroutine only, fed by Play and Clear.
	out      chan play
	clearReq chan struct{} // capacity 1: a Clear is pending
	clearGen atomic.Uint64 // Clear calls so far

	mu         sync.Mutex
	sendHangup bool   // the writer sends a hangup frame before closing
	reason     string // why we hung up, for the end-of-call log

	ended      atomic.Bool
	endCh      chan struct{} // closed when the leg ends
	cancel     context.CancelFunc
	readerDone chan struct{}
	writerDone chan struct{}

	stats counters
}

var _ media.Leg = (*Leg)(nil)

// play is one Play request: the clip's frames as they go on the wire and the mark after them.
// gen is the clear generation it was queued in; a later Clear supersedes it.
type play struct {
	wire []byte
	mark string
	gen  uint64
}

type counters struct {
	framesIn, framesOut, drops, marks, clears, late atomic.Uint64
}

// Stats are a leg's counters, for the end-of-call log line and metrics. They never include
// what the caller keyed.
type Stats struct {
	// FramesIn and FramesOut count audio frames received and sent.
	FramesIn, FramesOut uint64
	// Drops counts Play requests refused for backpressure and events the receiver dropped
	// because the flow fell behind.
	Drops uint64
	// Marks counts clips played to the end; Clears counts prompts cut short or discarded by
	// Clear.
	Marks, Clears uint64
	// Late counts the times the playout clock fell more than 60 ms behind and restarted.
	Late uint64
}

func newLeg(conn net.Conn, cfg *Config) *Leg {
	rc := media.ReceiverConfig{Mode: cfg.DTMF}
	if cfg.NewDetector != nil && cfg.DTMF != media.DTMFEvents {
		rc.Detector = cfg.NewDetector()
	}
	l := &Leg{
		conn:       conn,
		rx:         media.NewReceiver(rc),
		idle:       cfg.IdleTimeout,
		out:        make(chan play, outQueue),
		clearReq:   make(chan struct{}, 1),
		endCh:      make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	l.fr.r = bufio.NewReaderSize(conn, 2048)
	return l
}

// Events implements media.Leg.
func (l *Leg) Events() <-chan media.Event { return l.rx.Events() }

// Info implements media.Leg. AudioSocket has no playback acknowledgements: marks come from the
// leg's own playout clock.
func (l *Leg) Info() media.Info { return media.Info{Transport: "audiosocket", NativeMarks: false} }

// UUID is the call's AudioSocket UUID in canonical form.
func (l *Leg) UUID() string { return l.uuid }

// Start returns the call's metadata, as reported in the leg's first event.
func (l *Leg) Start() *media.Start { return l.st }

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	return Stats{
		FramesIn:  l.stats.framesIn.Load(),
		FramesOut: l.stats.framesOut.Load(),
		Drops:     l.stats.drops.Load() + l.rx.Stats().Dropped,
		Marks:     l.stats.marks.Load(),
		Clears:    l.stats.clears.Load(),
		Late:      l.stats.late.Load(),
	}
}

// Play implements media.Leg: the clip is sent one 20 ms frame per tick after whatever is
// queued, and mark is reported when its last frame has been written. It returns
// ErrInvalidPlay for a nil clip or a bad mark name, media.ErrLegClosed after the leg ended and
// media.ErrBackpressure when 64 prompts are already queued.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	if clip == nil || mark == "" || len(mark) > maxMarkName {
		return fmt.Errorf("%w: want a clip and a mark name of 1 to %d bytes", ErrInvalidPlay, maxMarkName)
	}
	if l.ended.Load() {
		return media.ErrLegClosed
	}
	select {
	case l.out <- play{wire: wireFor(clip), mark: mark, gen: l.clearGen.Load()}:
		return nil
	default:
		l.stats.drops.Add(1)
		media.CountRefusedPrompt()
		return media.ErrBackpressure
	}
}

// Clear implements media.Leg: the prompt playing stops at the next frame boundary and every
// queued prompt is dropped; their marks are reported with Played false. AudioSocket has no
// far-end queue, so nothing needs flushing there.
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

// Hangup implements media.Leg: the leg sends a hangup frame (00 00 00) and closes the socket,
// so AudioSocket() returns and the dialplan continues. The leg's last event is a Hangup with
// media.ErrLegClosed. Later calls do nothing.
func (l *Leg) Hangup(reason string) error {
	l.end(media.ErrLegClosed, true, reason)
	return nil
}

// Close hangs up (reason "closed") and waits for the leg's goroutines. It is idempotent.
func (l *Leg) Close() error {
	_ = l.Hangup("closed")
	<-l.writerDone
	<-l.readerDone
	return nil
}

// end ends the leg once: it records whether to send a hangup frame, cancels the call's
// context, wakes the writer and reports the hangup to the flow.
func (l *Leg) end(err error, sendHangup bool, reason string) bool {
	l.mu.Lock()
	if l.ended.Load() {
		l.mu.Unlock()
		return false
	}
	l.ended.Store(true)
	l.sendHangup, l.reason = sendHangup, reason
	l.mu.Unlock()
	if l.cancel != nil {
		l.cancel() // first, so a flow that sees the hangup finds its context done
	}
	close(l.endCh)
	l.rx.Hangup(err)
	return true
}

// fail ends the leg for a protocol violation by the peer: we hang up on it.
func (l *Leg) fail(v *protoError) {
	l.end(fmt.Errorf("%w: %s", media.ErrProtocol, v.msg), true, v.msg)
}

// readLoop reads frames until the connection fails or closes. After the leg has ended it keeps
// reading, discarding, until Asterisk closes its side.
func (l *Leg) readLoop() {
	defer close(l.readerDone)
	_ = l.conn.SetReadDeadline(time.Now().Add(l.idle))
	for {
		kind, payload, err := l.fr.next()
		if err != nil {
			l.readFailed(err)
			return
		}
		if l.ended.Load() {
			continue
		}
		if err := l.handle(kind, payload); err != nil {
			l.fail(err)
		}
	}
}

func (l *Leg) readFailed(err error) {
	var pe *protoError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		l.fail(pe)
	case errors.As(err, &ne) && ne.Timeout():
		l.end(fmt.Errorf("%w for %s", ErrIdle, l.idle), true, "no inbound audio")
	case errors.Is(err, net.ErrClosed) || isEOF(err):
		l.end(media.ErrHangup, false, "")
	default:
		l.end(fmt.Errorf("audiosocket: read: %w", err), false, "")
	}
}

// handle processes one frame. It allocates nothing for audio and DTMF frames. Errors are
// protocol violations.
func (l *Leg) handle(kind byte, p []byte) *protoError {
	if err := checkFrame(kind, p, false); err != nil {
		return err.(*protoError)
	}
	switch kind {
	case kindSlin:
		pcm := l.pcm[:len(p)/2]
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(p[2*i:]))
		}
		l.stats.framesIn.Add(1)
		l.rx.Audio(pcm)
		_ = l.conn.SetReadDeadline(time.Now().Add(l.idle))
	case kindDTMF:
		l.rx.Digit(p[0], media.SourceEvent)
	case kindHangup:
		l.end(media.ErrHangup, false, "")
	case kindError:
		l.end(fmt.Errorf("%w: asterisk reported an error (%s)", media.ErrProtocol, errorCause(p)), false, "")
	}
	return nil
}

// superseded reports whether a Clear came after p was queued.
func (l *Leg) superseded(p *play) bool { return p.gen < l.clearGen.Load() }

// writeLoop is the leg's only writer and its playout clock. Frame k of a run of back-to-back
// prompts is due at anchor + k×20 ms; the timer is reset to each deadline rather than slept
// for, so scheduling delays do not accumulate into drift.
func (l *Leg) writeLoop() {
	defer close(l.writerDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		cur     play
		pos     int       // offset of cur's next frame in cur.wire
		playing bool      // cur is being sent
		anchor  time.Time // start of the current schedule
		n       int64     // frames sent since anchor
	)
	for {
		if !playing {
			select {
			case <-l.endCh:
				l.finish()
				return
			case <-l.clearReq: // nothing playing; queued prompts are dropped as they come out
			case p := <-l.out:
				if l.superseded(&p) {
					l.stats.clears.Add(1)
					l.rx.Mark(p.mark, false)
					continue
				}
				cur, pos, playing = p, 0, true
				now := time.Now()
				if anchor.IsZero() || now.Sub(anchor.Add(time.Duration(n)*media.FrameDuration)) > 0 {
					anchor, n = now, 0 // the line was idle: start a new schedule now
				} // else: back-to-back with the previous prompt, keep its schedule
				timer.Reset(time.Until(anchor.Add(time.Duration(n) * media.FrameDuration)))
			}
			continue
		}
		select {
		case <-l.endCh:
			l.finish()
			return
		case <-l.clearReq:
			if l.superseded(&cur) {
				timer.Stop()
				playing = false
				l.stats.clears.Add(1)
				l.rx.Mark(cur.mark, false)
			}
		case <-timer.C:
			if l.superseded(&cur) { // a Clear raced the tick; its request is pending
				continue
			}
			if err := l.writeFrame(cur.wire[pos : pos+wireFrame]); err != nil {
				l.end(fmt.Errorf("audiosocket: write: %w", err), false, "")
				l.finish()
				return
			}
			pos += wireFrame
			n++
			if pos >= len(cur.wire) {
				playing = false
				l.stats.marks.Add(1)
				l.rx.Mark(cur.mark, true)
				continue
			}
			due := anchor.Add(time.Duration(n) * media.FrameDuration)
			if late := time.Since(due); late > maxLate {
				l.stats.late.Add(1)
				media.CountLateFrame()
				anchor, n = time.Now(), 0
				due = anchor
			}
			timer.Reset(time.Until(due))
		}
	}
}

func (l *Leg) writeFrame(f []byte) error {
	if err := l.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if _, err := l.conn.Write(f); err != nil {
		return err
	}
	l.stats.framesOut.Add(1)
	return nil
}

// finish closes the connection: it sends the hangup frame when we are the side hanging up,
// half-closes, waits a moment for Asterisk to close its side (so the frame is read rather than
// lost to a reset), then closes the socket and waits for the reader.
func (l *Leg) finish() {
	l.mu.Lock()
	send := l.sendHangup
	l.mu.Unlock()
	if send {
		_ = l.conn.SetWriteDeadline(time.Now().Add(closeGrace))
		if _, err := l.conn.Write(hangupFrame[:]); err == nil {
			if cw, ok := l.conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			_ = l.conn.SetReadDeadline(time.Now().Add(closeGrace))
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

// wireKey is the key of the adapter's wire form in media.Clip's cache.
type wireKey struct{}

// wireFor returns the clip as outbound frames (header and 320 bytes of slin each), built once
// per process.
func wireFor(c *media.Clip) []byte { return c.Encoded(wireKey{}, buildWire).([]byte) }

func buildWire(c *media.Clip) any {
	pcm := c.PCM() // whole 20 ms frames: NewClip pads
	b := make([]byte, 0, c.Frames()*wireFrame)
	for f := 0; f < c.Frames(); f++ {
		b = append(b, kindSlin, frameBytes>>8, frameBytes&0xff)
		for _, s := range pcm[f*media.FrameSamples : (f+1)*media.FrameSamples] {
			b = binary.LittleEndian.AppendUint16(b, uint16(s))
		}
	}
	return b
}

// isEOF reports whether err means the peer closed the connection.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}
