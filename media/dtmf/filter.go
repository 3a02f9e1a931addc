package dtmf

import (
	"math"
	"math/cmplx"
)

// biquad is one second-order IIR section in transposed direct form II (the detector runs it
// inline, see block).
type biquad struct {
	b0, b1, b2, a1, a2 float64
	z1, z2             float64
}

// response is the section's complex gain at angular frequency w (radians per sample).
func (q *biquad) response(w float64) complex128 {
	z1 := cmplx.Exp(complex(0, -w))
	z2 := z1 * z1
	num := complex(q.b0, 0) + complex(q.b1, 0)*z1 + complex(q.b2, 0)*z2
	den := 1 + complex(q.a1, 0)*z1 + complex(q.a2, 0)*z2
	return num / den
}

// newBiquad returns a low-pass (high=false) or high-pass section at fc Hz with quality q,
// from the bilinear transform with pre-warping (R. Bristow-Johnson's cookbook formulas).
func newBiquad(high bool, fc, q, fs float64) biquad {
	w0 := 2 * math.Pi * fc / fs
	cw, sw := math.Cos(w0), math.Sin(w0)
	alpha := sw / (2 * q)
	a0 := 1 + alpha
	var b0, b1 float64
	if high {
		b0, b1 = (1+cw)/2, -(1 + cw)
	} else {
		b0, b1 = (1-cw)/2, 1-cw
	}
	return biquad{b0: b0 / a0, b1: b1 / a0, b2: b0 / a0, a1: -2 * cw / a0, a2: (1 - alpha) / a0}
}

// bandFilter is the DTMF band-pass of the in-band energy test: a 2nd-order Butterworth
// high-pass and low-pass in cascade. (A 4th-order pair was tried: it found no more digits under
// speech and let more speech windows pass, at twice the cost.)
type bandFilter struct{ s [2]biquad }

func newBandFilter(lo, hi, fs float64) bandFilter {
	return bandFilter{s: [2]biquad{newBiquad(true, lo, math.Sqrt2/2, fs), newBiquad(false, hi, math.Sqrt2/2, fs)}}
}

// gain2 is the filter's power gain at hz.
func (f *bandFilter) gain2(hz, fs float64) float64 {
	w := 2 * math.Pi * hz / fs
	g := complex(1, 0)
	for i := range f.s {
		g *= f.s[i].response(w)
	}
	a := cmplx.Abs(g)
	return a * a
}

// bandPass is the band filter of the detector's in-band energy test (see bandEnergy).
var bandPass = newBandFilter(bandLo, bandHi, rate8)

// bandBlockGo runs bandPass over one sub-block x from the state s (both sections' z1, z2), which
// it updates, and returns the energy of its output.
func bandBlockGo(x *[subLen]float64, s *[4]float64) float64 {
	q0, q1 := &bandPass.s[0], &bandPass.s[1]
	q0b0, q0b1, q0b2, q0a1, q0a2 := q0.b0, q0.b1, q0.b2, q0.a1, q0.a2
	q1b0, q1b1, q1b2, q1a1, q1a2 := q1.b0, q1.b1, q1.b2, q1.a1, q1.a2
	q0z1, q0z2, q1z1, q1z2 := s[0], s[1], s[2], s[3]
	var eb float64
	for _, u := range x {
		f := q0b0*u + q0z1
		q0z1, q0z2 = q0b1*u-q0a1*f+q0z2, q0b2*u-q0a2*f
		g := q1b0*f + q1z1
		q1z1, q1z2 = q1b1*f-q1a1*g+q1z2, q1b2*f-q1a2*g
		eb += g * g
	}
	*s = [4]float64{q0z1, q0z2, q1z1, q1z2}
	return eb
}

// bandStateGo is bandBlockGo without the energy: it only moves the state s on by sub-block x.
func bandStateGo(x *[subLen]float64, s *[4]float64) {
	q0, q1 := &bandPass.s[0], &bandPass.s[1]
	q0b0, q0b1, q0b2, q0a1, q0a2 := q0.b0, q0.b1, q0.b2, q0.a1, q0.a2
	q1b0, q1b1, q1b2, q1a1, q1a2 := q1.b0, q1.b1, q1.b2, q1.a1, q1.a2
	q0z1, q0z2, q1z1, q1z2 := s[0], s[1], s[2], s[3]
	for _, u := range x {
		f := q0b0*u + q0z1
		q0z1, q0z2 = q0b1*u-q0a1*f+q0z2, q0b2*u-q0a2*f
		g := q1b0*f + q1z1
		q1z1, q1z2 = q1b1*f-q1a1*g+q1z2, q1b2*f-q1a2*g
	}
	*s = [4]float64{q0z1, q0z2, q1z1, q1z2}
}

// bandTable is bandPass over a whole sub-block as one linear map, for the vector kernel: the
// outputs g = T·x + C·s and the next state A·s + B·x, from the sub-block's samples x and the
// state s. Column m of T holds the response to a unit sample at m (zero above the diagonal, and
// padded to 20 rows), column i of C the response to a unit state i, column i of A the state that
// unit state i leaves after the sub-block, and column m of B the state a unit sample at m leaves.
type bandTable struct {
	t [subLen][20]float64
	c [4][20]float64
	a [4][4]float64
	b [subLen][4]float64
}

var bandTab = func() (t bandTable) {
	run := func(x *[subLen]float64, s *[4]float64) (g [20]float64) { // bandBlockGo, keeping the outputs
		q0, q1 := &bandPass.s[0], &bandPass.s[1]
		for n, u := range x {
			f := q0.b0*u + s[0]
			s[0], s[1] = q0.b1*u-q0.a1*f+s[1], q0.b2*u-q0.a2*f
			y := q1.b0*f + s[2]
			s[2], s[3] = q1.b1*f-q1.a1*y+s[3], q1.b2*f-q1.a2*y
			g[n] = y
		}
		return g
	}
	for m := range subLen {
		var x [subLen]float64
		var s [4]float64
		x[m] = 1
		t.t[m] = run(&x, &s)
		t.b[m] = s
	}
	for i := range 4 {
		var x [subLen]float64
		var s [4]float64
		s[i] = 1
		t.c[i] = run(&x, &s)
		t.a[i] = s
	}
	return t
}()

// Half-band decimator, 16 kHz to 8 kHz: a 47-tap Blackman-windowed sinc cut at a quarter of
// the input rate. Every other tap but the centre one is zero, so each output costs 12
// multiplications by symmetric pairs. Pass band flat to ±0.01 dB up to 2.5 kHz (the DTMF band
// and the second harmonics the detector checks), stop band ≥ 70 dB from 5.2 kHz.
const (
	hbTaps  = 47
	hbDelay = (hbTaps - 1) / 2 // group delay in input samples
)

var hbCoef = func() (c [hbTaps]float64) {
	var sum float64
	for i := range c {
		n := float64(i - hbDelay)
		var h float64
		if n == 0 {
			h = 0.5
		} else { // zero at even offsets from the centre
			h = math.Sin(math.Pi*n/2) / (math.Pi * n)
		}
		w := 0.42 - 0.5*math.Cos(2*math.Pi*float64(i)/(hbTaps-1)) + 0.08*math.Cos(4*math.Pi*float64(i)/(hbTaps-1))
		c[i] = h * w
		sum += c[i]
	}
	for i := range c {
		c[i] /= sum // unity gain at DC
	}
	return c
}()

// decimator turns 16 kHz samples into 8 kHz ones, keeping every second output of the half-band
// filter. It keeps the last hbTaps inputs in a buffer written twice (at i and i+hbTaps) so the
// filter reads a contiguous window.
type decimator struct {
	buf   [2 * hbTaps]float64
	pos   int
	phase int
}

// run decimates src into dst until dst is full or src is used up, and returns how many outputs
// it wrote and the unused input. The delay line is worked on in a local copy.
func (d *decimator) run(dst []float64, src []int16) (int, []int16) {
	buf, pos, phase := d.buf, d.pos, d.phase
	n, i := 0, 0
	for ; i < len(src) && n < len(dst); i++ {
		x := float64(src[i])
		buf[pos], buf[pos+hbTaps] = x, x
		pos++
		if pos == hbTaps {
			pos = 0
		}
		phase ^= 1
		if phase == 1 {
			continue
		}
		w := buf[pos : pos+hbTaps]
		y := hbCoef[hbDelay] * w[hbDelay]
		for k := 0; k < hbDelay; k += 2 {
			y += hbCoef[k] * (w[k] + w[hbTaps-1-k])
		}
		dst[n] = y
		n++
	}
	d.buf, d.pos, d.phase = buf, pos, phase
	return n, src[i:]
}

func (d *decimator) reset() { *d = decimator{} }
