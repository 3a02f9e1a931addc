package dtmf

import (
	"math"
	"testing"
	"time"
)

// goertzelLevel measures the level in dBm0 of the component at hz in pcm (whole signal).
func goertzelLevel(pcm []int16, rate int, hz float64) float64 {
	w := 2 * math.Pi * hz / float64(rate)
	var re, im float64
	for n, s := range pcm {
		re += float64(s) * math.Cos(w*float64(n))
		im -= float64(s) * math.Sin(w*float64(n))
	}
	a := 2 * math.Hypot(re, im) / float64(len(pcm))
	return 20*math.Log10(a/32768) + fullScaleDBm0
}

func TestTones(t *testing.T) {
	tests := []struct {
		name        string
		digit       string
		opts        GenOptions
		lowDB, hiDB float64
		lowHz, hiHz float64
		samples     int
	}{
		{name: "defaults", digit: "1", opts: GenOptions{}, lowDB: -10, hiDB: -10, lowHz: 697, hiHz: 1209, samples: 1600},
		{name: "0 dBm0", digit: "#", opts: GenOptions{Level: negZero, Twist: 20, Off: -1}, lowDB: 0, hiDB: -20, lowHz: 941, hiHz: 1477, samples: 800},
		{name: "normal twist", digit: "5", opts: GenOptions{Level: -6, Twist: 4}, lowDB: -6, hiDB: -10, lowHz: 770, hiHz: 1336, samples: 1600},
		{name: "reverse twist", digit: "9", opts: GenOptions{Level: -6, Twist: -3}, lowDB: -9, hiDB: -6, lowHz: 852, hiHz: 1477, samples: 1600},
		{name: "offsets", digit: "d", opts: GenOptions{LowOffset: 0.015, HighOffset: -0.02, HighShiftHz: -2}, lowDB: -10, hiDB: -10, lowHz: 941 * 1.015, hiHz: 1633*0.98 - 2, samples: 1600},
		{name: "16 kHz, 40/40 ms", digit: "0", opts: GenOptions{SampleRate: 16000, On: 40 * time.Millisecond, Off: 40 * time.Millisecond}, lowDB: -10, hiDB: -10, lowHz: 941, hiHz: 1336, samples: 1280},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm := Tones(tt.digit, tt.opts)
			if len(pcm) != tt.samples {
				t.Fatalf("%d samples, want %d", len(pcm), tt.samples)
			}
			rate := tt.opts.SampleRate
			if rate == 0 {
				rate = 8000
			}
			on := tt.opts.On
			if on == 0 {
				on = DefaultGenOn
			}
			tone := pcm[:int(on.Seconds()*float64(rate))]
			if l := goertzelLevel(tone, rate, tt.lowHz); math.Abs(l-tt.lowDB) > 0.15 {
				t.Errorf("low tone at %.1f Hz is %.2f dBm0, want %.1f", tt.lowHz, l, tt.lowDB)
			}
			if l := goertzelLevel(tone, rate, tt.hiHz); math.Abs(l-tt.hiDB) > 0.15 {
				t.Errorf("high tone at %.1f Hz is %.2f dBm0, want %.1f", tt.hiHz, l, tt.hiDB)
			}
			for _, s := range pcm[len(tone):] {
				if s != 0 {
					t.Fatal("the pause is not silent")
				}
			}
		})
	}
}

func TestTonesSequence(t *testing.T) {
	pcm := Tones("1,2x", GenOptions{On: 50 * time.Millisecond, Off: 30 * time.Millisecond, Lead: 10 * time.Millisecond})
	if len(pcm) != 80+4*640 {
		t.Fatalf("%d samples", len(pcm))
	}
	d := New(Config{})
	if dets := d.Flush(d.ProcessEvents(nil, pcm)); digitsOf(dets) != "12" {
		t.Fatalf("detected %q, want the pauses skipped", digitsOf(dets))
	}
	if a := Amplitude(0); math.Abs(a-22827) > 1 {
		t.Fatalf("0 dBm0 peak amplitude %.1f, want 22827 (3.14 dB below full scale)", a)
	}
	if lo, hi, ok := Frequencies('*'); !ok || lo != 941 || hi != 1209 {
		t.Fatal("Frequencies('*')")
	}
	if _, _, ok := Frequencies('E'); ok {
		t.Fatal("Frequencies('E')")
	}
	clipped := Tones("1", GenOptions{Level: 3})
	for _, s := range clipped {
		if s == math.MinInt16 || s == math.MaxInt16 {
			return
		}
	}
	t.Fatal("+3 dBm0 per tone should clip")
}
