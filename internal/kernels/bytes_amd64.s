//go:build amd64 && !purego

#include "textflag.h"

// x^flip < limit is max(x^flip, atMost) == atMost for unsigned bytes, with
// atMost = limit-1. The bytes are broadcast from memory: moving them
// through a general register into X1 with the legacy-SSE MOVQ made a call
// on 84 bytes 25 times slower (250 ns instead of 10).

// func lessMaskAVX2(mask *uint64, src *byte, n int, flip, atMost byte)
//
// n >= 32. The whole blocks of 32 bytes give a 32-bit mask each; the last n%32
// bytes are the top of the mask of the last 32 bytes, shifted down. Two
// masks make a word, stored whole (the caller reads words: two 32-bit
// stores under a 64-bit load would stall it), the last one alone when the
// masks are odd in number (its top half 0).
TEXT ·lessMaskAVX2(SB), NOSPLIT, $0-26
	MOVQ mask+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VPBROADCASTB flip+24(FP), Y1
	VPBROADCASTB atMost+25(FP), Y2
	MOVQ CX, DX
	ANDQ $31, DX           // the bytes after the whole blocks
	LEAQ -32(SI)(CX*1), R8 // the last 32 bytes
	SHRQ $5, CX            // the whole blocks
	XORQ R10, R10          // 1 when R11 holds a low half

block:
	VPXOR (SI), Y1, Y0
	VPMAXUB Y2, Y0, Y3
	VPCMPEQB Y2, Y3, Y3
	VPMOVMSKB Y3, AX
	ADDQ $32, SI
	TESTQ R10, R10
	JNZ blockhigh
	MOVL AX, R11
	MOVQ $1, R10
	JMP blocknext

blockhigh:
	SHLQ $32, AX
	ORQ AX, R11
	MOVQ R11, (DI)
	ADDQ $8, DI
	XORQ R10, R10

blocknext:
	DECQ CX
	JNZ block

	TESTQ DX, DX
	JZ flush
	VPXOR (R8), Y1, Y0
	VPMAXUB Y2, Y0, Y3
	VPCMPEQB Y2, Y3, Y3
	VPMOVMSKB Y3, AX
	MOVQ $32, CX
	SUBQ DX, CX
	SHRL CX, AX
	TESTQ R10, R10
	JNZ tailhigh
	MOVL AX, R11
	MOVQ $1, R10
	JMP flush

tailhigh:
	SHLQ $32, AX
	ORQ AX, R11
	MOVQ R11, (DI)
	XORQ R10, R10

flush:
	TESTQ R10, R10
	JZ done
	MOVQ R11, (DI)

done:
	VZEROUPPER
	RET

// func scaleRowBytesAVX2(out, w *float32, stride int, src *byte, n int, table *[256]uint16)
//
// The row of outputs stays in Y4-Y7 (stride/8 of them) while the pixels
// pass: per pixel, its level from the table, and one multiplication and
// one addition (no FMA) per eight outputs. Black pixels are not skipped:
// adding their zero products changes nothing, and a branch per pixel
// measured no faster.
TEXT ·scaleRowBytesAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), DX
	MOVQ stride+16(FP), BX
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), CX
	MOVQ table+40(FP), R9
	MOVQ BX, R8
	SHLQ $2, BX // bytes per pixel's weights
	VMOVUPS (DI), Y4
	CMPQ R8, $8
	JEQ rows1
	VMOVUPS 32(DI), Y5
	CMPQ R8, $16
	JEQ rows2
	VMOVUPS 64(DI), Y6
	CMPQ R8, $24
	JEQ rows3
	VMOVUPS 96(DI), Y7
	JMP rows4

rows1:
	MOVBLZX (SI), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X0, X0
	VBROADCASTSS X0, Y0
	VMULPS (DX), Y0, Y1
	VADDPS Y1, Y4, Y4
	INCQ SI
	ADDQ BX, DX
	DECQ CX
	JNZ rows1
	JMP store

rows2:
	MOVBLZX (SI), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X0, X0
	VBROADCASTSS X0, Y0
	VMULPS (DX), Y0, Y1
	VADDPS Y1, Y4, Y4
	VMULPS 32(DX), Y0, Y1
	VADDPS Y1, Y5, Y5
	INCQ SI
	ADDQ BX, DX
	DECQ CX
	JNZ rows2
	JMP store

rows3:
	MOVBLZX (SI), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X0, X0
	VBROADCASTSS X0, Y0
	VMULPS (DX), Y0, Y1
	VADDPS Y1, Y4, Y4
	VMULPS 32(DX), Y0, Y1
	VADDPS Y1, Y5, Y5
	VMULPS 64(DX), Y0, Y1
	VADDPS Y1, Y6, Y6
	INCQ SI
	ADDQ BX, DX
	DECQ CX
	JNZ rows3
	JMP store

rows4:
	MOVBLZX (SI), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X0, X0
	VBROADCASTSS X0, Y0
	VMULPS (DX), Y0, Y1
	VADDPS Y1, Y4, Y4
	VMULPS 32(DX), Y0, Y1
	VADDPS Y1, Y5, Y5
	VMULPS 64(DX), Y0, Y1
	VADDPS Y1, Y6, Y6
	VMULPS 96(DX), Y0, Y1
	VADDPS Y1, Y7, Y7
	INCQ SI
	ADDQ BX, DX
	DECQ CX
	JNZ rows4
	JMP store

store:
	VMOVUPS Y4, (DI)
	CMPQ R8, $8
	JEQ done
	VMOVUPS Y5, 32(DI)
	CMPQ R8, $16
	JEQ done
	VMOVUPS Y6, 64(DI)
	CMPQ R8, $24
	JEQ done
	VMOVUPS Y7, 96(DI)

done:
	VZEROUPPER
	RET

// func scaleRowBytes2AVX2(out0, out1, w *float32, stride int, src0, src1 *byte, n int, table *[256]uint16)
//
// scaleRowBytesAVX2 on two rows: out0 in Y4-Y7, out1 in Y8-Y11, each weight
// loaded once for both.
TEXT ·scaleRowBytes2AVX2(SB), NOSPLIT, $0-64
	MOVQ out0+0(FP), DI
	MOVQ out1+8(FP), R11
	MOVQ w+16(FP), DX
	MOVQ stride+24(FP), BX
	MOVQ src0+32(FP), SI
	MOVQ src1+40(FP), R10
	MOVQ n+48(FP), CX
	MOVQ table+56(FP), R9
	MOVQ BX, R8
	SHLQ $2, BX // bytes per pixel's weights
	VMOVUPS (DI), Y4
	VMOVUPS (R11), Y8
	CMPQ R8, $8
	JEQ rows2x1
	VMOVUPS 32(DI), Y5
	VMOVUPS 32(R11), Y9
	CMPQ R8, $16
	JEQ rows2x2
	VMOVUPS 64(DI), Y6
	VMOVUPS 64(R11), Y10
	CMPQ R8, $24
	JEQ rows2x3
	VMOVUPS 96(DI), Y7
	VMOVUPS 96(R11), Y11
	JMP rows2x4

rows2x1:
	MOVBLZX (SI), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X0, X0
	VBROADCASTSS X0, Y0
	MOVBLZX (R10), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X1, X1
	VBROADCASTSS X1, Y1
	VMULPS (DX), Y0, Y2
	VADDPS Y2, Y4, Y4
	VMULPS (DX), Y1, Y3
	VADDPS Y3, Y8, Y8
	INCQ SI
	INCQ R10
	ADDQ BX, DX
	DECQ CX
	JNZ rows2x1
	JMP store2

rows2x2:
	MOVBLZX (SI), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X0, X0
	VBROADCASTSS X0, Y0
	MOVBLZX (R10), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X1, X1
	VBROADCASTSS X1, Y1
	VMULPS (DX), Y0, Y2
	VADDPS Y2, Y4, Y4
	VMULPS (DX), Y1, Y3
	VADDPS Y3, Y8, Y8
	VMULPS 32(DX), Y0, Y2
	VADDPS Y2, Y5, Y5
	VMULPS 32(DX), Y1, Y3
	VADDPS Y3, Y9, Y9
	INCQ SI
	INCQ R10
	ADDQ BX, DX
	DECQ CX
	JNZ rows2x2
	JMP store2

rows2x3:
	MOVBLZX (SI), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X0, X0
	VBROADCASTSS X0, Y0
	MOVBLZX (R10), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X1, X1
	VBROADCASTSS X1, Y1
	VMULPS (DX), Y0, Y2
	VADDPS Y2, Y4, Y4
	VMULPS (DX), Y1, Y3
	VADDPS Y3, Y8, Y8
	VMULPS 32(DX), Y0, Y2
	VADDPS Y2, Y5, Y5
	VMULPS 32(DX), Y1, Y3
	VADDPS Y3, Y9, Y9
	VMULPS 64(DX), Y0, Y2
	VADDPS Y2, Y6, Y6
	VMULPS 64(DX), Y1, Y3
	VADDPS Y3, Y10, Y10
	INCQ SI
	INCQ R10
	ADDQ BX, DX
	DECQ CX
	JNZ rows2x3
	JMP store2

rows2x4:
	MOVBLZX (SI), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X0, X0
	VBROADCASTSS X0, Y0
	MOVBLZX (R10), AX
	MOVWLZX (R9)(AX*2), AX
	VCVTSI2SSL AX, X1, X1
	VBROADCASTSS X1, Y1
	VMULPS (DX), Y0, Y2
	VADDPS Y2, Y4, Y4
	VMULPS (DX), Y1, Y3
	VADDPS Y3, Y8, Y8
	VMULPS 32(DX), Y0, Y2
	VADDPS Y2, Y5, Y5
	VMULPS 32(DX), Y1, Y3
	VADDPS Y3, Y9, Y9
	VMULPS 64(DX), Y0, Y2
	VADDPS Y2, Y6, Y6
	VMULPS 64(DX), Y1, Y3
	VADDPS Y3, Y10, Y10
	VMULPS 96(DX), Y0, Y2
	VADDPS Y2, Y7, Y7
	VMULPS 96(DX), Y1, Y3
	VADDPS Y3, Y11, Y11
	INCQ SI
	INCQ R10
	ADDQ BX, DX
	DECQ CX
	JNZ rows2x4
	JMP store2

store2:
	VMOVUPS Y4, (DI)
	VMOVUPS Y8, (R11)
	CMPQ R8, $8
	JEQ done2
	VMOVUPS Y5, 32(DI)
	VMOVUPS Y9, 32(R11)
	CMPQ R8, $16
	JEQ done2
	VMOVUPS Y6, 64(DI)
	VMOVUPS Y10, 64(R11)
	CMPQ R8, $24
	JEQ done2
	VMOVUPS Y7, 96(DI)
	VMOVUPS Y11, 96(R11)

done2:
	VZEROUPPER
	RET

// func axpyRowsAVX2(dst *float32, n int, src *float32, offs *int32, ws *float32, taps int)
//
// dst stays in Y4-Y7 (n/8 of them) while each tap adds its row: a
// multiplication, then an addition (no FMA), as the portable code.
TEXT ·axpyRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ n+8(FP), BX
	MOVQ src+16(FP), SI
	MOVQ offs+24(FP), R8
	MOVQ ws+32(FP), R9
	MOVQ taps+40(FP), CX
	VMOVUPS (DI), Y4
	CMPQ BX, $8
	JEQ taps1
	VMOVUPS 32(DI), Y5
	CMPQ BX, $16
	JEQ taps2
	VMOVUPS 64(DI), Y6
	CMPQ BX, $24
	JEQ taps3
	VMOVUPS 96(DI), Y7
	JMP taps4

taps1:
	MOVLQSX (R8), AX
	VBROADCASTSS (R9), Y0
	LEAQ (SI)(AX*4), AX
	VMULPS (AX), Y0, Y1
	VADDPS Y1, Y4, Y4
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JNZ taps1
	JMP storetaps

taps2:
	MOVLQSX (R8), AX
	VBROADCASTSS (R9), Y0
	LEAQ (SI)(AX*4), AX
	VMULPS (AX), Y0, Y1
	VADDPS Y1, Y4, Y4
	VMULPS 32(AX), Y0, Y1
	VADDPS Y1, Y5, Y5
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JNZ taps2
	JMP storetaps

taps3:
	MOVLQSX (R8), AX
	VBROADCASTSS (R9), Y0
	LEAQ (SI)(AX*4), AX
	VMULPS (AX), Y0, Y1
	VADDPS Y1, Y4, Y4
	VMULPS 32(AX), Y0, Y1
	VADDPS Y1, Y5, Y5
	VMULPS 64(AX), Y0, Y1
	VADDPS Y1, Y6, Y6
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JNZ taps3
	JMP storetaps

taps4:
	MOVLQSX (R8), AX
	VBROADCASTSS (R9), Y0
	LEAQ (SI)(AX*4), AX
	VMULPS (AX), Y0, Y1
	VADDPS Y1, Y4, Y4
	VMULPS 32(AX), Y0, Y1
	VADDPS Y1, Y5, Y5
	VMULPS 64(AX), Y0, Y1
	VADDPS Y1, Y6, Y6
	VMULPS 96(AX), Y0, Y1
	VADDPS Y1, Y7, Y7
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JNZ taps4
	JMP storetaps

storetaps:
	VMOVUPS Y4, (DI)
	CMPQ BX, $8
	JEQ donetaps
	VMOVUPS Y5, 32(DI)
	CMPQ BX, $16
	JEQ donetaps
	VMOVUPS Y6, 64(DI)
	CMPQ BX, $24
	JEQ donetaps
	VMOVUPS Y7, 96(DI)

donetaps:
	VZEROUPPER
	RET

// func rowMinsAVX2(dst *byte, rows int, src *byte, w int, flip byte)
//
// minByteAVX2 on every row, in one call.
TEXT ·rowMinsAVX2(SB), NOSPLIT, $0-33
	MOVQ dst+0(FP), DI
	MOVQ rows+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ w+24(FP), BX
	VPBROADCASTB flip+32(FP), Y1

row:
	MOVQ BX, CX
	LEAQ (SI)(BX*1), R9 // the next row
	LEAQ -32(R9), R8    // this row's last 32 bytes
	VPCMPEQB Y0, Y0, Y0

rowblock:
	VPXOR (SI), Y1, Y2
	VPMINUB Y2, Y0, Y0
	ADDQ $32, SI
	SUBQ $32, CX
	CMPQ CX, $32
	JAE rowblock
	TESTQ CX, CX
	JZ rowreduce
	VPXOR (R8), Y1, Y2
	VPMINUB Y2, Y0, Y0

rowreduce:
	VEXTRACTI128 $1, Y0, X2
	VPMINUB X2, X0, X0
	VPSRLDQ $8, X0, X2
	VPMINUB X2, X0, X0
	VPSRLDQ $4, X0, X2
	VPMINUB X2, X0, X0
	VPSRLDQ $2, X0, X2
	VPMINUB X2, X0, X0
	VPSRLDQ $1, X0, X2
	VPMINUB X2, X0, X0
	VMOVD X0, AX
	MOVB AX, (DI)
	INCQ DI
	MOVQ R9, SI
	DECQ DX
	JNZ row
	VZEROUPPER
	RET
