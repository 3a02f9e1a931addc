package sip

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/media/dtmf"
)

// benchStream is a stream whose receiver runs the real in-band detector, as a SIP leg's does,
// and whose events are drained so the receiver never drops.
func benchStream(b *testing.B, p *streamParams) (*stream, netip.AddrPort) {
	b.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	heard := new(atomic.Bool)
	rx := media.NewReceiver(media.ReceiverConfig{Buffer: 512,
		Detector: gatedDetector{d: dtmf.New(dtmf.Config{}), heard: heard}})
	done := make(chan struct{})
	go func() {
		for range rx.Events() {
		}
		close(done)
	}()
	s := newStream(conn, rx, heard, p, 0, func() {})
	b.Cleanup(func() { s.close(); rx.Hangup(nil); <-done })
	return s, netip.MustParseAddrPort("127.0.0.1:40000")
}

// BenchmarkRTPIn is one inbound RTP packet: header parse, source and order checks, G.711
// decode and the in-band detector (speech-like audio), or an RFC 4733 telephone-event.
func BenchmarkRTPIn(b *testing.B) {
	b.Run("audio", func(b *testing.B) {
		s, from := benchStream(b, &streamParams{pt: ptPCMU, tePT: 101, dir: dirSendRecv})
		frame := make([]byte, 160)
		for i := range frame {
			frame[i] = media.PCMToUlaw(int16(3000 * ((i*7)%23 - 11)))
		}
		pkt := rtpPacket(0, 1, 0, false, frame)
		now := time.Now()
		b.SetBytes(int64(len(pkt)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			binary.BigEndian.PutUint16(pkt[2:], uint16(i+2))
			binary.BigEndian.PutUint32(pkt[4:], uint32(i+1)*160)
			s.handle(pkt, from, now)
		}
	})
	b.Run("telephone-event", func(b *testing.B) {
		s, from := benchStream(b, &streamParams{pt: ptPCMU, tePT: 101, dir: dirSendRecv})
		pkt := rtpPacket(101, 1, 5000, false, tePayload(1, false, 160))
		now := time.Now()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			binary.BigEndian.PutUint16(pkt[2:], uint16(i+2))
			binary.BigEndian.PutUint16(pkt[14:], uint16(160+i%60000)) // the event's duration grows
			s.handle(pkt, from, now)
		}
	})
}

// BenchmarkRTPOut is one outbound 20 ms frame: the next prompt frame encoded to G.711, the
// RTP header, and the UDP write to a loopback socket.
func BenchmarkRTPOut(b *testing.B) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	s, _ := benchStream(b, &streamParams{pt: ptPCMU, tePT: 101, dir: dirSendRecv,
		remote: sink.LocalAddr().(*net.UDPAddr).AddrPort()})
	clip := toneClip(b, "c", 10*time.Second, 440) // 500 frames
	b.SetBytes(rtpHeader + media.FrameSamples)
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if i%500 == 0 {
			if err := s.play.push(clip, "c"); err != nil {
				b.Fatal(err)
			}
		}
		s.sendFrame()
		n++
	}
	if got := s.stats.framesOut.Load(); got != uint64(n) {
		b.Fatalf("%d frames sent of %d", got, n)
	}
}
