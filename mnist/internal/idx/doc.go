// Package idx reads and writes IDX files, the format of the MNIST data set: a
// big-endian header (two zero bytes, the element type 0x08 for unsigned
// bytes, the number of dimensions, then each dimension as a uint32) followed
// by the raw bytes. Readers accept raw or gzip-compressed streams (the gzip
// magic is sniffed), refuse any claimed size above MaxBytes before
// allocating, and report malformed data as *Error values wrapping ErrFormat.
//
// The functions have no state and are safe for concurrent use.
package idx
