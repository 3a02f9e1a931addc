package sip

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
)

// fakeDetector records what the in-band detector was fed.
type fakeDetector struct {
	mu      sync.Mutex
	samples int
	first   int16
}

func (f *fakeDetector) Process(dst []byte, pcm []int16) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.samples == 0 && len(pcm) > 0 {
		f.first = pcm[0]
	}
	f.samples += len(pcm)
	return dst
}

func (f *fakeDetector) fed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.samples
}

type testStream struct {
	*stream
	rx   *media.Receiver
	det  *fakeDetector
	from netip.AddrPort
}

func newTestStream(t testing.TB, p *streamParams) *testStream {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStream{det: &fakeDetector{}, from: netip.MustParseAddrPort("127.0.0.1:40000")}
	heard := new(atomic.Bool)
	ts.rx = media.NewReceiver(media.ReceiverConfig{Buffer: 512, Detector: gatedDetector{d: ts.det, heard: heard}})
	ts.stream = newStream(conn, ts.rx, heard, p, 0, func() {})
	t.Cleanup(ts.close)
	return ts
}

// digits drains the receiver and returns the digits reported so far.
func (ts *testStream) digits() string {
	var out []byte
	for {
		select {
		case ev := <-ts.rx.Events():
			if ev.Type == media.EventDTMF {
				if ev.Source != media.SourceRFC4733 {
					panic("digit from another source")
				}
				out = append(out, ev.Digit)
			}
		default:
			return string(out)
		}
	}
}

func rtpPacket(pt uint8, seq uint16, ts uint32, marker bool, payload []byte) []byte {
	b := make([]byte, 12+len(payload))
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], 0x0e05384e)
	copy(b[12:], payload)
	return b
}

func tePayload(code byte, end bool, dur uint16) []byte {
	p := []byte{code, 10, byte(dur >> 8), byte(dur)}
	if end {
		p[1] |= 0x80
	}
	return p
}

// keyPress returns the packets SIPp's dtmf_2833_*.pcap carry: a first packet with duration 0
// and the marker bit, six updates of 320, and the end packet three times.
func keyPress(pt uint8, seq uint16, ts uint32, code byte) [][]byte {
	var out [][]byte
	for i := 0; i < 7; i++ {
		out = append(out, rtpPacket(pt, seq, ts, i == 0, tePayload(code, false, uint16(i*320))))
		seq++
	}
	for i := 0; i < 3; i++ {
		out = append(out, rtpPacket(pt, seq, ts, false, tePayload(code, true, 2240)))
	}
	return out
}

func TestRFC4733Receive(t *testing.T) {
	tests := []struct {
		name    string
		te      int
		packets func() [][]byte
		tick    bool // advance the clock past the event timeout at the end
		want    string
	}{
		{name: "sipp captures 1 2 5 #", te: 101, want: "125#", packets: func() [][]byte {
			var all [][]byte
			for i, d := range []struct {
				ts   uint32
				code byte
			}{{13280, 1}, {23200, 2}, {43200, 5}, {92640, 11}} {
				all = append(all, keyPress(101, uint16(7984+i*20), d.ts, d.code)...)
			}
			return all
		}},
		{name: "payload type 96", te: 96, want: "7", packets: func() [][]byte { return keyPress(96, 1, 1000, 7) }},
		{name: "same digit twice", te: 101, want: "11", packets: func() [][]byte {
			return append(keyPress(101, 1, 1000, 1), keyPress(101, 20, 5000, 1)...)
		}},
		{name: "first packets lost", te: 101, want: "3", packets: func() [][]byte { return keyPress(101, 1, 1000, 3)[3:] }},
		{name: "only end packets", te: 101, want: "4", packets: func() [][]byte { return keyPress(101, 1, 1000, 4)[7:] }},
		{name: "end packets lost: closed by the timeout", te: 101, tick: true, want: "9",
			packets: func() [][]byte { return keyPress(101, 1, 1000, 9)[:7] }},
		{name: "end packets lost: closed by the next event", te: 101, want: "98", packets: func() [][]byte {
			return append(keyPress(101, 1, 1000, 9)[:7], keyPress(101, 20, 9000, 8)...)
		}},
		{name: "late straggler of the previous event", te: 101, want: "12", packets: func() [][]byte {
			a, b := keyPress(101, 1, 1000, 1), keyPress(101, 20, 9000, 2)
			return append(append(a, b[:5]...), append([][]byte{a[9]}, b[5:]...)...)
		}},
		{name: "duplicated packets", te: 101, want: "6", packets: func() [][]byte {
			var all [][]byte
			for _, p := range keyPress(101, 1, 1000, 6) {
				all = append(all, p, p)
			}
			return all
		}},
		{name: "flash and unknown events ignored", te: 101, want: "", packets: func() [][]byte {
			return append(keyPress(101, 1, 1000, 16), keyPress(101, 20, 9000, 70)...)
		}},
		{name: "telephone-event not negotiated", te: -1, want: "", packets: func() [][]byte { return keyPress(101, 1, 1000, 1) }},
		{name: "short payload", te: 101, want: "", packets: func() [][]byte { return [][]byte{rtpPacket(101, 1, 1000, true, []byte{1, 2})} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStream(t, &streamParams{pt: ptPCMU, tePT: tt.te, dir: dirSendRecv})
			now := time.Now()
			for _, p := range tt.packets() {
				now = now.Add(20 * time.Millisecond)
				ts.handle(p, ts.from, now)
			}
			if tt.tick {
				ts.tick(now.Add(300 * time.Millisecond))
			}
			if got := ts.digits(); got != tt.want {
				t.Errorf("digits %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRTPAudioAndFilters(t *testing.T) {
	ts := newTestStream(t, &streamParams{pt: ptPCMA, alaw: true, tePT: 101, dir: dirSendRecv})
	frame := make([]byte, 160)
	for i := range frame {
		frame[i] = media.PCMToAlaw(int16(i * 100))
	}
	now := time.Now()
	ts.handle(rtpPacket(8, 1, 160, true, frame), ts.from, now)
	if ts.det.fed() != 160 || ts.det.first != media.AlawToPCM(frame[0]) {
		t.Fatalf("detector fed %d samples, first %d", ts.det.fed(), ts.det.first)
	}
	ts.handle(rtpPacket(8, 1, 160, false, frame), ts.from, now)                                    // duplicate
	ts.handle(rtpPacket(0, 2, 320, false, frame), ts.from, now)                                    // PCMU: not negotiated
	ts.handle(rtpPacket(8, 3, 480, false, frame), netip.MustParseAddrPort("127.0.0.1:40002"), now) // another source
	rtcp := []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	ts.handle(rtcp, ts.from, now)
	ts.handle([]byte("garbage that is no RTP"), ts.from, now)
	ts.handle([]byte{0x80, 8}, ts.from, now)
	st := &ts.stats
	if st.framesIn.Load() != 1 || st.dups.Load() != 1 || st.other.Load() != 1 || st.foreign.Load() != 1 ||
		st.rtcp.Load() != 1 || st.bad.Load() != 2 {
		t.Errorf("in %d dups %d other %d foreign %d rtcp %d bad %d", st.framesIn.Load(), st.dups.Load(), st.other.Load(),
			st.foreign.Load(), st.rtcp.Load(), st.bad.Load())
	}
	// Once an RFC 4733 event has arrived, the in-band detector is no longer fed.
	for _, p := range keyPress(101, 10, 2000, 5) {
		ts.handle(p, ts.from, now)
	}
	before := ts.det.fed()
	ts.handle(rtpPacket(8, 30, 4000, false, frame), ts.from, now)
	if ts.det.fed() != before {
		t.Error("in-band detector still fed after an RFC 4733 event")
	}
	// The latched source may move once it has been quiet for a second.
	ts.handle(rtpPacket(8, 31, 4160, false, frame), netip.MustParseAddrPort("127.0.0.1:40002"), now.Add(2*time.Second))
	if l := ts.latched.Load(); l == nil || l.Port() != 40002 {
		t.Errorf("latched %v, want the new source", l)
	}
}

func TestRTPAllocations(t *testing.T) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ts := newTestStream(t, &streamParams{pt: ptPCMU, tePT: 101, dir: dirSendRecv,
		remote: sink.LocalAddr().(*net.UDPAddr).AddrPort()})
	frame := make([]byte, 160)
	audio := rtpPacket(0, 1, 0, false, frame)
	seq := uint16(1)
	now := time.Now()
	if a := testing.AllocsPerRun(500, func() {
		seq++
		binary.BigEndian.PutUint16(audio[2:], seq)
		ts.handle(audio, ts.from, now)
	}); a != 0 {
		t.Errorf("inbound audio: %.1f allocations per packet", a)
	}
	ev := rtpPacket(101, 1, 5000, false, tePayload(1, false, 320))
	if a := testing.AllocsPerRun(500, func() { ts.handle(ev, ts.from, now) }); a != 0 {
		t.Errorf("inbound telephone-event: %.1f allocations per packet", a)
	}
	clip := toneClip(t, "c", 2*time.Second, 440)
	if err := ts.play.push(clip, "c"); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(50, ts.sendFrame); a != 0 {
		t.Errorf("outbound frame: %.1f allocations per frame", a)
	}
	if ts.stats.framesOut.Load() == 0 {
		t.Error("nothing sent")
	}
}

func TestPlayoutMarks(t *testing.T) {
	rx := media.NewReceiver(media.ReceiverConfig{Buffer: 256})
	var stats streamCounters
	p := playout{rx: rx, stats: &stats}
	a := toneClip(t, "a", 40*time.Millisecond, 440) // 2 frames
	b := toneClip(t, "b", 20*time.Millisecond, 440)
	c := toneClip(t, "c", 60*time.Millisecond, 440)
	for _, q := range []struct {
		clip *media.Clip
		mark string
	}{{a, "a"}, {b, "b"}, {c, "c"}} {
		if err := p.push(q.clip, q.mark); err != nil {
			t.Fatal(err)
		}
	}
	frame := make([]byte, 160)
	var starts []bool
	for i := 0; i < 4; i++ { // a, a, b, c(1 of 3)
		starts = append(starts, p.next(frame, false))
	}
	if want := []bool{true, false, true, true}; !equalBools(starts, want) {
		t.Errorf("clip starts %v, want %v", starts, want)
	}
	if frame[0] != c.Ulaw()[0] {
		t.Error("frame is not c's first")
	}
	if err := p.clear(); err != nil {
		t.Fatal(err)
	}
	p.next(frame, true)
	if frame[0] != media.AlawSilence {
		t.Errorf("idle A-law frame %#x, want silence", frame[0])
	}
	var marks []string
	for len(rx.Events()) > 0 {
		ev := <-rx.Events()
		marks = append(marks, ev.Mark+map[bool]string{true: "+", false: "-"}[ev.Played])
	}
	if want := []string{"a+", "b+", "c-"}; !equalStrings(marks, want) {
		t.Errorf("marks %v, want %v", marks, want)
	}
	for i := 0; i < maxQueue; i++ {
		if err := p.push(b, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.push(b, "x"); err != media.ErrBackpressure {
		t.Errorf("push on a full queue: %v", err)
	}
	p.shut()
	if err := p.push(b, "x"); err != media.ErrLegClosed {
		t.Errorf("push after shut: %v", err)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSymmetricRTPAndHold runs the send clock: RTP goes to the SDP address until the caller's
// RTP arrives, then to where it comes from; nothing is sent while the caller holds.
func TestSymmetricRTPAndHold(t *testing.T) {
	sdpSock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sdpSock.Close()
	caller, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rx := media.NewReceiver(media.ReceiverConfig{Buffer: 512})
	p := &streamParams{pt: ptPCMU, tePT: 101, dir: dirSendRecv, remote: sdpSock.LocalAddr().(*net.UDPAddr).AddrPort()}
	s := newStream(conn, rx, new(atomic.Bool), p, 0, func() {})
	s.start()
	defer s.close()

	readOne := func(c *net.UDPConn, wait time.Duration) []byte {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		b := make([]byte, 1500)
		n, err := c.Read(b)
		if err != nil {
			return nil
		}
		return b[:n]
	}
	first := readOne(sdpSock, time.Second)
	if len(first) != 172 || first[1] != 0x80|ptPCMU {
		t.Fatalf("first packet at the SDP address: % x", first[:min(len(first), 12)])
	}
	// The caller's RTP comes from another port: we follow it.
	if _, err := caller.WriteToUDP(rtpPacket(0, 1, 160, true, make([]byte, 160)), conn.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	if got := readOne(caller, time.Second); len(got) != 172 {
		t.Fatalf("no RTP at the caller's source address after it sent")
	}
	// Hold (the caller's a=sendonly): nothing more is sent.
	s.renegotiated(&streamParams{pt: ptPCMU, tePT: 101, dir: dirSendOnly, remote: p.remote})
	time.Sleep(60 * time.Millisecond) // a frame in flight may still arrive
	for readOne(sdpSock, 10*time.Millisecond) != nil {
	}
	for readOne(caller, 10*time.Millisecond) != nil {
	}
	if got := readOne(sdpSock, 150*time.Millisecond); got != nil {
		t.Error("RTP sent while on hold")
	}
	// Resume: to the SDP address again until the caller's RTP arrives.
	s.renegotiated(&streamParams{pt: ptPCMU, tePT: 101, dir: dirSendRecv, remote: p.remote})
	if got := readOne(sdpSock, time.Second); got == nil {
		t.Error("no RTP after resume")
	}
}
