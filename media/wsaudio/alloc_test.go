package wsaudio

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/callproof/callproof/media"
)

// nopDetector stands in for the in-band detector: it reads every sample and reports nothing.
type nopDetector struct{ sum int }

func (d *nopDetector) Process(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		d.sum += int(s)
	}
	return dst
}

// startedLeg is a leg with no connection that has accepted its metadata, for driving the
// inbound path directly.
func startedLeg(tb testing.TB, rate int, exact bool) *Leg {
	tb.Helper()
	cfg := &Config{
		Transport: "test", ReadLimit: 1 << 20, ExactFrames: exact, Protocol: testProto{}, Output: testOutput(false, 0, 1),
		NewDetector: func(int) media.ToneDetector { return &nopDetector{} },
	}
	l := newLeg(nil, cfg, zap.NewNop(), nil)
	if err := l.handle(websocket.TextMessage, fmt.Appendf(nil, `{"rate":%d,"id":"A"}`, rate)); err != nil {
		tb.Fatal(err)
	}
	<-l.Events() // start
	return l
}

// TestInboundZeroAllocs: reading a message into the leg's buffer and handling a 20 ms frame
// (reframing, resampling, the receiver and its detector) allocate nothing per frame.
func TestInboundZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		rate  int
		exact bool
		size  int
	}{{8000, true, 320}, {16000, true, 640}, {8000, false, 500}, {16000, false, 1000}} {
		t.Run(fmt.Sprintf("%d/%d", tc.rate, tc.size), func(t *testing.T) {
			l := startedLeg(t, tc.rate, tc.exact)
			msg := AppendL16(nil, noise(tc.size/2, 1))
			r := bytes.NewReader(msg)
			n := testing.AllocsPerRun(200, func() {
				r.Reset(msg)
				data, err := l.readMessage(r)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.handle(websocket.BinaryMessage, data); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Errorf("%.1f allocations per inbound message", n)
			}
		})
	}
}

// BenchmarkInbound measures the inbound path for one 20 ms frame: read from the message
// reader, check, decode, resample (16 kHz), receiver with detector.
func BenchmarkInbound(b *testing.B) {
	for _, rate := range []int{8000, 16000} {
		b.Run(fmt.Sprint(rate), func(b *testing.B) {
			l := startedLeg(b, rate, true)
			msg := AppendL16(nil, noise(rate/50, 1))
			r := bytes.NewReader(msg)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				r.Reset(msg)
				data, _ := l.readMessage(r)
				if err := l.handle(websocket.BinaryMessage, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
