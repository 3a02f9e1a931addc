package resample

// downLine is the length of Down's delay line: the filter's span.
const downLine = Taps

// Down converts 16 kHz PCM16 to 8 kHz: it low-pass filters with the half-band filter (the
// anti-alias filter) and keeps every second sample. It is streaming: the filter state and the
// phase of the decimation carry over from one Process call to the next, so a stream cut into
// blocks of any length converts exactly as if it came in one piece. The zero value is ready to
// use; a Down must not be shared between streams.
type Down struct {
	// line holds the last downLine input samples twice over (line[i] == line[i+downLine]),
	// so the window ending at pos is always contiguous.
	line [2 * downLine]int16
	pos  int  // where the next sample goes, 0 ≤ pos < downLine
	odd  bool // the next sample is at an odd position of the stream: it produces no output
}

// Process appends to dst the 8 kHz samples produced by src (16 kHz) and returns the extended
// slice. A block of even length yields exactly half as many samples; the phase carries over,
// so blocks of odd length are fine too. It allocates only when dst lacks room.
func (d *Down) Process(dst, src []int16) []int16 {
	for _, x := range src {
		d.line[d.pos] = x
		d.line[d.pos+downLine] = x
		d.pos++
		if d.pos == downLine {
			d.pos = 0
		}
		if d.odd {
			d.odd = false
			continue
		}
		d.odd = true
		// w[0] is the oldest sample of the window, w[Taps-1] the newest; the filter is
		// symmetric, so orientation does not matter.
		w := (*[downLine]int16)(d.line[d.pos : d.pos+downLine])
		dst = append(dst, sat16(downTaps(w), q15))
	}
	return dst
}

// Reset returns d to its zero state (silence history, even phase).
func (d *Down) Reset() { *d = Down{} }

// downTaps is the half-band filter over one window, w[0] oldest: the centre tap and the 16
// symmetric pairs, written out so the compiler needs no bounds checks.
func downTaps(w *[downLine]int16) int64 {
	return center*int64(w[31]) +
		side[0]*(int64(w[30])+int64(w[32])) +
		side[1]*(int64(w[28])+int64(w[34])) +
		side[2]*(int64(w[26])+int64(w[36])) +
		side[3]*(int64(w[24])+int64(w[38])) +
		side[4]*(int64(w[22])+int64(w[40])) +
		side[5]*(int64(w[20])+int64(w[42])) +
		side[6]*(int64(w[18])+int64(w[44])) +
		side[7]*(int64(w[16])+int64(w[46])) +
		side[8]*(int64(w[14])+int64(w[48])) +
		side[9]*(int64(w[12])+int64(w[50])) +
		side[10]*(int64(w[10])+int64(w[52])) +
		side[11]*(int64(w[8])+int64(w[54])) +
		side[12]*(int64(w[6])+int64(w[56])) +
		side[13]*(int64(w[4])+int64(w[58])) +
		side[14]*(int64(w[2])+int64(w[60])) +
		side[15]*(int64(w[0])+int64(w[62]))
}
