package dtmf

import "math"

// The front end. Per sample it only collects the input (decimated to 8 kHz first at 16 kHz); when
// a sub-block is whole, the DC blocker writes it into hist and takes its energy. The DFT of a
// sub-block at the eight tones is computed from hist only when a window that contains it gets
// past the silence gate (see windowBins), so silence costs little.

// feed runs pcm through the front end, closing each sub-block it completes.
func (d *Detector) feed(pcm []int16) {
	if d.cfg.SampleRate == 16000 {
		for len(pcm) > 0 {
			slot := d.nsub & (ringSize - 1)
			base := int(slot) * subLen
			var n int
			n, pcm = d.dec.run(d.hist[base+d.m:base+subLen], pcm)
			d.m += n
			if d.m == subLen {
				h := (*[subLen]float64)(d.hist[base:])
				es := [1]float64{dcBlock(h, h, &d.dc)}
				d.closeSubs(es[:])
			}
		}
		return
	}
	for len(pcm) > 0 {
		if d.m == 0 && len(pcm) >= subLen {
			pcm = d.feedWhole(nil, pcm)
			continue
		}
		n := copy(d.stage[d.m:], pcm)
		pcm = pcm[n:]
		d.m += n
		if d.m == subLen {
			pcm = d.feedWhole(&d.stage, pcm)
		}
	}
}

// histAhead is how many sub-blocks feedWhole writes to hist before it analyses the first of them:
// enough for every sub-block a 20 ms frame of 160 samples completes, so that one call of each
// kernel and one pass of closeSubs take the whole frame.
const histAhead = 10

// feedWhole closes the sub-block first, unless it is nil, and as many whole sub-blocks straight
// from the 8 kHz input as make up histAhead in all, and returns the rest. The DC blocker runs over
// all of them (one call of the vector kernel) before the first of their windows is analysed, so
// that the analyses, whose first test needs the window's energy, do not wait on the blocker's
// chain of dependent steps.
func (d *Detector) feedWhole(first *[subLen]int16, pcm []int16) []int16 {
	k := 0
	if first != nil {
		k = 1
	}
	n := min(len(pcm)/subLen, histAhead-k)
	if n > 0 {
		_ = pcm[n*subLen-1] // dcBlock16N reads n whole sub-blocks
	}
	var es [histAhead]float64
	dcBlock16N(first, pcm, n, &d.hist, int(d.nsub&(ringSize-1)), &es, &d.dc)
	for i := 0; i < k+n; {
		i += d.closeSubs(es[i : k+n])
	}
	return pcm[n*subLen:]
}

// dcBlock16NGo is dcBlock16N in Go: dcBlock over the sub-block first, unless it is nil, then over
// n consecutive sub-blocks of x, the i-th of all written to hist slot (slot+i) mod ringSize and
// its energy to e[i].
func dcBlock16NGo(first *[subLen]int16, x []int16, n int, hist *[ringSize * subLen]float64, slot int, e *[histAhead]float64, st *[2]float64) {
	k := 0
	if first != nil {
		e[0] = dcBlock(first, (*[subLen]float64)(hist[(slot&(ringSize-1))*subLen:]), st)
		k = 1
	}
	for i := range n {
		s := (slot + k + i) & (ringSize - 1)
		e[k+i] = dcBlock((*[subLen]int16)(x[i*subLen:]), (*[subLen]float64)(hist[s*subLen:]), st)
	}
}

// closeSubs closes the first one or more of the sub-blocks whose energies after the DC blocker are
// es, in order, and returns how many. Runs of the two common cases go through vector kernels that
// do what endSub does for each of their windows, without its general checks and calls: the windows
// inside a key press (steadyRun), and those of silence, noise and speech, which are silent or fail
// analyseBins's first tests (quietRun). Any other sub-block goes through endSub.
func (d *Detector) closeSubs(es []float64) int {
	if !d.noNext && d.nsub >= winSubs+lagSubs-1 {
		if d.chain == d.nsub+1 {
			if n := d.steadyRun(es); n > 0 {
				return n
			}
		}
		if n := d.quietRun(es); n > 0 {
			return n
		}
	}
	d.endSub(es[0])
	return 1
}

// quietRun closes the first sub-blocks whose energies after the DC blocker are es, one by one, for
// as long as each window is silent, or follows on from the window before (its bins move on by one
// sub-block: windowBins's first case) and fails analyseBins's first test or its raw relative peak,
// and steadyRun has not taken it: nearly every window outside a key press. For each it does what
// endSub, windowBins, analyse and decide would, with the same operations: quietWindows takes the
// windows, and decides for most of those that fail (see there); the rest is decided here (see
// failed). A window that passes both tests goes on through analyseBins and decide, and ends the
// run. It returns how many sub-blocks it closed, 0 when the first window is not such a case.
func (d *Detector) quietRun(es []float64) int {
	n := 0
	for n < len(es) {
		var o runOut
		n += quietWindows(d, es[n:], &o)
		switch o.code {
		case stopBefore:
			return n
		case stopPass:
			var h hit
			d.analyseBins(&h, d.nsub-1, o.ws, o.we)
			d.decide(&h)
			return n
		}
		d.failed() // stopFailed
	}
	return n
}

// quietWindowsGo is quietWindows in Go. It takes the windows that end with the sub-blocks whose
// energies are es, one by one, as quietRun's case (see there): endSub's bookkeeping of the
// sub-block and its silence gate, and for a window past the gate windowBins and analyseBins's
// first two tests (the first with foldNext). It stops after a window that passes them, or that
// fails with more for decide to do than count the window and a miss of the digit on and drop the
// reference (failed), which o reports with what quietRun needs to finish the window; it does that
// for the others.
func quietWindowsGo(d *Detector, es []float64, o *runOut) int {
	for i, e := range es {
		j := d.nsub // the sub-block to close, the last of the window
		if j&255 == 0 {
			o.code = stopBefore // endSub's fresh window sum
			return i
		}
		// endSub: the window sum (slot is not old), the silence gate, the bookkeeping
		slot, old, w, we := d.closingWindow(j, e)
		silent := 2*winLen*we < d.pMin*0.5
		if !silent && (d.winXOf != j-1 || d.rotOf != j || d.winXN >= 255) {
			o.code = stopBefore // windowBins's other cases
			return i
		}
		d.ringE[slot] = e
		d.winE = w
		d.m = 0
		d.nsub = j + 1
		if silent {
			d.binOf[slot] = -1
		} else {
			d.chain = -1 // steadyRun did not take the window
			lim := [2]float64{d.pMin * 0.5, 0.3 * winLen * we * minRatioAll}
			pass := foldNext((*[subLen]float64)(d.hist[slot*subLen:]), &d.bins, int(slot), int(old), &lim)
			d.rotOf, d.binOf[slot] = j+1, j
			d.winXN++
			d.winXOf = j
			o.we, o.ws = we, (j-winSubs+1)*subLen
			// analyseBins's first two tests: the cheap one (foldNext), and the raw relative peak,
			// which like it fails the window at once
			if pass && d.winArg[2] <= 1 && d.winArg[3] <= 1 {
				o.code = stopPass
				return i + 1
			}
		}
		// decide for a window that failed: failed, unless all it has to do is count the window
		// and a miss of the digit on that does not end it (failed's test, its terms rearranged:
		// (nsub − winSubs)·subLen + winLen − lastEnd ≥ maxGap + winLen), and drop the reference
		if d.cand.active || d.cur.active && d.nsub*subLen >= d.cur.lastEnd+d.maxGap+winLen {
			o.code = stopFailed
			return i + 1
		}
		d.stats.windows++
		if d.cur.active {
			d.cur.misses++
		}
		d.ref.valid = false
	}
	o.code = stopBefore
	return len(es)
}

// endSub closes the sub-block just completed, whose energy after the DC blocker is e: the window
// sum, and the analysis of the window that ends with it. It is the general case, for the windows
// closeSubs does not take in a run, and the reference for the runs (see Detector.noNext).
func (d *Detector) endSub(e float64) {
	slot := d.nsub & (ringSize - 1)
	d.ringE[slot] = e
	d.binOf[slot] = -1
	// Running window sum: add the new sub-block, drop the one leaving the window, and every 256
	// sub-blocks start again from the ring so rounding cannot accumulate.
	if d.nsub&255 == 0 {
		d.winE = 0
		for i := int64(0); i < winSubs && i <= d.nsub; i++ {
			d.winE += d.ringE[(d.nsub-i)&(ringSize-1)]
		}
	} else {
		d.winE += e
		if d.nsub >= winSubs {
			d.winE -= d.ringE[(d.nsub-winSubs)&(ringSize-1)]
		}
	}
	d.m = 0
	d.nsub++
	if d.nsub >= winSubs+lagSubs {
		e := d.winE // windowEnergy's max(winE, 1e-9) (never NaN)
		if e < 1e-9 {
			e = 1e-9
		}
		if 2*winLen*e < d.pMin*0.5 {
			// Silence: analyse would reject the window at once (see the silence gate there).
			d.failed()
			return
		}
		d.chain = -1
		var h hit
		d.analyse(&h)
		d.decide(&h)
	}
}

// failed is decide for a window that failed before steadyWindow: no test passed, so the
// reference cannot have been used for it (renewRef drops it) and nothing is added to a run.
func (d *Detector) failed() {
	d.stats.windows++
	if d.cur.active {
		d.cur.misses++
		if (d.nsub-winSubs)*subLen+winLen-d.cur.lastEnd >= d.maxGap+winLen {
			d.endCur()
		}
	}
	if d.cand.active {
		d.cand = run{}
	}
	d.ref.valid = false
}

// DC blocker y[n] = x[n] − x[n−1] + p·y[n−1]: a zero at DC and a pole at p (−3 dB at 6.4 Hz;
// ±0.03 dB from 100 Hz up).
const dcPole = 0.995

// Powers of dcPole for the look-ahead form of dcBlock.
const (
	dcPole2 = dcPole * dcPole
	dcPole3 = dcPole2 * dcPole
	dcPole4 = dcPole3 * dcPole
)

// dcTable holds dcPole's powers for the vector kernel: p, p², then p…p⁴ and p⁵…p⁸.
type dcTable struct {
	p, p2    float64
	p14, p58 [4]float64
}

var dcTab = dcTable{dcPole, dcPole2, [4]float64{dcPole, dcPole2, dcPole3, dcPole4},
	[4]float64{dcPole4 * dcPole, dcPole4 * dcPole2, dcPole4 * dcPole3, dcPole4 * dcPole4}}

// dcBlock runs the DC blocker over the sub-block x into y (which may be x) and returns the
// energy of its output. Run one sample at a time the blocker is a chain of a multiplication and
// an addition per sample, which the processor cannot overlap; here each group of four samples is
// computed from the output just before the group (y[n+i] = a[i] + p^{i+1}·y[n−1], with a[i] the
// blocker's response to the group's own differences from rest), so the chain advances four
// samples at a time. The groups start at each sub-block's first sample, and 8 kHz input is
// staged until a sub-block is whole, so the result does not depend on how the stream was cut.
// st holds the last input and output sample.
func dcBlock[T int16 | float64](x *[subLen]T, y *[subLen]float64, st *[2]float64) float64 {
	px, py := st[0], st[1]
	var e0, e1 float64
	for g := 0; g+4 <= subLen; g += 4 {
		x0, x1, x2, x3 := float64(x[g]), float64(x[g+1]), float64(x[g+2]), float64(x[g+3])
		a0 := x0 - px
		a1 := (x1 - x0) + dcPole*a0
		a2 := (x2 - x1) + dcPole*a1
		a3 := (x3 - x2) + dcPole*a2
		y0, y1 := a0+dcPole*py, a1+dcPole2*py
		y2, y3 := a2+dcPole3*py, a3+dcPole4*py
		y[g], y[g+1], y[g+2], y[g+3] = y0, y1, y2, y3
		e0 += y0*y0 + y1*y1
		e1 += y2*y2 + y3*y3
		px, py = x3, y3
	}
	x16 := float64(x[subLen-1])
	y16 := (x16 - px) + dcPole*py
	y[subLen-1] = y16
	st[0], st[1] = x16, y16
	return e0 + e1 + y16*y16
}

// windowEnergy returns the energy of the window of winSubs sub-blocks starting with sub-block
// first.
func (d *Detector) windowEnergy(first int64) float64 {
	e := d.winE
	if first != d.nsub-winSubs {
		e = 0
		for j := first; j < first+winSubs; j++ {
			e += d.ringE[j&(ringSize-1)]
		}
	}
	return max(e, 1e-9)
}

// windowBins makes d.winRe, d.winIm the DFT at the eight tones of the window ending with
// sub-block last, computing the sub-block DFTs it lacks, and d.winP its power |X|².
func (d *Detector) windowBins(last int64) {
	if d.winXOf == last-1 && d.winXN < 255 {
		// The window before had its bins: only the sub-block just completed lacks them.
		cur, old := last&(ringSize-1), (last-winSubs)&(ringSize-1)
		if d.rotOf == last && last&255 != 0 && d.binOf[cur] != last {
			// subBins with the phasor carried on, and windowStep, in one
			foldStep((*[subLen]float64)(d.hist[cur*subLen:]), &d.bins, int(cur), int(old))
			d.rotOf, d.binOf[cur] = last+1, last
		} else {
			d.subBins(last)
			windowStep(&d.winRe, &d.winIm, &d.winP, &d.ringRe[cur], &d.ringIm[cur], &d.ringRe[old], &d.ringIm[old], &d.winPeak, &d.winArg)
		}
		d.winXN++
		d.winXOf = last
		return
	}
	for j := last - winSubs + 1; j <= last; j++ {
		if d.binOf[j&(ringSize-1)] != j {
			d.subBins(j)
		}
	}
	cur := last & (ringSize - 1)
	if d.winXOf == last-1 && d.winXN < 255 {
		old := (last - winSubs) & (ringSize - 1)
		windowStep(&d.winRe, &d.winIm, &d.winP, &d.ringRe[cur], &d.ringIm[cur], &d.ringRe[old], &d.ringIm[old], &d.winPeak, &d.winArg)
		d.winXN++
	} else {
		d.winRe, d.winIm = d.ringRe[cur], d.ringIm[cur]
		for j := last - winSubs + 1; j < last; j++ {
			o := j & (ringSize - 1)
			for k := range d.winRe {
				d.winRe[k] += d.ringRe[o][k]
				d.winIm[k] += d.ringIm[o][k]
			}
		}
		for k := range d.winP {
			d.winP[k] = d.winRe[k]*d.winRe[k] + d.winIm[k]*d.winIm[k]
		}
		d.winPeak, d.winArg = peaks(&d.winP)
		d.winXN = 0
	}
	d.winXOf = last
}

// foldStepGo is foldStep in Go: foldDFT of x into b's sub-block slot with b's phasors, then
// windowStep with that sub-block entering b's window and sub-block old leaving it.
func foldStepGo(x *[subLen]float64, b *bins, slot, old int) {
	foldDFTGo(x, &b.ringRe[slot], &b.ringIm[slot], &b.rotRe, &b.rotIm)
	windowStepGo(&b.winRe, &b.winIm, &b.winP, &b.ringRe[slot], &b.ringIm[slot], &b.ringRe[old], &b.ringIm[old], &b.winPeak, &b.winArg)
}

// foldNext is foldStep, then analyseBins's first test on the window, for the Go versions of the
// kernels that take runs of windows (quietWindowsGo, steadyWindowsGo).
func foldNext(x *[subLen]float64, b *bins, slot, old int, lim *[2]float64) bool {
	foldStep(x, b, slot, old)
	return quick(b.winPeak[0], b.winPeak[1], lim)
}

// quick is analyseBins's first test: whether a window whose strongest row and column have powers
// maxR and maxC is worth analysing, with lim[0] = pMin/2 (each tone must come near the level
// floor) and lim[1] the bound on the pair's share of the window's energy (see analyseBins).
func quick(maxR, maxC float64, lim *[2]float64) bool {
	return !(maxR < lim[0] || maxC < lim[0] || 2*(maxR+maxC) < lim[1])
}

// windowStepGo moves a window's DFT (re, im) on by one sub-block, adding the DFT of the one
// entering and removing that of the one leaving, sets p to its power, and sets peak and arg as
// peaks does.
func windowStepGo(re, im, p, inRe, inIm, outRe, outIm *[8]float64, peak *[4]float64, arg *[4]int) {
	for k := range re {
		re[k] += inRe[k] - outRe[k]
		im[k] += inIm[k] - outIm[k]
		p[k] = re[k]*re[k] + im[k]*im[k]
	}
	*peak, *arg = peaks(p)
}

// peaks returns, for the rows p[0:4] and the columns p[4:8], the largest power (peak[0:2]) and
// the position of the first tone at that power in its group (arg[0:2]), then the largest power
// below it in the group (peak[2:4]; 0 if none, and below the second of two equal tones, which
// the number of tones within relPeakRaw rejects first) and the number of tones of the group
// within relPeakRaw of the largest, itself included (arg[2:4]).
func peaks(p *[8]float64) (peak [4]float64, arg [4]int) {
	for g := range 2 {
		q := p[4*g : 4*g+4]
		m := max(q[0], q[1], q[2], q[3])
		peak[g] = m
		for arg[g] = 0; q[arg[g]] != m; arg[g]++ {
		}
		for _, v := range q {
			if v*relPeakRaw > m {
				arg[2+g]++
			}
			if v < m && v > peak[2+g] {
				peak[2+g] = v
			}
		}
	}
	return peak, arg
}

// lagged returns the DFT values of tones r and c over the window lagLen samples before the one
// ending with sub-block last (whose sub-block DFTs must have been computed), each summed from the
// newest sub-block to the oldest.
func (d *Detector) lagged(last int64, r, c int) (xr, xc complex128) {
	r, c = r&7, c&7 // (r, c < 8 already: the mask spares the bounds checks in the loop)
	var rr, ri, cr, ci float64
	for i := int64(lagSubs); i < lagSubs+winSubs; i++ {
		o := (last - i) & (ringSize - 1)
		re, im := &d.ringRe[o], &d.ringIm[o]
		rr += re[r]
		ri += im[r]
		cr += re[c]
		ci += im[c]
	}
	return complex(rr, ri), complex(cr, ci)
}

// subBins computes, unless done already, the DFT of sub-block j at the eight tones, referenced
// to sample 0 of the stream: Σ x[n]·e^{-jw(n0+n)} over its samples n0+n. It folds the sub-block
// about its centre sample, where the DFT's real part needs only the sums of sample pairs and its
// imaginary part only their differences: 16 multiplications per tone, against 17 (and twice the
// additions) in a Goertzel resonator, with no recursion to wait on. The result is turned from
// the sub-block's centre to sample 0 by a phasor per tone that advances by one sub-block per
// call and is set afresh from the exact tables (see turn) after a jump and every 256 sub-blocks.
func (d *Detector) subBins(j int64) {
	slot := j & (ringSize - 1)
	if d.binOf[slot] == j {
		return
	}
	if j != d.rotOf || j&255 == 0 {
		pm := phasePos(j*subLen + subLen/2)
		for k := range d.rotRe {
			t := turn(k, pm)
			d.rotRe[k], d.rotIm[k] = real(t), imag(t)
		}
	}
	foldDFT((*[subLen]float64)(d.hist[slot*subLen:]), &d.ringRe[slot], &d.ringIm[slot], &d.rotRe, &d.rotIm)
	d.rotOf = j + 1
	d.binOf[slot] = j
}

// foldDFTGo is foldDFT in Go: it writes to re, im the DFT of x at the eight tones, referenced to
// x's centre sample and then turned by the phasors (tr, ti), which it advances by one sub-block.
func foldDFTGo(x *[subLen]float64, re, im, tr, ti *[8]float64) {
	var u, v [subLen / 2]float64
	for n := range u {
		a, b := x[subLen/2+1+n], x[subLen/2-1-n]
		u[n], v[n] = a+b, a-b
	}
	x0 := x[subLen/2]
	for k := range re {
		c, s := &foldCos[k], &foldSin[k]
		zr := x0 + ((u[0]*c[0] + u[1]*c[1]) + (u[2]*c[2] + u[3]*c[3])) + ((u[4]*c[4] + u[5]*c[5]) + (u[6]*c[6] + u[7]*c[7]))
		zi := ((v[0]*s[0] + v[1]*s[1]) + (v[2]*s[2] + v[3]*s[3])) + ((v[4]*s[4] + v[5]*s[5]) + (v[6]*s[6] + v[7]*s[7]))
		// (zr − j·zi)·(tr + j·ti), then the phasor times e^{-jw·subLen}
		a, b := tr[k], ti[k]
		re[k] = zr*a + zi*b
		im[k] = zr*b - zi*a
		tr[k], ti[k] = a*stepRe[k]-b*stepIm[k], a*stepIm[k]+b*stepRe[k]
	}
}

// foldTable holds foldDFT's constants for the vector kernel: cos(w·n) and sin(w·n) by n, then by
// tone, and e^{-jw·subLen} by tone.
type foldTable struct {
	cos, sin       [subLen / 2][8]float64
	stepRe, stepIm [8]float64
}

var foldTab = func() (t foldTable) {
	for k := range toneHz {
		for n := range t.cos {
			t.cos[n][k], t.sin[n][k] = foldCos[k][n], foldSin[k][n]
		}
	}
	t.stepRe, t.stepIm = stepRe, stepIm
	return t
}()

// stepRe + j·stepIm = e^{-jw·subLen} for each tone.
var stepRe, stepIm = func() (c, s [8]float64) {
	for k, f := range toneHz {
		sn, cs := math.Sincos(2 * math.Pi * f * subLen / rate8)
		c[k], s[k] = cs, -sn
	}
	return c, s
}()

// foldCos and foldSin hold cos(w·n) and sin(w·n) for n = 1…8 at each tone.
var foldCos, foldSin = func() (c, s [8][subLen / 2]float64) {
	for k, f := range toneHz {
		for n := range c[k] {
			c[k][n] = math.Cos(2 * math.Pi * f * float64(n+1) / rate8)
			s[k][n] = math.Sin(2 * math.Pi * f * float64(n+1) / rate8)
		}
	}
	return c, s
}()

// turn returns e^{-jw·pos} for tone k at sample pos, given pm = phasePos(pos). The tones are
// whole hertz, so the phase is 2π·m/8000 for the integer m = f·pos mod 8000, read from two small
// tables.
func turn(k int, pm uint32) complex128 {
	m := toneInt[k] * pm % rate8
	return turnHi[m>>6] * turnLo[m&63]
}

// phasePos reduces a sample position ≥ 0 for turn: every tone is back in phase each second.
func phasePos(pos int64) uint32 { return uint32(pos % rate8) }

// toneInt is toneHz as integers.
var toneInt = [8]uint32{697, 770, 852, 941, 1209, 1336, 1477, 1633}

// turnHi[a]·turnLo[b] = e^{-j2π(64a+b)/8000}.
var turnHi, turnLo = func() (hi [rate8/64 + 1]complex128, lo [64]complex128) {
	for a := range hi {
		s, c := math.Sincos(2 * math.Pi * float64(64*a) / rate8)
		hi[a] = complex(c, -s)
	}
	for b := range lo {
		s, c := math.Sincos(2 * math.Pi * float64(b) / rate8)
		lo[b] = complex(c, -s)
	}
	return hi, lo
}()

// centre turns tone k's DFT value over the window starting at sample ws (pw = phasePos(ws)) from
// the stream's phase reference to the window's centre. A tone a·e^{jfn} then contributes
// a·e^{jf·centre}·D(f−w) to the bin at w, with D the real Dirichlet kernel (see dirichlet).
func (d *Detector) centre(k int, xk complex128, pw uint32) complex128 {
	t := turn(k, pw)
	return xk * complex(real(t), -imag(t)) * halfWin[k]
}

// halfWin is e^{jw(N−1)/2} for each tone.
var halfWin = func() (h [8]complex128) {
	for i, f := range toneHz {
		w := 2 * math.Pi * f / rate8
		h[i] = complex(math.Cos(w*(winLen-1)/2), math.Sin(w*(winLen-1)/2))
	}
	return h
}()

// closingWindow is endSub's window sum for the Go versions of the run kernels, as they close
// sub-block j of energy e: the ring slot j takes, the one leaving the window, the window's
// energy, and that energy as windowEnergy floors it (max(w, 1e-9)). Same operations, same
// order as endSub and the assembly, so that the results are identical to the bit.
func (d *Detector) closingWindow(j int64, e float64) (slot, old int64, w, we float64) {
	slot, old = j&(ringSize-1), (j-winSubs)&(ringSize-1)
	w = d.winE + e - d.ringE[old]
	we = w
	if we < 1e-9 {
		we = 1e-9
	}
	return slot, old, w, we
}
