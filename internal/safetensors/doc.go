// Package safetensors reads and writes the safetensors tensor file format
// (an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw little-endian data), for float32
// (F32) tensors only.
//
// Decoding is strict: truncation, gaps, overlaps, duplicated keys, unknown
// fields and trailing bytes are all refused with an error saying what is
// wrong, and no claimed size is allocated before it is checked against the
// data actually present. Encoding writes what PyTorch's
// safetensors.torch.load_file reads.
//
// The functions have no state and are safe for concurrent use.
package safetensors
