package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

const (
	// outQueue is the capacity of the outbound queue, in Play requests (whole prompts).
	outQueue = 64
	// maxMarkName bounds mark names; ours are prompt ids.
	maxMarkName = 256
	// maxLate is how far behind its deadline the writer may fall before it gives up on the
	// schedule and starts a new one from now (the process was descheduled).
	maxLate = 100 * time.Millisecond
	// readBufSize holds any RTP packet a peer sends over UDP without IP fragmentation.
	readBufSize = 1500
)

// Leg is one WebRTC call as a media.Leg. Handler creates it for an accepted offer and hands it
// to the serve function once ICE and DTLS are up; its methods are safe for concurrent use.
//
// Inbound, every RTP packet of the caller's audio track is classified by its payload type as
// negotiated for this call: PCMU and PCMA are decoded to PCM for the receiver (and its in-band
// detector), telephone-events go through an RFC 4733 §2.5.2 receiver (media/dtmf) and become
// one digit per key press. Outbound, the leg is a paced source (RFC 3550 over SRTP): one
// 20 ms G.711 frame per deadline while a prompt plays, nothing in between (RFC 3551 §4.1
// silence suppression: the first packet after a pause carries the marker bit and a timestamp
// that includes the pause). Marks are the leg's own: a clip's mark is reported when its last
// frame has been written.
type Leg struct {
	id     string // resource id, the last segment of the Location URL
	remote string // the offer's source address, for the log
	start  *media.Start
	cfg    *Config
	log    *zap.Logger
	pc     *webrtc.PeerConnection // nil in unit tests of the writer
	track  *g711Track
	rx     *media.Receiver
	cancel context.CancelFunc

	connected chan struct{} // closed when the peer connection first reports connected
	connOnce  sync.Once
	started   atomic.Bool // rx.Start has been called; inbound digits and audio count from now

	epoch   time.Time    // leg creation, the origin of lastRTP
	lastRTP atomic.Int64 // time of the last inbound RTP packet, ns since epoch

	out      chan play
	clearReq chan struct{} // capacity 1: a Clear is pending
	clearGen atomic.Uint64 // Clear calls so far

	mu          sync.Mutex
	reason      string // why the leg ended, for the log
	readersDone bool   // no more track readers may start
	tracks      int
	readers     sync.WaitGroup // track and RTCP readers

	ended      atomic.Bool
	endCh      chan struct{} // closed when the leg ends
	writerDone chan struct{}

	stats counters
}

var _ media.Leg = (*Leg)(nil)

// play is one Play request; gen is the clear generation it was queued in, so a later Clear
// supersedes it.
type play struct {
	clip *media.Clip
	mark string
	gen  uint64
}

// counters are a leg's atomically updated statistics.
type counters struct {
	packetsIn, framesOut, digits, badPackets, drops, marks, clears, late atomic.Uint64
}

// Stats are a leg's counters, for the end-of-call log line and metrics. They never include
// what the caller keyed.
type Stats struct {
	// PacketsIn counts RTP packets received (audio and telephone-events); FramesIn counts the
	// audio frames handed to the receiver.
	PacketsIn, FramesIn uint64
	// FramesOut counts 20 ms frames sent.
	FramesOut uint64
	// Digits counts key presses decoded from telephone-events.
	Digits uint64
	// BadPackets counts packets that could not be parsed or had a payload type that was not
	// negotiated.
	BadPackets uint64
	// Drops counts Play requests refused for backpressure and events the receiver dropped
	// because the flow fell behind.
	Drops uint64
	// Marks counts marks reported played; Clears counts prompts cut short or discarded by Clear.
	Marks, Clears uint64
	// Late counts times the writer fell more than 100 ms behind its schedule.
	Late uint64
}

// newLeg makes a leg; the caller wires pc (which may be nil in tests) and starts writeLoop.
func newLeg(id string, st *media.Start, cfg *Config, log *zap.Logger, cancel context.CancelFunc) *Leg {
	rc := media.ReceiverConfig{Mode: cfg.DTMF}
	if cfg.NewDetector != nil && cfg.DTMF != media.DTMFEvents {
		rc.Detector = cfg.NewDetector()
	}
	return &Leg{
		id:         id,
		start:      st,
		cfg:        cfg,
		log:        log,
		track:      newG711Track("callproof-audio", "callproof"),
		rx:         media.NewReceiver(rc),
		cancel:     cancel,
		connected:  make(chan struct{}),
		epoch:      time.Now(),
		out:        make(chan play, outQueue),
		clearReq:   make(chan struct{}, 1),
		endCh:      make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// Events implements media.Leg.
func (l *Leg) Events() <-chan media.Event { return l.rx.Events() }

// Info implements media.Leg: the leg paces its own audio, so marks are its own too.
func (l *Leg) Info() media.Info { return media.Info{Transport: "webrtc", NativeMarks: false} }

// Start returns the call's metadata.
func (l *Leg) Start() *media.Start { return l.start }

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	rs := l.rx.Stats()
	return Stats{
		PacketsIn:  l.stats.packetsIn.Load(),
		FramesIn:   rs.Frames,
		FramesOut:  l.stats.framesOut.Load(),
		Digits:     l.stats.digits.Load(),
		BadPackets: l.stats.badPackets.Load(),
		Drops:      l.stats.drops.Load() + rs.Dropped,
		Marks:      l.stats.marks.Load(),
		Clears:     l.stats.clears.Load(),
		Late:       l.stats.late.Load(),
	}
}

// Play implements media.Leg: the clip is sent one 20 ms frame at a time after the prompts
// queued before it, and its mark is reported when the last frame has gone out. It returns
// ErrInvalidPlay for a nil clip or a bad mark name, media.ErrLegClosed after the leg ended and
// media.ErrBackpressure when the queue is full.
func (l *Leg) Play(clip *media.Clip, mark string) error {
	if clip == nil || mark == "" || len(mark) > maxMarkName || !utf8.ValidString(mark) {
		return fmt.Errorf("%w: want a clip and a mark name of 1 to %d bytes of UTF-8", ErrInvalidPlay, maxMarkName)
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

// Clear implements media.Leg: the prompt playing stops at the next frame boundary and queued
// prompts are discarded; their marks are reported with Played false.
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

// Hangup implements media.Leg: the peer connection closes (DTLS close_notify, so the browser
// learns at once). The leg's last event is a Hangup with media.ErrLegClosed. Later calls do
// nothing.
func (l *Leg) Hangup(reason string) error {
	l.end(media.ErrLegClosed, "hangup: "+reason)
	return nil
}

// end ends the leg once: it records why, cancels the call's context, wakes the writer and
// reports the hangup to the flow. It reports whether this call ended it.
func (l *Leg) end(err error, reason string) bool {
	if !l.ended.CompareAndSwap(false, true) {
		return false
	}
	l.mu.Lock()
	l.reason = reason
	l.mu.Unlock()
	if l.cancel != nil {
		l.cancel() // first, so a flow that sees the hangup finds its context done
	}
	close(l.endCh)
	l.rx.Hangup(err)
	return true
}

// endReason returns why the leg ended ("" while live).
func (l *Leg) endReason() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reason
}

// onState follows the peer connection's state. pion calls it from a new goroutine per change,
// so calls can arrive out of order; every branch is idempotent.
func (l *Leg) onState(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		l.connOnce.Do(func() { close(l.connected) })
	case webrtc.PeerConnectionStateFailed:
		l.end(fmt.Errorf("%w: connection failed", ErrICE), "ice failed")
	case webrtc.PeerConnectionStateDisconnected:
		l.end(fmt.Errorf("%w: connection disconnected", ErrICE), "ice disconnected")
	case webrtc.PeerConnectionStateClosed:
		l.end(media.ErrHangup, "peer closed")
	}
}

// markStarted reports the start event; inbound digits and audio are passed on from now.
func (l *Leg) markStarted() {
	l.rx.Start(l.start)
	l.started.Store(true)
}

// addReader registers a reader goroutine unless the leg is being torn down.
func (l *Leg) addReader() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readersDone {
		return false
	}
	l.readers.Add(1)
	return true
}

// closeReaders stops new readers from starting and waits for the running ones; call it after
// the peer connection has closed, which ends their reads.
func (l *Leg) closeReaders() {
	l.mu.Lock()
	l.readersDone = true
	l.mu.Unlock()
	l.readers.Wait()
}

// onTrack reads one remote track until it ends. Only the first audio track feeds the
// receiver; others (a peer that offered two audio sections) are read and discarded so they
// still count as media.
func (l *Leg) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if tr.Kind() != webrtc.RTPCodecTypeAudio || !l.addReader() {
		return
	}
	defer l.readers.Done()
	l.mu.Lock()
	primary := l.tracks == 0
	l.tracks++
	l.mu.Unlock()
	codecs := recv.GetParameters().Codecs
	in := newInbound(l, kindsOf(codecs), codecs, primary)
	buf := make([]byte, readBufSize)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			if errors.Is(err, io.EOF) || l.ended.Load() {
				return
			}
			l.stats.badPackets.Add(1) // e.g. a payload type that was not negotiated
			continue
		}
		in.handle(buf[:n], time.Now())
	}
}

// drainRTCP reads the RTCP the peer sends about our stream until the sender stops. No
// interceptor needs it; reading keeps pion's buffer from filling. The caller has taken a
// reader slot with addReader.
func (l *Leg) drainRTCP(s *webrtc.RTPSender) {
	defer l.readers.Done()
	buf := make([]byte, readBufSize)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// inbound is one track's read state; its buffers are allocated once, so handling a packet
// does not allocate.
type inbound struct {
	l       *Leg
	primary bool
	kinds   ptKinds
	events  []eventRx
	pkt     rtp.Packet
	pcm     []int16
	keys    []dtmf.KeyPress
}

// eventRx is the RFC 4733 receiver of one negotiated telephone-event payload type.
type eventRx struct {
	pt uint8
	r  *dtmf.Receiver
}

func newInbound(l *Leg, kinds ptKinds, codecs []webrtc.RTPCodecParameters, primary bool) *inbound {
	in := &inbound{l: l, primary: primary, kinds: kinds, pcm: make([]int16, readBufSize), keys: make([]dtmf.KeyPress, 0, 8)}
	for _, c := range codecs {
		if kindOf(c.RTPCodecCapability) != kindEvent || c.PayloadType > 127 {
			continue
		}
		r, err := dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: uint8(c.PayloadType), ClockRate: int(c.ClockRate)})
		if err != nil {
			continue // cannot happen for a negotiated 8 kHz payload type
		}
		in.events = append(in.events, eventRx{pt: uint8(c.PayloadType), r: r})
	}
	return in
}

// handle processes one RTP packet that arrived at now.
func (in *inbound) handle(b []byte, now time.Time) {
	l := in.l
	if err := in.pkt.Unmarshal(b); err != nil {
		l.stats.badPackets.Add(1)
		return
	}
	l.lastRTP.Store(int64(now.Sub(l.epoch)))
	l.stats.packetsIn.Add(1)
	if !in.primary {
		return
	}
	live := l.started.Load()
	p := &in.pkt
	switch in.kinds[p.PayloadType&0x7F] {
	case kindPCMU, kindPCMA:
		if len(p.Payload) == 0 {
			return
		}
		// Audio after a key press closes an event whose end packets were all lost (§2.5.2).
		for i := range in.events {
			in.keys = in.events[i].r.TickRTP(in.keys[:0], p.Timestamp)
			in.digits(live)
		}
		if !live {
			return
		}
		pcm := in.pcm[:len(p.Payload)]
		if in.kinds[p.PayloadType&0x7F] == kindPCMU {
			media.DecodeUlaw(pcm, p.Payload)
		} else {
			media.DecodeAlaw(pcm, p.Payload)
		}
		l.rx.Audio(pcm)
	case kindEvent:
		for i := range in.events {
			if !in.events[i].r.Accepts(p.PayloadType) {
				continue
			}
			var err error
			in.keys, err = in.events[i].r.Handle(in.keys[:0], dtmf.Header{
				PayloadType: p.PayloadType, SSRC: p.SSRC, SequenceNumber: p.SequenceNumber,
				Timestamp: p.Timestamp, Marker: p.Marker,
			}, p.Payload, now)
			if err != nil {
				l.stats.badPackets.Add(1)
			}
			in.digits(live)
		}
	default:
		l.stats.badPackets.Add(1)
	}
}

// digits reports the key presses in in.keys.
func (in *inbound) digits(live bool) {
	for _, k := range in.keys {
		if !live {
			continue // pressed before the call started; nobody is listening yet
		}
		in.l.stats.digits.Add(1)
		in.l.rx.Digit(k.Digit, media.SourceRFC4733)
	}
}

// writeLoop is the leg's only writer, its playout clock and its media watchdog. Frame k of a
// run of back-to-back prompts is due at anchor + k×20 ms; the timer is reset to each
// deadline rather than slept for, so scheduling delays do not accumulate into drift. The
// watchdog timer ends the call when no RTP has arrived for MediaTimeout.
func (l *Leg) writeLoop() {
	defer close(l.writerDone)
	frame := time.NewTimer(time.Hour)
	frame.Stop()
	defer frame.Stop()
	idle := time.NewTimer(l.cfg.MediaTimeout)
	defer idle.Stop()
	w := newRTPWriter(l.track, randomUint16())
	var (
		cur     play
		pos     int       // sample offset of cur's next frame
		playing bool      // cur is being sent
		anchor  time.Time // start of the current schedule
		n       int64     // frames sent since anchor
		ts      = randomUint32()
		tsAt    time.Time // the time ts stands for
		marker  bool      // the next frame starts a talkspurt
	)
	for {
		var (
			outC   <-chan play
			frameC <-chan time.Time
		)
		if playing {
			frameC = frame.C
		} else {
			outC = l.out
		}
		select {
		case <-l.endCh:
			return
		case <-idle.C:
			since := time.Since(l.epoch) - time.Duration(l.lastRTP.Load())
			if since >= l.cfg.MediaTimeout {
				l.end(fmt.Errorf("%w for %s", ErrMediaTimeout, l.cfg.MediaTimeout.Round(time.Millisecond)), "media timeout")
				return
			}
			idle.Reset(l.cfg.MediaTimeout - since)
		case <-l.clearReq:
			if playing && l.superseded(&cur) {
				frame.Stop()
				playing = false
				l.stats.clears.Add(1)
				l.rx.Mark(cur.mark, false)
			}
			// queued prompts are dropped as they come out of the queue
		case p := <-outC:
			if l.superseded(&p) {
				l.stats.clears.Add(1)
				l.rx.Mark(p.mark, false)
				continue
			}
			cur, pos, playing = p, 0, true
			now := time.Now()
			if anchor.IsZero() || now.After(anchor.Add(time.Duration(n)*media.FrameDuration)) {
				// The line was idle: a new talkspurt starts now, and the RTP clock has run on
				// through the pause.
				if !tsAt.IsZero() {
					ts += uint32(now.Sub(tsAt) * media.SampleRate / time.Second)
				}
				anchor, n, tsAt, marker = now, 0, now, true
			} // else: back-to-back with the previous prompt, keep its schedule
			frame.Reset(time.Until(anchor.Add(time.Duration(n) * media.FrameDuration)))
		case <-frameC:
			if l.superseded(&cur) { // a Clear raced the tick; its request is pending
				continue
			}
			if err := l.writeFrame(w, cur.clip, pos, ts, marker); err != nil {
				l.end(fmt.Errorf("webrtc: write: %w", err), "write failed")
				return
			}
			marker = false
			pos += media.FrameSamples
			ts += media.FrameSamples
			tsAt = tsAt.Add(media.FrameDuration)
			n++
			if pos >= len(cur.clip.PCM()) {
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
			frame.Reset(time.Until(due))
		}
	}
}

func (l *Leg) superseded(p *play) bool { return p.gen < l.clearGen.Load() }

// writeFrame sends the 20 ms frame of clip starting at sample pos, in the negotiated codec.
// Before the track is bound there is nowhere to send it, and the frame is skipped.
func (l *Leg) writeFrame(w *rtpWriter, clip *media.Clip, pos int, ts uint32, marker bool) error {
	b, ok := l.track.binding()
	if !ok {
		return nil
	}
	enc := clip.Ulaw()
	if b.audio == kindPCMA {
		enc = clip.Alaw()
	}
	if err := w.write(&b, b.pt, ts, marker, enc[pos:pos+media.FrameSamples]); err != nil {
		if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, io.EOF) {
			return nil // the connection is closing; the state change ends the leg
		}
		return err
	}
	l.stats.framesOut.Add(1)
	return nil
}

func randomUint16() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}

func randomUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
