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
