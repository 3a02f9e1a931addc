package resample

// upLine is the length of Up's delay line, in 8 kHz samples: the interpolated phase spans 32
// input samples.
const upLine = 2 * len(side)

// Up converts 8 kHz PCM16 to 16 kHz: it inserts a sample between every two and filters with the
// half-band filter (the interpolation, or anti-imaging, filter). Every second output sample is
// an input sample, unchanged; the others are interpolated from the 32 nearest inputs. Output
// lags input by Delay (31) samples at 16 kHz. It is streaming: the state carries over from one
// Process call to the next. The zero value is ready to use; an Up must not be shared between
// streams.
type Up struct {
	// line holds the last upLine input samples twice over, as in Down.
	line [2 * upLine]int16
	pos  int
}

// Process appends to dst the 16 kHz samples for src (8 kHz), two per input sample, and returns
// the extended slice. It allocates only when dst lacks room.
func (u *Up) Process(dst, src []int16) []int16 {
	for _, x := range src {
		u.line[u.pos] = x
		u.line[u.pos+upLine] = x
		u.pos++
		if u.pos == upLine {
			u.pos = 0
		}
		// w[upLine-1] is the newest input m, w[0] is m-31. The interpolated sample lies
		// midway between w[15] (m-16) and w[16] (m-15); the pass-through sample is w[16].
		w := (*[upLine]int16)(u.line[u.pos : u.pos+upLine])
		dst = append(dst, sat16(upTaps(w), q15-1), w[upLine/2]) // ×2: zero stuffing halves the gain
	}
	return dst
}

// Reset returns u to its zero state (silence history).
func (u *Up) Reset() { *u = Up{} }

// UpClip converts a whole 8 kHz clip to 16 kHz in one call, for audio that is converted once
// and sent many times (prompts). It is the zero-phase form of Up, with silence assumed before
// and after the clip: the result has exactly twice as many samples, out[2i] == pcm[i], and
// out[2i+1] is interpolated between pcm[i] and pcm[i+1]. A 20 ms frame of the input is a 20 ms
// frame of the output. The result is a new slice and depends only on pcm, bit for bit.
func UpClip(pcm []int16) []int16 {
	n := len(pcm)
	out := make([]int16, 2*n)
	at := func(i int) int64 {
		if i < 0 || i >= n {
			return 0
		}
		return int64(pcm[i])
	}
	for i := 0; i < n; i++ {
		out[2*i] = pcm[i]
		var acc int64
		if i >= len(side)-1 && i+len(side) < n {
			for j, c := range side { // inner samples: no bounds checks needed
				acc += c * (int64(pcm[i-j]) + int64(pcm[i+1+j]))
			}
		} else {
			for j, c := range side {
				acc += c * (at(i-j) + at(i+1+j))
			}
		}
		out[2*i+1] = sat16(acc, q15-1)
	}
	return out
}

// upTaps is the interpolating phase of the filter over one window of inputs, w[0] oldest: the
// 16 symmetric pairs around the midpoint of w[15] and w[16], written out.
func upTaps(w *[upLine]int16) int64 {
	return side[0]*(int64(w[15])+int64(w[16])) +
		side[1]*(int64(w[14])+int64(w[17])) +
		side[2]*(int64(w[13])+int64(w[18])) +
		side[3]*(int64(w[12])+int64(w[19])) +
		side[4]*(int64(w[11])+int64(w[20])) +
		side[5]*(int64(w[10])+int64(w[21])) +
		side[6]*(int64(w[9])+int64(w[22])) +
		side[7]*(int64(w[8])+int64(w[23])) +
		side[8]*(int64(w[7])+int64(w[24])) +
		side[9]*(int64(w[6])+int64(w[25])) +
		side[10]*(int64(w[5])+int64(w[26])) +
		side[11]*(int64(w[4])+int64(w[27])) +
		side[12]*(int64(w[3])+int64(w[28])) +
		side[13]*(int64(w[2])+int64(w[29])) +
		side[14]*(int64(w[1])+int64(w[30])) +
		side[15]*(int64(w[0])+int64(w[31]))
}
