package dtmf

// The detector's vector kernels, in assembly for x86-64 processors with AVX2 and FMA (Intel
// since 2013, AMD since 2015), chosen once at start-up; elsewhere the Go versions run.

//go:noescape
func foldDFTAVX2(x *[subLen]float64, re, im, tr, ti *[8]float64, t *foldTable)

//go:noescape
func dcBlockAVX2(x *[subLen]int16, y *[subLen]float64, st *[2]float64, t *dcTable) float64

//go:noescape
func bandBlockAVX2(x *[subLen]float64, s *[4]float64, t *bandTable) float64

//go:noescape
func windowStepAVX2(re, im, p, inRe, inIm, outRe, outIm *[8]float64, peak *[2]float64, arg *[4]int)

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax uint32)

// useAVX2 reports whether the processor and the operating system support AVX2, FMA and POPCNT.
var useAVX2 = func() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, popcnt, osxsave, avx = 1 << 12, 1 << 23, 1 << 27, 1 << 28
	if ecx1&(fma|popcnt|osxsave|avx) != fma|popcnt|osxsave|avx || xgetbv()&6 != 6 { // XMM and YMM state saved
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}()

func foldDFT(x *[subLen]float64, re, im, tr, ti *[8]float64) {
	if useAVX2 {
		foldDFTAVX2(x, re, im, tr, ti, &foldTab)
		return
	}
	foldDFTGo(x, re, im, tr, ti)
}

func windowStep(re, im, p, inRe, inIm, outRe, outIm *[8]float64, peak *[2]float64, arg *[4]int) {
	if useAVX2 {
		windowStepAVX2(re, im, p, inRe, inIm, outRe, outIm, peak, arg)
		return
	}
	windowStepGo(re, im, p, inRe, inIm, outRe, outIm, peak, arg)
}

func bandBlock(x *[subLen]float64, s *[4]float64) float64 {
	if useAVX2 {
		return bandBlockAVX2(x, s, &bandTab)
	}
	return bandBlockGo(x, s)
}

func dcBlock16(x *[subLen]int16, y *[subLen]float64, st *[2]float64) float64 {
	if useAVX2 {
		return dcBlockAVX2(x, y, st, &dcTab)
	}
	return dcBlock(x, y, st)
}
