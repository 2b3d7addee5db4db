//go:build amd64 && !purego

#include "textflag.h"

// The AVX-512 convolution layer. The input is first copied into the frame
// so that, for every kernel column kx, each row's eight-value window lies
// next to the window of the row below it (q[kx][xb][c][s] = 16 values: rows
// s and s+1, columns 8*xb+kx to 8*xb+kx+7); a 16-lane register then holds a
// whole 2x8 block (top row in lanes 0-7, bottom row in lanes 8-15) and the
// fused multiply-adds load it straight from the copy, one aligned cache line
// at a time. Each output keeps the AVX2 kernel's five accumulators (one per
// kernel column, each summed over channels and kernel rows in the same
// order) and their final sum; the pooling that follows is the AVX2 kernel's,
// eight outputs at a time.
//
// Blocks are done four at a time, one above the other (four pooled rows of
// one column block xb): Z(5j+kx) accumulates block j's column kx; Z20-Z24
// hold one kernel row's broadcast weights.
//
// Frame: the copy q (36864 bytes, qCap float32 values, from the first
// 64-byte boundary of a 36928-byte area), its address qb and the loop
// counters o (output channel), xb (column block), py (first pooled row).

// func convPoolLayerQAVX512(dst *float32, arg *int32, in *float32, side, plane, inChans, nb, rows int, w, b *float32, outChans, poolSide int)
//
// relu(max-pool(conv) + bias) as convPool2x8AVX2 computes it. arg is unused.
TEXT ·convPoolLayerQAVX512(SB), 0, $36960-96
	// The input copy q in the frame: for s < rows-1, q[kx][xb][c][s][r*8:][:8]
	// = in[c*plane + (s+r)*side + 8*xb + kx:][:8], r = 0, 1.
	LEAQ q-36928(SP), DI
	ADDQ $63, DI
	ANDQ $-64, DI               // q starts on a cache line
	MOVQ DI, qb-36960(SP)
	MOVQ in+16(FP), R8
	MOVQ side+24(FP), BX
	SHLQ $2, BX
	MOVQ plane+32(FP), DX
	SHLQ $2, DX
	MOVQ $5, AX

cqkx:
	MOVQ R8, R9
	MOVQ nb+48(FP), R12

cqxb:
	MOVQ R9, R10
	MOVQ inChans+40(FP), R13

cqchan:
	MOVQ R10, R11
	MOVQ rows+56(FP), CX
	DECQ CX

cqrow:
	VMOVUPS (R11), Y0
	VMOVUPS (R11)(BX*1), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, DI
	ADDQ BX, R11
	DECQ CX
	JNZ  cqrow

	ADDQ DX, R10
	DECQ R13
	JNZ  cqchan

	ADDQ $32, R9
	DECQ R12
	JNZ  cqxb

	ADDQ $4, R8
	DECQ AX
	JNZ  cqkx

	// R12 = ks, the distance in bytes between kernel columns in q, R13 =
	// 3*ks, R8 = cs, between channels (rows-1 pairs of 64 bytes).
	MOVQ rows+56(FP), R8
	DECQ R8
	SHLQ $6, R8
	MOVQ nb+48(FP), R12
	IMULQ inChans+40(FP), R12
	IMULQ R8, R12
	LEAQ (R12)(R12*2), R13

	MOVQ $0, o-36936(SP)

cout:
	MOVQ $0, xb-36944(SP)

cxb:
	MOVQ $0, py-36952(SP)

cpy:
	// SI = &q[0][xb][0][2*py], DX = output channel o's weights, CX = inChans.
	MOVQ xb-36944(SP), AX
	IMULQ inChans+40(FP), AX
	MOVQ rows+56(FP), R14
	DECQ R14
	IMULQ R14, AX
	MOVQ py-36952(SP), BX
	LEAQ (AX)(BX*2), AX
	SHLQ $6, AX
	MOVQ qb-36960(SP), SI
	ADDQ AX, SI
	MOVQ o-36936(SP), AX
	IMULQ inChans+40(FP), AX
	IMULQ $100, AX
	MOVQ w+64(FP), DX
	ADDQ AX, DX
	MOVQ inChans+40(FP), CX

	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15
	VXORPS Z16, Z16, Z16
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19

cchan:
	MOVQ SI, R9
	MOVQ $5, R10

crow:
	VBROADCASTSS 0(DX), Z20
	VBROADCASTSS 4(DX), Z21
	VBROADCASTSS 8(DX), Z22
	VBROADCASTSS 12(DX), Z23
	VBROADCASTSS 16(DX), Z24
	VFMADD231PS 0(R9), Z20, Z0
	VFMADD231PS 0(R9)(R12*1), Z21, Z1
	VFMADD231PS 0(R9)(R12*2), Z22, Z2
	VFMADD231PS 0(R9)(R13*1), Z23, Z3
	VFMADD231PS 0(R9)(R12*4), Z24, Z4
	VFMADD231PS 128(R9), Z20, Z5
	VFMADD231PS 128(R9)(R12*1), Z21, Z6
	VFMADD231PS 128(R9)(R12*2), Z22, Z7
	VFMADD231PS 128(R9)(R13*1), Z23, Z8
	VFMADD231PS 128(R9)(R12*4), Z24, Z9
	VFMADD231PS 256(R9), Z20, Z10
	VFMADD231PS 256(R9)(R12*1), Z21, Z11
	VFMADD231PS 256(R9)(R12*2), Z22, Z12
	VFMADD231PS 256(R9)(R13*1), Z23, Z13
	VFMADD231PS 256(R9)(R12*4), Z24, Z14
	VFMADD231PS 384(R9), Z20, Z15
	VFMADD231PS 384(R9)(R12*1), Z21, Z16
	VFMADD231PS 384(R9)(R12*2), Z22, Z17
	VFMADD231PS 384(R9)(R13*1), Z23, Z18
	VFMADD231PS 384(R9)(R12*4), Z24, Z19
	ADDQ $20, DX
	ADDQ $64, R9
	DECQ R10
	JNZ  crow

	ADDQ R8, SI
	DECQ CX
	JNZ  cchan

	// Sums in conv2x8AVX2's order: ((kx0 + kx1) + (kx2 + kx3)) + kx4.
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	VADDPS Z4, Z0, Z0
	VADDPS Z6, Z5, Z5
	VADDPS Z8, Z7, Z7
	VADDPS Z7, Z5, Z5
	VADDPS Z9, Z5, Z5
	VADDPS Z11, Z10, Z10
	VADDPS Z13, Z12, Z12
	VADDPS Z12, Z10, Z10
	VADDPS Z14, Z10, Z10
	VADDPS Z16, Z15, Z15
	VADDPS Z18, Z17, Z17
	VADDPS Z17, Z15, Z15
	VADDPS Z19, Z15, Z15

	// Z25/Z26: the top/bottom rows of blocks 0 and 1; Z27/Z28 of blocks 2 and 3.
	VSHUFF64X2 $0x44, Z5, Z0, Z25
	VSHUFF64X2 $0xEE, Z5, Z0, Z26
	VSHUFF64X2 $0x44, Z15, Z10, Z27
	VSHUFF64X2 $0xEE, Z15, Z10, Z28
	MOVQ b+72(FP), AX
	MOVQ o-36936(SP), BX
	VBROADCASTSS (AX)(BX*4), Z29
	VXORPS Z30, Z30, Z30

	// AX = o*poolSide^2 + py*poolSide + 4*xb: the first pooled output's
	// index; R11 = poolSide*4, the distance in bytes between pooled rows.
	MOVQ poolSide+88(FP), R11
	MOVQ o-36936(SP), AX
	IMULQ R11, AX
	IMULQ R11, AX
	MOVQ py-36952(SP), BX
	IMULQ R11, BX
	ADDQ BX, AX
	MOVQ xb-36944(SP), BX
	LEAQ (AX)(BX*4), AX
	SHLQ $2, R11
	MOVQ dst+0(FP), DI
	LEAQ (DI)(AX*4), DI
	VMAXPS Z26, Z25, Z25           // max of the two rows
	VPERMILPS $0xB1, Z25, Z26      // swap adjacent columns
	VMAXPS Z26, Z25, Z25           // even lanes: max of each 2x2 window
	VADDPS Z29, Z25, Z25
	VMAXPS Z30, Z25, Z25            // ReLU
	VPMOVQD Z25, Y0                  // the even lanes
	VMOVUPS X0, (DI)
	VEXTRACTF128 $1, Y0, X1
	VMOVUPS X1, (DI)(R11*1)
	LEAQ (DI)(R11*2), DI
	VMAXPS Z28, Z27, Z27           // max of the two rows
	VPERMILPS $0xB1, Z27, Z28      // swap adjacent columns
	VMAXPS Z28, Z27, Z27           // even lanes: max of each 2x2 window
	VADDPS Z29, Z27, Z27
	VMAXPS Z30, Z27, Z27            // ReLU
	VPMOVQD Z27, Y0                  // the even lanes
	VMOVUPS X0, (DI)
	VEXTRACTF128 $1, Y0, X1
	VMOVUPS X1, (DI)(R11*1)

	MOVQ py-36952(SP), AX
	ADDQ $4, AX
	MOVQ AX, py-36952(SP)
	CMPQ AX, poolSide+88(FP)
	JLT  cpy
	MOVQ xb-36944(SP), AX
	INCQ AX
	MOVQ AX, xb-36944(SP)
	CMPQ AX, nb+48(FP)
	JLT  cxb
	MOVQ o-36936(SP), AX
	INCQ AX
	MOVQ AX, o-36936(SP)
	CMPQ AX, outChans+80(FP)
	JLT  cout
	VZEROUPPER
	RET

// even8<> is the int32 vector 0, 2, 4, 6, 0, 2, 4, 6: the pooled outputs'
// offsets in their block's top row.
DATA even8<>+0(SB)/4, $0
DATA even8<>+4(SB)/4, $2
DATA even8<>+8(SB)/4, $4
DATA even8<>+12(SB)/4, $6
DATA even8<>+16(SB)/4, $0
DATA even8<>+20(SB)/4, $2
DATA even8<>+24(SB)/4, $4
DATA even8<>+28(SB)/4, $6
GLOBL even8<>(SB), RODATA|NOPTR, $32

// func convPoolArgLayerQAVX512(dst *float32, arg *int32, in *float32, side, plane, inChans, nb, rows int, w, b *float32, outChans, poolSide int)
//
// convPoolLayerQAVX512 with the argmax of convPoolArg2x8AVX2: the same
// corner comparisons and blends, on eight pooled outputs (two blocks) at a
// time.
TEXT ·convPoolArgLayerQAVX512(SB), 0, $36960-96
	// The input copy q in the frame: for s < rows-1, q[kx][xb][c][s][r*8:][:8]
	// = in[c*plane + (s+r)*side + 8*xb + kx:][:8], r = 0, 1.
	LEAQ q-36928(SP), DI
	ADDQ $63, DI
	ANDQ $-64, DI               // q starts on a cache line
	MOVQ DI, qb-36960(SP)
	MOVQ in+16(FP), R8
	MOVQ side+24(FP), BX
	SHLQ $2, BX
	MOVQ plane+32(FP), DX
	SHLQ $2, DX
	MOVQ $5, AX

aqkx:
	MOVQ R8, R9
	MOVQ nb+48(FP), R12

aqxb:
	MOVQ R9, R10
	MOVQ inChans+40(FP), R13

aqchan:
	MOVQ R10, R11
	MOVQ rows+56(FP), CX
	DECQ CX

aqrow:
	VMOVUPS (R11), Y0
	VMOVUPS (R11)(BX*1), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, DI
	ADDQ BX, R11
	DECQ CX
	JNZ  aqrow

	ADDQ DX, R10
	DECQ R13
	JNZ  aqchan

	ADDQ $32, R9
	DECQ R12
	JNZ  aqxb

	ADDQ $4, R8
	DECQ AX
	JNZ  aqkx

	// R12 = ks, the distance in bytes between kernel columns in q, R13 =
	// 3*ks, R8 = cs, between channels (rows-1 pairs of 64 bytes).
	MOVQ rows+56(FP), R8
	DECQ R8
	SHLQ $6, R8
	MOVQ nb+48(FP), R12
	IMULQ inChans+40(FP), R12
	IMULQ R8, R12
	LEAQ (R12)(R12*2), R13

	MOVQ $0, o-36936(SP)

aout:
	MOVQ $0, xb-36944(SP)

axb:
	MOVQ $0, py-36952(SP)

apy:
	// SI = &q[0][xb][0][2*py], DX = output channel o's weights, CX = inChans.
	MOVQ xb-36944(SP), AX
	IMULQ inChans+40(FP), AX
	MOVQ rows+56(FP), R14
	DECQ R14
	IMULQ R14, AX
	MOVQ py-36952(SP), BX
	LEAQ (AX)(BX*2), AX
	SHLQ $6, AX
	MOVQ qb-36960(SP), SI
	ADDQ AX, SI
	MOVQ o-36936(SP), AX
	IMULQ inChans+40(FP), AX
	IMULQ $100, AX
	MOVQ w+64(FP), DX
	ADDQ AX, DX
	MOVQ inChans+40(FP), CX

	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15
	VXORPS Z16, Z16, Z16
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19

achan:
	MOVQ SI, R9
	MOVQ $5, R10

arow:
	VBROADCASTSS 0(DX), Z20
	VBROADCASTSS 4(DX), Z21
	VBROADCASTSS 8(DX), Z22
	VBROADCASTSS 12(DX), Z23
	VBROADCASTSS 16(DX), Z24
	VFMADD231PS 0(R9), Z20, Z0
	VFMADD231PS 0(R9)(R12*1), Z21, Z1
	VFMADD231PS 0(R9)(R12*2), Z22, Z2
	VFMADD231PS 0(R9)(R13*1), Z23, Z3
	VFMADD231PS 0(R9)(R12*4), Z24, Z4
	VFMADD231PS 128(R9), Z20, Z5
	VFMADD231PS 128(R9)(R12*1), Z21, Z6
	VFMADD231PS 128(R9)(R12*2), Z22, Z7
	VFMADD231PS 128(R9)(R13*1), Z23, Z8
	VFMADD231PS 128(R9)(R12*4), Z24, Z9
	VFMADD231PS 256(R9), Z20, Z10
	VFMADD231PS 256(R9)(R12*1), Z21, Z11
	VFMADD231PS 256(R9)(R12*2), Z22, Z12
	VFMADD231PS 256(R9)(R13*1), Z23, Z13
	VFMADD231PS 256(R9)(R12*4), Z24, Z14
	VFMADD231PS 384(R9), Z20, Z15
	VFMADD231PS 384(R9)(R12*1), Z21, Z16
	VFMADD231PS 384(R9)(R12*2), Z22, Z17
	VFMADD231PS 384(R9)(R13*1), Z23, Z18
	VFMADD231PS 384(R9)(R12*4), Z24, Z19
	ADDQ $20, DX
	ADDQ $64, R9
	DECQ R10
	JNZ  arow

	ADDQ R8, SI
	DECQ CX
	JNZ  achan

	// Sums in conv2x8AVX2's order: ((kx0 + kx1) + (kx2 + kx3)) + kx4.
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	VADDPS Z4, Z0, Z0
	VADDPS Z6, Z5, Z5
	VADDPS Z8, Z7, Z7
	VADDPS Z7, Z5, Z5
	VADDPS Z9, Z5, Z5
	VADDPS Z11, Z10, Z10
	VADDPS Z13, Z12, Z12
	VADDPS Z12, Z10, Z10
	VADDPS Z14, Z10, Z10
	VADDPS Z16, Z15, Z15
	VADDPS Z18, Z17, Z17
	VADDPS Z17, Z15, Z15
	VADDPS Z19, Z15, Z15

	// Z25/Z26: the top/bottom rows of blocks 0 and 1; Z27/Z28 of blocks 2 and 3.
	VSHUFF64X2 $0x44, Z5, Z0, Z25
	VSHUFF64X2 $0xEE, Z5, Z0, Z26
	VSHUFF64X2 $0x44, Z15, Z10, Z27
	VSHUFF64X2 $0xEE, Z15, Z10, Z28

	// AX = o*poolSide^2 + py*poolSide + 4*xb: the first pooled output's
	// index; R11 = poolSide*4, the distance in bytes between pooled rows.
	MOVQ poolSide+88(FP), R11
	MOVQ o-36936(SP), AX
	IMULQ R11, AX
	IMULQ R11, AX
	MOVQ py-36952(SP), BX
	IMULQ R11, BX
	ADDQ BX, AX
	MOVQ xb-36944(SP), BX
	LEAQ (AX)(BX*4), AX
	SHLQ $2, R11
	MOVQ dst+0(FP), DI
	LEAQ (DI)(AX*4), DI
	MOVQ arg+8(FP), SI
	LEAQ (SI)(AX*4), SI

	// Y8 = 1, Y9 = convSide, Y10 = convSide+1: corner offsets. Y12 = bias.
	// Y15 = the lanes' offsets from their pair's first position: even8, plus
	// 2*convSide in the second block's lanes. BX = the first block's
	// position in the convolution plane, 2*py*convSide + 8*xb.
	MOVQ b+72(FP), AX
	MOVQ o-36936(SP), BX
	VBROADCASTSS (AX)(BX*4), Y12
	MOVL $1, AX
	VMOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVQ poolSide+88(FP), AX
	SHLL $1, AX
	VMOVD AX, X9
	VPBROADCASTD X9, Y9
	VPADDD Y8, Y9, Y10
	SHLL $1, AX
	VMOVD AX, X15
	VPBROADCASTD X15, X15
	VXORPS X14, X14, X14
	VINSERTI128 $1, X15, Y14, Y15
	VPADDD even8<>(SB), Y15, Y15
	MOVQ py-36952(SP), BX
	IMULQ poolSide+88(FP), BX
	SHLQ $2, BX
	MOVQ xb-36944(SP), AX
	LEAQ (BX)(AX*8), BX
	VPMOVQD Z25, Y3                  // top-left corners
	VPSRLQ $32, Z25, Z25
	VPMOVQD Z25, Y4                  // top-right
	VPMOVQD Z26, Y5                  // bottom-left
	VPSRLQ $32, Z26, Z26
	VPMOVQD Z26, Y6                  // bottom-right
	VPXOR Y7, Y7, Y7
	VCMPPS $0x1E, Y3, Y4, Y11    // top-right > max
	VBLENDVPS Y11, Y4, Y3, Y3
	VBLENDVPS Y11, Y8, Y7, Y7
	VCMPPS $0x1E, Y3, Y5, Y11    // bottom-left > max
	VBLENDVPS Y11, Y5, Y3, Y3
	VBLENDVPS Y11, Y9, Y7, Y7
	VCMPPS $0x1E, Y3, Y6, Y11    // bottom-right > max
	VBLENDVPS Y11, Y6, Y3, Y3
	VBLENDVPS Y11, Y10, Y7, Y7
	VADDPS Y12, Y3, Y3
	VXORPS Y13, Y13, Y13
	VCMPPS $0x1E, Y13, Y3, Y11   // max + bias > 0
	VANDPS Y11, Y3, Y3
	VMOVUPS X3, (DI)
	VEXTRACTF128 $1, Y3, X3
	VMOVUPS X3, (DI)(R11*1)
	VMOVD BX, X14
	VPBROADCASTD X14, Y14
	VPADDD Y15, Y14, Y14
	VPADDD Y7, Y14, Y14
	VPCMPEQD Y13, Y13, Y13       // -1
	VBLENDVPS Y11, Y14, Y13, Y13
	VMOVUPS X13, (SI)
	VEXTRACTF128 $1, Y13, X13
	VMOVUPS X13, (SI)(R11*1)
	LEAQ (DI)(R11*2), DI
	LEAQ (SI)(R11*2), SI
	MOVQ poolSide+88(FP), AX
	LEAQ (BX)(AX*8), BX          // + 4*convSide: blocks 2 and 3
	VPMOVQD Z27, Y3                  // top-left corners
	VPSRLQ $32, Z27, Z27
	VPMOVQD Z27, Y4                  // top-right
	VPMOVQD Z28, Y5                  // bottom-left
	VPSRLQ $32, Z28, Z28
	VPMOVQD Z28, Y6                  // bottom-right
	VPXOR Y7, Y7, Y7
	VCMPPS $0x1E, Y3, Y4, Y11    // top-right > max
	VBLENDVPS Y11, Y4, Y3, Y3
	VBLENDVPS Y11, Y8, Y7, Y7
	VCMPPS $0x1E, Y3, Y5, Y11    // bottom-left > max
	VBLENDVPS Y11, Y5, Y3, Y3
	VBLENDVPS Y11, Y9, Y7, Y7
	VCMPPS $0x1E, Y3, Y6, Y11    // bottom-right > max
	VBLENDVPS Y11, Y6, Y3, Y3
	VBLENDVPS Y11, Y10, Y7, Y7
	VADDPS Y12, Y3, Y3
	VXORPS Y13, Y13, Y13
	VCMPPS $0x1E, Y13, Y3, Y11   // max + bias > 0
	VANDPS Y11, Y3, Y3
	VMOVUPS X3, (DI)
	VEXTRACTF128 $1, Y3, X3
	VMOVUPS X3, (DI)(R11*1)
	VMOVD BX, X14
	VPBROADCASTD X14, Y14
	VPADDD Y15, Y14, Y14
	VPADDD Y7, Y14, Y14
	VPCMPEQD Y13, Y13, Y13       // -1
	VBLENDVPS Y11, Y14, Y13, Y13
	VMOVUPS X13, (SI)
	VEXTRACTF128 $1, Y13, X13
	VMOVUPS X13, (SI)(R11*1)

	MOVQ py-36952(SP), AX
	ADDQ $4, AX
	MOVQ AX, py-36952(SP)
	CMPQ AX, poolSide+88(FP)
	JLT  apy
	MOVQ xb-36944(SP), AX
	INCQ AX
	MOVQ AX, xb-36944(SP)
	CMPQ AX, nb+48(FP)
	JLT  axb
	MOVQ o-36936(SP), AX
	INCQ AX
	MOVQ AX, o-36936(SP)
	CMPQ AX, outChans+80(FP)
	JLT  aout
	VZEROUPPER
	RET
