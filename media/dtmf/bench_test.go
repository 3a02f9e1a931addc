package dtmf

import (
	"testing"
	"time"
)

// benchAudio is digits over noise: the detector's work per frame hardly depends on content,
// but the candidate path (leakage solve, probes) runs only where tones are.
func benchAudio(rate int) []int16 {
	pcm := Tones("0123456789*#ABCD", GenOptions{SampleRate: rate, On: 80 * time.Millisecond, Off: 80 * time.Millisecond})
	return mix(pcm, whiteNoise(len(pcm), 300, 1), 1)
}

func benchDetector(b *testing.B, rate int) {
	pcm := benchAudio(rate)
	frame := rate / 50 // 20 ms
	d := New(Config{SampleRate: rate})
	dst := make([]byte, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		off := (i * frame) % (len(pcm) - frame)
		dst = d.Process(dst[:0], pcm[off:off+frame])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(frame), "ns/sample")
}

// BenchmarkDetector8k is one 20 ms frame (160 samples) per op.
func BenchmarkDetector8k(b *testing.B) { benchDetector(b, 8000) }

// BenchmarkDetector16k is one 20 ms frame (320 samples) per op.
func BenchmarkDetector16k(b *testing.B) { benchDetector(b, 16000) }

// BenchmarkReceiver is one telephone-event packet per op.
func BenchmarkReceiver(b *testing.B) {
	r, _ := NewReceiver(ReceiverConfig{PayloadType: 101})
	var pkts []EventPacket
	for _, d := range []byte("0123456789") {
		pkts, _ = Sender{}.Packets(pkts, d, 100*time.Millisecond)
	}
	dst := make([]KeyPress, 0, 4)
	payload := make([]byte, 0, 4)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := pkts[i%len(pkts)]
		h := Header{PayloadType: 101, SSRC: 1, Timestamp: uint32(i/len(pkts)*80000+i%len(pkts)/8*8000) + p.Timestamp}
		dst, _ = r.Handle(dst[:0], h, p.Event.AppendTo(payload[:0]), now.Add(time.Duration(i)*20*time.Millisecond))
	}
}
