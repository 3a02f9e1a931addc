#include "textflag.h"

// The detector's vector kernels for x86-64 with AVX2 and FMA (see kernel_amd64.go). Each has a
// Go version with the same arithmetic up to rounding; tables come from Go (foldTable, dcTable,
// bandTable) so that the constants live in one place.

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

// func foldDFTAVX2(x *[17]float64, re, im, tr, ti *[8]float64, t *foldTable)
//
// foldDFTGo with four tones per instruction. The folded samples u[n], v[n] go through the stack
// so that each can be broadcast by a load; even and odd n accumulate separately to halve the
// chains of dependent multiply-adds.
TEXT ·foldDFTAVX2(SB), NOSPLIT, $128-48
	MOVQ x+0(FP), SI
	MOVQ t+40(FP), DX

	VMOVUPD 72(SI), Y0      // x[9..12]
	VMOVUPD 104(SI), Y1     // x[13..16]
	VMOVUPD 32(SI), Y2      // x[4..7]
	VMOVUPD 0(SI), Y3       // x[0..3]
	VPERMPD $0x1B, Y2, Y2   // x[7], x[6], x[5], x[4]
	VPERMPD $0x1B, Y3, Y3   // x[3], x[2], x[1], x[0]
	VADDPD Y2, Y0, Y4       // u[0..3]
	VSUBPD Y2, Y0, Y5       // v[0..3]
	VADDPD Y3, Y1, Y6       // u[4..7]
	VSUBPD Y3, Y1, Y7       // v[4..7]
	VMOVUPD Y4, 0(SP)
	VMOVUPD Y6, 32(SP)
	VMOVUPD Y5, 64(SP)
	VMOVUPD Y7, 96(SP)

	VBROADCASTSD 64(SI), Y8 // real parts, even n: start at x[8]
	VMOVAPD Y8, Y9
	VXORPD Y12, Y12, Y12    // real parts, odd n
	VXORPD Y13, Y13, Y13
	VXORPD Y10, Y10, Y10    // imaginary parts, even n
	VXORPD Y11, Y11, Y11
	VXORPD Y14, Y14, Y14    // imaginary parts, odd n
	VXORPD Y15, Y15, Y15

#define TERM(n, rA, rB, iA, iB) \
	VBROADCASTSD (n*8)(SP), Y0 \
	VBROADCASTSD (64+n*8)(SP), Y1 \
	VFMADD231PD (n*64)(DX), Y0, rA \
	VFMADD231PD (n*64+32)(DX), Y0, rB \
	VFMADD231PD (512+n*64)(DX), Y1, iA \
	VFMADD231PD (512+n*64+32)(DX), Y1, iB

	TERM(0, Y8, Y9, Y10, Y11)
	TERM(1, Y12, Y13, Y14, Y15)
	TERM(2, Y8, Y9, Y10, Y11)
	TERM(3, Y12, Y13, Y14, Y15)
	TERM(4, Y8, Y9, Y10, Y11)
	TERM(5, Y12, Y13, Y14, Y15)
	TERM(6, Y8, Y9, Y10, Y11)
	TERM(7, Y12, Y13, Y14, Y15)

	VADDPD Y12, Y8, Y8      // zr, tones 0..3
	VADDPD Y13, Y9, Y9      // zr, tones 4..7
	VADDPD Y14, Y10, Y10    // zi, tones 0..3
	VADDPD Y15, Y11, Y11    // zi, tones 4..7

	MOVQ re+8(FP), DI
	MOVQ im+16(FP), R8
	MOVQ tr+24(FP), R9
	MOVQ ti+32(FP), R10
	VMOVUPD 0(R9), Y0       // a = tr
	VMOVUPD 32(R9), Y1
	VMOVUPD 0(R10), Y2      // b = ti
	VMOVUPD 32(R10), Y3

	// re = zr·a + zi·b
	VMULPD Y2, Y10, Y4
	VFMADD231PD Y0, Y8, Y4
	VMULPD Y3, Y11, Y5
	VFMADD231PD Y1, Y9, Y5
	VMOVUPD Y4, 0(DI)
	VMOVUPD Y5, 32(DI)
	// im = zr·b − zi·a
	VMULPD Y0, Y10, Y4
	VFMSUB231PD Y2, Y8, Y4
	VMULPD Y1, Y11, Y5
	VFMSUB231PD Y3, Y9, Y5
	VMOVUPD Y4, 0(R8)
	VMOVUPD Y5, 32(R8)

	// phasor times e^{-jw·subLen}: a' = a·sr − b·si, b' = a·si + b·sr
	VMOVUPD 1024(DX), Y6    // sr
	VMOVUPD 1056(DX), Y7
	VMOVUPD 1088(DX), Y8    // si
	VMOVUPD 1120(DX), Y9
	VMULPD Y8, Y2, Y4
	VFMSUB231PD Y6, Y0, Y4
	VMULPD Y9, Y3, Y5
	VFMSUB231PD Y7, Y1, Y5
	VMOVUPD Y4, 0(R9)
	VMOVUPD Y5, 32(R9)
	VMULPD Y6, Y2, Y4
	VFMADD231PD Y8, Y0, Y4
	VMULPD Y7, Y3, Y5
	VFMADD231PD Y9, Y1, Y5
	VMOVUPD Y4, 0(R10)
	VMOVUPD Y5, 32(R10)
	VZEROUPPER
	RET

// func windowStepAVX2(re, im, p, inRe, inIm, outRe, outIm *[8]float64, peak *[2]float64, arg *[4]int)
//
// windowStepGo, with the same operations in the same order; the group statistics come from
// comparisons of the four powers of a group with its largest.
TEXT ·windowStepAVX2(SB), NOSPLIT, $0-72
	MOVQ re+0(FP), DI
	MOVQ im+8(FP), SI
	MOVQ p+16(FP), DX
	MOVQ inRe+24(FP), R8
	MOVQ inIm+32(FP), R9
	MOVQ outRe+40(FP), R10
	MOVQ outIm+48(FP), R11
	MOVQ peak+56(FP), R12
	MOVQ arg+64(FP), R13
	VMOVUPD 0(R8), Y0
	VMOVUPD 32(R8), Y1
	VMOVUPD 0(R9), Y2
	VMOVUPD 32(R9), Y3
	VSUBPD 0(R10), Y0, Y0
	VSUBPD 32(R10), Y1, Y1
	VSUBPD 0(R11), Y2, Y2
	VSUBPD 32(R11), Y3, Y3
	VADDPD 0(DI), Y0, Y0
	VADDPD 32(DI), Y1, Y1
	VADDPD 0(SI), Y2, Y2
	VADDPD 32(SI), Y3, Y3
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 0(SI)
	VMOVUPD Y3, 32(SI)
	VMULPD Y0, Y0, Y0
	VMULPD Y1, Y1, Y1
	VMULPD Y2, Y2, Y2
	VMULPD Y3, Y3, Y3
	VADDPD Y2, Y0, Y0       // p, rows
	VADDPD Y3, Y1, Y1       // p, columns
	VMOVUPD Y0, 0(DX)
	VMOVUPD Y1, 32(DX)
	// the largest of each group, broadcast (powers are never NaN)
	VPERMPD $0x4E, Y0, Y2
	VPERMPD $0x4E, Y1, Y3
	VMAXPD Y2, Y0, Y2
	VMAXPD Y3, Y1, Y3
	VPERMPD $0xB1, Y2, Y4
	VPERMPD $0xB1, Y3, Y5
	VMAXPD Y4, Y2, Y2
	VMAXPD Y5, Y3, Y3
	VMOVSD X2, 0(R12)
	VMOVSD X3, 8(R12)
	// the first tone at the largest power
	VCMPPD $0, Y2, Y0, Y4   // p == max
	VMOVMSKPD Y4, AX
	BSFQ AX, AX
	MOVQ AX, 0(R13)
	VCMPPD $0, Y3, Y1, Y5
	VMOVMSKPD Y5, AX
	BSFQ AX, AX
	MOVQ AX, 8(R13)
	// how many tones are within relPeakRaw (×2) of it: p·2 > max
	VADDPD Y0, Y0, Y0
	VADDPD Y1, Y1, Y1
	VCMPPD $0x1E, Y2, Y0, Y4 // p·2 > max (ordered, quiet)
	VMOVMSKPD Y4, AX
	POPCNTQ AX, AX
	MOVQ AX, 16(R13)
	VCMPPD $0x1E, Y3, Y1, Y5
	VMOVMSKPD Y5, AX
	POPCNTQ AX, AX
	MOVQ AX, 24(R13)
	VZEROUPPER
	RET

// func bandBlockAVX2(x *[17]float64, s *[4]float64, t *bandTable) float64
//
// bandBlockGo over a whole sub-block as one linear map (see bandTable): the outputs g = T·x + C·s
// and the next state A·s + B·x, accumulated column by column with each sample (and each state)
// broadcast, even and odd columns apart to halve the chains of dependent multiply-adds. The
// outputs sit in five vectors, g[16] alone in the last (the table's padding rows are zero).
TEXT ·bandBlockAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ s+8(FP), DI
	MOVQ t+16(FP), DX
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
	VMOVSD X0, ret+24(FP)
	VZEROUPPER
	RET

// func dcBlockAVX2(x *[17]int16, y *[17]float64, st *[2]float64, t *dcTable) float64
//
// dcBlock over one sub-block of 16-bit samples. The differences d[n] = x[n] − x[n−1] come from
// converting the samples twice, the second time from one sample earlier (the first lane from
// st[0]). In each group of eight, a[i] = Σ p^(i−j)·d[j] (the blocker's response to the group's
// own differences) comes from a prefix scan in two vectors, and y = a + p^(i+1)·y_prev with
// y_prev the output just before the group (st[1], then the group's last output): the chain
// through the outputs advances eight samples at a time.
TEXT ·dcBlockAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ st+16(FP), R8
	MOVQ t+24(FP), DX

	VPMOVSXWD 0(SI), X0
	VCVTDQ2PD X0, Y0        // x[0..3]
	VPMOVSXWD 8(SI), X1
	VCVTDQ2PD X1, Y1        // x[4..7]
	VPMOVSXWD 16(SI), X2
	VCVTDQ2PD X2, Y2        // x[8..11]
	VPMOVSXWD 24(SI), X3
	VCVTDQ2PD X3, Y3        // x[12..15]
	VPMOVSXWD 6(SI), X5
	VCVTDQ2PD X5, Y5        // x[3..6]
	VPMOVSXWD 14(SI), X6
	VCVTDQ2PD X6, Y6        // x[7..10]
	VPMOVSXWD 22(SI), X7
	VCVTDQ2PD X7, Y7        // x[11..14]
	VPERMPD $0x90, Y0, Y4   // x[0], x[0], x[1], x[2]
	VBROADCASTSD 0(R8), Y8  // x[-1]
	VBLENDPD $1, Y8, Y4, Y4 // x[-1..2]
	MOVWQSX 30(SI), AX
	VXORPD X9, X9, X9
	VCVTSI2SDQ AX, X9, X9   // x[15]
	MOVWQSX 32(SI), AX
	VXORPD X10, X10, X10
	VCVTSI2SDQ AX, X10, X10 // x[16]
	VMOVSD X10, 0(R8)       // st[0] = x[16]
	VSUBPD Y4, Y0, Y0       // d[0..3]
	VSUBPD Y5, Y1, Y1       // d[4..7]
	VSUBPD Y6, Y2, Y2       // d[8..11]
	VSUBPD Y7, Y3, Y3       // d[12..15]
	VSUBSD X9, X10, X4      // d[16]

	VXORPD Y15, Y15, Y15    // zero
	VBROADCASTSD 0(DX), Y14 // p
	VBROADCASTSD 8(DX), Y13 // p²

// a = M·D within a vector of four: t = D + p·[0, D0, D1, D2]; a = t + p²·[0, 0, t0, t1]
#define SCAN(D, T) \
	VPERMPD $0x90, D, T \
	VBLENDPD $1, Y15, T, T \
	VFMADD231PD T, Y14, D \
	VPERM2F128 $0x08, D, D, T \
	VFMADD231PD T, Y13, D

	SCAN(Y0, Y8)
	SCAN(Y1, Y9)
	SCAN(Y2, Y10)
	SCAN(Y3, Y11)
	// second half of each group: + p^(1..4)·a[3] of the first half
	VMOVUPD 16(DX), Y12     // p, p², p³, p⁴
	VPERMPD $0xFF, Y0, Y8
	VFMADD231PD Y8, Y12, Y1
	VPERMPD $0xFF, Y2, Y9
	VFMADD231PD Y9, Y12, Y3
	// outputs: y = a + p^(i+1)·y_prev
	VMOVUPD 48(DX), Y11     // p⁵..p⁸
	VBROADCASTSD 8(R8), Y8  // y[-1]
	VFMADD231PD Y8, Y12, Y0
	VFMADD231PD Y8, Y11, Y1
	VPERMPD $0xFF, Y1, Y8   // y[7]
	VFMADD231PD Y8, Y12, Y2
	VFMADD231PD Y8, Y11, Y3
	VPERMPD $0xFF, Y3, Y8   // y[15]
	VFMADD231SD X8, X14, X4 // y[16]
	VMOVUPD Y0, 0(DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	VMOVSD X4, 128(DI)
	VMOVSD X4, 8(R8)        // st[1] = y[16]

	// energy
	VMULPD Y0, Y0, Y0
	VFMADD231PD Y1, Y1, Y0
	VFMADD231PD Y2, Y2, Y0
	VFMADD231PD Y3, Y3, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VFMADD231SD X4, X4, X0
	VMOVSD X0, ret+32(FP)
	VZEROUPPER
	RET
