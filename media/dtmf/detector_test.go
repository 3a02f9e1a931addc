package dtmf

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/callproof/callproof/media"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"16k", Config{SampleRate: 16000}, true},
		{"explicit", Config{SampleRate: 8000, MinLevel: -36, NormalTwist: 8, ReverseTwist: 4, FreqTolerance: 0.02, MinDuration: 40 * time.Millisecond, MaxGap: 20 * time.Millisecond}, true},
		{"44.1k", Config{SampleRate: 44100}, false},
		{"positive level", Config{MinLevel: 3}, false},
		{"NaN level", Config{MinLevel: math.NaN()}, false},
		{"negative twist", Config{NormalTwist: -1}, false},
		{"huge reverse twist", Config{ReverseTwist: 30}, false},
		{"tolerance beyond 4.5 %", Config{FreqTolerance: 0.05}, false},
		{"negative duration", Config{MinDuration: -time.Millisecond}, false},
		{"huge gap", Config{MaxGap: time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Fatal("New with an invalid config did not panic")
		}
	}()
	New(Config{SampleRate: 11025})
}

func TestDefaults(t *testing.T) {
	c := New(Config{}).Config()
	want := Config{SampleRate: 8000, MinLevel: DefaultMinLevel, NormalTwist: DefaultNormalTwist, ReverseTwist: DefaultReverseTwist,
		FreqTolerance: DefaultFreqTolerance, MinDuration: DefaultMinDuration, MaxGap: DefaultMaxGap}
	if c != want {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
}

// Every digit at both rates, fed in blocks of every awkward size, gives the same detections
// with accurate times.
func TestDetectorStreaming(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		pcm := Tones(allDigits, GenOptions{SampleRate: rate, On: 70 * time.Millisecond, Off: 60 * time.Millisecond, Lead: 37 * time.Millisecond})
		var ref []Detection
		for _, block := range []int{1, 7, 101, 160, 320, 333, len(pcm)} {
			d := New(Config{SampleRate: rate})
			var got []Detection
			var digits []byte
			for i := 0; i < len(pcm); i += block {
				chunk := pcm[i:min(i+block, len(pcm))]
				got = d.ProcessEvents(got, chunk)
			}
			got = d.Flush(got)
			d.Reset()
			for i := 0; i < len(pcm); i += block {
				digits = d.Process(digits, pcm[i:min(i+block, len(pcm))])
			}
			if string(digits) != allDigits || digitsOf(got) != allDigits {
				t.Fatalf("rate %d block %d: Process %q, ProcessEvents %q", rate, block, digits, digitsOf(got))
			}
			if ref == nil {
				ref = got
				for i, g := range got {
					wantStart := 37*time.Millisecond + time.Duration(i)*130*time.Millisecond
					if d := g.Start - wantStart; d < -3*time.Millisecond || d > 3*time.Millisecond {
						t.Errorf("rate %d digit %c starts at %v, want %v ± 3 ms", rate, g.Digit, g.Start, wantStart)
					}
					if d := g.Duration - 70*time.Millisecond; d < -5*time.Millisecond || d > 5*time.Millisecond {
						t.Errorf("rate %d digit %c lasts %v, want 70 ms ± 5 ms", rate, g.Digit, g.Duration)
					}
					lo, hi, _ := Frequencies(g.Digit)
					if math.Abs(float64(g.LowFreq)-lo) > 5 || math.Abs(float64(g.HighFreq)-hi) > 5 ||
						math.Abs(float64(g.LowLevel)+10) > 1 || math.Abs(float64(g.HighLevel)+10) > 1 {
						t.Errorf("rate %d digit %c measured %v", rate, g.Digit, g)
					}
				}
				continue
			}
			for i := range got {
				if got[i] != ref[i] {
					t.Fatalf("rate %d block %d: detection %d is %v, with one block %v", rate, block, i, got[i], ref[i])
				}
			}
		}
	}
}

// Process reports a digit soon after its tone starts, before the tone ends.
func TestDetectorLatency(t *testing.T) {
	pcm := Tones("5", GenOptions{On: 200 * time.Millisecond, Lead: 100 * time.Millisecond})
	d := New(Config{})
	for i := 0; i+media.FrameSamples <= len(pcm); i += media.FrameSamples {
		if got := d.Process(nil, pcm[i:i+media.FrameSamples]); len(got) > 0 {
			at := time.Duration(i+media.FrameSamples) * time.Second / 8000
			if lat := at - 100*time.Millisecond; got[0] != '5' || lat > 60*time.Millisecond {
				t.Fatalf("reported %q after %v", got, lat)
			}
			return
		}
	}
	t.Fatal("no digit")
}

func TestDetectorFlushAndReset(t *testing.T) {
	d := New(Config{})
	pcm := Tones("9", GenOptions{On: 500 * time.Millisecond, Off: -1, Lead: 20 * time.Millisecond})
	if got := d.ProcessEvents(nil, pcm); len(got) != 0 {
		t.Fatalf("digit still sounding reported early: %v", got)
	}
	got := d.Flush(nil)
	if len(got) != 1 || got[0].Digit != '9' || got[0].Duration < 490*time.Millisecond {
		t.Fatalf("Flush = %v", got)
	}
	if more := d.Flush(nil); len(more) != 0 {
		t.Fatalf("second Flush = %v", more)
	}
	d.Reset()
	got = d.Flush(d.ProcessEvents(nil, pcm))
	if len(got) != 1 || got[0].Start < 18*time.Millisecond || got[0].Start > 22*time.Millisecond {
		t.Fatalf("after Reset: %v", got)
	}
}

func TestDetectorZeroAlloc(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		pcm := Tones("123", GenOptions{SampleRate: rate, On: 60 * time.Millisecond, Off: 60 * time.Millisecond})
		frame := rate / 50
		d := New(Config{SampleRate: rate})
		digits := make([]byte, 0, 8)
		events := make([]Detection, 0, 8)
		i := 0
		next := func() []int16 {
			if i+frame > len(pcm) {
				i = 0
			}
			f := pcm[i : i+frame]
			i += frame
			return f
		}
		if a := testing.AllocsPerRun(500, func() { digits = d.Process(digits[:0], next()) }); a != 0 {
			t.Errorf("rate %d: Process allocates %v per frame", rate, a)
		}
		if a := testing.AllocsPerRun(500, func() { events = d.ProcessEvents(events[:0], next()) }); a != 0 {
			t.Errorf("rate %d: ProcessEvents allocates %v per frame", rate, a)
		}
	}
}

// The detector plugs into media.Receiver as its ToneDetector.
func TestDetectorInReceiver(t *testing.T) {
	rx := media.NewReceiver(media.ReceiverConfig{Mode: media.DTMFInband, Detector: New(Config{})})
	pcm := Tones("42#", GenOptions{})
	for i := 0; i+media.FrameSamples <= len(pcm); i += media.FrameSamples {
		rx.Audio(pcm[i : i+media.FrameSamples])
	}
	rx.Hangup(nil)
	var got []byte
	for ev := range rx.Events() {
		if ev.Type == media.EventDTMF {
			if ev.Source != media.SourceInband {
				t.Fatalf("source %v", ev.Source)
			}
			got = append(got, ev.Digit)
		}
	}
	if string(got) != "42#" {
		t.Fatalf("digits %q", got)
	}
}

// Silence, DC, full-scale square waves and clipping noise produce nothing and break nothing.
func TestDetectorHostileInput(t *testing.T) {
	n := 8000
	inputs := map[string][]int16{
		"silence": make([]int16, n),
		"dc": func() []int16 {
			p := make([]int16, n)
			for i := range p {
				p[i] = 32767
			}
			return p
		}(),
		"square": func() []int16 {
			p := make([]int16, n)
			for i := range p {
				p[i] = int16(32767 - 65535*((i/4)%2))
			}
			return p
		}(),
		"noise": func() []int16 { return mix(make([]int16, n), whiteNoise(n, 30000, 1), 1) }(),
	}
	for name, pcm := range inputs {
		d := New(Config{})
		if got := d.Flush(d.ProcessEvents(nil, pcm)); len(got) != 0 {
			t.Errorf("%s: %v", name, got)
		}
	}
}

// atan2 is math.Atan2 to the bit.
func TestAtan2(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 1000000; i++ {
		y := (rng.Float64()*2 - 1) * math.Pow(10, rng.Float64()*30-10)
		x := (rng.Float64()*2 - 1) * math.Pow(10, rng.Float64()*30-10)
		if i%7 == 0 {
			x = y * (rng.Float64()*6 - 3) // angles near the range boundaries of atan
		}
		if a, b := atan2(y, x), math.Atan2(y, x); math.Float64bits(a) != math.Float64bits(b) {
			t.Fatalf("atan2(%v, %v) = %v, want %v", y, x, a, b)
		}
	}
	negZero := math.Copysign(0, -1)
	for _, c := range [][2]float64{{0, 0}, {0, -1}, {negZero, -1}, {negZero, negZero}, {1, 0}, {-1, negZero},
		{math.Inf(1), 1}, {1, math.Inf(-1)}, {math.NaN(), 1}, {1e301, 1}, {1, 1e-301}} {
		if a, b := atan2(c[0], c[1]), math.Atan2(c[0], c[1]); math.Float64bits(a) != math.Float64bits(b) {
			t.Fatalf("atan2(%v, %v) = %v, want %v", c[0], c[1], a, b)
		}
	}
}

// roundNonNeg is math.Round for arguments from 0 to 2⁵², halves included.
func TestRoundNonNeg(t *testing.T) {
	check := func(x float64) {
		if a, b := roundNonNeg(x), int64(math.Round(x)); a != b {
			t.Fatalf("roundNonNeg(%v) = %d, want %d", x, a, b)
		}
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for i := 0; i < 1000000; i++ {
		check(rng.Float64() * 300)
	}
	for k := 0; k < 300; k++ {
		for _, dir := range []float64{0, 1e9} {
			x := float64(k) + 0.5
			for j := 0; j < 20; j++ {
				check(x)
				x = math.Nextafter(x, dir)
			}
		}
	}
	for _, x := range []float64{0, 0.49999999999999994, 0.5, 1 << 51, 1<<52 - 1, 4503599627370495.5} {
		check(x)
	}
}
