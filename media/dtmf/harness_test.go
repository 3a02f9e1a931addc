package dtmf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/callproof/callproof/media"
)

// This file is the test kit of the conformance suite: signal builders with ground truth, the
// scoring of dtmf.md §6.3, codecs, noise, and the speech/music corpora.

// sent is one digit in a test signal, in samples at the signal's rate.
type sent struct {
	digit      byte
	start, end int
}

// signal is test audio with its ground truth.
type signal struct {
	pcm   []int16
	rate  int
	truth []sent
}

// seqSpec describes a sequence of digits; every field has the §6 default when zero.
type seqSpec struct {
	digits   string        // default "123A456B789C*0#D"
	repeat   int           // default 1
	on, off  time.Duration // default 50 ms / 50 ms
	level    float64       // dBm0 per tone (the louder); default -10; use negZero for 0
	twist    float64
	lowOff   float64 // relative frequency offsets
	highOff  float64
	lowHz    float64 // absolute shifts
	highHz   float64
	jitter   bool          // random 0..101-sample (at 8 kHz) extra lead before each digit
	holeAt   time.Duration // interruption start inside each tone (0: none)
	holeLen  time.Duration
	holeGain float64 // gain inside the hole (0: zeroed)
	rate     int
	seed     uint64
}

var negZero = math.Copysign(0, -1)

const allDigits = "123A456B789C*0#D"

// build renders a sequence with 100 ms of silence before and after.
func (s seqSpec) build() signal {
	if s.digits == "" {
		s.digits = allDigits
	}
	if s.repeat == 0 {
		s.repeat = 1
	}
	if s.on == 0 {
		s.on = 50 * time.Millisecond
	}
	if s.off == 0 {
		s.off = 50 * time.Millisecond
	}
	if s.level == 0 && !math.Signbit(s.level) {
		s.level = -10
	}
	if s.rate == 0 {
		s.rate = 8000
	}
	rng := rand.New(rand.NewPCG(s.seed, 0x5eed))
	ms := func(d time.Duration) int { return int(math.Round(d.Seconds() * float64(s.rate))) }
	sig := signal{rate: s.rate, pcm: make([]int16, ms(100*time.Millisecond))}
	opts := GenOptions{SampleRate: s.rate, Level: s.level, Twist: s.twist, On: s.on, Off: -1,
		LowOffset: s.lowOff, HighOffset: s.highOff, LowShiftHz: s.lowHz, HighShiftHz: s.highHz}
	for r := 0; r < s.repeat; r++ {
		for i := 0; i < len(s.digits); i++ {
			if s.jitter {
				sig.pcm = append(sig.pcm, make([]int16, rng.IntN(102)*s.rate/8000)...)
			}
			tone := Tones(s.digits[i:i+1], opts)
			if s.holeLen > 0 {
				a, b := ms(s.holeAt), ms(s.holeAt+s.holeLen)
				for n := a; n < b && n < len(tone); n++ {
					tone[n] = int16(float64(tone[n]) * s.holeGain)
				}
			}
			sig.truth = append(sig.truth, sent{s.digits[i], len(sig.pcm), len(sig.pcm) + len(tone)})
			sig.pcm = append(sig.pcm, tone...)
			sig.pcm = append(sig.pcm, make([]int16, ms(s.off))...)
		}
	}
	sig.pcm = append(sig.pcm, make([]int16, ms(100*time.Millisecond))...)
	return sig
}

// codec transforms 8 kHz audio the way a G.711 leg would.
type codec int

const (
	linear codec = iota
	ulaw
	alaw
)

func (c codec) String() string { return [...]string{"s16", "ulaw", "alaw"}[c] }

func (c codec) apply(pcm []int16) []int16 {
	out := make([]int16, len(pcm))
	if c == linear {
		copy(out, pcm)
		return out
	}
	enc := make([]byte, len(pcm))
	if c == ulaw {
		media.DecodeUlaw(out, media.EncodeUlaw(enc, pcm))
	} else {
		media.DecodeAlaw(out, media.EncodeAlaw(enc, pcm))
	}
	return out
}

// mix adds b scaled by gain to a (to the shorter length of the two from the start), clipping.
func mix(a []int16, b []float64, gain float64) []int16 {
	out := make([]int16, len(a))
	for i := range a {
		v := float64(a[i])
		if i < len(b) {
			v += gain * b[i]
		}
		out[i] = clip16(v)
	}
	return out
}

// whiteNoise returns n samples of Gaussian noise with the given RMS.
func whiteNoise(n int, rms float64, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x4015e))
	out := make([]float64, n)
	for i := range out {
		out[i] = rng.NormFloat64() * rms
	}
	return out
}

// dBm0Power is the mean-square power of a 0 dBm0 sine.
var dBm0Power = Amplitude(0) * Amplitude(0) / 2

// powerDBm0 is the level of a signal's mean-square power.
func powerDBm0(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return 10 * math.Log10(s/float64(len(x))/dBm0Power)
}

// detect runs a detector over pcm in blocks of random size (1..480 samples, seeded) and
// returns every detection and the digits Process would have reported.
func detect(cfg Config, pcm []int16, seed uint64) []Detection {
	got, _ := detectStats(cfg, pcm, seed)
	return got
}

// detectStats is detect that also returns the detector's counters.
func detectStats(cfg Config, pcm []int16, seed uint64) ([]Detection, detectorStats) {
	d := New(cfg)
	rng := rand.New(rand.NewPCG(seed, 0xb10c))
	var out []Detection
	for len(pcm) > 0 {
		n := 1 + rng.IntN(480)
		if n > len(pcm) {
			n = len(pcm)
		}
		out = d.ProcessEvents(out, pcm[:n])
		pcm = pcm[n:]
	}
	return d.Flush(out), d.stats
}

// score is the §6.3 scoring of one run.
type score struct {
	sent, ok, miss, wrong, split, extra int
}

func (s score) String() string {
	str := fmt.Sprintf("%d/%d", s.ok, s.sent)
	var bad []string
	for _, f := range []struct {
		n    int
		name string
	}{{s.miss, "miss"}, {s.wrong, "wrong"}, {s.split, "split"}, {s.extra, "extra"}} {
		if f.n > 0 {
			bad = append(bad, fmt.Sprintf("%d %s", f.n, f.name))
		}
	}
	if len(bad) > 0 {
		str += " (" + strings.Join(bad, ", ") + ")"
	}
	return str
}

// rate is the fraction of sent digits reported exactly once with the right symbol.
func (s score) rate() float64 {
	if s.sent == 0 {
		return 1
	}
	return float64(s.ok) / float64(s.sent)
}

// grade matches detections to the truth: a detection counts for a sent digit if it starts
// within [tone start − 20 ms, tone end + 60 ms]; the rest are extras.
func grade(sig signal, got []Detection) score {
	s := score{sent: len(sig.truth)}
	right := make([]int, len(sig.truth))
	wrong := make([]int, len(sig.truth))
	toSamples := func(d time.Duration) int { return int(d.Seconds() * float64(sig.rate)) }
	for _, g := range got {
		st := toSamples(g.Start)
		best, bestDist, bestMatch := -1, 0, false
		for i, t := range sig.truth {
			if st < t.start-sig.rate/50 || st > t.end+sig.rate*60/1000 {
				continue
			}
			dist := st - t.start
			if dist < 0 {
				dist = -dist
			}
			match := t.digit == g.Digit
			if best < 0 || (match && !bestMatch) || (match == bestMatch && dist < bestDist) {
				best, bestDist, bestMatch = i, dist, match
			}
		}
		switch {
		case best < 0:
			s.extra++
		case bestMatch:
			right[best]++
		default:
			wrong[best]++
		}
	}
	for i := range sig.truth {
		switch {
		case right[i] == 1 && wrong[i] == 0:
			s.ok++
		case right[i] > 1:
			s.split++
		case right[i] == 0 && wrong[i] == 0:
			s.miss++
		default:
			s.wrong++
		}
	}
	return s
}

// digitsOf returns the digits of detections as a string.
func digitsOf(got []Detection) string {
	b := make([]byte, len(got))
	for i, g := range got {
		b[i] = g.Digit
	}
	return string(b)
}

// resample16 generates nothing: 16 kHz cases are generated natively by seqSpec.rate.

// Corpora (dtmf.md §6.2): Debian's asterisk-core-sounds-en-wav and -es-wav (recorded speech)
// and asterisk-moh-opsound-wav (music on hold), all 8 kHz PCM16 WAV.
type corpus struct {
	name string
	dir  string
	pkg  string
}

var corpora = []corpus{
	{"speech-en", "/usr/share/asterisk/sounds/en_US_f_Allison", "asterisk-core-sounds-en-wav"},
	{"speech-es", "/usr/share/asterisk/sounds/es_MX_f_Allison", "asterisk-core-sounds-es-wav"},
	{"music-moh", "/usr/share/asterisk/moh", "asterisk-moh-opsound-wav"},
}

var corpusCache sync.Map // dir -> []int16

// loadCorpus returns every WAV file under c.dir concatenated (sorted by path) at 8 kHz. The
// files come from Debian packages that scripts/test.sh installs; a missing corpus is an error.
func loadCorpus(c corpus) ([]int16, error) {
	if v, ok := corpusCache.Load(c.dir); ok {
		return v.([]int16), nil
	}
	var files []string
	err := filepath.WalkDir(c.dir, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() && strings.HasSuffix(strings.ToLower(p), ".wav") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("corpus %s: no WAV files under %s (install Debian package %s; scripts/test.sh does): %v", c.name, c.dir, c.pkg, err)
	}
	sort.Strings(files)
	var all []int16
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		pcm, rate, err := ReadWAV(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("corpus %s: %s: %w", c.name, p, err)
		}
		if rate != 8000 {
			return nil, fmt.Errorf("corpus %s: %s: %d Hz, want 8000", c.name, p, rate)
		}
		all = append(all, pcm...)
	}
	corpusCache.Store(c.dir, all)
	return all, nil
}

// talkDown builds dtmf.md §6.1's talk-down case: 64 digits of 60 ms every 500 ms at −10 dBm0
// per tone over recorded speech whose long-term level is −12 dBm0 + rel dB (so rel = 0 is the
// reference's "0 dB"). The speech is 32 s of the English corpus from offset skip.
func talkDown(speech []int16, rel float64, skip, rate int) signal {
	period := rate / 2 // 500 ms
	n := 64 * period
	seg8 := make([]int16, 64*4000)
	for i := range seg8 {
		seg8[i] = speech[(skip+i)%len(speech)]
	}
	if rate == 16000 {
		seg8 = upsample2(seg8)
	}
	seg := make([]float64, n)
	for i := range seg {
		seg[i] = float64(seg8[i])
	}
	gain := math.Pow(10, (-12+rel-powerDBm0(seg))/20)
	sig := signal{rate: rate}
	digits := ""
	for i := 0; i < 64; i++ {
		digits += string(allDigits[i%16])
	}
	tones := make([]float64, n)
	for i := 0; i < 64; i++ {
		st := i*period + period/4 + (i*37)%102*rate/8000
		tone := Tones(digits[i:i+1], GenOptions{SampleRate: rate, On: 60 * time.Millisecond, Off: -1})
		for j, v := range tone {
			tones[st+j] = float64(v)
		}
		sig.truth = append(sig.truth, sent{digits[i], st, st + len(tone)})
	}
	sig.pcm = make([]int16, n)
	for i := range sig.pcm {
		sig.pcm[i] = clip16(tones[i] + gain*seg[i])
	}
	return sig
}

// upsample2 doubles the sample rate of 8 kHz audio with the decimator's half-band filter used
// as an interpolator (zero stuffing, gain 2), for running 8 kHz material through the 16 kHz path.
func upsample2(pcm []int16) []int16 {
	out := make([]int16, 2*len(pcm))
	at := func(i int) float64 {
		if i < 0 || i >= len(pcm) {
			return 0
		}
		return float64(pcm[i])
	}
	for i := range pcm {
		// Even outputs see only the centre tap (0.5, times the gain of 2); odd outputs see the
		// even taps, which sit at odd distances from the centre.
		out[2*i] = pcm[i]
		var y float64
		for k := 0; k < hbTaps; k += 2 {
			y += hbCoef[k] * at(i+(hbDelay+1-k)/2)
		}
		out[2*i+1] = clip16(2 * y)
	}
	return out
}

// tone is one sinusoid of a synthetic interferer.
type tone struct {
	hz, dBm0 float64
}

// tones renders the sum of sinusoids for n samples at rate, starting at zero phase.
func tones(n, rate int, ts ...tone) []float64 {
	out := make([]float64, n)
	for _, t := range ts {
		a := Amplitude(t.dBm0)
		w := 2 * math.Pi * t.hz / float64(rate)
		for i := range out {
			out[i] += a * math.Sin(w*float64(i))
		}
	}
	return out
}

// toPCM converts float samples to int16 with clipping.
func toPCM(x []float64) []int16 {
	out := make([]int16, len(x))
	for i, v := range x {
		out[i] = clip16(v)
	}
	return out
}
