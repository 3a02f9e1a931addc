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
	ringSize = 16 // sub-blocks kept: ≥ bandWarmSubs+winSubs+1 and ≥ winSubs+lagSubs+1, a power of two
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
	DefaultMinDuration   = 26 * time.Millisecond
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
	// MinDuration is the shortest tone reported as a digit. Default 26 ms (Q.24: accept 40 ms,
	// reject 23 ms): tone durations are estimated to within about 3 ms, so 23 ms tones stay out
	// and 30 ms tones get in.
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

	clear  bool // a full analysis passed it by a wide margin (see steadyRef)
	steady bool // steadyWindow passed it, without measuring dr and dc
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
	nD           int // windows whose frequencies were measured (all but those steadyWindow passed)
	sumDr, sumDc float64
	maxDr, maxDc float64 // the largest |dr| and |dc| among them
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
		c = min(1, r.firstRho/r.rhoMax)
	}
	return r.firstWS + winLen - int64(math.Round(c*winLen))
}

// add accounts for one more passing window starting at ws.
func (r *run) add(h *hit, ws int64) {
	r.windows++
	if h.rho > r.rhoMax {
		r.rhoMax = h.rho
	}
	c := 1.0
	if h.rho < r.rhoMax {
		c = h.rho / r.rhoMax
	}
	if end := ws + int64(math.Round(c*winLen)); end > r.lastEnd {
		r.lastEnd = end
	}
	if c < 0.9 {
		return // a window at an edge of the tone
	}
	if h.rhoAll > r.rhoAllMax {
		r.rhoAllMax = h.rhoAll
	}
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
	if !h.steady {
		r.nD++
		r.sumDr += h.dr
		r.sumDc += h.dc
		if a := math.Abs(h.dr); a > r.maxDr {
			r.maxDr = a
		}
		if a := math.Abs(h.dc); a > r.maxDc {
			r.maxDc = a
		}
	}
	if h.pr < r.minPr {
		r.minPr = h.pr
	} else if h.pr > r.maxPr {
		r.maxPr = h.pr
	}
	if h.pc < r.minPc {
		r.minPc = h.pc
	} else if h.pc > r.maxPc {
		r.maxPc = h.pc
	}
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

	// front end (see frontend.go)
	dec    decimator
	dc     [2]float64                 // the DC blocker's last input and output (see dcBlock)
	stage  [subLen]int16              // the current sub-block's 8 kHz samples until it is whole
	hist   [ringSize * subLen]float64 // the last ringSize sub-blocks after the DC blocker, sub-block j at (j mod ringSize)·subLen
	m      int                        // samples in the current sub-block
	nsub   int64                      // completed sub-blocks
	ringE  [ringSize]float64          // energy of each sub-block
	winE   float64                    // energy of the current window
	ringRe [ringSize][8]float64       // DFT of each sub-block at the eight tones, phase referenced to sample 0
	ringIm [ringSize][8]float64
	binOf  [ringSize]int64 // the sub-block whose DFT ringRe, ringIm hold (computed lazily), or -1
	rotRe  [8]float64      // e^{-jw·c}, c the centre of sub-block rotOf (see subBins)
	rotIm  [8]float64
	rotOf  int64
	// the DFT of the window ending with sub-block winXOf, its power, and the strongest tone of
	// each group (see peaks)
	winRe, winIm, winP [8]float64
	winPeak            [2]float64
	winArg             [4]int
	winXOf             int64
	winXN              int // windows since winRe, winIm were last summed afresh

	// The DTMF band filter runs lazily over hist, only for windows that get as far as the band
	// energy test (see bandEnergy).
	band    [4]float64 // the band filter's state (see bandBlock)
	bandSub int64      // sub-blocks the band filter has consumed
	ringEB  [ringSize]float64

	// constants of the centred pair solve (see analyse)
	lagRot [8]complex128 // e^{-jw·lagLen}

	// decision
	cur, cand run
	ref       steadyRef
	fullOnly  bool // never take the steady-window shortcut (for tests)
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
	for k, f := range toneHz {
		w := 2 * math.Pi * f / rate8
		d.tolHz[k] = cfg.FreqTolerance*f + 1
		d.bandGain2[k] = bandPass.gain2(f, rate8)
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
	d.band = [4]float64{}
	d.dc = [2]float64{}
	d.hist = [ringSize * subLen]float64{}
	d.m, d.nsub = 0, 0
	d.ringE = [ringSize]float64{}
	for i := range d.binOf {
		d.binOf[i] = -1
	}
	d.winE = 0
	d.winXOf, d.rotOf = -1, -1
	d.bandSub = 0
	d.cur, d.cand = run{}, run{}
	d.ref = steadyRef{}
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
// band, the probes the steadiness test needs. Inside a steady key press the frequency
// measurement is skipped (see steadyRef).
//
// All levels are compared as powers (|X|², linear thresholds fixed in New): no logarithm or
// square root is taken per window.
func (d *Detector) analyse(h *hit) {
	last := d.nsub - 1
	ws := (last - winSubs + 1) * subLen
	e := d.windowEnergy(last - winSubs + 1)
	// Silence gate: by Cauchy–Schwarz no bin of the window can exceed N·E (E its energy), so
	// when N·E is below the cheap level test's pMin/2, with a factor 2 to spare for rounding,
	// no tone can pass it and the bins need not be computed.
	if 2*winLen*e < d.pMin*0.5 {
		return
	}
	d.windowBins(last)
	p := &d.winP
	x := func(k int) complex128 { return complex(d.winRe[k], d.winIm[k]) }
	// Cheap rejections first, on the strongest tone of each group: most windows are speech.
	maxR, maxC := d.winPeak[0], d.winPeak[1]
	if maxR < d.pMin*0.5 || maxC < d.pMin*0.5 || 2*(maxR+maxC) < 0.3*winLen*e*minRatioAll {
		return
	}
	// Raw relative peak: no other tone of a group within 3 dB of the group's strongest.
	if d.winArg[2] > 1 || d.winArg[3] > 1 {
		return
	}
	r, c := d.winArg[0], 4+d.winArg[1]
	idx := r*4 + c - 4
	if d.steadyWindow(h, idx, r, c, ws, e) {
		return
	}
	// The bins referenced to the centre of their window (see centre): there a tone's leakage into
	// a bin is real, so the pair is solved with a real 2×2 matrix, for both windows.
	for j := last - winSubs - lagSubs + 1; j <= last-winSubs; j++ {
		d.subBins(j)
	}
	pw, pl := phasePos(ws), phasePos(ws-lagLen)
	xr, xc := d.centre(r, x(r), pw), d.centre(c, x(c), pw)
	xpr, xpc := d.centre(r, d.lagged(last, r), pl), d.centre(c, d.lagged(last, c), pl)
	// Frequency of each tone from the phase advance of its DFT value over lagLen samples, then
	// refined with the other tone's leakage removed.
	dr, okr := d.offset(r, xr*d.lagRot[r], xpr, rawSlack)
	dc, okc := d.offset(c, xc*d.lagRot[c], xpc, rawSlack)
	if !okr || !okc {
		return
	}
	wr, wc := toneHz[r]*radPerHz, toneHz[c]*radPerHz
	// Two rounds of: solve for both tones' complex amplitudes in this window and the one lagLen
	// earlier at the current frequency estimates, then correct each estimate by the phase the
	// tone's amplitude turned through between the two. While a digit is on, its measured
	// frequencies are a better start and one round is enough.
	rounds := 2
	if d.cur.active && d.cur.idx == idx && d.cur.nD > 0 {
		dr, dc, rounds = d.cur.sumDr/float64(d.cur.nD), d.cur.sumDc/float64(d.cur.nD), 1
	}
	var ar, ac complex128 // amplitudes referenced to the window centre (|ar| is the tone's)
	var er, ec float64    // the frequency offsets (radians per sample) they were solved at
	pk := &pairKernels[r][c-4]
	for it := 0; it < rounds; it++ {
		er, ec = dr*radPerHz, dc*radPerHz
		// The four kernels D(fr−wr), D(fc−wr), D(fr−wc), D(fc−wc) from four small-angle sines
		// and cosines and the pair's table (see pairKernels); N/2 = lagLen, so the same
		// sin(ε·lagLen) also turns the amplitudes below.
		snr, cnr := math.Sincos(er * winLen / 2)
		snc, cnc := math.Sincos(ec * winLen / 2)
		m := pk.at(snr, cnr, snc, cnc, er, ec)
		m0, m1, m2, m3 := m[0], m[1], m[2], m[3]
		var br, bc complex128
		ar, ac = solveReal(xr, xc, m0, m1, m2, m3)
		br, bc = solveReal(xpr, xpc, m0, m1, m2, m3)
		// A centred amplitude turns by f·lagLen between the two windows on top of the tone's
		// own phase change: take it out (e^{-j·f·lagLen} = lagRot·e^{-j·ε·lagLen}).
		dr += phase(ar*d.lagRot[r]*complex(cnr, -snr), br) * hzPerLagRad
		dc += phase(ac*d.lagRot[c]*complex(cnc, -snc), bc) * hzPerLagRad
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
	tone := (pr + pc) * twoOverN
	rho := tone / e
	if rho < minRatioAll {
		return
	}
	// Only now, with a window that is a DTMF pair on every other count, is the band filter run.
	eb := max(d.bandEnergy(), 1e-9)
	rhoB := (pr*d.bandGain2[r] + pc*d.bandGain2[c]) * twoOverN / eb
	if rhoB < minRatioBand {
		return
	}
	// Relative peak: every other tone of each group must be relPeak weaker than the group's
	// tone. When the raw bins are not clear enough, the pair's leakage is removed first.
	fr, fc := wr+dr*radPerHz, wc+dc*radPerHz
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
			mid := float64(ws) + (winLen-1)/2.0
			sr, cr := math.Sincos((fr - wr - er) * mid)
			sc, cc := math.Sincos((fc - wc - ec) * mid)
			atr, atc, moved = ar*complex(cr, sr), ac*complex(cc, sc), true
		}
		wk := toneHz[k] * radPerHz
		res := d.centre(k, x(k), pw) - scale(atr, dirichlet(fr-wk)) - scale(atc, dirichlet(fc-wk))
		if (real(res)*real(res)+imag(res)*imag(res))*relPeak > own {
			return
		}
	}
	*h = hit{ok: true, idx: idx, rho: rhoB, rhoAll: rho, pr: pr, pc: pc, dr: dr, dc: dc}
	// A wide margin on every test (see steadyRef).
	h.clear = rho >= steadyMinRatio && d.wideMargin(pr, pc)
	if rho >= cleanRatio || (d.cur.active && d.cur.idx == idx) {
		return // the steadiness features are not needed (see steady)
	}
	if d.cand.active && d.cand.idx == idx && min(1, rhoB/max(d.cand.rhoMax, rhoB)) < 0.9 {
		return // a window at an edge of the tone: add will not count them
	}
	// Second harmonics and the difference tone: DTMF has neither, while a voice whose
	// harmonics k·f0 and m·f0 mimic a pair also has (m−k)·f0 and, often, 2k·f0 and 2m·f0.
	h.probed = true
	q := d.probes([3]float64{2 * (toneHz[r] + dr), 2 * (toneHz[c] + dc), toneHz[c] + dc - toneHz[r] - dr})
	h.h2r = q[0] / pr
	h.h2c = q[1] / pc
	h.hd = q[2] / min(pr, pc)
}

func sq(x float64) float64 { return x * x }

// steadyRef is the last window of the current run that had a full analysis and passed every
// test by a wide margin, in a run whose frequencies were measured at least twice and always within
// a third of the tolerance: the Dirichlet kernels of the pair solve at those frequencies are
// kept. While the key press goes on, steadyWindow analyses each following window with them: the
// pair's amplitudes (leakage solved away), levels, twist, energy shares of the whole band and of
// the DTMF band, and the relative peak are computed as in the full analysis, so the window's
// verdict and the timing drawn from it are those of the full analysis to within rounding; only
// the frequency measurement (two phase readings, up to two rounds of refinement) is skipped, and
// with it the tolerance test, which such a pair cannot fail within steadyRun windows. Knife-edge
// cases (a tone near the tolerance, the level floor or the twist limit) never get a reference, so
// they are always analysed in full; so is every steadyRun-th window, which renews the reference.
type steadyRef struct {
	valid  bool
	idx    int
	last   int64 // the last sub-block of the most recent window of the chain
	n      int   // windows since the full analysis
	dr, dc float64
	m      [4]float64    // D(εr), D(Δ+εc), D(−Δ+εr), D(εc) at dr, dc (see analyse)
	leak   [8][2]float64 // the pair's leakage into each other bin, computed when first needed
}

// Limits of the steady-window shortcut.
const (
	steadyRun      = 32  // at most this many windows (68 ms) in a row without a full analysis
	steadyMinRatio = 0.9 // the reference pair held this much of the window's energy
	steadyLevel    = 4.0 // its tones were this much (6 dB) above MinLevel...
	steadyTwist    = 2.0 // ...and this much (3 dB) inside the twist limits
)

// wideMargin reports whether tone powers pr, pc are well clear of the level and twist limits.
func (d *Detector) wideMargin(pr, pc float64) bool {
	return pr >= steadyLevel*d.pMin && pc >= steadyLevel*d.pMin &&
		steadyTwist*pr <= pc*d.normalTwist && steadyTwist*pc <= pr*d.revTwist
}

// steadyWindow analyses the window ending with the last sub-block, starting at ws with energy e,
// with the steady reference (see steadyRef), and reports whether it could.
func (d *Detector) steadyWindow(h *hit, idx, r, c int, ws int64, e float64) bool {
	f := &d.ref
	if !f.valid || f.idx != idx || f.last != d.nsub-2 || f.n >= steadyRun || d.fullOnly {
		return false
	}
	pw := phasePos(ws)
	xr := d.centre(r, complex(d.winRe[r], d.winIm[r]), pw)
	xc := d.centre(c, complex(d.winRe[c], d.winIm[c]), pw)
	ar, ac := solveReal(xr, xc, f.m[0], f.m[1], f.m[2], f.m[3])
	pr := sq(real(ar)*winLen) + sq(imag(ar)*winLen)
	pc := sq(real(ac)*winLen) + sq(imag(ac)*winLen)
	if !d.wideMargin(pr, pc) {
		return false // near a limit: the full analysis decides
	}
	f.last = d.nsub - 1
	f.n++
	rho := (pr + pc) * twoOverN / e
	if rho < minRatioAll {
		return true
	}
	eb := max(d.bandEnergy(), 1e-9)
	rhoB := (pr*d.bandGain2[r] + pc*d.bandGain2[c]) * twoOverN / eb
	if rhoB < minRatioBand {
		return true
	}
	// Relative peak, as in the full analysis: every other tone relPeak weaker than its group's,
	// in the raw bins or else once the pair's leakage is removed.
	p := &d.winP
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
		if f.leak[k] == [2]float64{} {
			wk := toneHz[k] * radPerHz
			f.leak[k] = [2]float64{dirichlet((toneHz[r]+f.dr)*radPerHz - wk), dirichlet((toneHz[c]+f.dc)*radPerHz - wk)}
		}
		res := d.centre(k, complex(d.winRe[k], d.winIm[k]), pw) - scale(ar, f.leak[k][0]) - scale(ac, f.leak[k][1])
		if (real(res)*real(res)+imag(res)*imag(res))*relPeak > own {
			return true
		}
	}
	h.ok, h.idx, h.rho, h.rhoAll, h.pr, h.pc, h.dr, h.dc, h.steady = true, idx, rhoB, rho, pr, pc, f.dr, f.dc, true
	return true
}

// renewRef keeps or drops the steady reference after the window h, once decide has added it to
// run.
func (d *Detector) renewRef(h *hit, run *run) {
	f := &d.ref
	switch {
	case !h.ok:
		// A confirmed digit's window that steadyWindow failed (its tone fading out, or a drop-out)
		// keeps the reference: what failed it was computed as in the full analysis.
		f.valid = f.valid && f.last == d.nsub-1 && d.cur.active && d.cur.idx == f.idx
	case h.clear && run != nil && run.idx == h.idx && run.nD >= 2 &&
		run.maxDr <= d.tolHz[h.idx/4]/3 && run.maxDc <= d.tolHz[4+h.idx%4]/3:
		dr, dc := h.dr, h.dc
		if run == &d.cur && run.nD > 0 {
			// a digit on: the next full analysis would start from its mean frequencies
			dr, dc = run.sumDr/float64(run.nD), run.sumDc/float64(run.nD)
		}
		r, c := h.idx/4, 4+h.idx%4
		*f = steadyRef{valid: true, idx: h.idx, last: d.nsub - 1, dr: dr, dc: dc}
		f.m = pairKernelsAt(r, c, dr*radPerHz, dc*radPerHz)
	case f.valid && f.idx == h.idx && f.last == d.nsub-1:
		// a window steadyWindow passed
	default:
		f.valid = false // a full analysis that passed without the margins, or another pair
	}
}

func scale(z complex128, f float64) complex128 { return complex(real(z)*f, imag(z)*f) }

// bandWarmSubs is how many sub-blocks before a window the band filter restarts from rest.
const bandWarmSubs = 3

// bandEnergy returns the energy of the DTMF band (the band filter's output) over the window that
// ends with the last completed sub-block. The filter runs over hist only for the windows that
// reach the band energy test, which almost no window of speech or silence does. Over a key press
// it continues from where it stopped, so it runs once over every sample exactly as a filter in
// the per-sample loop would; when it stopped more than bandWarmSubs sub-blocks before the window
// it restarts from rest that far back (51 samples). Its slowest pole has radius 0.733, so what it
// saw before a restart has decayed by 0.733^51 ≈ 1e-7 at the window's first sample (1e-14 in
// energy). The filter runs a sub-block at a time (see bandBlock).
func (d *Detector) bandEnergy() float64 {
	first := d.nsub - winSubs
	if d.bandSub < first-bandWarmSubs {
		d.band = [4]float64{}
		d.bandSub = first - bandWarmSubs
	}
	for j := d.bandSub; j < d.nsub; j++ {
		slot := j & (ringSize - 1)
		d.ringEB[slot] = bandBlock((*[subLen]float64)(d.hist[slot*subLen:]), &d.band)
	}
	d.bandSub = d.nsub
	var eb float64
	for j := first; j < d.nsub; j++ {
		eb += d.ringEB[j&(ringSize-1)]
	}
	return eb
}

// probes returns |X|² at each of hz over the current window (the last winSubs sub-blocks): three
// Goertzel resonators run side by side, so that their chains overlap.
func (d *Detector) probes(hz [3]float64) (p [3]float64) {
	c0, c1, c2 := 2*math.Cos(2*math.Pi*hz[0]/rate8), 2*math.Cos(2*math.Pi*hz[1]/rate8), 2*math.Cos(2*math.Pi*hz[2]/rate8)
	var a1, a2, b1, b2, e1, e2 float64
	for j := d.nsub - winSubs; j < d.nsub; j++ {
		for _, u := range (*[subLen]float64)(d.hist[(j&(ringSize-1))*subLen:]) {
			a0 := u + c0*a1 - a2
			b0 := u + c1*b1 - b2
			e0 := u + c2*e1 - e2
			a2, a1 = a1, a0
			b2, b1 = b1, b0
			e2, e1 = e1, e0
		}
	}
	return [3]float64{a1*a1 + a2*a2 - c0*a1*a2, b1*b1 + b2*b2 - c1*b1*b2, e1*e1 + e2*e2 - c2*e1*e2}
}

// Unit conversions: a frequency in Hz to radians per sample, a phase advance over lagLen samples
// to Hz, and the factor from a pair's powers |X|² to its energy in the window.
const (
	radPerHz    = 2 * math.Pi / rate8
	hzPerLagRad = rate8 / (2 * math.Pi * lagLen)
	twoOverN    = 2.0 / winLen
)

// rawSlack is how far (Hz) beyond the tolerance a first, leakage-biased frequency estimate may
// be before the window is rejected without refinement.
const rawSlack = 12.0

// offset measures tone k's frequency error in Hz from the phase advance of its bin over lagLen
// samples (xk now, xp lagLen earlier) and checks it against the tolerance plus slack.
func (d *Detector) offset(k int, xk, xp complex128, slack float64) (float64, bool) {
	hz := phase(xk, xp) * hzPerLagRad
	return hz, math.Abs(hz) <= d.tolHz[k]+slack
}

// phase is the angle of a·conj(b).
func phase(a, b complex128) float64 {
	return math.Atan2(imag(a)*real(b)-real(a)*imag(b), real(a)*real(b)+imag(a)*imag(b))
}

// pairKernels holds, for each row r and column c, sin and cos of N·Δ/2 and of Δ/2, with
// Δ = wc − wr the distance between the two bins: D(±Δ+ε) then follows from the sines and
// cosines of N·ε/2 and ε/2 by the angle-addition formulas.
type pairKernel struct{ sn, cn, sh, ch float64 }

var pairKernels = func() (t [4][4]pairKernel) {
	for r := range 4 {
		for c := range 4 {
			delta := 2 * math.Pi * (toneHz[4+c] - toneHz[r]) / rate8
			t[r][c].sn, t[r][c].cn = math.Sincos(delta * winLen / 2)
			t[r][c].sh, t[r][c].ch = math.Sincos(delta / 2)
		}
	}
	return t
}()

// at returns the four kernels D(εr), D(Δ+εc), D(−Δ+εr), D(εc) of the pair, given the sine and
// cosine of εr·N/2 and εc·N/2.
func (pk *pairKernel) at(snr, cnr, snc, cnc, er, ec float64) [4]float64 {
	shr, chr := sincosSmall(er / 2)
	shc, chc := sincosSmall(ec / 2)
	return [4]float64{
		ratio(snr, shr),
		ratio(pk.sn*cnc+pk.cn*snc, pk.sh*chc+pk.ch*shc),
		ratio(-pk.sn*cnr+pk.cn*snr, -pk.sh*chr+pk.ch*shr),
		ratio(snc, shc),
	}
}

// sincosSmall is math.Sincos, by Taylor series (to within an ulp) when |x| ≤ 1/16, as the
// half-angle of a frequency offset nearly always is.
func sincosSmall(x float64) (sin, cos float64) {
	if math.Abs(x) > 1.0/16 {
		return math.Sincos(x)
	}
	z := x * x
	sin = x + x*z*(-1.0/6+z*(1.0/120+z*(-1.0/5040+z*(1.0/362880))))
	cos = 1 + z*(-0.5+z*(1.0/24+z*(-1.0/720+z*(1.0/40320+z*(-1.0/3628800)))))
	return sin, cos
}

// pairKernelsAt returns the kernels of the pair of row r and column c at frequency offsets er, ec
// (radians per sample).
func pairKernelsAt(r, c int, er, ec float64) [4]float64 {
	snr, cnr := math.Sincos(er * winLen / 2)
	snc, cnc := math.Sincos(ec * winLen / 2)
	return pairKernels[r][c-4].at(snr, cnr, snc, cnc, er, ec)
}

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
	d.renewRef(h, d.step(h))
}

// step is decide without the steady reference: it returns the run it added h to, or nil.
func (d *Detector) step(h *hit) *run {
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
				c := min(1, h.rho/d.cur.rhoMax)
				if ws+winLen-int64(math.Round(c*winLen))-d.cur.lastEnd >= d.maxGap {
					restart = true
				}
			}
			if !restart {
				d.cur.misses = 0
				d.cur.add(h, ws)
				d.cand = run{}
				return &d.cur
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
		return nil
	}
	if !d.cand.active || d.cand.idx != h.idx {
		d.cand = run{active: true, idx: h.idx, firstWS: ws, firstRho: h.rho, lastEnd: we}
		d.stats.candidates++
	}
	d.cand.add(h, ws)
	start := d.cand.start()
	if d.cand.lastEnd-start < d.minDur || d.cand.windows < 3 {
		return &d.cand
	}
	if !d.cand.steady() {
		if !d.cand.blocked {
			d.cand.blocked = true
			d.stats.blocked++
		}
		return &d.cand
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
	return &d.cur
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
		}
		if r.nD > 0 {
			det.LowFreq = float32(toneHz[r.idx/4] + r.sumDr/float64(r.nD))
			det.HighFreq = float32(toneHz[4+r.idx%4] + r.sumDc/float64(r.nD))
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
