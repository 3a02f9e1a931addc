//go:build !amd64

package dtmf

// Without the x86-64 vector kernels (kernel_amd64.s) the Go versions run.

func foldDFT(x *[subLen]float64, re, im, tr, ti *[8]float64) { foldDFTGo(x, re, im, tr, ti) }

func windowStep(re, im, p, inRe, inIm, outRe, outIm *[8]float64, peak *[2]float64, arg *[4]int) {
	windowStepGo(re, im, p, inRe, inIm, outRe, outIm, peak, arg)
}

func bandBlock(x *[subLen]float64, s *[4]float64) float64 { return bandBlockGo(x, s) }

func dcBlock16(x *[subLen]int16, y *[subLen]float64, st *[2]float64) float64 {
	return dcBlock(x, y, st)
}
