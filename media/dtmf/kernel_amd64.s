#include "go_asm.h"
#include "textflag.h"

// The detector's vector kernels for x86-64 with AVX2 and FMA (see kernel_amd64.go). Each has a
// Go version with the same arithmetic up to rounding, to which it jumps when useAVX2 is false;
// tables come from Go (foldTab, dcTab, bandTab) so that the constants live in one place.

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	RET

// TERMR adds term n of the folded DFT for the eight tones: u[n] and v[n] (lane imm of U and V,
// broadcast) times cos(w·(n+1)) and sin(w·(n+1)) from the table at DX, into the real parts rA
// (tones 0…3), rB (4…7) and the imaginary parts iA, iB.
#define TERMR(imm, U, V, n, rA, rB, iA, iB) \
	VPERMPD imm, U, Y0 \
	VPERMPD imm, V, Y1 \
	VFMADD231PD (n*64)(DX), Y0, rA \
	VFMADD231PD (n*64+32)(DX), Y0, rB \
	VFMADD231PD (512+n*64)(DX), Y1, iA \
	VFMADD231PD (512+n*64+32)(DX), Y1, iB

// FOLDDFT is the body of foldDFT: the DFT at the eight tones of the sub-block at SI, with the
// table at DX, into re at DI and im at R8, turned by the phasors at R9 (real parts) and R10
// (imaginary parts), which it advances by one sub-block.
#define FOLDDFT \
	VMOVUPD 72(SI), Y0      /* x[9..12] */ \
	VMOVUPD 104(SI), Y1     /* x[13..16] */ \
	VMOVUPD 32(SI), Y2      /* x[4..7] */ \
	VMOVUPD 0(SI), Y3       /* x[0..3] */ \
	VPERMPD $0x1B, Y2, Y2   /* x[7], x[6], x[5], x[4] */ \
	VPERMPD $0x1B, Y3, Y3   /* x[3], x[2], x[1], x[0] */ \
	VADDPD Y2, Y0, Y4       /* u[0..3] */ \
	VSUBPD Y2, Y0, Y5       /* v[0..3] */ \
	VADDPD Y3, Y1, Y6       /* u[4..7] */ \
	VSUBPD Y3, Y1, Y7       /* v[4..7] */ \
	VBROADCASTSD 64(SI), Y8 /* real parts, even n: start at x[8] */ \
	VMOVAPD Y8, Y9 \
	VXORPD Y12, Y12, Y12    /* real parts, odd n */ \
	VXORPD Y13, Y13, Y13 \
	VXORPD Y10, Y10, Y10    /* imaginary parts, even n */ \
	VXORPD Y11, Y11, Y11 \
	VXORPD Y14, Y14, Y14    /* imaginary parts, odd n */ \
	VXORPD Y15, Y15, Y15 \
	TERMR($0x00, Y4, Y5, 0, Y8, Y9, Y10, Y11) \
	TERMR($0x55, Y4, Y5, 1, Y12, Y13, Y14, Y15) \
	TERMR($0xAA, Y4, Y5, 2, Y8, Y9, Y10, Y11) \
	TERMR($0xFF, Y4, Y5, 3, Y12, Y13, Y14, Y15) \
	TERMR($0x00, Y6, Y7, 4, Y8, Y9, Y10, Y11) \
	TERMR($0x55, Y6, Y7, 5, Y12, Y13, Y14, Y15) \
	TERMR($0xAA, Y6, Y7, 6, Y8, Y9, Y10, Y11) \
	TERMR($0xFF, Y6, Y7, 7, Y12, Y13, Y14, Y15) \
	VADDPD Y12, Y8, Y8      /* zr, tones 0..3 */ \
	VADDPD Y13, Y9, Y9      /* zr, tones 4..7 */ \
	VADDPD Y14, Y10, Y10    /* zi, tones 0..3 */ \
	VADDPD Y15, Y11, Y11    /* zi, tones 4..7 */ \
	VMOVUPD 0(R9), Y0       /* a = tr */ \
	VMOVUPD 32(R9), Y1 \
	VMOVUPD 0(R10), Y2      /* b = ti */ \
	VMOVUPD 32(R10), Y3 \
	/* re = zr·a + zi·b */ \
	VMULPD Y2, Y10, Y4 \
	VFMADD231PD Y0, Y8, Y4 \
	VMULPD Y3, Y11, Y5 \
	VFMADD231PD Y1, Y9, Y5 \
	VMOVUPD Y4, 0(DI) \
	VMOVUPD Y5, 32(DI) \
	/* im = zr·b − zi·a */ \
	VMULPD Y0, Y10, Y4 \
	VFMSUB231PD Y2, Y8, Y4 \
	VMULPD Y1, Y11, Y5 \
	VFMSUB231PD Y3, Y9, Y5 \
	VMOVUPD Y4, 0(R8) \
	VMOVUPD Y5, 32(R8) \
	/* phasor times e^{-jw·subLen}: a' = a·sr − b·si, b' = a·si + b·sr */ \
	VMOVUPD 1024(DX), Y6    /* sr */ \
	VMOVUPD 1056(DX), Y7 \
	VMOVUPD 1088(DX), Y8    /* si */ \
	VMOVUPD 1120(DX), Y9 \
	VMULPD Y8, Y2, Y4 \
	VFMSUB231PD Y6, Y0, Y4 \
	VMULPD Y9, Y3, Y5 \
	VFMSUB231PD Y7, Y1, Y5 \
	VMOVUPD Y4, 0(R9) \
	VMOVUPD Y5, 32(R9) \
	VMULPD Y6, Y2, Y4 \
	VFMADD231PD Y8, Y0, Y4 \
	VMULPD Y7, Y3, Y5 \
	VFMADD231PD Y9, Y1, Y5 \
	VMOVUPD Y4, 0(R10) \
	VMOVUPD Y5, 32(R10)

// WINDOWSTEP is the body of windowStep, with its arguments re, im, p, inRe, inIm, outRe, outIm,
// peak and arg in DI, SI, DX, R8…R13.
#define WINDOWSTEP \
	VMOVUPD 0(R8), Y0 \
	VMOVUPD 32(R8), Y1 \
	VMOVUPD 0(R9), Y2 \
	VMOVUPD 32(R9), Y3 \
	VSUBPD 0(R10), Y0, Y0 \
	VSUBPD 32(R10), Y1, Y1 \
	VSUBPD 0(R11), Y2, Y2 \
	VSUBPD 32(R11), Y3, Y3 \
	VADDPD 0(DI), Y0, Y0 \
	VADDPD 32(DI), Y1, Y1 \
	VADDPD 0(SI), Y2, Y2 \
	VADDPD 32(SI), Y3, Y3 \
	VMOVUPD Y0, 0(DI) \
	VMOVUPD Y1, 32(DI) \
	VMOVUPD Y2, 0(SI) \
	VMOVUPD Y3, 32(SI) \
	VMULPD Y0, Y0, Y0 \
	VMULPD Y1, Y1, Y1 \
	VMULPD Y2, Y2, Y2 \
	VMULPD Y3, Y3, Y3 \
	VADDPD Y2, Y0, Y0       /* p, rows */ \
	VADDPD Y3, Y1, Y1       /* p, columns */ \
	VMOVUPD Y0, 0(DX) \
	VMOVUPD Y1, 32(DX) \
	/* the largest of each group, broadcast (powers are never NaN) */ \
	VPERMPD $0x4E, Y0, Y2 \
	VPERMPD $0x4E, Y1, Y3 \
	VMAXPD Y2, Y0, Y2 \
	VMAXPD Y3, Y1, Y3 \
	VPERMPD $0xB1, Y2, Y4 \
	VPERMPD $0xB1, Y3, Y5 \
	VMAXPD Y4, Y2, Y2 \
	VMAXPD Y5, Y3, Y3 \
	VMOVSD X2, 0(R12) \
	VMOVSD X3, 8(R12) \
	/* the first tone at the largest power */ \
	VCMPPD $0, Y2, Y0, Y4   /* p == max */ \
	VMOVMSKPD Y4, AX \
	BSFQ AX, AX \
	MOVQ AX, 0(R13) \
	VCMPPD $0, Y3, Y1, Y5 \
	VMOVMSKPD Y5, AX \
	BSFQ AX, AX \
	MOVQ AX, 8(R13) \
	/* the largest power below it: the lanes at the largest zeroed (powers are never negative), */ \
	/* then the largest again */ \
	VANDNPD Y0, Y4, Y6 \
	VANDNPD Y1, Y5, Y7 \
	VPERMPD $0x4E, Y6, Y8 \
	VPERMPD $0x4E, Y7, Y9 \
	VMAXPD Y8, Y6, Y6 \
	VMAXPD Y9, Y7, Y7 \
	VPERMPD $0xB1, Y6, Y8 \
	VPERMPD $0xB1, Y7, Y9 \
	VMAXPD Y8, Y6, Y6 \
	VMAXPD Y9, Y7, Y7 \
	VMOVSD X6, 16(R12) \
	VMOVSD X7, 24(R12) \
	/* how many tones are within relPeakRaw (×2) of it: p·2 > max */ \
	VADDPD Y0, Y0, Y0 \
	VADDPD Y1, Y1, Y1 \
	VCMPPD $0x1E, Y2, Y0, Y4 /* p·2 > max (ordered, quiet) */ \
	VMOVMSKPD Y4, AX \
	POPCNTQ AX, AX \
	MOVQ AX, 16(R13) \
	VCMPPD $0x1E, Y3, Y1, Y5 \
	VMOVMSKPD Y5, AX \
	POPCNTQ AX, AX \
	MOVQ AX, 24(R13)

// func foldDFT(x *[17]float64, re, im, tr, ti *[8]float64)
//
// foldDFTGo with four tones per instruction (FOLDDFT). Each folded sample u[n], v[n] is broadcast
// from the register that holds it (see TERMR); even and odd n accumulate separately to halve the
// chains of dependent multiply-adds.
TEXT ·foldDFT(SB), NOSPLIT, $0-40
	CMPB ·useAVX2(SB), $0
	JEQ  foldDFTGo
	MOVQ x+0(FP), SI
	LEAQ ·foldTab(SB), DX
	MOVQ re+8(FP), DI
	MOVQ im+16(FP), R8
	MOVQ tr+24(FP), R9
	MOVQ ti+32(FP), R10
	FOLDDFT
	VZEROUPPER
	RET
foldDFTGo:
	JMP ·foldDFTGo(SB)

// func foldStep(x *[17]float64, b *bins, slot, old int)
//
// foldDFT of x into sub-block slot of b (with b's phasors), then windowStep of b's window with
// that sub-block entering and sub-block old leaving: one call for what subBins and windowBins do
// for a window that follows on from the one before, with the same operations.
TEXT ·foldStep(SB), NOSPLIT, $0-32
	CMPB ·useAVX2(SB), $0
	JEQ  foldStepGo
	MOVQ x+0(FP), SI
	LEAQ ·foldTab(SB), DX
	MOVQ slot+16(FP), AX
	SHLQ $6, AX                 // 64 bytes per sub-block of eight tones
	MOVQ b+8(FP), CX
	LEAQ bins_ringRe(CX)(AX*1), DI
	LEAQ bins_ringIm(CX)(AX*1), R8
	LEAQ bins_rotRe(CX), R9
	LEAQ bins_rotIm(CX), R10
	FOLDDFT
	MOVQ DI, R8                 // inRe, inIm: the sub-block just written
	LEAQ (bins_ringIm-bins_ringRe)(DI), R9
	MOVQ b+8(FP), CX
	MOVQ old+24(FP), AX
	SHLQ $6, AX
	LEAQ bins_ringRe(CX)(AX*1), R10
	LEAQ bins_ringIm(CX)(AX*1), R11
	LEAQ bins_winRe(CX), DI
	LEAQ bins_winIm(CX), SI
	LEAQ bins_winP(CX), DX
	LEAQ bins_winPeak(CX), R12
	LEAQ bins_winArg(CX), R13
	WINDOWSTEP
	VZEROUPPER
	RET
foldStepGo:
	JMP ·foldStepGo(SB)

// func windowStep(re, im, p, inRe, inIm, outRe, outIm *[8]float64, peak *[4]float64, arg *[4]int)
//
// windowStepGo, with the same operations in the same order (WINDOWSTEP); the group statistics
// come from comparisons of the four powers of a group with its largest.
TEXT ·windowStep(SB), NOSPLIT, $0-72
	CMPB ·useAVX2(SB), $0
	JEQ  windowStepGo
	MOVQ re+0(FP), DI
	MOVQ im+8(FP), SI
	MOVQ p+16(FP), DX
	MOVQ inRe+24(FP), R8
	MOVQ inIm+32(FP), R9
	MOVQ outRe+40(FP), R10
	MOVQ outIm+48(FP), R11
	MOVQ peak+56(FP), R12
	MOVQ arg+64(FP), R13
	WINDOWSTEP
	VZEROUPPER
	RET
windowStepGo:
	JMP ·windowStepGo(SB)

// func bandBlock(x *[17]float64, s *[4]float64) float64
//
// bandBlockGo over a whole sub-block as one linear map (see bandTable): the outputs g = T·x + C·s
// and the next state A·s + B·x, accumulated column by column with each sample (and each state)
// broadcast, even and odd columns apart to halve the chains of dependent multiply-adds. The
// outputs sit in five vectors, g[16] alone in the last (the table's padding rows are zero).
TEXT ·bandBlock(SB), NOSPLIT, $0-24
	CMPB ·useAVX2(SB), $0
	JEQ  bandBlockGo
	MOVQ x+0(FP), SI
	MOVQ s+8(FP), DI
	LEAQ ·bandTab(SB), DX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	VBROADCASTSD 0(DI), Y12
	VFMADD231PD 2720(DX), Y12, Y0
	VFMADD231PD 2752(DX), Y12, Y1
	VFMADD231PD 2784(DX), Y12, Y2
	VFMADD231PD 2816(DX), Y12, Y3
	VFMADD231PD 2848(DX), Y12, Y4
	VFMADD231PD 3360(DX), Y12, Y10
	VBROADCASTSD 8(DI), Y12
	VFMADD231PD 2880(DX), Y12, Y5
	VFMADD231PD 2912(DX), Y12, Y6
	VFMADD231PD 2944(DX), Y12, Y7
	VFMADD231PD 2976(DX), Y12, Y8
	VFMADD231PD 3008(DX), Y12, Y9
	VFMADD231PD 3392(DX), Y12, Y11
	VBROADCASTSD 16(DI), Y12
	VFMADD231PD 3040(DX), Y12, Y0
	VFMADD231PD 3072(DX), Y12, Y1
	VFMADD231PD 3104(DX), Y12, Y2
	VFMADD231PD 3136(DX), Y12, Y3
	VFMADD231PD 3168(DX), Y12, Y4
	VFMADD231PD 3424(DX), Y12, Y10
	VBROADCASTSD 24(DI), Y12
	VFMADD231PD 3200(DX), Y12, Y5
	VFMADD231PD 3232(DX), Y12, Y6
	VFMADD231PD 3264(DX), Y12, Y7
	VFMADD231PD 3296(DX), Y12, Y8
	VFMADD231PD 3328(DX), Y12, Y9
	VFMADD231PD 3456(DX), Y12, Y11
	VBROADCASTSD 0(SI), Y12
	VFMADD231PD 0(DX), Y12, Y0
	VFMADD231PD 32(DX), Y12, Y1
	VFMADD231PD 64(DX), Y12, Y2
	VFMADD231PD 96(DX), Y12, Y3
	VFMADD231PD 128(DX), Y12, Y4
	VFMADD231PD 3488(DX), Y12, Y10
	VBROADCASTSD 8(SI), Y12
	VFMADD231PD 160(DX), Y12, Y5
	VFMADD231PD 192(DX), Y12, Y6
	VFMADD231PD 224(DX), Y12, Y7
	VFMADD231PD 256(DX), Y12, Y8
	VFMADD231PD 288(DX), Y12, Y9
	VFMADD231PD 3520(DX), Y12, Y11
	VBROADCASTSD 16(SI), Y12
	VFMADD231PD 320(DX), Y12, Y0
	VFMADD231PD 352(DX), Y12, Y1
	VFMADD231PD 384(DX), Y12, Y2
	VFMADD231PD 416(DX), Y12, Y3
	VFMADD231PD 448(DX), Y12, Y4
	VFMADD231PD 3552(DX), Y12, Y10
	VBROADCASTSD 24(SI), Y12
	VFMADD231PD 480(DX), Y12, Y5
	VFMADD231PD 512(DX), Y12, Y6
	VFMADD231PD 544(DX), Y12, Y7
	VFMADD231PD 576(DX), Y12, Y8
	VFMADD231PD 608(DX), Y12, Y9
	VFMADD231PD 3584(DX), Y12, Y11
	VBROADCASTSD 32(SI), Y12
	VFMADD231PD 672(DX), Y12, Y1
	VFMADD231PD 704(DX), Y12, Y2
	VFMADD231PD 736(DX), Y12, Y3
	VFMADD231PD 768(DX), Y12, Y4
	VFMADD231PD 3616(DX), Y12, Y10
	VBROADCASTSD 40(SI), Y12
	VFMADD231PD 832(DX), Y12, Y6
	VFMADD231PD 864(DX), Y12, Y7
	VFMADD231PD 896(DX), Y12, Y8
	VFMADD231PD 928(DX), Y12, Y9
	VFMADD231PD 3648(DX), Y12, Y11
	VBROADCASTSD 48(SI), Y12
	VFMADD231PD 992(DX), Y12, Y1
	VFMADD231PD 1024(DX), Y12, Y2
	VFMADD231PD 1056(DX), Y12, Y3
	VFMADD231PD 1088(DX), Y12, Y4
	VFMADD231PD 3680(DX), Y12, Y10
	VBROADCASTSD 56(SI), Y12
	VFMADD231PD 1152(DX), Y12, Y6
	VFMADD231PD 1184(DX), Y12, Y7
	VFMADD231PD 1216(DX), Y12, Y8
	VFMADD231PD 1248(DX), Y12, Y9
	VFMADD231PD 3712(DX), Y12, Y11
	VBROADCASTSD 64(SI), Y12
	VFMADD231PD 1344(DX), Y12, Y2
	VFMADD231PD 1376(DX), Y12, Y3
	VFMADD231PD 1408(DX), Y12, Y4
	VFMADD231PD 3744(DX), Y12, Y10
	VBROADCASTSD 72(SI), Y12
	VFMADD231PD 1504(DX), Y12, Y7
	VFMADD231PD 1536(DX), Y12, Y8
	VFMADD231PD 1568(DX), Y12, Y9
	VFMADD231PD 3776(DX), Y12, Y11
	VBROADCASTSD 80(SI), Y12
	VFMADD231PD 1664(DX), Y12, Y2
	VFMADD231PD 1696(DX), Y12, Y3
	VFMADD231PD 1728(DX), Y12, Y4
	VFMADD231PD 3808(DX), Y12, Y10
	VBROADCASTSD 88(SI), Y12
	VFMADD231PD 1824(DX), Y12, Y7
	VFMADD231PD 1856(DX), Y12, Y8
	VFMADD231PD 1888(DX), Y12, Y9
	VFMADD231PD 3840(DX), Y12, Y11
	VBROADCASTSD 96(SI), Y12
	VFMADD231PD 2016(DX), Y12, Y3
	VFMADD231PD 2048(DX), Y12, Y4
	VFMADD231PD 3872(DX), Y12, Y10
	VBROADCASTSD 104(SI), Y12
	VFMADD231PD 2176(DX), Y12, Y8
	VFMADD231PD 2208(DX), Y12, Y9
	VFMADD231PD 3904(DX), Y12, Y11
	VBROADCASTSD 112(SI), Y12
	VFMADD231PD 2336(DX), Y12, Y3
	VFMADD231PD 2368(DX), Y12, Y4
	VFMADD231PD 3936(DX), Y12, Y10
	VBROADCASTSD 120(SI), Y12
	VFMADD231PD 2496(DX), Y12, Y8
	VFMADD231PD 2528(DX), Y12, Y9
	VFMADD231PD 3968(DX), Y12, Y11
	VBROADCASTSD 128(SI), Y12
	VFMADD231PD 2688(DX), Y12, Y4
	VFMADD231PD 4000(DX), Y12, Y10
	VADDPD Y5, Y0, Y0
	VADDPD Y6, Y1, Y1
	VADDPD Y7, Y2, Y2
	VADDPD Y8, Y3, Y3
	VADDPD Y9, Y4, Y4
	VADDPD Y11, Y10, Y10
	VMOVUPD Y10, 0(DI)
	VMULPD Y0, Y0, Y0
	VFMADD231PD Y1, Y1, Y0
	VFMADD231PD Y2, Y2, Y0
	VFMADD231PD Y3, Y3, Y0
	VFMADD231PD Y4, Y4, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, ret+16(FP)
	VZEROUPPER
	RET
bandBlockGo:
	JMP ·bandBlockGo(SB)

// a = M·D within a vector of four: t = D + p·[0, D0, D1, D2]; a = t + p²·[0, 0, t0, t1]
#define SCAN(D, T) \
	VPERMPD $0x90, D, T \
	VBLENDPD $1, Y15, T, T \
	VFMADD231PD T, Y14, D \
	VPERM2F128 $0x08, D, D, T \
	VFMADD231PD T, Y13, D

// DCCONST loads the constants DCBLOCK keeps in Y13…Y15 (p², p, zero) from the table at DX.
#define DCCONST \
	VXORPD Y15, Y15, Y15 \
	VBROADCASTSD 0(DX), Y14 \
	VBROADCASTSD 8(DX), Y13

// DCBLOCK takes the sub-block of 16-bit samples at SI through the DC blocker into the outputs at
// DI, from and to the state at R8, with the table at DX and DCCONST loaded; the energy ends in X0.
// It uses AX and the vector registers but Y13…Y15. The differences d[n] = x[n] − x[n−1] come
// from converting the samples twice, the second time from one sample earlier (the first lane
// from st[0]). In each group of eight, a[i] = Σ p^(i−j)·d[j] (the blocker's response to the
// group's own differences) comes from a prefix scan in two vectors, and y = a + p^(i+1)·y_prev
// with y_prev the output just before the group (st[1], then the group's last output): the chain
// through the outputs advances eight samples at a time.
#define DCBLOCK \
	VPMOVSXWD 0(SI), X0 \
	VCVTDQ2PD X0, Y0        /* x[0..3] */ \
	VPMOVSXWD 8(SI), X1 \
	VCVTDQ2PD X1, Y1        /* x[4..7] */ \
	VPMOVSXWD 16(SI), X2 \
	VCVTDQ2PD X2, Y2        /* x[8..11] */ \
	VPMOVSXWD 24(SI), X3 \
	VCVTDQ2PD X3, Y3        /* x[12..15] */ \
	VPMOVSXWD 6(SI), X5 \
	VCVTDQ2PD X5, Y5        /* x[3..6] */ \
	VPMOVSXWD 14(SI), X6 \
	VCVTDQ2PD X6, Y6        /* x[7..10] */ \
	VPMOVSXWD 22(SI), X7 \
	VCVTDQ2PD X7, Y7        /* x[11..14] */ \
	VPERMPD $0x90, Y0, Y4   /* x[0], x[0], x[1], x[2] */ \
	VBROADCASTSD 0(R8), Y8  /* x[-1] */ \
	VBLENDPD $1, Y8, Y4, Y4 /* x[-1..2] */ \
	MOVWQSX 30(SI), AX \
	VXORPD X9, X9, X9 \
	VCVTSI2SDQ AX, X9, X9   /* x[15] */ \
	MOVWQSX 32(SI), AX \
	VXORPD X10, X10, X10 \
	VCVTSI2SDQ AX, X10, X10 /* x[16] */ \
	VMOVSD X10, 0(R8)       /* st[0] = x[16] */ \
	VSUBPD Y4, Y0, Y0       /* d[0..3] */ \
	VSUBPD Y5, Y1, Y1       /* d[4..7] */ \
	VSUBPD Y6, Y2, Y2       /* d[8..11] */ \
	VSUBPD Y7, Y3, Y3       /* d[12..15] */ \
	VSUBSD X9, X10, X4      /* d[16] */ \
	SCAN(Y0, Y8)            /* a within each vector of four */ \
	SCAN(Y1, Y9) \
	SCAN(Y2, Y10) \
	SCAN(Y3, Y11) \
	VMOVUPD 16(DX), Y12     /* p, p², p³, p⁴ */ \
	VPERMPD $0xFF, Y0, Y8   /* second half of each group: + p^(1..4)·a[3] of the first half */ \
	VFMADD231PD Y8, Y12, Y1 \
	VPERMPD $0xFF, Y2, Y9 \
	VFMADD231PD Y9, Y12, Y3 \
	VMOVUPD 48(DX), Y11     /* p⁵..p⁸ */ \
	VBROADCASTSD 8(R8), Y8  /* y[-1]; outputs: y = a + p^(i+1)·y_prev */ \
	VFMADD231PD Y8, Y12, Y0 \
	VFMADD231PD Y8, Y11, Y1 \
	VPERMPD $0xFF, Y1, Y8   /* y[7] */ \
	VFMADD231PD Y8, Y12, Y2 \
	VFMADD231PD Y8, Y11, Y3 \
	VPERMPD $0xFF, Y3, Y8   /* y[15] */ \
	VFMADD231SD X8, X14, X4 /* y[16] */ \
	VMOVUPD Y0, 0(DI) \
	VMOVUPD Y1, 32(DI) \
	VMOVUPD Y2, 64(DI) \
	VMOVUPD Y3, 96(DI) \
	VMOVSD X4, 128(DI) \
	VMOVSD X4, 8(R8)        /* st[1] = y[16] */ \
	VMULPD Y0, Y0, Y0       /* energy */ \
	VFMADD231PD Y1, Y1, Y0 \
	VFMADD231PD Y2, Y2, Y0 \
	VFMADD231PD Y3, Y3, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPD X1, X0, X0 \
	VPERMILPD $1, X0, X1 \
	VADDSD X1, X0, X0 \
	VFMADD231SD X4, X4, X0

// func dcBlock16N(first *[17]int16, x []int16, n int, hist *[ringSize*subLen]float64, slot int, e *[histAhead]float64, st *[2]float64)
//
// dcBlock (DCBLOCK) over the sub-block first, unless it is nil, then over n consecutive
// sub-blocks of x (which must hold them): the i-th of all goes to hist slot (slot+i) mod
// ringSize and its energy to e[i].
TEXT ·dcBlock16N(SB), NOSPLIT, $0-72
	CMPB ·useAVX2(SB), $0
	JEQ  dcBlock16NGo
	MOVQ first+0(FP), SI
	MOVQ x_base+8(FP), BX
	MOVQ n+32(FP), CX
	MOVQ hist+40(FP), R9
	MOVQ slot+48(FP), R10
	MOVQ e+56(FP), R11
	MOVQ st+64(FP), R8
	LEAQ ·dcTab(SB), DX
	DCCONST
	TESTQ SI, SI
	JZ   dcwhole
	MOVQ R10, AX
	ANDQ $(const_ringSize-1), AX
	IMULQ $(const_subLen*8), AX
	LEAQ (R9)(AX*1), DI
	DCBLOCK
	VMOVSD X0, (R11)
	ADDQ $8, R11
	INCQ R10
dcwhole:
	MOVQ BX, SI
	TESTQ CX, CX
	JZ   dcdone
dcloop:
	MOVQ R10, AX
	ANDQ $(const_ringSize-1), AX
	IMULQ $(const_subLen*8), AX
	LEAQ (R9)(AX*1), DI
	DCBLOCK
	VMOVSD X0, (R11)
	ADDQ $(const_subLen*2), SI
	ADDQ $8, R11
	INCQ R10
	DECQ CX
	JNZ  dcloop
dcdone:
	VZEROUPPER
	RET
dcBlock16NGo:
	JMP ·dcBlock16NGo(SB)

// func bandState(x *[17]float64, s *[4]float64)
//
// bandBlock without the outputs: only the next state, with the same operations (for the
// sub-blocks the band filter runs over before a window, whose energies no window uses).
TEXT ·bandState(SB), NOSPLIT, $0-16
	CMPB ·useAVX2(SB), $0
	JEQ  bandStateGo
	MOVQ x+0(FP), SI
	MOVQ s+8(FP), DI
	LEAQ ·bandTab(SB), DX
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	VBROADCASTSD 0(DI), Y12
	VFMADD231PD 3360(DX), Y12, Y10
	VBROADCASTSD 8(DI), Y12
	VFMADD231PD 3392(DX), Y12, Y11
	VBROADCASTSD 16(DI), Y12
	VFMADD231PD 3424(DX), Y12, Y10
	VBROADCASTSD 24(DI), Y12
	VFMADD231PD 3456(DX), Y12, Y11
	VBROADCASTSD 0(SI), Y12
	VFMADD231PD 3488(DX), Y12, Y10
	VBROADCASTSD 8(SI), Y12
	VFMADD231PD 3520(DX), Y12, Y11
	VBROADCASTSD 16(SI), Y12
	VFMADD231PD 3552(DX), Y12, Y10
	VBROADCASTSD 24(SI), Y12
	VFMADD231PD 3584(DX), Y12, Y11
	VBROADCASTSD 32(SI), Y12
	VFMADD231PD 3616(DX), Y12, Y10
	VBROADCASTSD 40(SI), Y12
	VFMADD231PD 3648(DX), Y12, Y11
	VBROADCASTSD 48(SI), Y12
	VFMADD231PD 3680(DX), Y12, Y10
	VBROADCASTSD 56(SI), Y12
	VFMADD231PD 3712(DX), Y12, Y11
	VBROADCASTSD 64(SI), Y12
	VFMADD231PD 3744(DX), Y12, Y10
	VBROADCASTSD 72(SI), Y12
	VFMADD231PD 3776(DX), Y12, Y11
	VBROADCASTSD 80(SI), Y12
	VFMADD231PD 3808(DX), Y12, Y10
	VBROADCASTSD 88(SI), Y12
	VFMADD231PD 3840(DX), Y12, Y11
	VBROADCASTSD 96(SI), Y12
	VFMADD231PD 3872(DX), Y12, Y10
	VBROADCASTSD 104(SI), Y12
	VFMADD231PD 3904(DX), Y12, Y11
	VBROADCASTSD 112(SI), Y12
	VFMADD231PD 3936(DX), Y12, Y10
	VBROADCASTSD 120(SI), Y12
	VFMADD231PD 3968(DX), Y12, Y11
	VBROADCASTSD 128(SI), Y12
	VFMADD231PD 4000(DX), Y12, Y10
	VADDPD Y11, Y10, Y10
	VMOVUPD Y10, 0(DI)
	VZEROUPPER
	RET
bandStateGo:
	JMP ·bandStateGo(SB)
