//go:build !amd64

package dtmf

// Without the x86-64 vector kernels (kernel_amd64.s) the Go versions run.

func foldDFT(x *[subLen]float64, re, im, tr, ti *[8]float64) { foldDFTGo(x, re, im, tr, ti) }

func foldStep(x *[subLen]float64, b *bins, slot, old int) { foldStepGo(x, b, slot, old) }

func windowStep(re, im, p, inRe, inIm, outRe, outIm *[8]float64, peak *[4]float64, arg *[4]int) {
	windowStepGo(re, im, p, inRe, inIm, outRe, outIm, peak, arg)
}

func bandBlock(x *[subLen]float64, s *[4]float64) float64 { return bandBlockGo(x, s) }

func bandState(x *[subLen]float64, s *[4]float64) { bandStateGo(x, s) }

func dcBlock16N(first *[subLen]int16, x []int16, n int, hist *[ringSize * subLen]float64, slot int, e *[histAhead]float64, st *[2]float64) {
	dcBlock16NGo(first, x, n, hist, slot, e, st)
}

func steadyWindows(d *Detector, es []float64, on bool, o *runOut) int {
	return steadyWindowsGo(d, es, on, o)
}

func quietWindows(d *Detector, es []float64, o *runOut) int { return quietWindowsGo(d, es, o) }
