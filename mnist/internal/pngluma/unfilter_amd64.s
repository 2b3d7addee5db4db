//go:build amd64 && !purego

#include "textflag.h"

// The PNG unfiltering kernels (PNG specification, section 9) for 3 and 4
// bytes per pixel in SSE2, which every amd64 CPU has, after libpng's
// filter_sse2_intrinsics.c: one pixel per step, its bytes in the 16-bit
// lanes of an XMM register, so that the left neighbour a of the next pixel
// is the register just computed rather than a store and a reload. Each
// takes cur and prev pointing at the first pixel to unfilter (the pixel to
// its left and the one above that, at cur-bpp and prev-bpp, are read) and
// n >= 1, the number of pixels. The 3-byte kernels load 4 bytes per pixel:
// the caller leaves one readable byte after the last pixel, which they do
// not write.

// LOAD3 and LOAD4 zero-extend one pixel at (R) into the 16-bit lanes of X
// (X0 is zero). STORE3 and STORE4 pack the pixel in X's lanes into (R),
// through X14 and AX.
#define LOAD3(R, X) MOVL (R), X; PUNPCKLBW X0, X
#define LOAD4(R, X) MOVL (R), X; PUNPCKLBW X0, X
#define STORE3(X, R) MOVO X, X14; PACKUSWB X14, X14; MOVL X14, AX; MOVW AX, (R); SHRL $16, AX; MOVB AX, 2(R)
#define STORE4(X, R) MOVO X, X14; PACKUSWB X14, X14; MOVL X14, (R)

// PAETH sets X4 (the filtered pixel on entry) to X4 + the Paeth predictor
// of a in X1, b in X3 and c in X2: pa = |b-c|, pb = |a-c|, pc = |a+b-2c|,
// the smallest wins, ties to a, then b. The high byte of every lane stays
// zero (PADDB), so X4 is the next pixel's a as it is.
#define PAETH \
	MOVO X3, X5; PSUBW X2, X5; \
	MOVO X1, X6; PSUBW X2, X6; \
	MOVO X5, X7; PADDW X6, X7; \
	PXOR X8, X8; PSUBW X5, X8; PMAXSW X8, X5; \
	PXOR X8, X8; PSUBW X6, X8; PMAXSW X8, X6; \
	PXOR X8, X8; PSUBW X7, X8; PMAXSW X8, X7; \
	MOVO X5, X9; PMINSW X6, X9; PMINSW X7, X9; \
	MOVO X9, X10; PCMPEQW X6, X10; \
	MOVO X2, X11; PXOR X3, X11; PAND X10, X11; PXOR X2, X11; \
	MOVO X9, X10; PCMPEQW X5, X10; \
	MOVO X1, X12; PXOR X11, X12; PAND X10, X12; PXOR X11, X12; \
	PADDB X12, X4

// func paeth3SSE2(cur, prev *byte, n int)
TEXT ·paeth3SSE2(SB), NOSPLIT, $0-24
	MOVQ cur+0(FP), DI
	MOVQ prev+8(FP), SI
	MOVQ n+16(FP), CX
	PXOR X0, X0
	LEAQ -3(DI), DX
	LOAD3(DX, X1)
	LEAQ -3(SI), DX
	LOAD3(DX, X2)
paeth3:
	LOAD3(SI, X3)
	LOAD3(DI, X4)
	PAETH
	STORE3(X4, DI)
	MOVO X4, X1
	MOVO X3, X2
	ADDQ $3, DI
	ADDQ $3, SI
	DECQ CX
	JNZ paeth3
	RET

// func paeth4SSE2(cur, prev *byte, n int)
TEXT ·paeth4SSE2(SB), NOSPLIT, $0-24
	MOVQ cur+0(FP), DI
	MOVQ prev+8(FP), SI
	MOVQ n+16(FP), CX
	PXOR X0, X0
	LEAQ -4(DI), DX
	LOAD4(DX, X1)
	LEAQ -4(SI), DX
	LOAD4(DX, X2)
paeth4:
	LOAD4(SI, X3)
	LOAD4(DI, X4)
	PAETH
	STORE4(X4, DI)
	MOVO X4, X1
	MOVO X3, X2
	ADDQ $4, DI
	ADDQ $4, SI
	DECQ CX
	JNZ paeth4
	RET

// AVG sets X4 to X4 + (a + b) / 2, a in X1 and b in X3.
#define AVG MOVO X1, X5; PADDW X3, X5; PSRLW $1, X5; PADDB X5, X4

// func avg3SSE2(cur, prev *byte, n int)
TEXT ·avg3SSE2(SB), NOSPLIT, $0-24
	MOVQ cur+0(FP), DI
	MOVQ prev+8(FP), SI
	MOVQ n+16(FP), CX
	PXOR X0, X0
	LEAQ -3(DI), DX
	LOAD3(DX, X1)
avg3:
	LOAD3(SI, X3)
	LOAD3(DI, X4)
	AVG
	STORE3(X4, DI)
	MOVO X4, X1
	ADDQ $3, DI
	ADDQ $3, SI
	DECQ CX
	JNZ avg3
	RET

// func avg4SSE2(cur, prev *byte, n int)
TEXT ·avg4SSE2(SB), NOSPLIT, $0-24
	MOVQ cur+0(FP), DI
	MOVQ prev+8(FP), SI
	MOVQ n+16(FP), CX
	PXOR X0, X0
	LEAQ -4(DI), DX
	LOAD4(DX, X1)
avg4:
	LOAD4(SI, X3)
	LOAD4(DI, X4)
	AVG
	STORE4(X4, DI)
	MOVO X4, X1
	ADDQ $4, DI
	ADDQ $4, SI
	DECQ CX
	JNZ avg4
	RET

// func sub3SSE2(cur *byte, n int)
TEXT ·sub3SSE2(SB), NOSPLIT, $0-16
	MOVQ cur+0(FP), DI
	MOVQ n+8(FP), CX
	PXOR X0, X0
	LEAQ -3(DI), DX
	LOAD3(DX, X1)
sub3:
	LOAD3(DI, X4)
	PADDB X1, X4
	STORE3(X4, DI)
	MOVO X4, X1
	ADDQ $3, DI
	DECQ CX
	JNZ sub3
	RET

// func sub4SSE2(cur *byte, n int)
TEXT ·sub4SSE2(SB), NOSPLIT, $0-16
	MOVQ cur+0(FP), DI
	MOVQ n+8(FP), CX
	MOVL -4(DI), X1
sub4:
	MOVL (DI), X4
	PADDB X1, X4
	MOVL X4, (DI)
	MOVO X4, X1
	ADDQ $4, DI
	DECQ CX
	JNZ sub4
	RET

// func paethRunSSE2(cur, prev *byte, n int, w uint64) int
//
// The flat run of the Paeth filter: from the start, while the filtered
// bytes are zero and the bytes above equal the eight bytes w (one level
// v, which the caller has checked the pixel to the left and the one above
// it hold too), the bytes are v; it writes them and returns how many, a
// multiple of 8 up to n: sixteen at a time, then eight.
TEXT ·paethRunSSE2(SB), NOSPLIT, $0-40
	MOVQ cur+0(FP), DI
	MOVQ prev+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ w+24(FP), BX
	XORQ AX, AX
	MOVQ BX, X1
	PUNPCKLQDQ X1, X1
	PXOR X0, X0
run16:
	LEAQ 16(AX), DX
	CMPQ DX, CX
	JGT run8
	MOVOU (DI)(AX*1), X2
	PCMPEQB X0, X2
	MOVOU (SI)(AX*1), X3
	PCMPEQB X1, X3
	PAND X3, X2
	PMOVMSKB X2, DX
	CMPL DX, $0xffff
	JNE run8
	MOVOU X1, (DI)(AX*1)
	ADDQ $16, AX
	JMP run16
run8:
	LEAQ 8(AX), DX
	CMPQ DX, CX
	JGT done
	MOVQ (DI)(AX*1), DX
	TESTQ DX, DX
	JNZ done
	MOVQ (SI)(AX*1), DX
	CMPQ DX, BX
	JNE done
	MOVQ BX, (DI)(AX*1)
	ADDQ $8, AX
done:
	MOVQ AX, ret+32(FP)
	RET

// PAETHAVX is PAETH in AVX's three-operand forms, arranged so that few
// steps lead from a (X1) to the result (X4), the chain that sets the pace:
// with d = b-c and t = a-c, pa = |d|, pb = |t|, pc = |t+d|; the sums x+a,
// x+b and x+c are made beside the chain and the comparisons choose among
// them: x+a unless pa > pb or pa > pc, else x+b unless pb > pc, else x+c.
#define PAETHAVX \
	VPSUBW X2, X3, X5; \
	VPABSW X5, X8; \
	VPADDB X3, X4, X13; \
	VPADDB X2, X4, X14; \
	VPSUBW X2, X1, X6; \
	VPADDB X1, X4, X4; \
	VPADDW X5, X6, X7; \
	VPABSW X6, X6; \
	VPABSW X7, X7; \
	VPCMPGTW X7, X6, X9; \
	VPCMPGTW X6, X8, X11; \
	VPCMPGTW X7, X8, X12; \
	VPBLENDVB X9, X14, X13, X10; \
	VPOR X11, X12, X11; \
	VPBLENDVB X11, X10, X4, X4

// func paeth3AVX(cur, prev *byte, n int)
TEXT ·paeth3AVX(SB), NOSPLIT, $0-24
	MOVQ cur+0(FP), DI
	MOVQ prev+8(FP), SI
	MOVQ n+16(FP), CX
	PXOR X0, X0
	LEAQ -3(DI), DX
	LOAD3(DX, X1)
	LEAQ -3(SI), DX
	LOAD3(DX, X2)
paeth3avx:
	LOAD3(SI, X3)
	LOAD3(DI, X4)
	PAETHAVX
	VPACKUSWB X4, X4, X14
	MOVL X14, AX
	MOVW AX, (DI)
	SHRL $16, AX
	MOVB AX, 2(DI)
	VMOVDQA X4, X1
	VMOVDQA X3, X2
	ADDQ $3, DI
	ADDQ $3, SI
	DECQ CX
	JNZ paeth3avx
	RET

// func paeth4AVX(cur, prev *byte, n int)
TEXT ·paeth4AVX(SB), NOSPLIT, $0-24
	MOVQ cur+0(FP), DI
	MOVQ prev+8(FP), SI
	MOVQ n+16(FP), CX
	PXOR X0, X0
	LEAQ -4(DI), DX
	LOAD4(DX, X1)
	LEAQ -4(SI), DX
	LOAD4(DX, X2)
paeth4avx:
	LOAD4(SI, X3)
	LOAD4(DI, X4)
	PAETHAVX
	VPACKUSWB X4, X4, X14
	MOVL X14, (DI)
	VMOVDQA X4, X1
	VMOVDQA X3, X2
	ADDQ $4, DI
	ADDQ $4, SI
	DECQ CX
	JNZ paeth4avx
	RET
