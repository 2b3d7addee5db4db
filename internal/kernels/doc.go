// Package kernels holds the float32 inner loops of the MNIST network: the
// 5x5 convolution with the 2x2 max-pool, bias and ReLU fused (a whole layer,
// or one block of two output rows by eight columns, and for training the
// position of each pooled maximum), the two sparse 5x5 backward kernels
// (the weight gradient summed over a list of windows, and one window's input
// gradient added in place), a dot product and axpy; and the loops of image
// preprocessing: byte masks and minima of a row of pixels (LessMask,
// MinByte, RowMins), and the two passes of a separable scaling
// (ScaleRowBytes and ScaleRowBytes2 by source pixel, and AxpyRows).
//
// Three sets of kernels, chosen at run time from the CPU's features
// (golang.org/x/sys/cpu) and named by Features:
//
//   - "avx512": on amd64 CPUs with AVX-512F and AVX-512VL (and AVX2 and
//     FMA), Go assembly with 16-lane registers for the convolution layer
//     (a whole 2x8 block per register), the dot product and axpy of 64
//     values or more, and the AVX2 weight-gradient sum with AVX-512's masked
//     loads; the other kernels, where the wider registers measured no
//     faster, run the AVX2 code.
//   - "avx2+fma": on amd64 CPUs with AVX2 and FMA, Go assembly with 8-lane
//     registers; also on AVX-512 CPUs in builds with the noavx512 tag.
//   - "go": plain Go, elsewhere and in builds with the purego tag.
//
// The byte and scaling kernels have AVX2 and portable versions (the
// AVX-512 CPUs run the AVX2 ones), which give the same results bit for bit:
// AxpyRows and the ScaleRow family round every product before adding it
// (no fused multiply-add), so that preprocessing an image gives the same
// input on every build.
//
// The AVX-512 and AVX2 kernels give the same results bit for bit: every
// output is computed with the same fused multiply-adds and additions in the
// same order, the wider registers only hold more independent outputs, so
// that training is deterministic whatever the vector width. The portable
// kernels compute the same sums but round differently (the assembly fuses
// multiply and add, and sums in another order), by less than 1e-5 relative
// for the network's inputs.
//
// All functions are pure: they read their inputs, write only their
// destination and are safe for concurrent use on distinct destinations.
package kernels
