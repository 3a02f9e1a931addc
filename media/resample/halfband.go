package resample

// Taps is the number of taps of the half-band filter.
const Taps = 2*halfLen + 1

// Delay is the group delay of Up and Down, in 16 kHz samples.
const Delay = halfLen

// halfLen is the distance from the centre tap to either end.
const halfLen = 31

// side holds the non-zero taps either side of the centre, in Q15, at offsets ±1, ±3, …, ±31
// from it: h[c±(2j+1)] = side[j]. The centre tap is ½ (16384) and the taps at even non-zero
// offsets are zero. Design: 0.5·sinc(n/2) under a Kaiser window with β = 7 over n = −31…31,
// rounded to Q15; TestTapsMatchDesign re-derives them. They sum to 8192, so the taps either
// side together sum to ½ and the DC gain is exactly 1.
var side = [16]int64{
	10395, -3373, 1917, -1261, 877, -623, 443, -311,
	214, -143, 92, -56, 32, -16, 7, -2,
}

const (
	q15    = 15
	center = 1 << (q15 - 1) // ½ in Q15
)

// sat16 rounds a Q(shift) accumulator to the nearest integer and saturates it to int16.
func sat16(acc int64, shift uint) int16 {
	v := (acc + 1<<(shift-1)) >> shift
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}
