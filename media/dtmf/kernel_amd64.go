package dtmf

// The detector's vector kernels, in assembly for x86-64 processors with AVX2 and FMA (Intel
// since 2013, AMD since 2015); elsewhere the Go versions run. Each kernel tests useAVX2 itself
// and jumps to its Go version without it, so that the calls from Go go straight to the kernels.

//go:noescape
func foldDFT(x *[subLen]float64, re, im, tr, ti *[8]float64)

//go:noescape
func foldStep(x *[subLen]float64, b *bins, slot, old int)

//go:noescape
func windowStep(re, im, p, inRe, inIm, outRe, outIm *[8]float64, peak *[4]float64, arg *[4]int)

//go:noescape
func bandBlock(x *[subLen]float64, s *[4]float64) float64

//go:noescape
func bandState(x *[subLen]float64, s *[4]float64)

//go:noescape
func dcBlock16N(first *[subLen]int16, x []int16, n int, hist *[ringSize * subLen]float64, slot int, e *[histAhead]float64, st *[2]float64)

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
