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
	rate8   = 8000
	subLen  = 17
	winSubs = 6
	winLen  = subLen * winSubs // N = 102
	lagSubs = 3
	lagLen  = subLen * lagSubs
	// sub-blocks kept, a power of two: a window with its lag or the band filter's warm-up (9)
	// while feedWhole writes histAhead more, and the windows of pending probes (see measureProbes)
	ringSize = 32
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
	idx    int        // row*4+col
	rho    float64    // tone energy / band energy
	rhoAll float64    // tone energy / total energy
	probed bool       // the steadiness probes are wanted for this window (see probeReq)
	probe  [3]float64 // their frequencies: 2·f_low, 2·f_high, f_high − f_low
	pr, pc float64    // tone powers |X|², corrected for the frequency offset
	dr, dc float64    // frequency offsets in Hz

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
	// and over those of them that were probed (see analyse): second harmonic to fundamental
	// power of each tone, and power at the difference frequency to the weaker tone's
	nProbed        int
	sumH2r, sumH2c float64
	sumHd          float64
	pendHead       int // the probes of the last pendN of them are still to be measured (see probeReq)
	pendN          int
}

// start estimates the tone's start: the first window's energy ratio, against the largest one
// seen, tells what fraction of that window the tone covered.
func (r *run) start() int64 {
	c := 1.0
	if r.rhoMax > 0 {
		c = min(1, r.firstRho/r.rhoMax)
	}
	return r.firstWS + winLen - roundNonNeg(c*winLen)
}

// roundNonNeg is int64(math.Round(x)) for 0 ≤ x < 2⁵², where rounding half away from zero is
// rounding half up: x + 0.5 is then exact or rounds to a value with the same integer part, except
// for the largest double below 0.5, hence the first case. It costs an addition and a conversion
// where math.Round takes apart the bits of x.
func roundNonNeg(x float64) int64 {
	if x < 0.5 {
		return 0
	}
	return int64(x + 0.5)
}

// add accounts for one more passing window starting at ws, and reports whether the window lies
// inside the tone (its statistics were counted).
func (r *run) add(h *hit, ws int64) bool {
	r.windows++
	if h.rho > r.rhoMax {
		r.rhoMax = h.rho
	}
	c := 1.0
	if h.rho < r.rhoMax {
		c = h.rho / r.rhoMax
	}
	if end := ws + roundNonNeg(c*winLen); end > r.lastEnd {
		r.lastEnd = end
	}
	if c < 0.9 {
		return false // a window at an edge of the tone
	}
	if h.rhoAll > r.rhoAllMax {
		r.rhoAllMax = h.rhoAll
	}
	if h.probed {
		r.nProbed++ // its probes are summed by measureProbes
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
	return true
}

// addSteady is add for a window of the digit on that steadyWindow passed, with band energy ratio
// rho and tone powers pr, pc: it keeps only what a digit on uses (the timing and the mean levels;
// the extremes and the probes are for candidates, see steady, and such a window measured no
// frequency).
func (r *run) addSteady(rho, pr, pc float64, ws int64) {
	r.windows++
	if rho > r.rhoMax {
		r.rhoMax = rho
	}
	c := 1.0
	if rho < r.rhoMax {
		c = rho / r.rhoMax
	}
	if end := ws + roundNonNeg(c*winLen); end > r.lastEnd {
		r.lastEnd = end
	}
	if c < 0.9 {
		return
	}
	r.n++
	r.sumPr += pr
	r.sumPc += pc
}

// probeReq is a candidate's window whose steadiness probes (second harmonics and difference tone,
// see analyse) are still to be measured. They are needed only if the candidate reaches
// MinDuration without a window in which the pair dominates the whole band (see steady), which a
// clean key press always has; so they are measured when steady needs them, or just before the
// window's samples leave hist, in the order of the windows, and summed as they would have been
// when the window was added.
type probeReq struct {
	last   int64      // the window's last sub-block
	hz     [3]float64 // the frequencies to probe
	pr, pc float64    // the tones' powers in the window
}

// probeQueue bounds a candidate's pending probes: at most the windows whose samples are all still
// in hist (see measureProbes).
const probeQueue = 16

// queueProbe adds the probes of window h, which ends with the last sub-block, to the candidate's
// pending ones.
func (d *Detector) queueProbe(h *hit) {
	r := &d.cand
	d.pend[(r.pendHead+r.pendN)%probeQueue] = probeReq{last: d.nsub - 1, hz: h.probe, pr: h.pr, pc: h.pc}
	r.pendN++
}

// measureProbes measures the candidate's pending probes, oldest first: all of them if all is set,
// else those of the windows whose first sub-block may be overwritten before the next window is
// added (feedWhole writes up to histAhead sub-blocks ahead; at 16 kHz the decimator writes the
// next one sample by sample).
func (d *Detector) measureProbes(all bool) {
	r := &d.cand
	for r.pendN > 0 {
		q := &d.pend[r.pendHead]
		if !all && q.last-winSubs+1 > d.nsub+histAhead-1-ringSize {
			return
		}
		p := d.probes(q.last, q.hz)
		r.sumH2r += p[0] / q.pr
		r.sumH2c += p[1] / q.pc
		r.sumHd += p[2] / min(q.pr, q.pc)
		r.pendHead = (r.pendHead + 1) % probeQueue
		r.pendN--
	}
}

// bins holds the front end's DFTs at the eight tones (see subBins and windowBins); foldStep works
// on it as a whole.
type bins struct {
	ringRe [ringSize][8]float64 // DFT of each sub-block at the eight tones, phase referenced to sample 0
	ringIm [ringSize][8]float64
	rotRe  [8]float64 // e^{-jw·c}, c the centre of sub-block rotOf (see subBins)
	rotIm  [8]float64
	// the DFT of the window ending with sub-block winXOf, its power, and the strongest tones of
	// each group (see peaks)
	winRe, winIm, winP [8]float64
	winPeak            [4]float64
	winArg             [4]int
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
	dec   decimator
	dc    [2]float64                 // the DC blocker's last input and output (see dcBlock)
	stage [subLen]int16              // the current sub-block's 8 kHz samples until it is whole
	hist  [ringSize * subLen]float64 // the last ringSize sub-blocks after the DC blocker, sub-block j at (j mod ringSize)·subLen
	m     int                        // samples in the current sub-block
	nsub  int64                      // completed sub-blocks
	ringE [ringSize]float64          // energy of each sub-block
	winE  float64                    // energy of the current window
	bins
	binOf  [ringSize]int64 // the sub-block whose DFT ringRe, ringIm hold (computed lazily), or -1
	rotOf  int64           // the sub-block rotRe, rotIm turn next
	winXOf int64           // the last sub-block of the window winRe, winIm hold
	winXN  int             // windows since winRe, winIm were last summed afresh

	// The DTMF band filter runs lazily over hist, only for windows that get as far as the band
	// energy test (see bandEnergy).
	band    [4]float64 // the band filter's state (see bandBlock)
	bandSub int64      // sub-blocks the band filter has consumed
	ringEB  [ringSize]float64

	// constants of the centred pair solve (see analyse)
	lagRot [8]complex128 // e^{-jw·lagLen}

	// decision
	cur, cand run
	pend      [probeQueue]probeReq // the candidate's pending probes (see probeReq)
	ref       steadyRef
	chain     int64 // nsub at which the next window follows on from a steady one (see steadyRun)
	stats     detectorStats

	// for tests: never take the steady-window shortcut (every window gets the full analysis);
	// never take steadyRun or quietRun (every window goes through analyse and decide); measure the
	// steadiness probes as each window is added
	fullOnly, noNext, eagerProbes bool

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
	d.chain = -1
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
	d.analyseBins(h, last, ws, e)
}

// analyseBins is analyse once the window's bins are computed: the window ends with sub-block last,
// starts at sample ws and has energy e.
func (d *Detector) analyseBins(h *hit, last, ws int64, e float64) {
	p := &d.winP
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
		if d.binOf[j&(ringSize-1)] != j {
			d.subBins(j)
		}
	}
	pw, pl := phasePos(ws), phasePos(ws-lagLen)
	xr, xc := d.centre(r, complex(d.winRe[r], d.winIm[r]), pw), d.centre(c, complex(d.winRe[c], d.winIm[c]), pw)
	lr, lc := d.lagged(last, r, c)
	xpr, xpc := d.centre(r, lr, pl), d.centre(c, lc, pl)
	// Frequency of each tone from the phase advance of its DFT value over lagLen samples, then
	// refined with the other tone's leakage removed. Two rounds of: solve for both tones' complex
	// amplitudes in this window and the one lagLen earlier at the current frequency estimates,
	// then correct each estimate by the phase the tone's amplitude turned through between the two.
	// While a digit is on, its measured frequencies are a better start and one round is enough;
	// the first measurement then only has to pass the slack (and its phasors are not needed).
	on := d.cur.active && d.cur.idx == idx && d.cur.nD > 0
	dr, ur, okr := d.offset(r, xr*d.lagRot[r], xpr, rawSlack, !on)
	dc, uc, okc := d.offset(c, xc*d.lagRot[c], xpc, rawSlack, !on)
	if !okr || !okc {
		return
	}
	wr, wc := toneHz[r]*radPerHz, toneHz[c]*radPerHz
	rounds := 2
	if on {
		dr, dc, rounds = d.cur.sumDr/float64(d.cur.nD), d.cur.sumDc/float64(d.cur.nD), 1
	}
	var ar, ac complex128 // amplitudes referenced to the window centre (|ar| is the tone's)
	var er, ec float64    // the frequency offsets (radians per sample) they were solved at
	pk := &pairKernels[r][c-4]
	for it := 0; it < rounds; it++ {
		er, ec = dr*radPerHz, dc*radPerHz
		// The four kernels D(fr−wr), D(fc−wr), D(fr−wc), D(fc−wc) from four small-angle sines
		// and cosines and the pair's table (see pairKernels); N/2 = lagLen, so the same
		// sin(ε·lagLen) also turns the amplitudes below. ε·lagLen is the sum of the phase
		// advances measured so far, so its sine and cosine are those of ur, uc (the product of
		// those advances' unit phasors) when they are known, and no sine or cosine of it need
		// be taken; only when the round starts from a digit's mean frequencies are they.
		snr, cnr := imag(ur), real(ur)
		if ur == 0 {
			snr, cnr = math.Sincos(er * winLen / 2)
		}
		snc, cnc := imag(uc), real(uc)
		if uc == 0 {
			snc, cnc = math.Sincos(ec * winLen / 2)
		}
		// pk.at, written out (with sincosSmall's Taylor case) so that this chain of dependent
		// steps does not go through calls
		var shr, chr, shc, chc float64
		if hr := er / 2; math.Abs(hr) > 1.0/16 {
			shr, chr = math.Sincos(hr)
		} else {
			z := hr * hr
			shr = hr + hr*z*(-1.0/6+z*(1.0/120+z*(-1.0/5040+z*(1.0/362880))))
			chr = 1 + z*(-0.5+z*(1.0/24+z*(-1.0/720+z*(1.0/40320+z*(-1.0/3628800)))))
		}
		if hc := ec / 2; math.Abs(hc) > 1.0/16 {
			shc, chc = math.Sincos(hc)
		} else {
			z := hc * hc
			shc = hc + hc*z*(-1.0/6+z*(1.0/120+z*(-1.0/5040+z*(1.0/362880))))
			chc = 1 + z*(-0.5+z*(1.0/24+z*(-1.0/720+z*(1.0/40320+z*(-1.0/3628800)))))
		}
		m0 := ratio(snr, shr)
		m1 := ratio(pk.sn*cnc+pk.cn*snc, pk.sh*chc+pk.ch*shc)
		m2 := ratio(-pk.sn*cnr+pk.cn*snr, -pk.sh*chr+pk.ch*shr)
		m3 := ratio(snc, shc)
		// The two tones' amplitudes from their two bins, each bin holding its own tone plus the
		// other's leakage: xr = ar·m0 + ac·m1, xc = ar·m2 + ac·m3, a real matrix, solved for both
		// windows. Removing the leakage matters when the tones are close (941 and 1209 Hz are 3.4
		// bins apart, where the rectangular window's side lobe is −21 dB) and one is much weaker
		// (twist).
		var br, bc complex128
		ar, ac = 0, 0
		if det := m0*m3 - m1*m2; det != 0 {
			inv := 1 / det
			s0, s1, s2, s3 := m3*inv, m1*inv, m0*inv, m2*inv
			ar, ac = scale(xr, s0)-scale(xc, s1), scale(xc, s2)-scale(xr, s3)
			br, bc = scale(xpr, s0)-scale(xpc, s1), scale(xpc, s2)-scale(xpr, s3)
		}
		// A centred amplitude turns by f·lagLen between the two windows on top of the tone's
		// own phase change: take it out (e^{-j·f·lagLen} = lagRot·e^{-j·ε·lagLen}).
		zr, zc := ar*d.lagRot[r]*complex(cnr, -snr), ac*d.lagRot[c]*complex(cnc, -snc)
		if it+1 < rounds {
			pr, vr := phaseUnit(zr, br)
			pc, vc := phaseUnit(zc, bc)
			dr += pr * hzPerLagRad
			dc += pc * hzPerLagRad
			ur, uc = mulUnit(ur, vr), mulUnit(uc, vc)
		} else {
			dr += phase(zr, br) * hzPerLagRad // the last round: no phasor is needed
			dc += phase(zc, bc) * hzPerLagRad
		}
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
	if d.winPeak[2]*relPeak > pr || d.winPeak[3]*relPeak > pc { // else every raw bin passes (see peaks)
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
			res := d.centre(k, complex(d.winRe[k], d.winIm[k]), pw) - scale(atr, dirichlet(fr-wk)) - scale(atc, dirichlet(fc-wk))
			if (real(res)*real(res)+imag(res)*imag(res))*relPeak > own {
				return
			}
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
	h.probe = [3]float64{2 * (toneHz[r] + dr), 2 * (toneHz[c] + dc), toneHz[c] + dc - toneHz[r] - dr}
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
	inv    [4]float64    // m3, m1, m0, m2 over the determinant: the solve of analyse
	r, c   int           // the pair's row and column (4…7)
	gr, gc float64       // the band filter's power gain at their frequencies (bandGain2)
	pk     [6]float64    // the coefficients of steadyPowers
	dm     uint32        // the row's tone minus the column's, in whole hertz mod 8000
	hv     complex128    // e^{j(wr−wc)(N−1)/2}
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
	pr, pc := d.steadyPowers(r, c, pw)
	if !d.wideMargin(pr, pc) {
		return false // near a limit: the full analysis decides
	}
	f.last = d.nsub - 1
	f.n++
	rho := (pr + pc) * twoOverN / e
	if rho < minRatioAll {
		return true
	}
	var eb float64
	if d.bandSub == d.nsub-1 {
		// the band filter ran up to the window before: one more sub-block (bandEnergy's common case)
		slot := (d.nsub - 1) & (ringSize - 1)
		d.ringEB[slot] = bandBlock((*[subLen]float64)(d.hist[slot*subLen:]), &d.band)
		d.bandSub = d.nsub
		eb = d.bandSum()
	} else {
		eb = d.bandEnergy()
	}
	d.chain = d.nsub + 1
	if eb < 1e-9 {
		eb = 1e-9
	}
	rhoB := (pr*d.bandGain2[r] + pc*d.bandGain2[c]) * twoOverN / eb
	if rhoB < minRatioBand {
		return true
	}
	// Relative peak, as in the full analysis: every other tone relPeak weaker than its group's,
	// in the raw bins or else once the pair's leakage is removed. The raw bins pass when the
	// strongest of the others does (see peaks), as they nearly always do in a key press.
	if (d.winPeak[2]*relPeak > pr || d.winPeak[3]*relPeak > pc) && !d.steadyRelPeak(r, c, pw, pr, pc) {
		return true
	}
	h.ok, h.idx, h.rho, h.rhoAll, h.pr, h.pc, h.dr, h.dc, h.steady = true, idx, rhoB, rho, pr, pc, f.dr, f.dc, true
	return true
}

// steadyRun closes the first sub-blocks whose energies after the DC blocker are es, one by one,
// for as long as each window is the common case inside a key press, which closeSubs recognises by
// d.chain: the window before passed steadyWindow as far as the band energy, for the digit on or for
// the candidate, so this window's bins and band energy follow on from that window's. For each it
// does what endSub (its bookkeeping of the sub-block), windowBins, analyse, steadyWindow and decide
// would, with the same operations in the same order, without their general checks (TestRuns
// compares the detections to the bit): steadyWindows takes the windows, and decides for those
// that pass (see there); what the others come to is decided here. It returns how many sub-blocks
// it closed: it stops, before closing it, at a sub-block whose window is not such a case (silence,
// the window sums started afresh, the reference to renew, no digit on or candidate for the
// reference's pair), and after one whose window, its bins computed, does not pass steadyWindow and
// goes on through analyseBins and decide, or fails.
func (d *Detector) steadyRun(es []float64) int {
	f := &d.ref
	n := 0
	for n < len(es) {
		// d.chain == d.nsub+1: the reference was last used for the window before (f.last ==
		// d.nsub-1, not fullOnly), whose bins and band energy were computed, and the next
		// sub-block's phasor follows on from that window's last sub-block (rotOf == d.nsub;
		// subBins).
		on := d.cur.active && d.cur.idx == f.idx && d.cur.misses == 0 && !d.cand.active
		if d.chain != d.nsub+1 || !f.valid || !on && (d.cur.active || !d.cand.active || d.cand.idx != f.idx) {
			return n
		}
		var o runOut
		n += steadyWindows(d, es[n:], on, &o)
		switch o.code {
		case stopBefore:
			return n
		case stopCheap, stopWeak, stopBand:
			d.decide(&hit{}) // (for stopCheap: analyseBins would fail it at once)
			return n
		case stopFull:
			var h hit
			d.analyseBins(&h, d.nsub-1, o.ws, o.we)
			d.decide(&h)
			return n
		case stopCand:
			d.candTail() // the rest of step, for the candidate's window steadyWindows added
			continue
		case stopPeak:
			// the relative peak, once the pair's leakage is removed
			if !d.steadyRelPeak(f.r, f.c, phasePos(o.ws), o.pr, o.pc) {
				d.decide(&hit{})
				return n
			}
		}
		// The window passed steadyWindow (after stopPeak): decide.
		if !on {
			// for the candidate: step (renewRef keeps the reference for such a window)
			h := hit{ok: true, idx: f.idx, rho: o.rhoB, rhoAll: o.rho, pr: o.pr, pc: o.pc, dr: f.dr, dc: f.dc, steady: true}
			d.step(&h)
			continue
		}
		d.stats.windows++ // for the digit on
		d.stats.passed++
		d.cur.addSteady(o.rhoB, o.pr, o.pc, o.ws)
	}
	return n
}

// runOut is what steadyWindows and quietWindows report about the window they stopped at.
type runOut struct {
	code   int     // how it stopped
	we     float64 // the window's energy (windowEnergy's)
	ws     int64   // its first sample
	pr, pc float64 // steadyWindow's tone powers
	rho    float64 // and its energy shares of the whole window and of the DTMF band
	rhoB   float64
}

// How steadyWindows and quietWindows stopped (runOut.code), at the last window they took unless
// stopBefore.
const (
	stopBefore = iota // before a window that is not their case, or with es used up
	stopCheap         // analyseBins's first test failed
	stopFull          // the strongest tones are not the reference's pair, or their powers are near
	// a limit (wideMargin): the full analysis decides
	stopWeak // the pair's share of the window's energy is below minRatioAll
	stopBand // its share of the DTMF band's energy is below minRatioBand
	stopPeak // the raw bins did not pass the relative peak test: steadyRelPeak decides
	stopCand // the window passed steadyWindow and was added to the candidate, which has pending
	// probes or is long enough: candTail does the rest of step
	stopPass   // quietWindows's window passed analyseBins's first two tests
	stopFailed // quietWindows's window failed, with a candidate or reference to drop or the digit
	// on to end (failed)
)

// steadyWindowsGo is steadyWindows in Go. It takes the windows that end with the sub-blocks whose
// energies are es, one by one, as steadyRun's case (see there; steadyRun has checked the first):
// endSub's bookkeeping of the sub-block, windowBins and analyse's cheap tests (foldNext), and
// steadyWindow, up to the band energy and the relative peak on the raw bins. For a window that
// passes it also does decide and goes on to the next window: addSteady for the digit on (on), and
// for the candidate the start of step, which adds the window, when all the candidate then does is
// wait for more windows. It stops at any other outcome, which o reports, with what steadyRun needs
// to finish the window.
func steadyWindowsGo(d *Detector, es []float64, on bool, o *runOut) int {
	f := &d.ref
	r, c := f.r, f.c
	for i, e := range es {
		j := d.nsub // the sub-block to close, the last of the window
		if f.n >= steadyRun || d.winXN >= 255 || j&255 == 0 {
			o.code = stopBefore // the reference to renew, windowBins's fresh sums, endSub's
			return i
		}
		// endSub: the window sum (slot is not old), the silence gate, the bookkeeping
		slot, old, w, we := d.closingWindow(j, e)
		if 2*winLen*we < d.pMin*0.5 {
			o.code = stopBefore
			return i
		}
		d.ringE[slot] = e
		d.winE = w
		d.m = 0
		d.nsub = j + 1
		// windowBins: the sub-block's DFT, its phasor carried on from the sub-block before
		// (subBins), and the window's moved on by one sub-block, and analyse's cheap tests (the
		// first with foldNext), which must find the reference's pair
		x := (*[subLen]float64)(d.hist[slot*subLen:])
		lim := [2]float64{d.pMin * 0.5, 0.3 * winLen * we * minRatioAll}
		pass := foldNext(x, &d.bins, int(slot), int(old), &lim)
		d.rotOf, d.binOf[slot] = j+1, j
		d.winXN++
		d.winXOf = j
		ws := (j - winSubs + 1) * subLen
		o.we, o.ws = we, ws
		if !pass {
			o.code = stopCheap
			return i + 1
		}
		if d.winArg[2] > 1 || d.winArg[3] > 1 || d.winArg[0] != r || 4+d.winArg[1] != c {
			o.code = stopFull
			return i + 1
		}
		// steadyWindow
		pr, pc := d.steadyPowers(r, c, phasePos(ws))
		if !d.wideMargin(pr, pc) {
			o.code = stopFull
			return i + 1
		}
		f.last = j
		f.n++
		rho := (pr + pc) * twoOverN / we
		if rho < minRatioAll {
			o.code = stopWeak
			return i + 1
		}
		d.ringEB[slot] = bandBlock(x, &d.band)
		d.bandSub = d.nsub
		d.chain = d.nsub + 1
		eb := d.bandSum()
		if eb < 1e-9 {
			eb = 1e-9
		}
		rhoB := (pr*f.gr + pc*f.gc) * twoOverN / eb
		o.pr, o.pc, o.rho, o.rhoB = pr, pc, rho, rhoB
		switch {
		case rhoB < minRatioBand:
			o.code = stopBand
			return i + 1
		case d.winPeak[2]*relPeak > pr || d.winPeak[3]*relPeak > pc: // else every raw bin passes (see peaks)
			o.code = stopPeak
			return i + 1
		}
		d.stats.windows++
		d.stats.passed++
		if on {
			d.cur.addSteady(rhoB, pr, pc, ws) // decide, for the digit on
			continue
		}
		// decide for the candidate: step, which adds the window and, unless the candidate has
		// pending probes or is long enough, only waits for more (else candTail is left to
		// steadyRun); renewRef keeps the reference for such a window
		h := hit{ok: true, idx: f.idx, rho: rhoB, rhoAll: rho, pr: pr, pc: pc, dr: f.dr, dc: f.dc, steady: true}
		d.cand.add(&h, ws)
		if d.cand.pendN > 0 || !d.cand.waiting(d.minDur) {
			o.code = stopCand
			return i + 1
		}
	}
	o.code = stopBefore
	return len(es)
}

// steadyPowers returns the powers |X|² of the reference pair's tones, row r and column c, in the
// window whose first sample has phasePos pw, with each tone's leakage into the other's bin solved
// away at the reference's frequencies. With xr, xc the two bins centred on the window (see centre)
// and ar = s0·xr − s1·xc, ac = s2·xc − s3·xr the solved amplitudes (s the reference's inverse
// kernels, which are real), N²|ar|² and N²|ac|² follow from the bins' powers |xr|² = p[r] and
// |xc|² = p[c] (centring only turns a bin) and from Re(xr·conj(xc)); centring turns xr·conj(xc) by
// e^{j(wr−wc)(pw+(N−1)/2)}, one look-up in the tables of turn for the tones' difference, where
// centring the two bins takes two and four complex products.
func (d *Detector) steadyPowers(r, c int, pw uint32) (pr, pc float64) {
	f := &d.ref
	m := f.dm * pw % rate8
	t := turnHi[m>>6] * turnLo[m&63] // e^{−j(wr−wc)·pw}
	v := complex(real(t), -imag(t)) * f.hv
	z := complex(d.winRe[r], d.winIm[r]) * complex(d.winRe[c], -d.winIm[c])
	x := real(z)*real(v) - imag(z)*imag(v) // Re(xr·conj(xc))
	k := &f.pk
	pR, pC := d.winP[r], d.winP[c]
	return k[0]*pR + k[1]*pC - k[2]*x, k[3]*pC + k[4]*pR - k[5]*x
}

// steadyRelPeak is the relative peak test of steadyWindow once the raw bins did not pass it at
// once: every other tone of each group relPeak weaker than its group's once the pair's leakage
// (amplitudes ar, ac at the reference's frequencies) is removed. pw is phasePos of the window's
// first sample.
func (d *Detector) steadyRelPeak(r, c int, pw uint32, pr, pc float64) bool {
	f := &d.ref
	xr := d.centre(r, complex(d.winRe[r], d.winIm[r]), pw)
	xc := d.centre(c, complex(d.winRe[c], d.winIm[c]), pw)
	ar := scale(xr, f.inv[0]) - scale(xc, f.inv[1]) // analyse's solve with the reference's kernels
	ac := scale(xc, f.inv[2]) - scale(xr, f.inv[3])
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
			return false
		}
	}
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
		*f = steadyRef{valid: true, idx: h.idx, last: d.nsub - 1, dr: dr, dc: dc, r: r, c: c, gr: d.bandGain2[r], gc: d.bandGain2[c]}
		f.m = pairKernelsAt(r, c, dr*radPerHz, dc*radPerHz)
		if det := f.m[0]*f.m[3] - f.m[1]*f.m[2]; det != 0 {
			inv := 1 / det
			f.inv = [4]float64{f.m[3] * inv, f.m[1] * inv, f.m[0] * inv, f.m[2] * inv}
			const n2 = winLen * winLen // the coefficients of steadyPowers
			s0, s1, s2, s3 := f.inv[0], f.inv[1], f.inv[2], f.inv[3]
			f.pk = [6]float64{n2 * s0 * s0, n2 * s1 * s1, 2 * n2 * s0 * s1, n2 * s2 * s2, n2 * s3 * s3, 2 * n2 * s2 * s3}
		}
		f.dm = (rate8 + toneInt[r] - toneInt[c]) % rate8
		dw := (toneHz[r] - toneHz[c]) * radPerHz * (winLen - 1) / 2
		f.hv = complex(math.Cos(dw), math.Sin(dw))
		if !d.fullOnly {
			// This window's bins and band energy were computed (it passed every test) and the
			// reference was just set from it, as steadyRun requires of the window before: the
			// next window can go there at once (its general path would do the same through
			// steadyWindow).
			d.chain = d.nsub + 1
		}
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
	j := d.bandSub
	for ; j < first; j++ {
		// before the window: no window will use these sub-blocks' energies
		bandState((*[subLen]float64)(d.hist[(j&(ringSize-1))*subLen:]), &d.band)
	}
	for ; j < d.nsub; j++ {
		slot := j & (ringSize - 1)
		d.ringEB[slot] = bandBlock((*[subLen]float64)(d.hist[slot*subLen:]), &d.band)
	}
	d.bandSub = d.nsub
	return d.bandSum()
}

// bandSum adds up the band energies of the window's sub-blocks, oldest first.
func (d *Detector) bandSum() float64 {
	j := d.nsub - winSubs
	b := &d.ringEB
	const m = ringSize - 1
	return b[j&m] + b[(j+1)&m] + b[(j+2)&m] + b[(j+3)&m] + b[(j+4)&m] + b[(j+5)&m]
}

// probes returns |X|² at each of hz over the window ending with sub-block last (whose samples
// must still be in hist): three Goertzel resonators run side by side, so that their chains
// overlap.
func (d *Detector) probes(last int64, hz [3]float64) (p [3]float64) {
	c0, c1, c2 := 2*math.Cos(2*math.Pi*hz[0]/rate8), 2*math.Cos(2*math.Pi*hz[1]/rate8), 2*math.Cos(2*math.Pi*hz[2]/rate8)
	var a1, a2, b1, b2, e1, e2 float64
	for j := last - winSubs + 1; j <= last; j++ {
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
// samples (xk now, xp lagLen earlier) and checks it against the tolerance plus slack. With unit
// set it also returns e^{j·advance} (see phaseUnit), else 0.
func (d *Detector) offset(k int, xk, xp complex128, slack float64, unit bool) (float64, complex128, bool) {
	var ph float64
	var u complex128
	if unit {
		ph, u = phaseUnit(xk, xp)
	} else {
		ph = phase(xk, xp) // phaseUnit's angle, the same operations
	}
	hz := ph * hzPerLagRad
	return hz, u, math.Abs(hz) <= d.tolHz[k]+slack
}

// phase is the angle of a·conj(b) (short enough to be inlined into the chains of the full
// analysis).
func phase(a, b complex128) float64 {
	c := a * complex(real(b), -imag(b))
	return atan2(imag(c), real(c))
}

// atan2 is math.Atan2, with the same operations (the Cephes method of math.Atan: math's atan and
// satan) written out in one function for the common case of two finite, non-zero arguments, so
// that the full analysis does not pay for the special cases and three nested calls six times per
// window; the other cases go to math.Atan2.
func atan2(y, x float64) float64 {
	const (
		big      = 1e300                       // beyond it (and for NaN) math.Atan2 decides
		morebits = 6.123233995736765886130e-17 // π/2 = PIO2 + morebits
		tan3pio8 = 2.41421356237309504880      // tan(3π/8)
	)
	if y == 0 || x == 0 || !(math.Abs(y) < big && math.Abs(x) < big) {
		return math.Atan2(y, x)
	}
	// q = atan(y/x), by its odd symmetry from |y/x|
	t := y / x
	neg := t < 0
	if neg {
		t = -t
	}
	var q float64
	switch {
	case t <= 0.66:
		q = xatan(t)
	case t > tan3pio8:
		q = math.Pi/2 - xatan(1/t) + morebits
	default:
		q = math.Pi/4 + xatan((t-1)/(t+1)) + 0.5*morebits
	}
	if neg {
		q = -q
	}
	if x < 0 {
		if q <= 0 {
			return q + math.Pi
		}
		return q - math.Pi
	}
	return q
}

// xatan is math's xatan: atan(x) for 0 ≤ x ≤ 0.66.
func xatan(x float64) float64 {
	const (
		p0 = -8.750608600031904122785e-01
		p1 = -1.615753718733365076637e+01
		p2 = -7.500855792314704667340e+01
		p3 = -1.228866684490136173410e+02
		p4 = -6.485021904942025371773e+01
		q0 = +2.485846490142306297962e+01
		q1 = +1.650270098316988542046e+02
		q2 = +4.328810604912902668951e+02
		q3 = +4.853903996359136964868e+02
		q4 = +1.945506571482613964425e+02
	)
	z := x * x
	z = z * ((((p0*z+p1)*z+p2)*z+p3)*z + p4) / (((((z+q0)*z+q1)*z+q2)*z+q3)*z + q4)
	return x*z + x
}

// phaseUnit is phase, and e^{j·phase} as a·conj(b) normalised, without trigonometry; the phasor is
// 0 (unknown) when a·conj(b) is too small or too large to normalise, and the caller then takes
// the sine and cosine of the angle instead.
func phaseUnit(a, b complex128) (float64, complex128) {
	y := imag(a)*real(b) - real(a)*imag(b)
	x := real(a)*real(b) + imag(a)*imag(b)
	var u complex128
	if r2 := x*x + y*y; r2 > 1e-200 && r2 < 1e200 {
		inv := 1 / math.Sqrt(r2)
		u = complex(x*inv, y*inv)
	}
	return atan2(y, x), u
}

// mulUnit multiplies two unit phasors, either of which may be unknown (0, see phaseUnit).
func mulUnit(u, v complex128) complex128 {
	if u == 0 || v == 0 {
		return 0
	}
	return u * v
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
	if !h.ok && !d.cur.active {
		// Nearly every window of silence and speech: nothing to extend, end or keep.
		d.stats.windows++
		if d.cand.active {
			d.cand = run{}
		}
		d.ref.valid = false
		return
	}
	if h.steady && d.cur.active && d.cur.idx == h.idx && d.cur.misses == 0 {
		// The key press goes on: step and renewRef reduced to what they do for such a window.
		d.stats.windows++
		d.stats.passed++
		d.cur.addSteady(h.rho, h.pr, h.pc, (d.nsub-winSubs)*subLen)
		if d.cand.active {
			d.cand = run{}
		}
		return
	}
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
				if ws+winLen-roundNonNeg(c*winLen)-d.cur.lastEnd >= d.maxGap {
					restart = true
				}
			}
			if !restart {
				d.cur.misses = 0
				d.cur.add(h, ws)
				if d.cand.active {
					d.cand = run{}
				}
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
		if d.cand.active {
			d.cand = run{} // a candidate must pass every window: bridging is for confirmed digits
		}
		return nil
	}
	if !d.cand.active || d.cand.idx != h.idx {
		d.cand = run{active: true, idx: h.idx, firstWS: ws, firstRho: h.rho, lastEnd: we}
		d.stats.candidates++
	}
	if d.cand.add(h, ws) && h.probed {
		d.queueProbe(h)
		if d.eagerProbes {
			d.measureProbes(true)
		}
	}
	return d.candTail()
}

// waiting reports whether the candidate r is too short to be confirmed yet (see step).
func (r *run) waiting(minDur int64) bool {
	return r.lastEnd-r.start() < minDur || r.windows < 3
}

// candTail is the end of step for a window just added to the candidate: the pending probes whose
// samples are about to leave hist, then, once the candidate is long enough, the steadiness test
// and the confirmation.
func (d *Detector) candTail() *run {
	if d.cand.pendN > 0 {
		d.measureProbes(false)
	}
	if d.cand.waiting(d.minDur) {
		return &d.cand
	}
	if d.cand.pendN > 0 && d.cand.rhoAllMax < cleanRatio {
		d.measureProbes(true) // steady needs them
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
