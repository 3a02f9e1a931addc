package dtmf

import (
	"math"
	"time"
)

// Defaults of GenOptions.
const (
	DefaultGenLevel = -10.0 // dBm0 per tone
	DefaultGenOn    = 100 * time.Millisecond
	DefaultGenOff   = 100 * time.Millisecond
)

// GenOptions shape the tones Tones generates. The zero value gives 8 kHz audio, −10 dBm0 per
// tone, 100 ms tones with 100 ms of silence after each: what a phone or a browser's insertDTMF
// sends.
type GenOptions struct {
	// SampleRate in Hz. Default 8000.
	SampleRate int
	// Level of the louder tone in dBm0 (see the package doc for the convention: a full-scale
	// sine is +3.14 dBm0). The zero value means DefaultGenLevel; write math.Copysign(0, -1)
	// (negative zero) for exactly 0 dBm0. Above about −3 dBm0 per tone the sum of the two tones
	// clips at 16-bit full scale.
	Level float64
	// Twist is the level difference in dB between the tones: positive makes the low tone the
	// louder one ("normal" twist), negative the high tone ("reverse" twist). The weaker tone is
	// at Level − |Twist|.
	Twist float64
	// On is each tone's duration and Off the silence after it. Zero means the defaults (100 ms
	// each); a negative Off means no silence.
	On, Off time.Duration
	// Lead is silence before the first digit.
	Lead time.Duration
	// LowOffset and HighOffset shift each tone's frequency by a fraction of it (0.015 is
	// +1.5 %); LowShiftHz and HighShiftHz add a shift in Hz on top.
	LowOffset, HighOffset   float64
	LowShiftHz, HighShiftHz float64
}

// fullScaleDBm0 is the level of a sine whose peak is 16-bit full scale (ITU-T G.711 μ-law:
// 0 dBm0 is 3.14 dB below it).
const fullScaleDBm0 = 3.14

// Amplitude returns the peak amplitude, in 16-bit units, of a sine at level dBm0.
func Amplitude(dBm0 float64) float64 { return 32768 * math.Pow(10, (dBm0-fullScaleDBm0)/20) }

// Tones returns PCM16 audio of digits sent as DTMF: for each of 0123456789*#ABCD (lower-case
// a-d too) a dual tone of On followed by Off of silence. Any other character (',' by
// convention) is a pause of On+Off. Each tone starts at zero phase, as sox and most senders do.
func Tones(digits string, opts GenOptions) []int16 {
	rate := opts.SampleRate
	if rate <= 0 {
		rate = 8000
	}
	level := opts.Level
	if level == 0 && !math.Signbit(level) {
		level = DefaultGenLevel
	}
	on, off := opts.On, opts.Off
	if on <= 0 {
		on = DefaultGenOn
	}
	if off == 0 {
		off = DefaultGenOff
	} else if off < 0 {
		off = 0
	}
	samples := func(d time.Duration) int { return int(math.Round(d.Seconds() * float64(rate))) }
	nOn, nOff := samples(on), samples(off)
	out := make([]int16, samples(opts.Lead), samples(opts.Lead)+len(digits)*(nOn+nOff))
	aLow, aHigh := Amplitude(level), Amplitude(level)
	if opts.Twist > 0 {
		aHigh = Amplitude(level - opts.Twist)
	} else if opts.Twist < 0 {
		aLow = Amplitude(level + opts.Twist)
	}
	for i := 0; i < len(digits); i++ {
		r, c, ok := digitTones(digits[i])
		if !ok {
			out = append(out, make([]int16, nOn+nOff)...)
			continue
		}
		fl := toneHz[r]*(1+opts.LowOffset) + opts.LowShiftHz
		fh := toneHz[c]*(1+opts.HighOffset) + opts.HighShiftHz
		wl, wh := 2*math.Pi*fl/float64(rate), 2*math.Pi*fh/float64(rate)
		for n := 0; n < nOn; n++ {
			v := aLow*math.Sin(wl*float64(n)) + aHigh*math.Sin(wh*float64(n))
			out = append(out, clip16(v))
		}
		out = append(out, make([]int16, nOff)...)
	}
	return out
}

// digitTones returns the row (0-3) and column (4-7) tone indexes of a DTMF digit.
func digitTones(d byte) (row, col int, ok bool) {
	if d >= 'a' && d <= 'd' {
		d -= 'a' - 'A'
	}
	for i := 0; i < len(digitMap); i++ {
		if digitMap[i] == d {
			return i / 4, 4 + i%4, true
		}
	}
	return 0, 0, false
}

// Frequencies returns the low and high tone frequencies of a DTMF digit (0-9, *, #, A-D).
func Frequencies(digit byte) (low, high float64, ok bool) {
	r, c, ok := digitTones(digit)
	if !ok {
		return 0, 0, false
	}
	return toneHz[r], toneHz[c], true
}

func clip16(v float64) int16 {
	v = math.Round(v)
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}
