//go:build amd64 && !purego

#include "textflag.h"

// func conv2x8AVX2(dst *[16]float32, in *float32, side, plane, inChans int, w *float32)
//
// Y0-Y9 accumulate: Y(2*kx) the top output row's taps kx, Y(2*kx+1) the
// bottom row's, so that ten independent chains of fused multiply-adds hide
// the FMA latency. Y10-Y14 hold the broadcast weights of one kernel row.
TEXT ·conv2x8AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ side+16(FP), BX
	SHLQ $2, BX
	MOVQ plane+24(FP), R8
	SHLQ $2, R8
	MOVQ inChans+32(FP), CX
	MOVQ w+40(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9

chan:
	MOVQ SI, R9
	MOVQ $5, R10

row:
	LEAQ (R9)(BX*1), R11
	VBROADCASTSS 0(DX), Y10
	VBROADCASTSS 4(DX), Y11
	VBROADCASTSS 8(DX), Y12
	VBROADCASTSS 12(DX), Y13
	VBROADCASTSS 16(DX), Y14
	VFMADD231PS 0(R9), Y10, Y0
	VFMADD231PS 0(R11), Y10, Y1
	VFMADD231PS 4(R9), Y11, Y2
	VFMADD231PS 4(R11), Y11, Y3
	VFMADD231PS 8(R9), Y12, Y4
	VFMADD231PS 8(R11), Y12, Y5
	VFMADD231PS 12(R9), Y13, Y6
	VFMADD231PS 12(R11), Y13, Y7
	VFMADD231PS 16(R9), Y14, Y8
	VFMADD231PS 16(R11), Y14, Y9
	ADDQ $20, DX
	MOVQ R11, R9
	DECQ R10
	JNZ  row

	ADDQ R8, SI
	DECQ CX
	JNZ  chan

	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	VADDPS Y6, Y4, Y4
	VADDPS Y7, Y5, Y5
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y8, Y0, Y0
	VADDPS Y9, Y1, Y1
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VZEROUPPER
	RET

// func convPool2x8AVX2(dst *[4]float32, in *float32, side, plane, inChans int, w *float32, bias float32)
//
// conv2x8AVX2 followed by relu(max-pool 2x2 + bias) of the 2x8 block.
//
// Y0-Y9 accumulate: Y(2*kx) the top output row's taps kx, Y(2*kx+1) the
// bottom row's, so that ten independent chains of fused multiply-adds hide
// the FMA latency. Y10-Y14 hold the broadcast weights of one kernel row.
TEXT ·convPool2x8AVX2(SB), NOSPLIT, $0-52
	MOVQ dst+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ side+16(FP), BX
	SHLQ $2, BX
	MOVQ plane+24(FP), R8
	SHLQ $2, R8
	MOVQ inChans+32(FP), CX
	MOVQ w+40(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9

pchan:
	MOVQ SI, R9
	MOVQ $5, R10

prow:
	LEAQ (R9)(BX*1), R11
	VBROADCASTSS 0(DX), Y10
	VBROADCASTSS 4(DX), Y11
	VBROADCASTSS 8(DX), Y12
	VBROADCASTSS 12(DX), Y13
	VBROADCASTSS 16(DX), Y14
	VFMADD231PS 0(R9), Y10, Y0
	VFMADD231PS 0(R11), Y10, Y1
	VFMADD231PS 4(R9), Y11, Y2
	VFMADD231PS 4(R11), Y11, Y3
	VFMADD231PS 8(R9), Y12, Y4
	VFMADD231PS 8(R11), Y12, Y5
	VFMADD231PS 12(R9), Y13, Y6
	VFMADD231PS 12(R11), Y13, Y7
	VFMADD231PS 16(R9), Y14, Y8
	VFMADD231PS 16(R11), Y14, Y9
	ADDQ $20, DX
	MOVQ R11, R9
	DECQ R10
	JNZ  prow

	ADDQ R8, SI
	DECQ CX
	JNZ  pchan

	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	VADDPS Y6, Y4, Y4
	VADDPS Y7, Y5, Y5
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y8, Y0, Y0
	VADDPS Y9, Y1, Y1
	VMAXPS  Y1, Y0, Y0           // max of the two rows
	VPERMILPS $0xB1, Y0, Y1      // swap adjacent columns
	VMAXPS  Y1, Y0, Y0           // even lanes: max of each 2x2 window
	VBROADCASTSS bias+48(FP), Y2
	VADDPS  Y2, Y0, Y0
	VXORPS  Y3, Y3, Y3
	VMAXPS  Y3, Y0, Y0           // ReLU
	VEXTRACTF128 $1, Y0, X1
	VSHUFPS $0x88, X1, X0, X0    // lanes 0, 2 of each half
	VMOVUPS X0, 0(DI)
	VZEROUPPER
	RET

// func dotAVX2(a, b *float32, n int) float32  (n >= 16)
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop32:
	CMPQ CX, $32
	JLT  loop8
	VMOVUPS 0(SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS 0(DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  loop32

loop8:
	CMPQ CX, $8
	JLT  tail
	VMOVUPS 0(SI), Y4
	VFMADD231PS 0(DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  loop8

tail:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X1, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	TESTQ CX, CX
	JZ   done

scalar:
	VMOVSS 0(SI), X2
	VFMADD231SS 0(DI), X2, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ  scalar

done:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX2(dst, src *float32, n int, a float32)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y0

axloop32:
	CMPQ CX, $32
	JLT  axloop8
	VMOVUPS 0(DI), Y1
	VMOVUPS 32(DI), Y2
	VMOVUPS 64(DI), Y3
	VMOVUPS 96(DI), Y4
	VFMADD231PS 0(SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VFMADD231PS 64(SI), Y0, Y3
	VFMADD231PS 96(SI), Y0, Y4
	VMOVUPS Y1, 0(DI)
	VMOVUPS Y2, 32(DI)
	VMOVUPS Y3, 64(DI)
	VMOVUPS Y4, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  axloop32

axloop8:
	CMPQ CX, $8
	JLT  axtail
	VMOVUPS 0(DI), Y1
	VFMADD231PS 0(SI), Y0, Y1
	VMOVUPS Y1, 0(DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  axloop8

axtail:
	TESTQ CX, CX
	JZ   axdone

axscalar:
	VMOVSS 0(DI), X1
	VFMADD231SS 0(SI), X0, X1
	VMOVSS X1, 0(DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ  axscalar

axdone:
	VZEROUPPER
	RET

// mask5<> selects the first five float32 lanes of a Y register.
DATA mask5<>+0(SB)/4, $0xffffffff
DATA mask5<>+4(SB)/4, $0xffffffff
DATA mask5<>+8(SB)/4, $0xffffffff
DATA mask5<>+12(SB)/4, $0xffffffff
DATA mask5<>+16(SB)/4, $0xffffffff
DATA mask5<>+20(SB)/4, $0
DATA mask5<>+24(SB)/4, $0
DATA mask5<>+28(SB)/4, $0
GLOBL mask5<>(SB), RODATA|NOPTR, $32

// even4<> is the int32 vector 0, 2, 4, 6: the pooled outputs' offsets in
// the block's top row.
DATA even4<>+0(SB)/4, $0
DATA even4<>+4(SB)/4, $2
DATA even4<>+8(SB)/4, $4
DATA even4<>+12(SB)/4, $6
GLOBL even4<>(SB), RODATA|NOPTR, $16

// func convPoolArg2x8AVX2(dst *[4]float32, arg *[4]int32, in *float32, side, plane, inChans int, w *float32, bias float32, pos0, convSide int32)
//
// The convolution of conv2x8AVX2, then the 2x2 windows split into their
// four corners (X3 top-left, X4 top-right, X5 bottom-left, X6 bottom-right),
// the maximum taken in that order with strict comparisons (ties keep the
// earlier corner), its corner's offset blended alongside, then bias, ReLU
// and the -1 of clipped outputs.
TEXT ·convPoolArg2x8AVX2(SB), NOSPLIT, $0-68
	MOVQ in+16(FP), SI
	MOVQ side+24(FP), BX
	SHLQ $2, BX
	MOVQ plane+32(FP), R8
	SHLQ $2, R8
	MOVQ inChans+40(FP), CX
	MOVQ w+48(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9

achan:
	MOVQ SI, R9
	MOVQ $5, R10

arow:
	LEAQ (R9)(BX*1), R11
	VBROADCASTSS 0(DX), Y10
	VBROADCASTSS 4(DX), Y11
	VBROADCASTSS 8(DX), Y12
	VBROADCASTSS 12(DX), Y13
	VBROADCASTSS 16(DX), Y14
	VFMADD231PS 0(R9), Y10, Y0
	VFMADD231PS 0(R11), Y10, Y1
	VFMADD231PS 4(R9), Y11, Y2
	VFMADD231PS 4(R11), Y11, Y3
	VFMADD231PS 8(R9), Y12, Y4
	VFMADD231PS 8(R11), Y12, Y5
	VFMADD231PS 12(R9), Y13, Y6
	VFMADD231PS 12(R11), Y13, Y7
	VFMADD231PS 16(R9), Y14, Y8
	VFMADD231PS 16(R11), Y14, Y9
	ADDQ $20, DX
	MOVQ R11, R9
	DECQ R10
	JNZ  arow

	ADDQ R8, SI
	DECQ CX
	JNZ  achan

	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	VADDPS Y6, Y4, Y4
	VADDPS Y7, Y5, Y5
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y8, Y0, Y0
	VADDPS Y9, Y1, Y1

	// Corners: X3 = top row's even columns, X4 odd; X5, X6 the bottom row's.
	VEXTRACTF128 $1, Y0, X2
	VSHUFPS $0x88, X2, X0, X3
	VSHUFPS $0xDD, X2, X0, X4
	VEXTRACTF128 $1, Y1, X2
	VSHUFPS $0x88, X2, X1, X5
	VSHUFPS $0xDD, X2, X1, X6

	// Corner offsets: X8 = 1, X9 = convSide, X10 = convSide+1; X7 the chosen one.
	MOVL $1, AX
	VMOVD AX, X8
	VPBROADCASTD X8, X8
	MOVL convSide+64(FP), AX
	VMOVD AX, X9
	VPBROADCASTD X9, X9
	VPADDD X8, X9, X10
	VPXOR X7, X7, X7

	VCMPPS $0x1E, X3, X4, X11    // top-right > max
	VBLENDVPS X11, X4, X3, X3
	VBLENDVPS X11, X8, X7, X7
	VCMPPS $0x1E, X3, X5, X11    // bottom-left > max
	VBLENDVPS X11, X5, X3, X3
	VBLENDVPS X11, X9, X7, X7
	VCMPPS $0x1E, X3, X6, X11    // bottom-right > max
	VBLENDVPS X11, X6, X3, X3
	VBLENDVPS X11, X10, X7, X7

	VBROADCASTSS bias+56(FP), X12
	VADDPS X12, X3, X3
	VXORPS X13, X13, X13
	VCMPPS $0x1E, X13, X3, X11   // max + bias > 0
	VANDPS X11, X3, X3
	MOVQ dst+0(FP), DI
	VMOVUPS X3, 0(DI)

	MOVL pos0+60(FP), AX
	VMOVD AX, X12
	VPBROADCASTD X12, X12
	VPADDD even4<>(SB), X12, X12
	VPADDD X7, X12, X12
	VPCMPEQD X13, X13, X13       // -1
	VBLENDVPS X11, X12, X13, X13
	MOVQ arg+8(FP), DI
	VMOVUPS X13, 0(DI)
	VZEROUPPER
	RET

// func patchSum5x5AVX2(dst *float32, src *float32, side, plane, inChans int, offs *int32, gs *float32, n int)
//
// Per input channel: Y0-Y4 accumulate the five kernel rows (lanes 0-4) of
// the even-numbered windows, Y5-Y9 those of the odd ones (two chains to
// hide the FMA latency); Y15 is the five-lane mask, so that no value past a
// window's row is read or written.
TEXT ·patchSum5x5AVX2(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ side+16(FP), BX
	SHLQ $2, BX
	MOVQ inChans+32(FP), CX
	VMOVUPS mask5<>(SB), Y15

pschan:
	MOVQ offs+40(FP), R8
	MOVQ gs+48(FP), DX
	MOVQ n+56(FP), R12
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9

psloop2:
	CMPQ R12, $2
	JLT  pstail
	MOVLQSX 0(R8), AX
	LEAQ (SI)(AX*4), R9
	MOVLQSX 4(R8), AX
	LEAQ (SI)(AX*4), R10
	VBROADCASTSS 0(DX), Y10
	VBROADCASTSS 4(DX), Y11
	VMASKMOVPS (R9), Y15, Y12
	VMASKMOVPS (R10), Y15, Y13
	VFMADD231PS Y12, Y10, Y0
	VFMADD231PS Y13, Y11, Y5
	ADDQ BX, R9
	ADDQ BX, R10
	VMASKMOVPS (R9), Y15, Y12
	VMASKMOVPS (R10), Y15, Y13
	VFMADD231PS Y12, Y10, Y1
	VFMADD231PS Y13, Y11, Y6
	ADDQ BX, R9
	ADDQ BX, R10
	VMASKMOVPS (R9), Y15, Y12
	VMASKMOVPS (R10), Y15, Y13
	VFMADD231PS Y12, Y10, Y2
	VFMADD231PS Y13, Y11, Y7
	ADDQ BX, R9
	ADDQ BX, R10
	VMASKMOVPS (R9), Y15, Y12
	VMASKMOVPS (R10), Y15, Y13
	VFMADD231PS Y12, Y10, Y3
	VFMADD231PS Y13, Y11, Y8
	ADDQ BX, R9
	ADDQ BX, R10
	VMASKMOVPS (R9), Y15, Y12
	VMASKMOVPS (R10), Y15, Y13
	VFMADD231PS Y12, Y10, Y4
	VFMADD231PS Y13, Y11, Y9
	ADDQ $8, R8
	ADDQ $8, DX
	SUBQ $2, R12
	JMP  psloop2

pstail:
	TESTQ R12, R12
	JZ    pssum
	MOVLQSX 0(R8), AX
	LEAQ (SI)(AX*4), R9
	VBROADCASTSS 0(DX), Y10
	VMASKMOVPS (R9), Y15, Y12
	VFMADD231PS Y12, Y10, Y0
	ADDQ BX, R9
	VMASKMOVPS (R9), Y15, Y12
	VFMADD231PS Y12, Y10, Y1
	ADDQ BX, R9
	VMASKMOVPS (R9), Y15, Y12
	VFMADD231PS Y12, Y10, Y2
	ADDQ BX, R9
	VMASKMOVPS (R9), Y15, Y12
	VFMADD231PS Y12, Y10, Y3
	ADDQ BX, R9
	VMASKMOVPS (R9), Y15, Y12
	VFMADD231PS Y12, Y10, Y4

pssum:
	VADDPS Y5, Y0, Y0
	VADDPS Y6, Y1, Y1
	VADDPS Y7, Y2, Y2
	VADDPS Y8, Y3, Y3
	VADDPS Y9, Y4, Y4
	VMASKMOVPS 0(DI), Y15, Y12
	VADDPS Y12, Y0, Y0
	VMASKMOVPS Y0, Y15, 0(DI)
	VMASKMOVPS 20(DI), Y15, Y12
	VADDPS Y12, Y1, Y1
	VMASKMOVPS Y1, Y15, 20(DI)
	VMASKMOVPS 40(DI), Y15, Y12
	VADDPS Y12, Y2, Y2
	VMASKMOVPS Y2, Y15, 40(DI)
	VMASKMOVPS 60(DI), Y15, Y12
	VADDPS Y12, Y3, Y3
	VMASKMOVPS Y3, Y15, 60(DI)
	VMASKMOVPS 80(DI), Y15, Y12
	VADDPS Y12, Y4, Y4
	VMASKMOVPS Y4, Y15, 80(DI)

	ADDQ $100, DI
	MOVQ plane+24(FP), AX
	LEAQ (SI)(AX*4), SI
	DECQ CX
	JNZ  pschan
	VZEROUPPER
	RET

// func addPatch5x5AVX2(dst *float32, side, plane, inChans int, patch *float32)
//
// Per channel and kernel row: masked load of five dst values and five patch
// values, add, masked store.
TEXT ·addPatch5x5AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ side+8(FP), BX
	SHLQ $2, BX
	MOVQ plane+16(FP), R8
	SHLQ $2, R8
	MOVQ inChans+24(FP), CX
	MOVQ patch+32(FP), SI
	VMOVUPS mask5<>(SB), Y15

apchan:
	MOVQ DI, R9
	MOVQ $5, R10

aprow:
	VMASKMOVPS (R9), Y15, Y0
	VMASKMOVPS (SI), Y15, Y1
	VADDPS Y1, Y0, Y0
	VMASKMOVPS Y0, Y15, (R9)
	ADDQ BX, R9
	ADDQ $20, SI
	DECQ R10
	JNZ  aprow

	ADDQ R8, DI
	DECQ CX
	JNZ  apchan
	VZEROUPPER
	RET
