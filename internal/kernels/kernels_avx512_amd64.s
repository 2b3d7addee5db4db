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

