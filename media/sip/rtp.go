package sip

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/rtp"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

// One RTP stream per call (RFC 3550 over RFC 3551's audio profile): a UDP socket from the
// configured range, a reader that turns the caller's G.711 into PCM and RFC 4733 events into
// digits, and a writer that sends one 20 ms G.711 frame per tick of a deadline clock.

const (
	// rtpHeader is the size of the RTP header we send (no CSRC, no extension).
	rtpHeader = 12
	// tickEvery is how often the reader wakes when no packet arrives, to close telephone
	// events whose end packets were lost and to notice an RTP timeout.
	tickEvery = 100 * time.Millisecond
	// relatchAfter is how long the address we latched on must stay silent before RTP from
	// another address is taken instead (the caller's NAT binding changed, RFC 4961 symmetric
	// RTP).
	relatchAfter = time.Second
	// maxLate is how far behind its schedule the send clock may fall and still catch up;
	// beyond it the clock restarts from now (and the RTP timestamp jumps by the time lost)
	// rather than send a burst.
	maxLate = 3 * media.FrameDuration
	// maxQueue is the capacity of the playout queue, in Play requests (whole prompts).
	maxQueue = 64
	// maxDatagram is the largest RTP packet read.
	maxDatagram = 1500
)

// streamParams is what the stream needs from the negotiation; replaced whole (atomically)
// when a re-INVITE changes it.
type streamParams struct {
	pt     uint8
	alaw   bool
	tePT   int            // -1: none
	remote netip.AddrPort // from the SDP; invalid: do not send until RTP arrives (or at all)
	dir    direction      // the peer's direction
}

// streamCounters are a stream's statistics; they never include what the caller keyed.
type streamCounters struct {
	framesIn, framesOut, digits, late, rtcp, foreign, bad, other, dups, marks, clears, drops atomic.Uint64
}

// stream is one call's RTP.
type stream struct {
	conn   *net.UDPConn
	rx     *media.Receiver
	params atomic.Pointer[streamParams]
	// latched is where the caller's RTP comes from (symmetric RTP); nil until it arrives.
	latched atomic.Pointer[netip.AddrPort]
	// lastRecv is when the caller's RTP last arrived (Unix ns); reset at renegotiation.
	lastRecv atomic.Int64
	timeout  time.Duration
	onIdle   func() // called once, from the reader, on RTP timeout
	idleOnce sync.Once
	// heard is set once an RFC 4733 event arrived; the in-band detector is then skipped.
	heard *atomic.Bool
	ended atomic.Bool // the leg has ended: inbound is no longer reported

	play playout

	// Reader goroutine only.
	buf        [maxDatagram]byte
	pcm        [maxDatagram]int16
	pkt        rtp.Packet
	te         *dtmf.Receiver
	keys       []dtmf.KeyPress
	lastTick   time.Time
	latchHeard time.Time // when the latched address was last heard
	haveSeq    bool
	ssrcIn     uint32
	seqIn      uint16

	// Writer goroutine only.
	hdr  rtp.Header
	out  [rtpHeader + media.FrameSamples]byte
	sent bool

	stats streamCounters

	started    atomic.Bool
	stop       chan struct{}
	stopOnce   sync.Once
	readerDone chan struct{}
	writerDone chan struct{}
}

func newStream(conn *net.UDPConn, rx *media.Receiver, heard *atomic.Bool, p *streamParams, timeout time.Duration, onIdle func()) *stream {
	s := &stream{
		conn:       conn,
		heard:      heard,
		rx:         rx,
		timeout:    timeout,
		onIdle:     onIdle,
		keys:       make([]dtmf.KeyPress, 0, 8),
		stop:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	s.play.rx, s.play.stats = rx, &s.stats
	s.params.Store(p)
	s.lastRecv.Store(time.Now().UnixNano())
	var b [10]byte
	_, _ = rand.Read(b[:])
	s.hdr = rtp.Header{Version: 2, PayloadType: p.pt, SSRC: binary.BigEndian.Uint32(b[0:4]),
		SequenceNumber: binary.BigEndian.Uint16(b[4:6]), Timestamp: binary.BigEndian.Uint32(b[6:10])}
	return s
}

// start runs the reader and the writer.
func (s *stream) start() {
	s.started.Store(true)
	go s.readLoop()
	go s.writeLoop()
}

// close stops both loops, closes the socket and waits.
func (s *stream) close() {
	s.stopOnce.Do(func() {
		close(s.stop)
		_ = s.conn.Close()
	})
	if !s.started.Load() {
		return
	}
	<-s.readerDone
	<-s.writerDone
}

// renegotiated installs new parameters (a re-INVITE): RTP is sent to the new SDP address
// until the caller's RTP arrives from it, and the timeout starts again.
func (s *stream) renegotiated(p *streamParams) {
	s.params.Store(p)
	s.latched.Store(nil)
	s.lastRecv.Store(time.Now().UnixNano())
}

// Port returns the local RTP port.
func (s *stream) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// readLoop reads RTP until the socket closes. It allocates nothing per packet.
func (s *stream) readLoop() {
	defer close(s.readerDone)
	s.lastTick = time.Now()
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(tickEvery))
		n, from, err := s.conn.ReadFromUDPAddrPort(s.buf[:])
		now := time.Now()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
			case errors.Is(err, net.ErrClosed):
				return
			case errors.Is(err, syscall.ECONNREFUSED):
			default:
				select {
				case <-s.stop:
					return
				default:
				}
			}
		} else {
			s.handle(s.buf[:n], from, now)
		}
		if now.Sub(s.lastTick) >= tickEvery {
			s.tick(now)
		}
	}
}

// tick closes a telephone event whose end packets were lost and checks the RTP timeout.
func (s *stream) tick(now time.Time) {
	s.lastTick = now
	if s.ended.Load() {
		return
	}
	if s.te != nil {
		s.keys = s.te.Tick(s.keys[:0], now)
		s.report(s.keys)
	}
	p := s.params.Load()
	if s.timeout > 0 && p.dir.sends() && now.Sub(time.Unix(0, s.lastRecv.Load())) > s.timeout {
		s.idleOnce.Do(s.onIdle)
	}
}

// handle processes one datagram. One longer than maxDatagram is refused: reads never return
// one (they fill a buffer of that size), and the decode buffer holds that many samples.
func (s *stream) handle(b []byte, from netip.AddrPort, now time.Time) {
	if len(b) < rtpHeader || len(b) > maxDatagram || b[0]>>6 != 2 {
		s.stats.bad.Add(1)
		return
	}
	if pt := b[1] & 0x7f; pt >= 72 && pt <= 76 { // RTCP multiplexed on the RTP port, RFC 5761 §4
		s.stats.rtcp.Add(1)
		return
	}
	if err := s.pkt.Unmarshal(b); err != nil {
		s.stats.bad.Add(1)
		return
	}
	if !s.acceptFrom(from, now) {
		s.stats.foreign.Add(1)
		return
	}
	s.lastRecv.Store(now.UnixNano())
	if s.ended.Load() {
		return
	}
	p := s.params.Load()
	h := &s.pkt.Header
	switch {
	case h.PayloadType == p.pt:
		if !s.inOrder(h) {
			s.stats.dups.Add(1)
			return
		}
		if s.te != nil {
			s.keys = s.te.TickRTP(s.keys[:0], h.Timestamp)
			s.report(s.keys)
		}
		pl := s.pkt.Payload
		if p.alaw {
			s.rx.Audio(media.DecodeAlaw(s.pcm[:], pl))
		} else {
			s.rx.Audio(media.DecodeUlaw(s.pcm[:], pl))
		}
		s.stats.framesIn.Add(1)
	case p.tePT >= 0 && int(h.PayloadType) == p.tePT:
		if s.te == nil || !s.te.Accepts(h.PayloadType) {
			s.te, _ = dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: h.PayloadType})
		}
		s.heard.Store(true)
		keys, err := s.te.Handle(s.keys[:0], dtmf.Header{PayloadType: h.PayloadType, SSRC: h.SSRC,
			SequenceNumber: h.SequenceNumber, Timestamp: h.Timestamp, Marker: h.Marker}, s.pkt.Payload, now)
		if err != nil {
			s.stats.bad.Add(1)
			return
		}
		s.keys = keys
		s.report(keys)
	default:
		s.stats.other.Add(1) // comfort noise and codecs we did not negotiate
	}
}

// report hands completed key presses to the receiver, once each.
func (s *stream) report(keys []dtmf.KeyPress) {
	for _, k := range keys {
		s.stats.digits.Add(1)
		s.rx.Digit(k.Digit, media.SourceRFC4733)
	}
}

// inOrder drops duplicate and late audio packets (no jitter buffer: late audio is useless to
// a detector and to nobody else here).
func (s *stream) inOrder(h *rtp.Header) bool {
	if !s.haveSeq || h.SSRC != s.ssrcIn {
		s.haveSeq, s.ssrcIn, s.seqIn = true, h.SSRC, h.SequenceNumber
		return true
	}
	if d := int16(h.SequenceNumber - s.seqIn); d <= 0 && d > -1000 {
		return false
	}
	s.seqIn = h.SequenceNumber
	return true
}

// acceptFrom implements symmetric RTP (RFC 4961): the first source is latched and used as the
// destination; another source is taken only after the latched one has gone quiet.
func (s *stream) acceptFrom(from netip.AddrPort, now time.Time) bool {
	l := s.latched.Load()
	switch {
	case l != nil && *l == from:
	case l == nil || now.Sub(s.latchHeard) > relatchAfter:
		a := from
		s.latched.Store(&a)
	default:
		return false
	}
	s.latchHeard = now
	return true
}

// destination is where RTP goes: the latched source, else the SDP address.
func (s *stream) destination(p *streamParams) netip.AddrPort {
	if l := s.latched.Load(); l != nil {
		return *l
	}
	return p.remote
}

// writeLoop is the send clock: frame k is due at anchor + k×20 ms, and the timer is reset to
// each deadline rather than slept for, so scheduling delays do not accumulate into drift.
func (s *stream) writeLoop() {
	defer close(s.writerDone)
	anchor := time.Now()
	var n int64
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-timer.C:
		}
		s.sendFrame()
		n++
		due := anchor.Add(time.Duration(n) * media.FrameDuration)
		if late := time.Since(due); late > maxLate {
			s.stats.late.Add(1)
			media.CountLateFrame()
			s.hdr.Timestamp += uint32(late/media.FrameDuration) * media.FrameSamples
			anchor, n = time.Now(), 0
			due = anchor
		}
		timer.Reset(time.Until(due))
	}
}

// sendFrame sends the next 20 ms: the playing clip's next frame, or silence. Marks are
// reported as their clip's last frame goes out. It allocates nothing.
func (s *stream) sendFrame() {
	p := s.params.Load()
	payload := s.out[rtpHeader:]
	start := s.play.next(payload, p.alaw)
	if dst := s.destination(p); dst.IsValid() && p.dir.receives() { // else on hold, or nowhere to send yet
		s.hdr.PayloadType = p.pt
		s.hdr.Marker = start || !s.sent
		if _, err := s.hdr.MarshalTo(s.out[:rtpHeader]); err == nil {
			if _, err := s.conn.WriteToUDPAddrPort(s.out[:], dst); err == nil {
				s.sent = true
				s.hdr.SequenceNumber++
				s.stats.framesOut.Add(1)
			} else {
				s.stats.drops.Add(1)
				media.CountDroppedFrame()
			}
		}
	}
	s.hdr.Timestamp += media.FrameSamples // the clock runs on while nothing is sent
}

// playout is the leg's outbound queue and its emulated marks (SIP has no playback
// acknowledgements: a mark is reported when its clip's last frame is sent).
type playout struct {
	rx    *media.Receiver
	stats *streamCounters

	mu     sync.Mutex
	q      []queued
	pos    int // next frame of q[0]
	closed bool
}

type queued struct {
	clip *media.Clip
	mark string
}

// push queues a clip; it fails with media.ErrBackpressure when the queue is full.
func (p *playout) push(clip *media.Clip, mark string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return media.ErrLegClosed
	}
	if len(p.q) >= maxQueue {
		p.stats.drops.Add(1)
		media.CountRefusedPrompt()
		return media.ErrBackpressure
	}
	if p.q == nil {
		p.q = make([]queued, 0, maxQueue)
	}
	p.q = append(p.q, queued{clip, mark})
	return nil
}

// clear drops the queue, reporting each mark as not played, in order.
func (p *playout) clear() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return media.ErrLegClosed
	}
	for _, q := range p.q {
		p.rx.Mark(q.mark, false)
		p.stats.clears.Add(1)
	}
	clear(p.q)
	p.q, p.pos = p.q[:0], 0
	return nil
}

// shut empties the queue without reporting (the leg has ended) and refuses further plays.
func (p *playout) shut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	clear(p.q)
	p.q, p.pos = p.q[:0], 0
}

// next fills dst with the next frame in the codec and reports whether a clip starts with it.
func (p *playout) next(dst []byte, alaw bool) (start bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) == 0 {
		fill := media.UlawSilence
		if alaw {
			fill = media.AlawSilence
		}
		for i := range dst {
			dst[i] = fill
		}
		return false
	}
	c := p.q[0].clip
	src := c.Ulaw()
	if alaw {
		src = c.Alaw()
	}
	off := p.pos * media.FrameSamples
	copy(dst, src[off:off+media.FrameSamples])
	start = p.pos == 0
	p.pos++
	if p.pos >= c.Frames() {
		p.rx.Mark(p.q[0].mark, true)
		p.stats.marks.Add(1)
		copy(p.q, p.q[1:])
		p.q[len(p.q)-1] = queued{}
		p.q, p.pos = p.q[:len(p.q)-1], 0
	}
	return start
}

// portPool hands out RTP sockets from a port range, even ports first (RFC 3550 §11), moving
// through the range so a port just freed is not reused at once (late packets of the old call).
type portPool struct {
	bind     netip.Addr
	min, max int

	mu   sync.Mutex
	next int
}

func (p *portPool) open() (*net.UDPConn, error) {
	if p.min == 0 {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.bind, 0)))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	span := p.max - p.min + 1
	if p.next < p.min || p.next > p.max {
		p.next = p.min + p.min%2
	}
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < span; i++ {
			port := p.min + (p.next-p.min+i)%span
			if (port%2 == 0) == (pass == 1) && span > 1 {
				continue // even ports in the first pass, odd ones only when those are gone
			}
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.bind, uint16(port))))
			if err == nil {
				p.next = port + 2
				return c, nil
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("sip: rtp socket: %w", err)
			}
		}
	}
	return nil, ErrNoPorts
}
