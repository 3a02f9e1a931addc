package dtmf

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchAudio is digits over noise: the detector's work per frame hardly depends on content,
// but the candidate path (leakage solve, probes) runs only where tones are.
func benchAudio(rate int) []int16 {
	pcm := Tones("0123456789*#ABCD", GenOptions{SampleRate: rate, On: 80 * time.Millisecond, Off: 80 * time.Millisecond})
	return mix(pcm, whiteNoise(len(pcm), 300, 1), 1)
}

func benchDetector(b *testing.B, rate int) { benchDetectorOn(b, rate, benchAudio(rate)) }

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

// speechAudio is a prompt-like signal: syllables of voiced speech (a harmonic series on a
// gliding pitch, shaped by three formant-like peaks, under a syllable envelope) at about
// −15 dBm0, separated by short and long pauses of faint noise. Real calls are mostly speech and
// silence, where nearly every analysis window fails the first tests.
func speechAudio(rate int) []int16 {
	rng := rand.New(rand.NewPCG(7, 0x5bee))
	n := 10 * rate // 10 s
	out := make([]float64, n)
	a := Amplitude(-15)
	formants := [3]struct{ hz, bw float64 }{{500, 120}, {1500, 200}, {2500, 300}}
	for pos := 0; pos < n; {
		syl := int((0.12 + 0.18*rng.Float64()) * float64(rate))
		f0 := 100 + 120*rng.Float64()
		glide := (rng.Float64() - 0.5) * 60
		for f := range formants { // vowel colour changes from syllable to syllable
			formants[f].hz *= 0.85 + 0.3*rng.Float64()
			formants[f].hz = math.Min(math.Max(formants[f].hz, 250+1000*float64(f)), 900+1200*float64(f))
		}
		var ph float64
		for i := 0; i < syl && pos+i < n; i++ {
			t := float64(i) / float64(syl)
			env := math.Sin(math.Pi * t)
			hz := f0 + glide*t
			ph += 2 * math.Pi * hz / float64(rate)
			var v float64
			for h := 1; float64(h)*hz < 3400; h++ {
				fh := float64(h) * hz
				var g float64
				for _, fm := range formants {
					g += 1 / (1 + sq((fh-fm.hz)/fm.bw))
				}
				v += g / float64(h) * math.Sin(float64(h)*ph)
			}
			out[pos+i] = a * env * v
		}
		pos += syl
		gap := 0.03 + 0.1*rng.Float64()
		if rng.IntN(4) == 0 {
			gap = 0.3 + 0.5*rng.Float64() // a pause between phrases
		}
		pos += int(gap * float64(rate))
	}
	return mix(toPCM(out), whiteNoise(n, 10, 2), 1)
}

func benchDetectorOn(b *testing.B, rate int, pcm []int16) {
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

// BenchmarkDetectorSpeech8k is one 20 ms frame of prompt-like speech and silence per op.
func BenchmarkDetectorSpeech8k(b *testing.B) { benchDetectorOn(b, 8000, speechAudio(8000)) }
