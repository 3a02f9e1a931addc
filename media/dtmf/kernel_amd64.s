#include "go_asm.h"
#include "textflag.h"

// The detector's vector kernels for x86-64 with AVX2 and FMA (see kernel_amd64.go). Each has a
// Go version with the same arithmetic up to rounding, to which it jumps when useAVX2 is false;
// tables come from Go (foldTab, dcTab, bandTab, runTab) so that the constants live in one place.
// The two that take runs of windows, quietWindows and steadyWindows, are their Go versions to the
// bit, those calling the other kernels (and jump to them when useRunKernels is false).

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
// table at DX, into re at DI and im at R8 (and left in Y12, Y13 and Y14, Y15, for WINDOWSUMF),
// turned by the phasors at R9 (real parts) and R10 (imaginary parts), which it advances by one
// sub-block.
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
	VMULPD Y2, Y10, Y12 \
	VFMADD231PD Y0, Y8, Y12 \
	VMULPD Y3, Y11, Y13 \
	VFMADD231PD Y1, Y9, Y13 \
	VMOVUPD Y12, 0(DI) \
	VMOVUPD Y13, 32(DI) \
	/* im = zr·b − zi·a */ \
	VMULPD Y0, Y10, Y14 \
	VFMSUB231PD Y2, Y8, Y14 \
	VMULPD Y1, Y11, Y15 \
	VFMSUB231PD Y3, Y9, Y15 \
	VMOVUPD Y14, 0(R8) \
	VMOVUPD Y15, 32(R8) \
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

// WINDOWSUM is the first part of windowStep, with its arguments re, im, p, inRe, inIm, outRe,
// outIm, peak and arg in DI, SI, DX, R8…R13: the window sums, their powers (left in Y0 for the
// rows and Y1 for the columns, and stored) and the largest power of each group (broadcast in Y2
// and Y3, and stored to peak[0:2]).
#define WINDOWSUM \
	VMOVUPD 0(R8), Y0 \
	VMOVUPD 32(R8), Y1 \
	VMOVUPD 0(R9), Y2 \
	VMOVUPD 32(R9), Y3 \
	VSUBPD 0(R10), Y0, Y0 \
	VSUBPD 32(R10), Y1, Y1 \
	VSUBPD 0(R11), Y2, Y2 \
	VSUBPD 32(R11), Y3, Y3 \
	WINDOWREST

// WINDOWSUMF is WINDOWSUM right after FOLDDFT, the sub-block entering the window taken from the
// registers FOLDDFT leaves it in rather than from memory (R8 and R9 are not read).
#define WINDOWSUMF \
	VSUBPD 0(R10), Y12, Y0 \
	VSUBPD 32(R10), Y13, Y1 \
	VSUBPD 0(R11), Y14, Y2 \
	VSUBPD 32(R11), Y15, Y3 \
	WINDOWREST

// WINDOWREST is the rest of WINDOWSUM, from the differences of the entering and leaving
// sub-blocks in Y0…Y3.
#define WINDOWREST \
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
	VMOVSD X3, 8(R12)

// PEAKS is the rest of windowStep, after WINDOWSUM: the first tone at the largest power, the
// largest power below it and the number of tones within relPeakRaw of it, in each group. It uses
// AX.
#define PEAKS \
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

// WINDOWSTEP is the body of windowStep (WINDOWSUM, PEAKS).
#define WINDOWSTEP \
	WINDOWSUM \
	PEAKS

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
	WINDOWSUMF
	PEAKS
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

// BANDBLOCK is the body of bandBlock: the sub-block at SI through the band filter from the state
// at DI, which it updates, with the table at DX; the energy of the outputs ends in X0. It uses
// Y0…Y12.
#define BANDBLOCK \
	VXORPD Y0, Y0, Y0 \
	VXORPD Y1, Y1, Y1 \
	VXORPD Y2, Y2, Y2 \
	VXORPD Y3, Y3, Y3 \
	VXORPD Y4, Y4, Y4 \
	VXORPD Y5, Y5, Y5 \
	VXORPD Y6, Y6, Y6 \
	VXORPD Y7, Y7, Y7 \
	VXORPD Y8, Y8, Y8 \
	VXORPD Y9, Y9, Y9 \
	VXORPD Y10, Y10, Y10 \
	VXORPD Y11, Y11, Y11 \
	VBROADCASTSD 0(DI), Y12 \
	VFMADD231PD 2720(DX), Y12, Y0 \
	VFMADD231PD 2752(DX), Y12, Y1 \
	VFMADD231PD 2784(DX), Y12, Y2 \
	VFMADD231PD 2816(DX), Y12, Y3 \
	VFMADD231PD 2848(DX), Y12, Y4 \
	VFMADD231PD 3360(DX), Y12, Y10 \
	VBROADCASTSD 8(DI), Y12 \
	VFMADD231PD 2880(DX), Y12, Y5 \
	VFMADD231PD 2912(DX), Y12, Y6 \
	VFMADD231PD 2944(DX), Y12, Y7 \
	VFMADD231PD 2976(DX), Y12, Y8 \
	VFMADD231PD 3008(DX), Y12, Y9 \
	VFMADD231PD 3392(DX), Y12, Y11 \
	VBROADCASTSD 16(DI), Y12 \
	VFMADD231PD 3040(DX), Y12, Y0 \
	VFMADD231PD 3072(DX), Y12, Y1 \
	VFMADD231PD 3104(DX), Y12, Y2 \
	VFMADD231PD 3136(DX), Y12, Y3 \
	VFMADD231PD 3168(DX), Y12, Y4 \
	VFMADD231PD 3424(DX), Y12, Y10 \
	VBROADCASTSD 24(DI), Y12 \
	VFMADD231PD 3200(DX), Y12, Y5 \
	VFMADD231PD 3232(DX), Y12, Y6 \
	VFMADD231PD 3264(DX), Y12, Y7 \
	VFMADD231PD 3296(DX), Y12, Y8 \
	VFMADD231PD 3328(DX), Y12, Y9 \
	VFMADD231PD 3456(DX), Y12, Y11 \
	VBROADCASTSD 0(SI), Y12 \
	VFMADD231PD 0(DX), Y12, Y0 \
	VFMADD231PD 32(DX), Y12, Y1 \
	VFMADD231PD 64(DX), Y12, Y2 \
	VFMADD231PD 96(DX), Y12, Y3 \
	VFMADD231PD 128(DX), Y12, Y4 \
	VFMADD231PD 3488(DX), Y12, Y10 \
	VBROADCASTSD 8(SI), Y12 \
	VFMADD231PD 160(DX), Y12, Y5 \
	VFMADD231PD 192(DX), Y12, Y6 \
	VFMADD231PD 224(DX), Y12, Y7 \
	VFMADD231PD 256(DX), Y12, Y8 \
	VFMADD231PD 288(DX), Y12, Y9 \
	VFMADD231PD 3520(DX), Y12, Y11 \
	VBROADCASTSD 16(SI), Y12 \
	VFMADD231PD 320(DX), Y12, Y0 \
	VFMADD231PD 352(DX), Y12, Y1 \
	VFMADD231PD 384(DX), Y12, Y2 \
	VFMADD231PD 416(DX), Y12, Y3 \
	VFMADD231PD 448(DX), Y12, Y4 \
	VFMADD231PD 3552(DX), Y12, Y10 \
	VBROADCASTSD 24(SI), Y12 \
	VFMADD231PD 480(DX), Y12, Y5 \
	VFMADD231PD 512(DX), Y12, Y6 \
	VFMADD231PD 544(DX), Y12, Y7 \
	VFMADD231PD 576(DX), Y12, Y8 \
	VFMADD231PD 608(DX), Y12, Y9 \
	VFMADD231PD 3584(DX), Y12, Y11 \
	VBROADCASTSD 32(SI), Y12 \
	VFMADD231PD 672(DX), Y12, Y1 \
	VFMADD231PD 704(DX), Y12, Y2 \
	VFMADD231PD 736(DX), Y12, Y3 \
	VFMADD231PD 768(DX), Y12, Y4 \
	VFMADD231PD 3616(DX), Y12, Y10 \
	VBROADCASTSD 40(SI), Y12 \
	VFMADD231PD 832(DX), Y12, Y6 \
	VFMADD231PD 864(DX), Y12, Y7 \
	VFMADD231PD 896(DX), Y12, Y8 \
	VFMADD231PD 928(DX), Y12, Y9 \
	VFMADD231PD 3648(DX), Y12, Y11 \
	VBROADCASTSD 48(SI), Y12 \
	VFMADD231PD 992(DX), Y12, Y1 \
	VFMADD231PD 1024(DX), Y12, Y2 \
	VFMADD231PD 1056(DX), Y12, Y3 \
	VFMADD231PD 1088(DX), Y12, Y4 \
	VFMADD231PD 3680(DX), Y12, Y10 \
	VBROADCASTSD 56(SI), Y12 \
	VFMADD231PD 1152(DX), Y12, Y6 \
	VFMADD231PD 1184(DX), Y12, Y7 \
	VFMADD231PD 1216(DX), Y12, Y8 \
	VFMADD231PD 1248(DX), Y12, Y9 \
	VFMADD231PD 3712(DX), Y12, Y11 \
	VBROADCASTSD 64(SI), Y12 \
	VFMADD231PD 1344(DX), Y12, Y2 \
	VFMADD231PD 1376(DX), Y12, Y3 \
	VFMADD231PD 1408(DX), Y12, Y4 \
	VFMADD231PD 3744(DX), Y12, Y10 \
	VBROADCASTSD 72(SI), Y12 \
	VFMADD231PD 1504(DX), Y12, Y7 \
	VFMADD231PD 1536(DX), Y12, Y8 \
	VFMADD231PD 1568(DX), Y12, Y9 \
	VFMADD231PD 3776(DX), Y12, Y11 \
	VBROADCASTSD 80(SI), Y12 \
	VFMADD231PD 1664(DX), Y12, Y2 \
	VFMADD231PD 1696(DX), Y12, Y3 \
	VFMADD231PD 1728(DX), Y12, Y4 \
	VFMADD231PD 3808(DX), Y12, Y10 \
	VBROADCASTSD 88(SI), Y12 \
	VFMADD231PD 1824(DX), Y12, Y7 \
	VFMADD231PD 1856(DX), Y12, Y8 \
	VFMADD231PD 1888(DX), Y12, Y9 \
	VFMADD231PD 3840(DX), Y12, Y11 \
	VBROADCASTSD 96(SI), Y12 \
	VFMADD231PD 2016(DX), Y12, Y3 \
	VFMADD231PD 2048(DX), Y12, Y4 \
	VFMADD231PD 3872(DX), Y12, Y10 \
	VBROADCASTSD 104(SI), Y12 \
	VFMADD231PD 2176(DX), Y12, Y8 \
	VFMADD231PD 2208(DX), Y12, Y9 \
	VFMADD231PD 3904(DX), Y12, Y11 \
	VBROADCASTSD 112(SI), Y12 \
	VFMADD231PD 2336(DX), Y12, Y3 \
	VFMADD231PD 2368(DX), Y12, Y4 \
	VFMADD231PD 3936(DX), Y12, Y10 \
	VBROADCASTSD 120(SI), Y12 \
	VFMADD231PD 2496(DX), Y12, Y8 \
	VFMADD231PD 2528(DX), Y12, Y9 \
	VFMADD231PD 3968(DX), Y12, Y11 \
	VBROADCASTSD 128(SI), Y12 \
	VFMADD231PD 2688(DX), Y12, Y4 \
	VFMADD231PD 4000(DX), Y12, Y10 \
	VADDPD Y5, Y0, Y0 \
	VADDPD Y6, Y1, Y1 \
	VADDPD Y7, Y2, Y2 \
	VADDPD Y8, Y3, Y3 \
	VADDPD Y9, Y4, Y4 \
	VADDPD Y11, Y10, Y10 \
	VMOVUPD Y10, 0(DI) \
	VMULPD Y0, Y0, Y0 \
	VFMADD231PD Y1, Y1, Y0 \
	VFMADD231PD Y2, Y2, Y0 \
	VFMADD231PD Y3, Y3, Y0 \
	VFMADD231PD Y4, Y4, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPD X1, X0, X0 \
	VPERMILPD $1, X0, X1 \
	VADDSD X1, X0, X0

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
	BANDBLOCK
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

// WINSUM is the start of quietWindows and steadyWindows for the window that ends with sub-block
// j = d.nsub, whose energy after the DC blocker is es[i], with d in R14, i in BX, j in CX (the
// macros leave these three alone) and es's first element at AX: endSub's window sum
// w = (winE + e) − ringE[old] (in X1, e in X0) and we = max(w, 1e-9) (in X2), and its silence
// gate, to silent if the window is silent, having changed nothing.
#define WINSUM(silent) \
	VMOVSD (AX)(BX*8), X0 \
	LEAQ -const_winSubs(CX), DX \
	ANDQ $(const_ringSize-1), DX \
	VMOVSD Detector_winE(R14), X1 \
	VADDSD X0, X1, X1 \
	VSUBSD Detector_ringE(R14)(DX*8), X1, X1 \
	VMAXSD ·runTab+runConsts_tiny(SB), X1, X2 \
	VMULSD ·runTab+runConsts_gate(SB), X2, X3 \
	VMOVSD Detector_pMin(R14), X4 \
	VMULSD ·runTab+runConsts_half(SB), X4, X4 \
	VUCOMISD X4, X3 \
	JCS  silent

// CLOSESUB is endSub's bookkeeping of sub-block j after WINSUM: its energy, the window sum, and
// the count of sub-blocks. It leaves j mod ringSize in SI.
#define CLOSESUB \
	MOVQ CX, SI \
	ANDQ $(const_ringSize-1), SI   /* slot */ \
	VMOVSD X0, Detector_ringE(R14)(SI*8) \
	VMOVSD X1, Detector_winE(R14) \
	MOVQ $0, Detector_m(R14) \
	LEAQ 1(CX), AX \
	MOVQ AX, Detector_nsub(R14)

// OPENWIN is the rest of endSub for a window past the silence gate, after WINSUM: its
// bookkeeping (CLOSESUB), the window's bins moved on by one sub-block (windowBins's first case:
// FOLDDFT, WINDOWSUMF) and their bookkeeping, and we and ws to the runOut at out. It leaves the
// powers in Y0 (rows) and Y1 (columns), and the largest of each group in X2 and X3.
#define OPENWIN(out) \
	CLOSESUB \
	MOVQ out, AX \
	VMOVSD X2, runOut_we(AX) \
	LEAQ -(const_winSubs-1)(CX), R8 \
	IMUL3Q $const_subLen, R8, R8 \
	MOVQ R8, runOut_ws(AX) \
	MOVQ SI, AX \
	SHLQ $6, AX                    /* 64 bytes per sub-block of eight tones */ \
	IMUL3Q $(const_subLen*8), SI, SI \
	LEAQ Detector_hist(R14)(SI*1), SI \
	LEAQ ·foldTab(SB), DX \
	LEAQ (Detector_bins+bins_ringRe)(R14)(AX*1), DI \
	LEAQ (Detector_bins+bins_ringIm)(R14)(AX*1), R8 \
	LEAQ (Detector_bins+bins_rotRe)(R14), R9 \
	LEAQ (Detector_bins+bins_rotIm)(R14), R10 \
	FOLDDFT \
	MOVQ DI, R8 \
	LEAQ (bins_ringIm-bins_ringRe)(DI), R9 \
	LEAQ -const_winSubs(CX), AX \
	ANDQ $(const_ringSize-1), AX \
	SHLQ $6, AX \
	LEAQ (Detector_bins+bins_ringRe)(R14)(AX*1), R10 \
	LEAQ (Detector_bins+bins_ringIm)(R14)(AX*1), R11 \
	LEAQ (Detector_bins+bins_winRe)(R14), DI \
	LEAQ (Detector_bins+bins_winIm)(R14), SI \
	LEAQ (Detector_bins+bins_winP)(R14), DX \
	LEAQ (Detector_bins+bins_winPeak)(R14), R12 \
	LEAQ (Detector_bins+bins_winArg)(R14), R13 \
	WINDOWSUMF \
	LEAQ 1(CX), AX \
	MOVQ AX, Detector_rotOf(R14) \
	MOVQ CX, AX \
	ANDQ $(const_ringSize-1), AX \
	MOVQ CX, Detector_binOf(R14)(AX*8) \
	INCQ Detector_winXN(R14) \
	MOVQ CX, Detector_winXOf(R14)

// CHEAPTEST is analyseBins's first test after OPENWIN (quick, with the limits the Go versions
// compute: pMin·0.5 and 0.3·winLen·we·minRatioAll, we from the runOut at out): to fail if the
// strongest row or column is below the first or twice their sum below the second.
#define CHEAPTEST(fail, out) \
	VMOVSD Detector_pMin(R14), X4 \
	VMULSD ·runTab+runConsts_half(SB), X4, X4 \
	VUCOMISD X4, X2 \
	JCS  fail \
	VUCOMISD X4, X3 \
	JCS  fail \
	MOVQ out, AX \
	VMOVSD runOut_we(AX), X4 \
	VMULSD ·runTab+runConsts_share(SB), X4, X4 \
	VMULSD ·runTab+runConsts_minAll(SB), X4, X4 \
	VADDSD X3, X2, X5 \
	VADDSD X5, X5, X5 \
	VUCOMISD X4, X5 \
	JCS  fail

// func quietWindows(d *Detector, es []float64, o *runOut) int
//
// quietWindowsGo, window after window, with the same operations in the same order (WINSUM, then
// for a silent window CLOSESUB, else OPENWIN, CHEAPTEST, and PEAKS and the raw relative peak for a
// window that passes them; then the failed window's decide). Register use and the absence of NaN
// as in steadyWindows below.
TEXT ·quietWindows(SB), NOSPLIT, $0-48
	CMPB ·useRunKernels(SB), $0
	JEQ  qwGo
	MOVQ d+0(FP), R14
	XORQ BX, BX
qwLoop:
	CMPQ BX, es_len+16(FP)
	JGE  qwBefore
	MOVQ Detector_nsub(R14), CX          // j, the sub-block to close
	TESTQ $255, CX
	JZ   qwBefore                        // endSub's fresh window sum
	MOVQ es_base+8(FP), AX
	WINSUM(qwSilent)
	LEAQ -1(CX), AX
	CMPQ AX, Detector_winXOf(R14)
	JNE  qwBefore                        // the window before had no bins
	CMPQ CX, Detector_rotOf(R14)
	JNE  qwBefore                        // the phasors do not follow on
	CMPQ Detector_winXN(R14), $255
	JGE  qwBefore                        // windowBins's fresh sums
	OPENWIN(o+32(FP))
	MOVQ $-1, Detector_chain(R14)        // steadyRun did not take the window
	CHEAPTEST(qwFail, o+32(FP))
	PEAKS
	CMPQ 16(R13), $1                     // analyseBins's raw relative peak, which fails the
	JGT  qwFail                          // window at once like the first test
	CMPQ 24(R13), $1
	JGT  qwFail
	MOVQ $const_stopPass, AX
	JMP  qwTook
qwSilent:
	// endSub's silence gate: its bookkeeping, the sub-block without bins, and failed
	CLOSESUB
	MOVQ $-1, Detector_binOf(R14)(SI*8)
qwFail:
	// decide for a window that failed: Go's failed when there is a candidate to drop or the digit
	// on ends (nsub·subLen ≥ lastEnd + maxGap + winLen); else count the window and a miss of the
	// digit on, and drop the reference
	CMPB (Detector_cand+run_active)(R14), $0
	JNE  qwFailed
	CMPB (Detector_cur+run_active)(R14), $0
	JEQ  qwCount
	LEAQ 1(CX), AX
	IMUL3Q $const_subLen, AX, AX
	MOVQ (Detector_cur+run_lastEnd)(R14), DX
	ADDQ Detector_maxGap(R14), DX
	ADDQ $const_winLen, DX
	CMPQ AX, DX
	JGE  qwFailed
	INCQ (Detector_cur+run_misses)(R14)
qwCount:
	INCQ (Detector_stats+detectorStats_windows)(R14)
	MOVB $0, (Detector_ref+steadyRef_valid)(R14)
	INCQ BX
	JMP  qwLoop
qwFailed:
	MOVQ $const_stopFailed, AX
qwTook:
	INCQ BX
	JMP  qwOut
qwBefore:
	MOVQ $const_stopBefore, AX
qwOut:
	MOVQ o+32(FP), R8
	MOVQ AX, runOut_code(R8)
	MOVQ BX, ret+40(FP)
	VZEROUPPER
	RET
qwGo:
	JMP ·quietWindowsGo(SB)

// ROUNDC is roundNonNeg(c·winLen) for c in X7 (0 ≤ c ≤ 1), into AX: 0 below a half, else the
// integer part of c·winLen + 0.5. It uses X8, X9 and DX.
#define ROUNDC \
	VMULSD ·runTab+runConsts_winLen(SB), X7, X8 \
	VADDSD ·runTab+runConsts_half(SB), X8, X9 \
	VCVTTSD2SIQ X9, AX \
	XORQ DX, DX \
	VUCOMISD ·runTab+runConsts_half(SB), X8 \
	CMOVQCS DX, AX

// RUNADD is the start of run.add (and addSteady) for the run at offset R of d and a steady window
// with band energy ratio rhoB in X4, powers pr, pc in X2, X3 and first sample runOut.ws (runOut at
// R8): one more window, the largest ratio, c = rhoB/rhoMax (1 when rhoB is the largest, as rhoB
// divided by itself is exactly: rhoB ≥ minRatioBand is not 0), and the tone's end estimate; on to
// edge if c < 0.9 (a window at an edge of the tone, whose powers are not counted), with c in X7.
#define RUNADD(R, edge) \
	INCQ (R+run_windows)(R14) \
	VMAXSD (R+run_rhoMax)(R14), X4, X6 \
	VMOVSD X6, (R+run_rhoMax)(R14) \
	VDIVSD X6, X4, X7 \
	ROUNDC \
	ADDQ runOut_ws(R8), AX \
	MOVQ (R+run_lastEnd)(R14), DX \
	CMPQ AX, DX \
	CMOVQLT DX, AX \
	MOVQ AX, (R+run_lastEnd)(R14) \
	VUCOMISD ·runTab+runConsts_edge(SB), X7 \
	JCS  edge

// func steadyWindows(d *Detector, es []float64, on bool, o *runOut) int
//
// steadyWindowsGo, window after window, with the same operations in the same order: WINSUM,
// OPENWIN, CHEAPTEST and PEAKS, steadyPowers (scalar, each complex product written out as Go
// computes it), wideMargin, the energy shares with the band filter (BANDBLOCK) and bandSum, the
// relative peak on the raw bins, and decide: addSteady for a window of the digit on, run.add and
// the wait for more windows for the candidate's (RUNADD, ROUNDC: the same operations, with
// conditional moves where Go branches). The constants come from runTab; the detector's fields by
// their offsets (go_asm.h). R14 holds d, BX the sub-blocks taken, CX the sub-block being closed;
// the macros leave them alone. Nothing it compares is NaN (every value comes from 16-bit samples
// through finite sums, and every divisor is at least 1e-9 or a positive maximum).
TEXT ·steadyWindows(SB), NOSPLIT, $0-56
	CMPB ·useRunKernels(SB), $0
	JEQ  swGo
	MOVQ d+0(FP), R14
	XORQ BX, BX

swLoop:
	CMPQ BX, es_len+16(FP)
	JGE  swBefore
	CMPQ (Detector_ref+steadyRef_n)(R14), $const_steadyRun
	JGE  swBefore                        // the reference to renew
	CMPQ Detector_winXN(R14), $255
	JGE  swBefore                        // windowBins's fresh sums
	MOVQ Detector_nsub(R14), CX          // j, the sub-block to close
	TESTQ $255, CX
	JZ   swBefore                        // endSub's fresh window sum
	MOVQ es_base+8(FP), AX
	WINSUM(swBefore)
	OPENWIN(o+40(FP))
	CHEAPTEST(swCheap, o+40(FP))
	PEAKS
	// the strongest tones must be the reference's pair, each clear of its group's others
	CMPQ 16(R13), $1
	JGT  swFull
	CMPQ 24(R13), $1
	JGT  swFull
	MOVQ 0(R13), AX
	CMPQ AX, (Detector_ref+steadyRef_r)(R14)
	JNE  swFull
	MOVQ 8(R13), AX
	ADDQ $4, AX
	CMPQ AX, (Detector_ref+steadyRef_c)(R14)
	JNE  swFull

	// steadyPowers(r, c, pw): pw = ws mod 8000 and m = dm·pw mod 8000, each by the reciprocal
	// (ws ≥ 0, dm·pw < 2^26)
	MOVQ o+40(FP), R8
	MOVQ runOut_ws(R8), R9
	MOVQ $0x4189374BC6A7EF9E, AX         // ⌈2^75 / 8000⌉
	IMULQ R9
	SARQ $11, DX
	IMUL3Q $const_rate8, DX, DX
	SUBQ DX, R9                          // pw
	MOVL (Detector_ref+steadyRef_dm)(R14), AX
	IMULQ AX, R9                         // dm·pw
	MOVQ $0x4189374BC6A7EF9E, AX
	IMULQ R9
	SARQ $11, DX
	IMUL3Q $const_rate8, DX, DX
	SUBQ DX, R9                          // m
	// t = turnHi[m>>6]·turnLo[m&63]
	MOVQ R9, AX
	SHRQ $6, AX
	SHLQ $4, AX
	LEAQ ·turnHi(SB), DX
	VMOVSD 0(DX)(AX*1), X0               // a.re
	VMOVSD 8(DX)(AX*1), X1               // a.im
	ANDQ $63, R9
	SHLQ $4, R9
	LEAQ ·turnLo(SB), DX
	VMOVSD 0(DX)(R9*1), X2               // b.re
	VMOVSD 8(DX)(R9*1), X3               // b.im
	VMULSD X2, X0, X4
	VMULSD X3, X1, X5
	VSUBSD X5, X4, X4                    // t.re = a.re·b.re − a.im·b.im
	VMULSD X3, X0, X5
	VMULSD X2, X1, X6
	VADDSD X6, X5, X5                    // t.im = a.re·b.im + a.im·b.re
	// v = conj(t)·hv: v.re = t.re·hv.re − (−t.im)·hv.im, v.im = t.re·hv.im + (−t.im)·hv.re
	VMOVSD (Detector_ref+steadyRef_hv)(R14), X6
	VMOVSD (Detector_ref+steadyRef_hv+8)(R14), X7
	VMULSD X6, X4, X0
	VMULSD X7, X5, X1
	VADDSD X1, X0, X0                    // v.re
	VMULSD X7, X4, X1
	VMULSD X6, X5, X2
	VSUBSD X2, X1, X1                    // v.im
	// z = xr·conj(xc): z.re = ar·cr − ai·(−ci), z.im = ar·(−ci) + ai·cr
	MOVQ (Detector_ref+steadyRef_r)(R14), AX
	MOVQ (Detector_ref+steadyRef_c)(R14), DX
	VMOVSD (Detector_bins+bins_winRe)(R14)(AX*8), X2
	VMOVSD (Detector_bins+bins_winIm)(R14)(AX*8), X3
	VMOVSD (Detector_bins+bins_winRe)(R14)(DX*8), X4
	VMOVSD (Detector_bins+bins_winIm)(R14)(DX*8), X5
	VMULSD X4, X2, X6
	VMULSD X5, X3, X7
	VADDSD X7, X6, X6                    // z.re
	VMULSD X4, X3, X7
	VMULSD X5, X2, X8
	VSUBSD X8, X7, X7                    // z.im
	// x = z.re·v.re − z.im·v.im; pr = k0·pR + k1·pC − k2·x, pc = k3·pC + k4·pR − k5·x
	VMULSD X0, X6, X6
	VMULSD X1, X7, X7
	VSUBSD X7, X6, X6
	VMOVSD (Detector_bins+bins_winP)(R14)(AX*8), X0   // pR
	VMOVSD (Detector_bins+bins_winP)(R14)(DX*8), X1   // pC
	VMULSD (Detector_ref+steadyRef_pk)(R14), X0, X2
	VMULSD (Detector_ref+steadyRef_pk+8)(R14), X1, X3
	VADDSD X3, X2, X2
	VMULSD (Detector_ref+steadyRef_pk+16)(R14), X6, X3
	VSUBSD X3, X2, X2                    // pr
	VMULSD (Detector_ref+steadyRef_pk+24)(R14), X1, X3
	VMULSD (Detector_ref+steadyRef_pk+32)(R14), X0, X4
	VADDSD X4, X3, X3
	VMULSD (Detector_ref+steadyRef_pk+40)(R14), X6, X4
	VSUBSD X4, X3, X3                    // pc

	// wideMargin
	VMOVSD Detector_pMin(R14), X4
	VMULSD ·runTab+runConsts_level(SB), X4, X4
	VUCOMISD X4, X2
	JCS  swFull
	VUCOMISD X4, X3
	JCS  swFull
	VMULSD ·runTab+runConsts_twist(SB), X2, X5
	VMULSD Detector_normalTwist(R14), X3, X6
	VUCOMISD X6, X5
	JHI  swFull
	VMULSD ·runTab+runConsts_twist(SB), X3, X5
	VMULSD Detector_revTwist(R14), X2, X6
	VUCOMISD X6, X5
	JHI  swFull

	// the reference is used; rho = (pr+pc)·twoOverN / we
	MOVQ CX, (Detector_ref+steadyRef_last)(R14)
	INCQ (Detector_ref+steadyRef_n)(R14)
	MOVQ o+40(FP), R8
	VADDSD X3, X2, X4
	VMULSD ·runTab+runConsts_twoOverN(SB), X4, X4
	VDIVSD runOut_we(R8), X4, X4
	VMOVSD X2, runOut_pr(R8)
	VMOVSD X3, runOut_pc(R8)
	VMOVSD X4, runOut_rho(R8)
	VUCOMISD ·runTab+runConsts_minAll(SB), X4
	JCS  swWeak

	// the band filter over the sub-block, and the window's band energy (bandSum)
	MOVQ CX, SI
	ANDQ $(const_ringSize-1), SI
	IMUL3Q $(const_subLen*8), SI, SI
	LEAQ Detector_hist(R14)(SI*1), SI
	LEAQ Detector_band(R14), DI
	LEAQ ·bandTab(SB), DX
	BANDBLOCK
	MOVQ CX, AX
	ANDQ $(const_ringSize-1), AX
	VMOVSD X0, Detector_ringEB(R14)(AX*8)
	LEAQ 1(CX), AX
	MOVQ AX, Detector_bandSub(R14)
	INCQ AX
	MOVQ AX, Detector_chain(R14)
	LEAQ -5(CX), AX
	ANDQ $(const_ringSize-1), AX
	VMOVSD Detector_ringEB(R14)(AX*8), X0
	LEAQ -4(CX), AX
	ANDQ $(const_ringSize-1), AX
	VADDSD Detector_ringEB(R14)(AX*8), X0, X0
	LEAQ -3(CX), AX
	ANDQ $(const_ringSize-1), AX
	VADDSD Detector_ringEB(R14)(AX*8), X0, X0
	LEAQ -2(CX), AX
	ANDQ $(const_ringSize-1), AX
	VADDSD Detector_ringEB(R14)(AX*8), X0, X0
	LEAQ -1(CX), AX
	ANDQ $(const_ringSize-1), AX
	VADDSD Detector_ringEB(R14)(AX*8), X0, X0
	MOVQ CX, AX
	ANDQ $(const_ringSize-1), AX
	VADDSD Detector_ringEB(R14)(AX*8), X0, X0
	VMAXSD ·runTab+runConsts_tiny(SB), X0, X0
	// rhoB = (pr·gr + pc·gc)·twoOverN / eb
	MOVQ o+40(FP), R8
	VMOVSD runOut_pr(R8), X2
	VMOVSD runOut_pc(R8), X3
	VMULSD (Detector_ref+steadyRef_gr)(R14), X2, X4
	VMULSD (Detector_ref+steadyRef_gc)(R14), X3, X5
	VADDSD X5, X4, X4
	VMULSD ·runTab+runConsts_twoOverN(SB), X4, X4
	VDIVSD X0, X4, X4
	VMOVSD X4, runOut_rhoB(R8)
	VUCOMISD ·runTab+runConsts_minBand(SB), X4
	JCS  swBand
	// the relative peak on the raw bins
	VMOVSD (Detector_bins+bins_winPeak+16)(R14), X5
	VMULSD ·runTab+runConsts_relPeak(SB), X5, X5
	VUCOMISD X2, X5
	JHI  swPeak
	VMOVSD (Detector_bins+bins_winPeak+24)(R14), X5
	VMULSD ·runTab+runConsts_relPeak(SB), X5, X5
	VUCOMISD X3, X5
	JHI  swPeak
	INCQ (Detector_stats+detectorStats_windows)(R14)
	INCQ (Detector_stats+detectorStats_passed)(R14)
	CMPB on+32(FP), $0
	JEQ  swCand

	// decide, for the digit on: addSteady(rhoB, pr, pc, ws)
	RUNADD(Detector_cur, swNext)
	INCQ (Detector_cur+run_n)(R14)
	VMOVSD (Detector_cur+run_sumPr)(R14), X8
	VADDSD X2, X8, X8
	VMOVSD X8, (Detector_cur+run_sumPr)(R14)
	VMOVSD (Detector_cur+run_sumPc)(R14), X8
	VADDSD X3, X8, X8
	VMOVSD X8, (Detector_cur+run_sumPc)(R14)
swNext:
	INCQ BX
	JMP  swLoop

swCand:
	// decide, for the candidate: step, which adds the window (run.add of a steady window: no
	// frequencies, no probes), and waits for more unless it has pending probes or is long enough,
	// when steadyRun does the rest (candTail)
	RUNADD(Detector_cand, swCandTail)
	VMOVSD runOut_rho(R8), X6
	VMAXSD (Detector_cand+run_rhoAllMax)(R14), X6, X6
	VMOVSD X6, (Detector_cand+run_rhoAllMax)(R14)
	CMPQ (Detector_cand+run_n)(R14), $0
	JNE  swCandN
	VMOVSD X2, (Detector_cand+run_minPr)(R14)
	VMOVSD X2, (Detector_cand+run_maxPr)(R14)
	VMOVSD X3, (Detector_cand+run_minPc)(R14)
	VMOVSD X3, (Detector_cand+run_maxPc)(R14)
swCandN:
	INCQ (Detector_cand+run_n)(R14)
	VMOVSD (Detector_cand+run_sumPr)(R14), X8
	VADDSD X2, X8, X8
	VMOVSD X8, (Detector_cand+run_sumPr)(R14)
	VMOVSD (Detector_cand+run_sumPc)(R14), X8
	VADDSD X3, X8, X8
	VMOVSD X8, (Detector_cand+run_sumPc)(R14)
	// minPr, maxPr (run.add's if pr < minPr … else if pr > maxPr: as minPr ≤ maxPr, at most one
	// of the two moves, so they can be taken apart), and minPc, maxPc
	VMINSD (Detector_cand+run_minPr)(R14), X2, X8
	VMOVSD X8, (Detector_cand+run_minPr)(R14)
	VMAXSD (Detector_cand+run_maxPr)(R14), X2, X8
	VMOVSD X8, (Detector_cand+run_maxPr)(R14)
	VMINSD (Detector_cand+run_minPc)(R14), X3, X8
	VMOVSD X8, (Detector_cand+run_minPc)(R14)
	VMAXSD (Detector_cand+run_maxPc)(R14), X3, X8
	VMOVSD X8, (Detector_cand+run_maxPc)(R14)
swCandTail:
	CMPQ (Detector_cand+run_pendN)(R14), $0
	JNE  swCandStop
	// start(): firstWS + winLen − roundNonNeg(c·winLen), c = min(1, firstRho/rhoMax) (rhoMax > 0)
	VMOVSD (Detector_cand+run_firstRho)(R14), X8
	VDIVSD (Detector_cand+run_rhoMax)(R14), X8, X8
	VMINSD ·runTab+runConsts_one(SB), X8, X7
	ROUNDC
	MOVQ (Detector_cand+run_firstWS)(R14), DX
	ADDQ $const_winLen, DX
	SUBQ AX, DX
	MOVQ (Detector_cand+run_lastEnd)(R14), AX
	SUBQ DX, AX
	CMPQ AX, Detector_minDur(R14)
	JLT  swNext                          // not long enough yet
	CMPQ (Detector_cand+run_windows)(R14), $3
	JLT  swNext
swCandStop:
	MOVQ $const_stopCand, AX
	JMP  swTook

swBefore:
	MOVQ $const_stopBefore, AX
	JMP  swOut
swCheap:
	MOVQ $const_stopCheap, AX
	JMP  swTook
swFull:
	MOVQ $const_stopFull, AX
	JMP  swTook
swWeak:
	MOVQ $const_stopWeak, AX
	JMP  swTook
swBand:
	MOVQ $const_stopBand, AX
	JMP  swTook
swPeak:
	MOVQ $const_stopPeak, AX
	JMP  swTook
swTook:
	INCQ BX
swOut:
	MOVQ o+40(FP), R8
	MOVQ AX, runOut_code(R8)
	MOVQ BX, ret+48(FP)
	VZEROUPPER
	RET
swGo:
	JMP ·steadyWindowsGo(SB)
