// Package kernels holds the float32 inner loops of the MNIST network: the
// 5x5 convolution block that both inference and training spend most of
// their time in, and a dot product.
//
// On amd64 CPUs with AVX2 and FMA the kernels are Go assembly, chosen at run
// time (golang.org/x/sys/cpu); elsewhere, and in builds with the purego tag,
// they are plain Go. Both paths compute the same sums; they differ only in
// rounding (the assembly fuses multiply and add and sums in another order),
// by less than 1e-5 relative for the network's inputs.
//
// All functions are pure: they read their inputs, write only their
// destination and are safe for concurrent use on distinct destinations.
package kernels
