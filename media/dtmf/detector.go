package dtmf

import (
	"fmt"
	"math"
	"time"

	"github.com/callproof/callproof/media"
)

// Analysis grid at 8 kHz: 17-sample sub-blocks, a 102-sample window (6 sub-blocks, the block
// length of spandsp and Asterisk: 78 Hz bins, so adjacent rows fall about one bin apart), and
// the frequency of each tone measured from its phase advance between two windows 51 samples
// (3 sub-blocks) apart, which is unambiguous up to ±78 Hz (±4.8 % of the highest tone).
const (
	rate8    = 8000
	subLen   = 17
	winSubs  = 6
	winLen   = subLen * winSubs // N = 102
	lagSubs  = 3
	lagLen   = subLen * lagSubs
	ringSize = 16 // ≥ winSubs+lagSubs, a power of two
	dcPole   = 0.995
	histLen  = 256 // ≥ (winSubs+bandWarmSubs)·subLen, a power of two
)

// Frequencies of ITU-T Q.23: rows (low group) then columns (high group).
var toneHz = [8]float64{697, 770, 852, 941, 1209, 1336, 1477, 1633}

// Digits by row*4+column.
const digitMap = "123A456B789C*0#D"

// Defaults of Config.
const (
	DefaultMinLevel      = -45.0 // dBm0 per tone
	DefaultNormalTwist   = 10.0  // dB, low tone louder
	DefaultReverseTwist  = 7.0   // dB, high tone louder
	DefaultFreqTolerance = 0.025 // ±2.5 % (+1 Hz)
	DefaultMinDuration   = 30 * time.Millisecond
	DefaultMaxGap        = 34 * time.Millisecond
)

// Config tunes a Detector. The zero value is the default 8 kHz detector; every zero field takes
// its documented default. The defaults meet ITU-T Q.24 (AT&T column) with margin: tones off
// nominal by up to ±1.5 % + 2 Hz are accepted and by ±3.5 % rejected, twist up to 8 dB normal and
// 4 dB reverse is accepted, tones down to −36 dBm0 are accepted and at −50 dBm0 rejected, key
// presses of 40 ms or more are found and of 23 ms or less ignored, a 40 ms pause separates two
// digits and a 30 ms drop-out inside one does not split it.
type Config struct {
	// SampleRate of the PCM passed to Process: 8000 or 16000 Hz. Default 8000.
	SampleRate int
	// MinLevel is the weakest tone accepted, in dBm0 per tone. Default −45 dBm0.
	MinLevel float64
	// NormalTwist is how much louder, in dB, the low tone may be than the high one.
	// Default 10 dB (Q.24 asks for 8).
	NormalTwist float64
	// ReverseTwist is how much louder, in dB, the high tone may be than the low one.
	// Default 7 dB (Q.24 asks for 4).
	ReverseTwist float64
	// FreqTolerance is the largest relative frequency error accepted on each tone, plus 1 Hz.
	// Default 0.025 (2.5 %), midway between Q.24's must-accept 1.5 % + 2 Hz and must-reject 3.5 %.
	FreqTolerance float64
	// MinDuration is the shortest tone reported as a digit. Default 30 ms (Q.24: accept 40 ms,
	// reject 23 ms).
	MinDuration time.Duration
	// MaxGap is the longest interruption bridged inside one key press; a longer gap ends it.
	// Default 34 ms (a lost 20 or 30 ms packet is bridged, a 40 ms pause separates digits).
	MaxGap time.Duration
}

// Validate reports an invalid setting as an error wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.SampleRate != 0 && c.SampleRate != 8000 && c.SampleRate != 16000:
		return fmt.Errorf("%w: sample rate %d Hz: want 8000 or 16000", ErrConfig, c.SampleRate)
	case c.MinLevel > 0 || c.MinLevel < -60 || math.IsNaN(c.MinLevel):
		return fmt.Errorf("%w: min level %g dBm0: want -60..0", ErrConfig, c.MinLevel)
	case c.NormalTwist < 0 || c.NormalTwist > 20 || math.IsNaN(c.NormalTwist):
		return fmt.Errorf("%w: normal twist %g dB: want 0..20", ErrConfig, c.NormalTwist)
	case c.ReverseTwist < 0 || c.ReverseTwist > 20 || math.IsNaN(c.ReverseTwist):
		return fmt.Errorf("%w: reverse twist %g dB: want 0..20", ErrConfig, c.ReverseTwist)
	case c.FreqTolerance < 0 || c.FreqTolerance > 0.045 || math.IsNaN(c.FreqTolerance):
		return fmt.Errorf("%w: frequency tolerance %g: want 0..0.045", ErrConfig, c.FreqTolerance)
	case c.MinDuration < 0 || c.MinDuration > time.Second:
		return fmt.Errorf("%w: min duration %v: want 0..1s", ErrConfig, c.MinDuration)
	case c.MaxGap < 0 || c.MaxGap > 200*time.Millisecond:
		return fmt.Errorf("%w: max gap %v: want 0..200ms", ErrConfig, c.MaxGap)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.SampleRate == 0 {
		c.SampleRate = 8000
	}
	if c.MinLevel == 0 {
		c.MinLevel = DefaultMinLevel
	}
	if c.NormalTwist == 0 {
		c.NormalTwist = DefaultNormalTwist
	}
	if c.ReverseTwist == 0 {
		c.ReverseTwist = DefaultReverseTwist
	}
	if c.FreqTolerance == 0 {
		c.FreqTolerance = DefaultFreqTolerance
	}
	if c.MinDuration == 0 {
		c.MinDuration = DefaultMinDuration
	}
	if c.MaxGap == 0 {
		c.MaxGap = DefaultMaxGap
	}
	return c
}

// Detection is one key press found in the audio.
type Detection struct {
	// Digit is one of 0123456789*#ABCD.
	Digit byte
	// Start is when the tone began, from the first sample given to the detector (or since
	// Reset), by the sample clock.
	Start time.Duration
	// Duration is how long the tone lasted, bridged interruptions included.
	Duration time.Duration
	// LowLevel and HighLevel are the measured levels of the two tones in dBm0.
	LowLevel, HighLevel float32
	// LowFreq and HighFreq are the measured frequencies of the two tones in Hz.
	LowFreq, HighFreq float32
}

func (d Detection) String() string {
	return fmt.Sprintf("%c at %v for %v (%.1f Hz %.1f dBm0, %.1f Hz %.1f dBm0)", d.Digit,
		d.Start, d.Duration, d.LowFreq, d.LowLevel, d.HighFreq, d.HighLevel)
}

// hit is the verdict on one analysis window.
type hit struct {
	ok     bool
	idx    int     // row*4+col
	rho    float64 // tone energy / band energy
	rhoAll float64 // tone energy / total energy
	h2r    float64 // second harmonic / fundamental power, low tone
	h2c    float64 // same, high tone
	hd     float64 // power at the difference frequency / the weaker tone
	probed bool    // h2r, h2c and hd were measured
	pr, pc float64 // tone powers |X|², corrected for the frequency offset
	dr, dc float64 // frequency offsets in Hz
}

// run is a sequence of windows that passed for the same digit: a candidate or the digit on.
type run struct {
	active   bool
	idx      int
	firstWS  int64   // start sample of the first window
	firstRho float64 // its band energy ratio (≈ the fraction of it the tone covers)
	rhoMax   float64
	lastEnd  int64 // estimated end of the tone so far
	misses   int   // windows since the last one that passed
	windows  int
	blocked  bool // long enough but not steady (counted once, for tests)
	// statistics over the windows the tone fully covered
	n            int
	sumPr, sumPc float64
	sumDr, sumDc float64
	minPr, maxPr float64
	minPc, maxPc float64
	rhoAllMax    float64
	// and over those of them that were probed (see analyse)
	nProbed        int
	sumH2r, sumH2c float64
	sumHd          float64
}

// start estimates the tone's start: the first window's energy ratio, against the largest one
// seen, tells what fraction of that window the tone covered.
func (r *run) start() int64 {
	c := 1.0
	if r.rhoMax > 0 {
		c = math.Min(1, r.firstRho/r.rhoMax)
	}
	return r.firstWS + winLen - int64(math.Round(c*winLen))
}

// add accounts for one more passing window starting at ws.
func (r *run) add(h *hit, ws int64) {
	r.windows++
	if h.rho > r.rhoMax {
		r.rhoMax = h.rho
	}
	c := math.Min(1, h.rho/r.rhoMax)
	if end := ws + int64(math.Round(c*winLen)); end > r.lastEnd {
		r.lastEnd = end
	}
	if c < 0.9 {
		return // a window at an edge of the tone
	}
	r.rhoAllMax = math.Max(r.rhoAllMax, h.rhoAll)
	if h.probed {
		r.nProbed++
		r.sumH2r += h.h2r
		r.sumH2c += h.h2c
		r.sumHd += h.hd
	}
	if r.n == 0 {
		r.minPr, r.maxPr, r.minPc, r.maxPc = h.pr, h.pr, h.pc, h.pc
	}
	r.n++
	r.sumPr += h.pr
	r.sumPc += h.pc
	r.sumDr += h.dr
	r.sumDc += h.dc
	r.minPr, r.maxPr = math.Min(r.minPr, h.pr), math.Max(r.maxPr, h.pr)
	r.minPc, r.maxPc = math.Min(r.minPc, h.pc), math.Max(r.maxPc, h.pc)
}

// Detector finds DTMF key presses in a stream of PCM16 samples. It keeps the state of one
// stream (one call leg): feed it blocks of any size in order; it carries partial analysis
// windows across calls and does not allocate once built. It is not safe for concurrent use.
type Detector struct {
	cfg Config

	// thresholds derived from cfg
	pMin                  float64 // minimum |X|² per tone
	normalTwist, revTwist float64 // power ratios
	tolHz                 [8]float64
	minDur, maxGap        int64 // in 8 kHz samples
	bandGain2             [8]float64

	// front end
	dec      decimator
	dcX, dcY float64
	coef     [8]float64 // 2cos(w)
	cosw     [8]float64
	sinw     [8]float64
	stepQ    [8]complex128 // e^{-jwL}
	q        [8]complex128 // e^{-jw(n0+L-1)} for the current sub-block
	qLast    [8]complex128 // q of the last completed sub-block
	s1, s2   [8]float64    // Goertzel state
	e        float64       // energy of the current sub-block
	m        int           // samples in the current sub-block
	nsub     int64         // completed sub-blocks
	ringX    [ringSize][8]complex128
	ringE    [ringSize]float64
	winX     [8]complex128 // sums over the current window
	winE     float64
	hist     [histLen]float64 // the last histLen samples (DC-blocked), for the band filter and probes
	hpos     int

	// The DTMF band filter runs lazily over hist, only for windows that get as far as the band
	// energy test (see bandEnergy).
	band    bandFilter
	bandSub int64 // sub-blocks the band filter has consumed
	ringEB  [ringSize]float64

	// constants of the centred pair solve (see analyse)
	cen    [8]complex128 // e^{-jw(N-1)/2}: from the window's last sample to its centre (see centred)
	lagRot [8]complex128 // e^{-jw·lagLen}

	// decision
	cur, cand run
	stats     detectorStats

	// output of the call in progress
	digits []byte
	events []Detection
	want   uint8 // 1: digits at confirmation, 2: detections at the end
}

var _ media.ToneDetector = (*Detector)(nil)

// New returns a detector for cfg. It panics if cfg is invalid; call cfg.Validate first when the
// values come from outside the program.
func New(cfg Config) *Detector {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	d := &Detector{cfg: cfg}
	a := Amplitude(cfg.MinLevel)
	d.pMin = (a * winLen / 2) * (a * winLen / 2)
	d.normalTwist = math.Pow(10, cfg.NormalTwist/10)
	d.revTwist = math.Pow(10, cfg.ReverseTwist/10)
	d.minDur = int64(cfg.MinDuration.Seconds()*rate8 + 0.5)
	d.maxGap = int64(cfg.MaxGap.Seconds()*rate8 + 0.5)
	d.band = newBandFilter(bandLo, bandHi, rate8)
	for k, f := range toneHz {
		w := 2 * math.Pi * f / rate8
		d.coef[k] = 2 * math.Cos(w)
		d.cosw[k], d.sinw[k] = math.Cos(w), math.Sin(w)
		d.stepQ[k] = complex(math.Cos(w*subLen), -math.Sin(w*subLen))
		d.tolHz[k] = cfg.FreqTolerance*f + 1
		d.bandGain2[k] = d.band.gain2(f, rate8)
		d.cen[k] = complex(math.Cos(w*(winLen-1)/2), -math.Sin(w*(winLen-1)/2))
		d.lagRot[k] = complex(math.Cos(w*lagLen), -math.Sin(w*lagLen))
	}
	d.Reset()
	return d
}

// Band of the in-band energy test (Hz): the DTMF tones ±3.5 % with room for the filter skirts.
const (
	bandLo = 560.0
	bandHi = 1950.0
)

// Config returns the detector's configuration with defaults filled in.
func (d *Detector) Config() Config { return d.cfg }

// Reset forgets the stream: the next sample is time zero.
func (d *Detector) Reset() {
	d.dec.reset()
	d.band.reset()
	d.dcX, d.dcY = 0, 0
	for k, f := range toneHz {
		w := 2 * math.Pi * f / rate8
		d.q[k] = complex(math.Cos(w*(subLen-1)), -math.Sin(w*(subLen-1)))
	}
	d.s1, d.s2 = [8]float64{}, [8]float64{}
	d.e, d.m, d.nsub = 0, 0, 0
	d.winX, d.winE = [8]complex128{}, 0
	d.hist, d.hpos = [histLen]float64{}, 0
	d.bandSub = 0
	d.cur, d.cand = run{}, run{}
}

// Process implements media.ToneDetector: it consumes pcm at the configured sample rate and
// appends to dst each digit confirmed in it, about MinDuration after its tone began. It does not
// allocate when dst has room.
func (d *Detector) Process(dst []byte, pcm []int16) []byte {
	d.digits, d.want = dst, 1
	d.feed(pcm)
	dst = d.digits
	d.digits, d.want = nil, 0
	return dst
}

// ProcessEvents consumes pcm like Process but appends a Detection for each key press whose tone
// ended in it, with its start and duration; the tone must have been absent for MaxGap before it
// counts as ended (call Flush at the end of a stream). It does not allocate when dst has room.
func (d *Detector) ProcessEvents(dst []Detection, pcm []int16) []Detection {
	d.events, d.want = dst, 2
	d.feed(pcm)
	dst = d.events
	d.events, d.want = nil, 0
	return dst
}

// Flush ends the stream as ProcessEvents sees it: a digit still sounding is appended to dst as
// if its tone had stopped now. The detector keeps its clock; call Reset to start over.
func (d *Detector) Flush(dst []Detection) []Detection {
	d.events, d.want = dst, 2
	if d.cur.active {
		d.endCur()
	}
	d.cand = run{}
	dst = d.events
	d.events, d.want = nil, 0
	return dst
}

func (d *Detector) feed(pcm []int16) {
	if d.cfg.SampleRate == 16000 {
		var buf [subLen]float64
		for len(pcm) > 0 {
			var n int
			n, pcm = d.dec.run(buf[:subLen-d.m], pcm)
			block(d, buf[:n])
		}
		return
	}
	for len(pcm) > 0 {
		n := min(subLen-d.m, len(pcm))
		block(d, pcm[:n])
		pcm = pcm[n:]
	}
}

// block runs the per-sample front end over x, which must not cross a sub-block boundary, with
// the state in local variables (registers), and closes the sub-block when x completes it.
func block[T int16 | float64](d *Detector, x []T) {
	if len(x) == 0 {
		return
	}
	// Three passes over the sub-block, each with few enough live values to stay in registers:
	// DC blocker and energy; then the Goertzel resonators, four at a time. (The band filter is
	// not run here: see bandEnergy.)
	var ys [subLen]float64
	y := ys[:len(x)]
	dcX, dcY := d.dcX, d.dcY
	e := d.e
	for i, s := range x {
		v := float64(s)
		u := v - dcX + dcPole*dcY
		dcX, dcY = v, u
		y[i] = u
		e += u * u
	}
	d.dcX, d.dcY = dcX, dcY
	d.e = e
	goertzel4(y, (*[4]float64)(d.coef[0:4]), (*[4]float64)(d.s1[0:4]), (*[4]float64)(d.s2[0:4]))
	goertzel4(y, (*[4]float64)(d.coef[4:8]), (*[4]float64)(d.s1[4:8]), (*[4]float64)(d.s2[4:8]))
	n := copy(d.hist[d.hpos:], ys[:len(x)])
	copy(d.hist[:], ys[n:len(x)])
	d.hpos = (d.hpos + len(x)) & (histLen - 1)
	d.m += len(x)
	if d.m == subLen {
		d.endSub()
	}
}

// goertzel4 runs four Goertzel resonators (s = x + c·s1 − s2) over x, evaluated as
// c·s1 + (x − s2) so that only a multiply and an add lie on each resonator's loop-carried path.
func goertzel4(x []float64, c, s1, s2 *[4]float64) {
	c0, c1, c2, c3 := c[0], c[1], c[2], c[3]
	a0, a1, a2, a3 := s1[0], s1[1], s1[2], s1[3]
	b0, b1, b2, b3 := s2[0], s2[1], s2[2], s2[3]
	for _, y := range x {
		a0, b0 = c0*a0+(y-b0), a0
		a1, b1 = c1*a1+(y-b1), a1
		a2, b2 = c2*a2+(y-b2), a2
		a3, b3 = c3*a3+(y-b3), a3
	}
	*s1 = [4]float64{a0, a1, a2, a3}
	*s2 = [4]float64{b0, b1, b2, b3}
}

func (d *Detector) endSub() {
	slot := d.nsub & (ringSize - 1)
	for k := range d.s1 {
		s1, s2 := d.s1[k], d.s2[k]
		yre, yim := s1-d.cosw[k]*s2, d.sinw[k]*s2
		q := d.q[k]
		d.qLast[k] = q
		d.ringX[slot][k] = complex(yre*real(q)-yim*imag(q), yre*imag(q)+yim*real(q))
		q *= d.stepQ[k]
		n := real(q)*real(q) + imag(q)*imag(q)
		d.q[k] = scale(q, (3-n)/2) // = q·((3−n)/2 + 0j), without the zero products
		d.s1[k], d.s2[k] = 0, 0
	}
	d.ringE[slot] = d.e
	d.e, d.m = 0, 0
	// Running window sums: add the new sub-block, drop the one leaving the window, and every
	// 256 sub-blocks start again from the ring so rounding cannot accumulate.
	if d.nsub&255 == 0 {
		d.winX, d.winE = [8]complex128{}, 0
		for i := int64(0); i < winSubs && i <= d.nsub; i++ {
			o := (d.nsub - i) & (ringSize - 1)
			for k := range d.winX {
				d.winX[k] += d.ringX[o][k]
			}
			d.winE += d.ringE[o]
		}
	} else {
		old := (d.nsub - winSubs) & (ringSize - 1)
		keep := d.nsub >= winSubs
		for k := range d.winX {
			d.winX[k] += d.ringX[slot][k]
			if keep {
				d.winX[k] -= d.ringX[old][k]
			}
		}
		d.winE += d.ringE[slot]
		if keep {
			d.winE -= d.ringE[old]
		}
	}
	d.nsub++
	if d.nsub >= winSubs+lagSubs {
		var h hit
		d.analyse(&h)
		d.decide(&h)
	}
}

// relPeak: every other tone of a group must be this much weaker (power ratio, 8 dB), once the
// leakage of the detected pair is removed; relPeakRaw is the quick test on the raw bins.
const (
	relPeak    = 6.31
	relPeakRaw = 2.0
)

// Energy ratio thresholds: the two tones against all the window's energy, and against the
// DTMF band's energy. spandsp and Asterisk ask 0.82 of the whole band, which is what loses
// digits under speech; here the whole-band share may drop to half when the tones hold 0.82 of
// the DTMF band, and such weaker windows must then pass the steadiness tests (see steady).
const (
	minRatioAll  = 0.5
	minRatioBand = 0.82
)

// analyse runs the per-window tests on the window of winLen samples that ends with the
// sub-block just completed and fills h when the window holds a DTMF pair. The tests run from
// cheapest to dearest, since nearly every window of speech or silence fails the first ones:
// levels and the raw energy share, the raw relative peak, the frequency of both tones (phase
// advance, then refined with each tone's leakage into the other's bin solved away), their
// levels and twist, the energy shares of the whole band and of the DTMF band, the relative peak
// with the pair's leakage removed, and, for windows where the pair does not dominate the whole
// band, the probes the steadiness test needs.
//
// All levels are compared as powers (|X|², linear thresholds fixed in New): no logarithm or
// square root is taken per window.
func (d *Detector) analyse(h *hit) {
	last := d.nsub - 1
	x := &d.winX
	e := math.Max(d.winE, 1e-9)
	// Silence gate: by Cauchy–Schwarz no bin of the window can exceed N·E (E its energy), so
	// when N·E is below the cheap level test's pMin/2, with a factor 2 to spare for rounding,
	// no tone can pass it and the bins need not be looked at.
	if 2*winLen*e < d.pMin*0.5 {
		return
	}
	var p [8]float64
	for k := range x {
		p[k] = real(x[k])*real(x[k]) + imag(x[k])*imag(x[k])
	}
	r, c := 0, 4
	for k := 1; k < 4; k++ {
		if p[k] > p[r] {
			r = k
		}
		if p[k+4] > p[c] {
			c = k + 4
		}
	}
	// Cheap rejections first: most windows are silence or speech.
	if p[r] < d.pMin*0.5 || p[c] < d.pMin*0.5 || 2*(p[r]+p[c]) < 0.3*winLen*e*minRatioAll {
		return
	}
	for k := 0; k < 4; k++ {
		if k != r && p[k]*relPeakRaw > p[r] {
			return
		}
		if k+4 != c && p[k+4]*relPeakRaw > p[c] {
			return
		}
	}
	// Frequency of each tone from the phase advance of its DFT value over lagLen samples, then
	// refined with the other tone's leakage removed.
	xpr, xpc := d.lagged(last, r), d.lagged(last, c)
	dr, okr := d.offset(r, x[r], xpr, rawSlack)
	dc, okc := d.offset(c, x[c], xpc, rawSlack)
	if !okr || !okc {
		return
	}
	wr, wc := 2*math.Pi*toneHz[r]/rate8, 2*math.Pi*toneHz[c]/rate8
	// The bins referenced to the centre of their window (see centred): there a tone's leakage
	// into a bin is real, so the pair is solved with a real 2×2 matrix, for both windows.
	xr, xc := d.centred(r, x[r]), d.centred(c, x[c])
	xpr, xpc = d.centred(r, xpr)*d.lagRot[r], d.centred(c, xpc)*d.lagRot[c]
	// Two rounds of: solve for both tones' complex amplitudes in this window and the one lagLen
	// earlier at the current frequency estimates, then correct each estimate by the phase the
	// tone's amplitude turned through between the two. While a digit is on, its measured
	// frequencies are a better start and one round is enough.
	idx := r*4 + c - 4
	rounds := 2
	if d.cur.active && d.cur.idx == idx && d.cur.n > 0 {
		dr, dc, rounds = d.cur.sumDr/float64(d.cur.n), d.cur.sumDc/float64(d.cur.n), 1
	}
	var ar, ac complex128 // amplitudes referenced to the window centre (|ar| is the tone's)
	var er, ec float64    // the frequency offsets (radians per sample) they were solved at
	pk := &pairKernels[r][c-4]
	for it := 0; it < rounds; it++ {
		er, ec = 2*math.Pi*dr/rate8, 2*math.Pi*dc/rate8
		// The four kernels D(fr−wr), D(fc−wr), D(fr−wc), D(fc−wc) from four small-angle sines
		// and cosines and the pair's table (see pairKernels); N/2 = lagLen, so the same
		// sin(ε·lagLen) also turns the amplitudes below.
		snr, cnr := math.Sincos(er * winLen / 2)
		shr, chr := math.Sincos(er / 2)
		snc, cnc := math.Sincos(ec * winLen / 2)
		shc, chc := math.Sincos(ec / 2)
		m0 := ratio(snr, shr)                                   // D(εr)
		m1 := ratio(pk.sn*cnc+pk.cn*snc, pk.sh*chc+pk.ch*shc)   // D(Δ+εc)
		m2 := ratio(-pk.sn*cnr+pk.cn*snr, -pk.sh*chr+pk.ch*shr) // D(−Δ+εr)
		m3 := ratio(snc, shc)                                   // D(εc)
		var br, bc complex128
		ar, ac = solveReal(xr, xc, m0, m1, m2, m3)
		br, bc = solveReal(xpr, xpc, m0, m1, m2, m3)
		// A centred amplitude turns by f·lagLen between the two windows on top of the tone's
		// own phase change: take it out (e^{-j·f·lagLen} = lagRot·e^{-j·ε·lagLen}).
		dr += phase(ar*d.lagRot[r]*complex(cnr, -snr), br) / lagLen * rate8 / (2 * math.Pi)
		dc += phase(ac*d.lagRot[c]*complex(cnc, -snc), bc) / lagLen * rate8 / (2 * math.Pi)
	}
	if math.Abs(dr) > d.tolHz[r] || math.Abs(dc) > d.tolHz[c] {
		return
	}
	pr := sq(real(ar)*winLen) + sq(imag(ar)*winLen)
	pc := sq(real(ac)*winLen) + sq(imag(ac)*winLen)
	if pr < d.pMin || pc < d.pMin {
		return
	}
	if pr > pc*d.normalTwist || pc > pr*d.revTwist {
		return
	}
	tone := 2 * (pr + pc) / winLen
	rho := tone / e
	if rho < minRatioAll {
		return
	}
	// Only now, with a window that is a DTMF pair on every other count, is the band filter run.
	eb := math.Max(d.bandEnergy(), 1e-9)
	rhoB := 2 * (pr*d.bandGain2[r] + pc*d.bandGain2[c]) / winLen / eb
	if rhoB < minRatioBand {
		return
	}
	// Relative peak: every other tone of each group must be relPeak weaker than the group's
	// tone. When the raw bins are not clear enough, the pair's leakage is removed first.
	fr, fc := wr+2*math.Pi*dr/rate8, wc+2*math.Pi*dc/rate8
	var atr, atc complex128 // ar, ac moved to the final frequencies (see below)
	moved := false
	for k := 0; k < 8; k++ {
		if k == r || k == c {
			continue
		}
		own := pr
		if k >= 4 {
			own = pc
		}
		if p[k]*relPeak <= own {
			continue
		}
		if !moved {
			// The leakage is computed at the refined frequencies fr, fc with the amplitudes
			// solved at the previous estimates, each still referenced to sample 0 (as this test
			// has always done): in centred terms, each amplitude turns by its frequency change
			// times the window centre's distance from sample 0.
			mid := float64((last-winSubs+1)*subLen) + (winLen-1)/2.0
			sr, cr := math.Sincos((fr - wr - er) * mid)
			sc, cc := math.Sincos((fc - wc - ec) * mid)
			atr, atc, moved = ar*complex(cr, sr), ac*complex(cc, sc), true
		}
		wk := 2 * math.Pi * toneHz[k] / rate8
		res := d.centred(k, x[k]) - scale(atr, dirichlet(fr-wk)) - scale(atc, dirichlet(fc-wk))
		if (real(res)*real(res)+imag(res)*imag(res))*relPeak > own {
			return
		}
	}
	*h = hit{ok: true, idx: idx, rho: rhoB, rhoAll: rho, pr: pr, pc: pc, dr: dr, dc: dc}
	if rho >= cleanRatio || (d.cur.active && d.cur.idx == idx) {
		return // the steadiness features are not needed (see steady)
	}
	// Second harmonics and the difference tone: DTMF has neither, while a voice whose
	// harmonics k·f0 and m·f0 mimic a pair also has (m−k)·f0 and, often, 2k·f0 and 2m·f0.
	h.probed = true
	h.h2r = d.probe(2*(toneHz[r]+dr)) / pr
	h.h2c = d.probe(2*(toneHz[c]+dc)) / pc
	h.hd = d.probe(toneHz[c]+dc-toneHz[r]-dr) / math.Min(pr, pc)
}

func sq(x float64) float64 { return x * x }

func scale(z complex128, f float64) complex128 { return complex(real(z)*f, imag(z)*f) }

// bandWarmSubs is how many sub-blocks before a window the band filter restarts from rest.
const bandWarmSubs = 8

// bandEnergy returns the energy of the DTMF band (the band filter's output) over the window that
// ends with the last completed sub-block. The filter runs over hist only for the windows that
// reach the band energy test, which almost no window of speech or silence does. Over a key press
// it continues from where it stopped, so it runs once over every sample exactly as a filter in
// the per-sample loop would; when it stopped more than bandWarmSubs sub-blocks before the window
// it restarts from rest that far back (136 samples). Its slowest pole has radius 0.733, so what
// it saw before a restart has decayed by 0.733^136 < 1e-18 at the window's first sample: the
// energy is that of the continuously running filter to within rounding.
func (d *Detector) bandEnergy() float64 {
	first := d.nsub - winSubs
	if d.bandSub < first-bandWarmSubs {
		d.band.reset()
		d.bandSub = first - bandWarmSubs
	}
	q0, q1 := &d.band.s[0], &d.band.s[1]
	q0b0, q0b1, q0b2, q0a1, q0a2, q0z1, q0z2 := q0.b0, q0.b1, q0.b2, q0.a1, q0.a2, q0.z1, q0.z2
	q1b0, q1b1, q1b2, q1a1, q1a2, q1z1, q1z2 := q1.b0, q1.b1, q1.b2, q1.a1, q1.a2, q1.z1, q1.z2
	for j := d.bandSub; j < d.nsub; j++ {
		p := int(j * subLen)
		var eb float64
		for i := 0; i < subLen; i++ {
			u := d.hist[(p+i)&(histLen-1)]
			f := q0b0*u + q0z1
			q0z1, q0z2 = q0b1*u-q0a1*f+q0z2, q0b2*u-q0a2*f
			g := q1b0*f + q1z1
			q1z1, q1z2 = q1b1*f-q1a1*g+q1z2, q1b2*f-q1a2*g
			eb += g * g
		}
		d.ringEB[j&(ringSize-1)] = eb
	}
	q0.z1, q0.z2, q1.z1, q1.z2 = q0z1, q0z2, q1z1, q1z2
	d.bandSub = d.nsub
	var eb float64
	for j := first; j < d.nsub; j++ {
		eb += d.ringEB[j&(ringSize-1)]
	}
	return eb
}

// probe returns |X|² at hz over the current window (the last winLen samples).
func (d *Detector) probe(hz float64) float64 {
	c := 2 * math.Cos(2*math.Pi*hz/rate8)
	var s1, s2 float64
	p := (d.hpos - winLen) & (histLen - 1)
	for i := 0; i < winLen; i++ {
		s0 := d.hist[p] + c*s1 - s2
		s2, s1 = s1, s0
		p = (p + 1) & (histLen - 1)
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// rawSlack is how far (Hz) beyond the tolerance a first, leakage-biased frequency estimate may
// be before the window is rejected without refinement.
const rawSlack = 12.0

// lagged returns tone k's DFT value over the window lagLen samples before the current one.
func (d *Detector) lagged(last int64, k int) complex128 {
	var xp complex128
	for i := int64(lagSubs); i < lagSubs+winSubs; i++ {
		xp += d.ringX[(last-i)&(ringSize-1)][k]
	}
	return xp
}

// offset measures tone k's frequency error in Hz from the phase advance of its bin over lagLen
// samples (xk now, xp lagLen earlier) and checks it against the tolerance plus slack.
func (d *Detector) offset(k int, xk, xp complex128, slack float64) (float64, bool) {
	hz := phase(xk, xp) / lagLen * rate8 / (2 * math.Pi)
	return hz, math.Abs(hz) <= d.tolHz[k]+slack
}

// centred turns tone k's DFT value over the current window from the stream's phase reference
// (sample 0, as the sub-blocks are rotated in endSub) to the window's centre, using the rotation
// of the window's last sub-block. A tone a·e^{jfn} then contributes a·e^{jf·centre}·D(f−w) to
// the bin at w, with D the real Dirichlet kernel (see dirichlet); the same reference serves the
// window lagLen earlier once multiplied by lagRot.
func (d *Detector) centred(k int, xk complex128) complex128 {
	q := d.qLast[k]
	return xk * complex(real(q), -imag(q)) * d.cen[k]
}

// phase is the angle of a·conj(b).
func phase(a, b complex128) float64 {
	return math.Atan2(imag(a)*real(b)-real(a)*imag(b), real(a)*real(b)+imag(a)*imag(b))
}

// pairKernels holds, for each row r and column c, sin and cos of N·Δ/2 and of Δ/2, with
// Δ = wc − wr the distance between the two bins: D(±Δ+ε) then follows from the sines and
// cosines of N·ε/2 and ε/2 by the angle-addition formulas.
var pairKernels = func() (t [4][4]struct{ sn, cn, sh, ch float64 }) {
	for r := range 4 {
		for c := range 4 {
			delta := 2 * math.Pi * (toneHz[4+c] - toneHz[r]) / rate8
			t[r][c].sn, t[r][c].cn = math.Sincos(delta * winLen / 2)
			t[r][c].sh, t[r][c].ch = math.Sincos(delta / 2)
		}
	}
	return t
}()

// ratio is sin(N·δ/2)/sin(δ/2) given both sines: the Dirichlet kernel, N at δ = 0.
func ratio(sn, sh float64) float64 {
	if math.Abs(sh) < 1e-12 {
		return winLen
	}
	return sn / sh
}

// dirichlet is the DFT of a unit complex exponential delta radians per sample off the bin over a
// window of winLen samples, referenced to the window's centre: Σ_{n} e^{j·delta·(n−(N−1)/2)} =
// sin(N·delta/2)/sin(delta/2), which is real.
func dirichlet(delta float64) float64 {
	return ratio(math.Sin(winLen*delta/2), math.Sin(delta/2))
}

// solveReal solves xr = ar·m0 + ac·m1, xc = ar·m2 + ac·m3 for a real matrix: the two tones'
// amplitudes from their two bins, each bin holding its own tone plus the other's leakage.
// Removing the leakage matters when the tones are close (941 and 1209 Hz are 3.4 bins apart,
// where the rectangular window's side lobe is −21 dB) and one is much weaker (twist).
func solveReal(xr, xc complex128, m0, m1, m2, m3 float64) (ar, ac complex128) {
	det := m0*m3 - m1*m2
	if det == 0 {
		return 0, 0
	}
	inv := 1 / det
	return scale(xr, m3*inv) - scale(xc, m1*inv), scale(xc, m0*inv) - scale(xr, m2*inv)
}

// detectorStats count analysis outcomes, for tests (talk-off margin).
type detectorStats struct {
	windows, passed, candidates, confirmed uint64
	blocked                                uint64 // candidates long enough but not steady
}

// decide runs the state machine on one window's verdict. A digit is confirmed (and reported
// by Process) when a run of passing windows implies a tone of MinDuration and the run is steady;
// a confirmed digit survives failing windows until the tone has been absent for MaxGap, and a
// tone of the same digit resuming after a longer gap, or a different digit being confirmed,
// ends it (and ProcessEvents reports it).
func (d *Detector) decide(h *hit) {
	d.stats.windows++
	if h.ok {
		d.stats.passed++
	}
	ws := (d.nsub - winSubs) * subLen
	we := ws + winLen
	if d.cur.active {
		if h.ok && h.idx == d.cur.idx {
			restart := false
			if d.cur.misses > 0 {
				c := math.Min(1, h.rho/d.cur.rhoMax)
				if ws+winLen-int64(math.Round(c*winLen))-d.cur.lastEnd >= d.maxGap {
					restart = true
				}
			}
			if !restart {
				d.cur.misses = 0
				d.cur.add(h, ws)
				d.cand = run{}
				return
			}
			d.endCur()
		} else {
			d.cur.misses++
			if we-d.cur.lastEnd >= d.maxGap+winLen {
				d.endCur()
			}
		}
	}
	if !h.ok {
		d.cand = run{} // a candidate must pass every window: bridging is for confirmed digits
		return
	}
	if !d.cand.active || d.cand.idx != h.idx {
		d.cand = run{active: true, idx: h.idx, firstWS: ws, firstRho: h.rho, lastEnd: we}
		d.stats.candidates++
	}
	d.cand.add(h, ws)
	start := d.cand.start()
	if d.cand.lastEnd-start < d.minDur || d.cand.windows < 3 {
		return
	}
	if !d.cand.steady() {
		if !d.cand.blocked {
			d.cand.blocked = true
			d.stats.blocked++
		}
		return
	}
	if d.cur.active {
		d.endCur()
	}
	d.cur = d.cand
	d.cand = run{}
	d.stats.confirmed++
	if d.want == 1 {
		d.digits = append(d.digits, digitMap[d.cur.idx])
	}
}

// Steadiness limits, applied only when the pair does not dominate the whole band.
const (
	cleanRatio   = 0.85   // rhoAll at or above which the pair alone explains the signal
	maxSpread    = 2.82   // 4.5 dB: largest level change of a tone within a key press
	maxHarmonic2 = 0.0316 // −15 dB: mean second-harmonic to fundamental power ratio
	maxDiffTone  = 0.158  // −8 dB: mean power at f_high − f_low against the weaker tone
)

// steady checks that a candidate looks like a held key rather than a voice whose harmonics
// happen to sit on a row and a column frequency. A pair that carries most of the whole band's
// energy passes, as in spandsp; a weaker one (a digit under speech, or speech itself) must hold
// its level, and show neither second harmonics nor energy at the difference frequency of the
// pair, measured over the windows that covered the tone.
func (r *run) steady() bool {
	if r.n == 0 {
		return false
	}
	if r.rhoAllMax >= cleanRatio {
		return true
	}
	if r.nProbed == 0 {
		return false
	}
	n := float64(r.nProbed)
	return r.maxPr <= r.minPr*maxSpread && r.maxPc <= r.minPc*maxSpread &&
		r.sumH2r/n <= maxHarmonic2 && r.sumH2c/n <= maxHarmonic2 && r.sumHd/n <= maxDiffTone
}

func (d *Detector) endCur() {
	r := &d.cur
	if d.want == 2 {
		start := r.start()
		det := Detection{Digit: digitMap[r.idx], Start: d.toTime(start), Duration: d.toTime(r.lastEnd) - d.toTime(start)}
		if r.n > 0 {
			n := float64(r.n)
			det.LowLevel = float32(levelDBm0(r.sumPr / n))
			det.HighLevel = float32(levelDBm0(r.sumPc / n))
			det.LowFreq = float32(toneHz[r.idx/4] + r.sumDr/n)
			det.HighFreq = float32(toneHz[4+r.idx%4] + r.sumDc/n)
		}
		d.events = append(d.events, det)
	}
	d.cur = run{}
}

// levelDBm0 converts a window power |X|² to the tone's level in dBm0.
func levelDBm0(p float64) float64 {
	a := 2 * math.Sqrt(p) / winLen
	return 20*math.Log10(a/32768) + fullScaleDBm0
}

// toTime converts a position in 8 kHz samples to stream time, removing the decimator's delay
// at 16 kHz.
func (d *Detector) toTime(pos int64) time.Duration {
	if d.cfg.SampleRate == 16000 {
		pos16 := 2*pos - hbDelay
		if pos16 < 0 {
			pos16 = 0
		}
		return time.Duration(pos16) * time.Second / 16000
	}
	return time.Duration(pos) * time.Second / rate8
}
