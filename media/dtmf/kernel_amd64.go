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

// The two kernels that take runs of windows test useRunKernels instead (see there).

//go:noescape
func quietWindows(d *Detector, es []float64, o *runOut) int

//go:noescape
func steadyWindows(d *Detector, es []float64, on bool, o *runOut) int

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

// useRunKernels is useAVX2 for quietWindows and steadyWindows: tests clear it to compare the two
// with their Go versions while the other kernels, which those call, still run.
var useRunKernels = useAVX2

// runConsts holds the constants of quietWindows and steadyWindows: each is the value that the Go
// versions' expression uses (Go folds 2*winLen and 0.3*winLen exactly, then converts them to
// float64).
type runConsts struct {
	tiny     float64 // the floor of the window and band energies
	gate     float64 // 2·winLen, the silence gate's factor
	half     float64
	share    float64 // 0.3·winLen, the cheap test's energy factor
	minAll   float64 // minRatioAll
	twoOverN float64
	minBand  float64 // minRatioBand
	relPeak  float64
	level    float64 // steadyLevel
	twist    float64 // steadyTwist
	one      float64
	winLen   float64
	edge     float64 // run.add's 0.9
}

var runTab = runConsts{
	tiny: 1e-9, gate: 2 * winLen, half: 0.5, share: 0.3 * winLen, minAll: minRatioAll,
	twoOverN: twoOverN, minBand: minRatioBand, relPeak: relPeak, level: steadyLevel,
	twist: steadyTwist, one: 1, winLen: winLen, edge: 0.9,
}
