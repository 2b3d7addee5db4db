// Package kernels holds the float32 inner loops of the MNIST network: the
// 5x5 convolution block that both inference and training spend most of
// their time in (with the 2x2 max-pool, bias and ReLU fused, and for
// training the position of each pooled maximum), the two sparse 5x5
// backward kernels (the weight gradient summed over a list of windows, and
// one window's input gradient added in place), a dot product and axpy.
//
// On amd64 CPUs with AVX2 and FMA the kernels are Go assembly, chosen at run
// time (golang.org/x/sys/cpu); AVX-512 CPUs run the same AVX2 code (the
// network's 8-wide rows and 5-wide kernel rows leave 16-lane vectors half
// empty); elsewhere, and in builds with the purego tag,
// they are plain Go. Both paths compute the same sums; they differ only in
// rounding (the assembly fuses multiply and add and sums in another order),
// by less than 1e-5 relative for the network's inputs.
//
// All functions are pure: they read their inputs, write only their
// destination and are safe for concurrent use on distinct destinations.
package kernels
