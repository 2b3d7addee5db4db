//go:build amd64 && !purego

#include "textflag.h"

// The AVX-512 kernels. Each computes every output with the same fused
// multiply-adds and additions, in the same order, as its AVX2 twin in
// kernels_amd64.s; the wider registers only hold more independent outputs.

// func dotAVX512(a, b *float32, n int) float32  (n >= 16)
//
// Z0 holds what dotAVX2 keeps in Y0 and Y1 (elements 0-15 of every block of
// 32), Z2 what it keeps in Y2 and Y3 (elements 16-31); after the blocks of
// 32 they are split back into Y0-Y3 and the AVX2 tail runs unchanged.
TEXT ·dotAVX512(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z2, Z2, Z2

dzloop64:
	CMPQ CX, $64
	JLT  dzloop32
	VMOVUPS 0(SI), Z4
	VMOVUPS 64(SI), Z5
	VMOVUPS 128(SI), Z6
	VMOVUPS 192(SI), Z7
	VFMADD231PS 0(DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z2
	VFMADD231PS 128(DI), Z6, Z0
	VFMADD231PS 192(DI), Z7, Z2
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP  dzloop64

dzloop32:
	CMPQ CX, $32
	JLT  dzsplit
	VMOVUPS 0(SI), Z4
	VMOVUPS 64(SI), Z5
	VFMADD231PS 0(DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z2
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX

dzsplit:
	VEXTRACTF64X4 $1, Z0, Y1
	VEXTRACTF64X4 $1, Z2, Y3

dzloop8:
	CMPQ CX, $8
	JLT  dztail
	VMOVUPS 0(SI), Y4
	VFMADD231PS 0(DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  dzloop8

dztail:
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
	JZ   dzdone

dzscalar:
	VMOVSS 0(SI), X2
	VFMADD231SS 0(DI), X2, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ  dzscalar

dzdone:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX512(dst, src *float32, n int, a float32)  (n >= 8)
//
// Every dst[i] gets one fused multiply-add, as in axpyAVX2; 16 values at a
// time, then the last n%16 eight and one at a time. (A masked tail would
// be shorter, but a masked store does not forward to the next call's load
// of the same dst, and the fc layers call Axpy on one dst again and again:
// measured slower.)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Z0

azloop64:
	CMPQ CX, $64
	JLT  azloop16
	VMOVUPS 0(DI), Z1
	VMOVUPS 64(DI), Z2
	VMOVUPS 128(DI), Z3
	VMOVUPS 192(DI), Z4
	VFMADD231PS 0(SI), Z0, Z1
	VFMADD231PS 64(SI), Z0, Z2
	VFMADD231PS 128(SI), Z0, Z3
	VFMADD231PS 192(SI), Z0, Z4
	VMOVUPS Z1, 0(DI)
	VMOVUPS Z2, 64(DI)
	VMOVUPS Z3, 128(DI)
	VMOVUPS Z4, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP  azloop64

azloop16:
	CMPQ CX, $16
	JLT  az8
	VMOVUPS 0(DI), Z1
	VFMADD231PS 0(SI), Z0, Z1
	VMOVUPS Z1, 0(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  azloop16

az8:
	CMPQ CX, $8
	JLT  aztail
	VMOVUPS 0(DI), Y1
	VFMADD231PS 0(SI), Y0, Y1
	VMOVUPS Y1, 0(DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX

aztail:
	TESTQ CX, CX
	JZ   azdone

azscalar:
	VMOVSS 0(DI), X1
	VFMADD231SS 0(SI), X0, X1
	VMOVSS X1, 0(DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNZ  azscalar

azdone:
	VZEROUPPER
	RET


// func patchSum5x5AVX512(dst *float32, src *float32, side, plane, inChans int, offs *int32, gs *float32, n int)
//
// patchSum5x5AVX2 instruction for instruction, with AVX-512VL masked loads
// and stores (K1: lanes 0-4) in place of VMASKMOVPS: the same result, bit
// for bit, with fewer micro-operations per five-value row.
TEXT ·patchSum5x5AVX512(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ side+16(FP), BX
	SHLQ $2, BX
	MOVQ inChans+32(FP), CX
	MOVL $0x1F, AX
	KMOVW AX, K1

pkchan:
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

pkloop2:
	CMPQ R12, $2
	JLT  pktail
	MOVLQSX 0(R8), AX
	LEAQ (SI)(AX*4), R9
	MOVLQSX 4(R8), AX
	LEAQ (SI)(AX*4), R10
	VBROADCASTSS 0(DX), Y10
	VBROADCASTSS 4(DX), Y11
	VMOVUPS.Z (R9), K1, Y12
	VMOVUPS.Z (R10), K1, Y13
	VFMADD231PS Y12, Y10, Y0
	VFMADD231PS Y13, Y11, Y5
	ADDQ BX, R9
	ADDQ BX, R10
	VMOVUPS.Z (R9), K1, Y12
	VMOVUPS.Z (R10), K1, Y13
	VFMADD231PS Y12, Y10, Y1
	VFMADD231PS Y13, Y11, Y6
	ADDQ BX, R9
	ADDQ BX, R10
	VMOVUPS.Z (R9), K1, Y12
	VMOVUPS.Z (R10), K1, Y13
	VFMADD231PS Y12, Y10, Y2
	VFMADD231PS Y13, Y11, Y7
	ADDQ BX, R9
	ADDQ BX, R10
	VMOVUPS.Z (R9), K1, Y12
	VMOVUPS.Z (R10), K1, Y13
	VFMADD231PS Y12, Y10, Y3
	VFMADD231PS Y13, Y11, Y8
	ADDQ BX, R9
	ADDQ BX, R10
	VMOVUPS.Z (R9), K1, Y12
	VMOVUPS.Z (R10), K1, Y13
	VFMADD231PS Y12, Y10, Y4
	VFMADD231PS Y13, Y11, Y9
	ADDQ $8, R8
	ADDQ $8, DX
	SUBQ $2, R12
	JMP  pkloop2

pktail:
	TESTQ R12, R12
	JZ    pksum
	MOVLQSX 0(R8), AX
	LEAQ (SI)(AX*4), R9
	VBROADCASTSS 0(DX), Y10
	VMOVUPS.Z (R9), K1, Y12
	VFMADD231PS Y12, Y10, Y0
	ADDQ BX, R9
	VMOVUPS.Z (R9), K1, Y12
	VFMADD231PS Y12, Y10, Y1
	ADDQ BX, R9
	VMOVUPS.Z (R9), K1, Y12
	VFMADD231PS Y12, Y10, Y2
	ADDQ BX, R9
	VMOVUPS.Z (R9), K1, Y12
	VFMADD231PS Y12, Y10, Y3
	ADDQ BX, R9
	VMOVUPS.Z (R9), K1, Y12
	VFMADD231PS Y12, Y10, Y4

pksum:
	VADDPS Y5, Y0, Y0
	VADDPS Y6, Y1, Y1
	VADDPS Y7, Y2, Y2
	VADDPS Y8, Y3, Y3
	VADDPS Y9, Y4, Y4
	VMOVUPS.Z 0(DI), K1, Y12
	VADDPS Y12, Y0, Y0
	VMOVUPS Y0, K1, 0(DI)
	VMOVUPS.Z 20(DI), K1, Y12
	VADDPS Y12, Y1, Y1
	VMOVUPS Y1, K1, 20(DI)
	VMOVUPS.Z 40(DI), K1, Y12
	VADDPS Y12, Y2, Y2
	VMOVUPS Y2, K1, 40(DI)
	VMOVUPS.Z 60(DI), K1, Y12
	VADDPS Y12, Y3, Y3
	VMOVUPS Y3, K1, 60(DI)
	VMOVUPS.Z 80(DI), K1, Y12
	VADDPS Y12, Y4, Y4
	VMOVUPS Y4, K1, 80(DI)

	ADDQ $100, DI
	MOVQ plane+24(FP), AX
	LEAQ (SI)(AX*4), SI
	DECQ CX
	JNZ  pkchan
	VZEROUPPER
	RET

