package asterisk

import "math"

// A 2:1 resampler between 16 kHz (Asterisk's slin16) and the 8 kHz the flow works in, built on
// one linear-phase half-band low-pass FIR: the anti-alias filter when decimating and the
// image filter when interpolating.
//
// The filter is a windowed sinc with its cut-off at a quarter of the 16 kHz rate (4 kHz), 63
// taps, Kaiser window β = 6: flat to about 3.4 kHz (the telephone band), at least 60 dB down
// from about 4.6 kHz, and a half-band filter, so every second tap is zero and interpolation
// passes the original samples through unchanged. It costs 63 multiply-adds per 8 kHz sample,
// about 10 000 per 20 ms frame.

const (
	halfBandTaps  = 63
	halfBandDelay = (halfBandTaps - 1) / 2 // group delay, in 16 kHz samples
	kaiserBeta    = 6.0
)

var halfBand = designHalfBand()

func designHalfBand() [halfBandTaps]float32 {
	var h [halfBandTaps]float64
	i0b := besselI0(kaiserBeta)
	var odd float64
	for n := range h {
		k := n - halfBandDelay
		if k == 0 || k%2 == 0 {
			continue // the centre is set below; even offsets are zero in a half-band filter
		}
		x := float64(k) / 2
		sinc := math.Sin(math.Pi*x) / (math.Pi * x)
		r := 2*float64(n)/float64(halfBandTaps-1) - 1
		w := besselI0(kaiserBeta*math.Sqrt(1-r*r)) / i0b
		h[n] = 0.5 * sinc * w
		odd += h[n]
	}
	var out [halfBandTaps]float32
	for n := range h {
		out[n] = float32(h[n] * 0.5 / odd) // odd taps sum to ½: unity gain at DC
	}
	out[halfBandDelay] = 0.5
	return out
}

// besselI0 is the modified Bessel function of the first kind, order 0, by its power series.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / 2) * (x / 2) / float64(k*k)
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

func clamp16(v float32) int16 {
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	}
	return int16(math.Round(float64(v)))
}

// decimator converts a 16 kHz stream to 8 kHz, block by block, keeping the filter's history
// between blocks. It allocates only when a block is longer than any before.
type decimator struct {
	buf   []float32 // halfBandTaps-1 samples of history, then the current block
	phase int       // parity of the samples consumed so far
}

// process appends to dst[:0] the 8 kHz samples of src (the next 16 kHz samples) and returns
// it. The output lags the input by 15 samples at 8 kHz (the filter's delay, about 2 ms).
func (d *decimator) process(dst []int16, src []int16) []int16 {
	const hist = halfBandTaps - 1
	need := hist + len(src)
	if cap(d.buf) < need {
		nb := make([]float32, hist, need)
		copy(nb, d.buf[:min(len(d.buf), hist)])
		d.buf = nb
	}
	if len(d.buf) < hist {
		d.buf = d.buf[:hist]
	}
	b := d.buf[:need]
	for i, s := range src {
		b[hist+i] = float32(s)
	}
	dst = dst[:0]
	// Outputs fall on odd input samples: with the filter's odd delay (31) each output then
	// lines up with an input sample of even index, i.e. a whole 8 kHz sample, not half of one.
	for i := (d.phase + 1) & 1; i < len(src); i += 2 {
		// y = Σ h[j]·x[i−j]; x[i−j] is b[hist+i−j]. h is symmetric, so the window is read
		// in order.
		w := b[i : i+halfBandTaps]
		var acc float32
		for j, c := range halfBand {
			acc += c * w[j]
		}
		dst = append(dst, clamp16(acc))
	}
	d.phase = (d.phase + len(src)) & 1
	copy(d.buf[:hist], b[len(src):need])
	d.buf = d.buf[:hist]
	return dst
}

// upsample returns pcm (8 kHz) at 16 kHz: zero-stuffed and filtered, gain 2, with the filter's
// delay removed so sample 2n of the output is sample n of the input. It runs once per prompt.
func upsample(pcm []int16) []int16 {
	n := 2 * len(pcm)
	out := make([]int16, n)
	for m := range out {
		// y[m] = 2·Σ h[j]·u[m+delay−j], u[2k] = pcm[k], u[odd] = 0.
		c := m + halfBandDelay
		var acc float32
		for j := (c & 1); j < halfBandTaps; j += 2 { // only even positions of u are non-zero
			k := c - j
			if k < 0 || k >= n {
				continue
			}
			acc += halfBand[j] * float32(pcm[k/2])
		}
		out[m] = clamp16(2 * acc)
	}
	return out
}
