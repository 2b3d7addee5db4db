// Package pngluma decodes the common PNG layouts straight into the 8-bit
// luminance plane that MNIST preprocessing starts from, without building the
// full-colour image first: 8-bit greyscale, greyscale with alpha, RGB, RGBA
// and palette images (with or without a palette's transparency), not
// interlaced. That is what browsers' canvas snapshots and image editors
// write. Anything else (16-bit or 1-, 2-, 4-bit samples, Adam7 interlacing,
// transparency keys on greyscale or RGB images, unknown critical chunks, and
// damaged files) returns ErrUnsupported, and the caller decodes with
// image/png instead, which also gives the precise error for a damaged file.
//
// The luminance is image/color's GrayModel formula (ITU-R BT.601 weights
// 0.299, 0.587, 0.114, rounded) after compositing non-premultiplied alpha
// onto a background level, byte for byte what converting image/png's result
// gives. Every chunk's CRC-32 and the chunk order of the specification are
// checked as image/png checks them; the zlib stream's Adler-32 is not (as
// with libpng's PNG_IGNORE_ADLER32 option): the chunk CRCs already cover
// every compressed byte, and checksumming the inflated pixels would cost as
// much as the rest of the decode. So a file whose only fault is a wrong
// Adler-32 (or anything else after the last deflate block) decodes here
// and not with image/png.
//
// A zlib stream made of stored (uncompressed) deflate blocks only, as
// encoders write at compression level 0, is copied rather than inflated,
// and an 8-bit greyscale image whose rows are all filtered None is copied
// straight into the plane: an 84x84 snapshot decodes in about a
// microsecond. Stored blocks whose lengths disagree or that end early go
// through compress/flate like any other stream, which refuses them.
//
// Rows of 3 and 4 bytes per pixel filtered Sub, Average or Paeth are
// unfiltered on amd64 with SSE2 kernels after libpng's (Paeth with AVX where
// the CPU has it, chosen at run time), except where a run of zero
// differences under a flat row above is filled sixteen bytes at a time; the
// purego build tag selects the portable Go code, which gives the same
// bytes. Large images (4 MB of rows and more) inflate on one goroutine while
// another unfilters and converts.
package pngluma
