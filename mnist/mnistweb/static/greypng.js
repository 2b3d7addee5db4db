// greypng.js: the PNG the page sends to predict, encoded here rather than by
// the browser's canvas.toBlob. The browser writes an RGBA PNG, deflate
// compressed, which the server must inflate, unfilter and turn grey before it
// can start (about twice its whole prediction). This one is what the server
// wants to read: 8-bit greyscale (colour type 0), not interlaced, filter type
// 0 (None) on every row, and a zlib stream of stored (uncompressed) deflate
// blocks, so that decoding it is one copy. The grey level of each pixel is
// exactly what the server would compute from the RGBA PNG (Go's
// color.GrayModel), so the model gets the same 28x28 input either way.
//
// It defines window.advspaceGreyPNG = { encode: encode, luma: luma }.
// Specifications: PNG (ISO/IEC 15948, W3C), zlib (RFC 1950), deflate's stored
// blocks (RFC 1951, section 3.2.4).
(function (global) {
  'use strict';

  // CRC-32 of PNG chunks (ISO 3309, the reflected polynomial 0xEDB88320),
  // one table entry per byte value, computed once.
  var CRC_TABLE = (function () {
    var table = new Uint32Array(256);
    for (var n = 0; n < 256; n++) {
      var c = n;
      for (var k = 0; k < 8; k++) {
        c = (c & 1) ? (0xEDB88320 ^ (c >>> 1)) : (c >>> 1);
      }
      table[n] = c >>> 0;
    }
    return table;
  })();

  // crc32 returns the CRC-32 of buf[start:end] as an unsigned 32-bit number.
  function crc32(buf, start, end) {
    var c = 0xFFFFFFFF;
    for (var i = start; i < end; i++) {
      c = CRC_TABLE[(c ^ buf[i]) & 0xFF] ^ (c >>> 8);
    }
    return (c ^ 0xFFFFFFFF) >>> 0;
  }

  // adler32 returns the Adler-32 (RFC 1950) of all of buf: the zlib
  // stream's checksum of the uncompressed bytes. The sums are reduced every
  // 5552 bytes, zlib's own bound, which keeps them small integers.
  function adler32(buf) {
    var MOD = 65521;
    var a = 1, b = 0;
    for (var i = 0; i < buf.length;) {
      var stop = Math.min(i + 5552, buf.length);
      for (; i < stop; i++) {
        a += buf[i];
        b += a;
      }
      a %= MOD;
      b %= MOD;
    }
    return ((b << 16) | a) >>> 0;
  }

  // putU32 writes v big-endian (network order, as PNG and zlib want it).
  function putU32(buf, at, v) {
    buf[at] = (v >>> 24) & 0xFF;
    buf[at + 1] = (v >>> 16) & 0xFF;
    buf[at + 2] = (v >>> 8) & 0xFF;
    buf[at + 3] = v & 0xFF;
  }

  // luma is the grey level of an 8-bit r, g, b exactly as Go's
  // color.GrayModel computes it (ITU-R BT.601 weights 0.299, 0.587, 0.114 in
  // 16-bit fixed point): Go scales each channel to 16 bits (x * 257) and
  // rounds the weighted sum down to 8 bits, (257*s + 2^15) >> 24. The sum
  // reaches 2^32, past JavaScript's 32-bit operators, so it is done in
  // floating point, which is exact for integers below 2^53.
  function luma(r, g, b) {
    var s = 19595 * r + 38470 * g + 7471 * b;
    return Math.floor((257 * s + 32768) / 16777216);
  }

  // MAX_STORED is the most bytes one stored deflate block holds (its length
  // field is 16 bits).
  var MAX_STORED = 65535;

  // zlibStored wraps data in a zlib stream of stored deflate blocks: the
  // header 78 01 (deflate with a 32 KiB window, no dictionary, "fastest"
  // level, which makes the 16-bit header a multiple of 31), the blocks, and
  // data's Adler-32.
  function zlibStored(data) {
    var blocks = Math.max(1, Math.ceil(data.length / MAX_STORED));
    var out = new Uint8Array(2 + 5 * blocks + data.length + 4);
    out[0] = 0x78;
    out[1] = 0x01;
    var at = 2;
    for (var i = 0; i < blocks; i++) {
      var start = i * MAX_STORED;
      var len = Math.min(MAX_STORED, data.length - start);
      // One byte for BFINAL (bit 0, set on the last block) and BTYPE 00
      // (bits 1-2); the rest of that byte is padding to the byte boundary.
      out[at] = i === blocks - 1 ? 1 : 0;
      // LEN and NLEN (its ones' complement), little-endian: deflate's byte
      // order, not PNG's.
      out[at + 1] = len & 0xFF;
      out[at + 2] = len >>> 8;
      out[at + 3] = ~len & 0xFF;
      out[at + 4] = (~len >>> 8) & 0xFF;
      out.set(data.subarray(start, start + len), at + 5);
      at += 5 + len;
    }
    putU32(out, at, adler32(data));
    return out;
  }

  // chunk writes a PNG chunk (length, type, data, CRC-32 of type and data)
  // at out[at:] and returns where the next one starts.
  function chunk(out, at, type, data) {
    putU32(out, at, data.length);
    for (var i = 0; i < 4; i++) { out[at + 4 + i] = type.charCodeAt(i); }
    out.set(data, at + 8);
    putU32(out, at + 8 + data.length, crc32(out, at + 4, at + 8 + data.length));
    return at + 12 + data.length;
  }

  // encode returns the greyscale PNG file (a Uint8Array) of an opaque image
  // given as RGBA bytes, 4 per pixel, row by row, as a canvas's
  // getImageData(...).data. Alpha is ignored: fill the canvas with an opaque
  // background before drawing on it. It throws when the sizes do not fit.
  function encode(rgba, width, height) {
    if (!(width > 0 && height > 0 && width === Math.floor(width) && height === Math.floor(height))) {
      throw new Error('greypng: size ' + width + 'x' + height + ' is not a positive whole number of pixels');
    }
    if (rgba.length !== 4 * width * height) {
      throw new Error('greypng: ' + rgba.length + ' RGBA bytes for ' + width + 'x' + height + ' pixels, want ' + 4 * width * height);
    }
    // The image data: every row is its filter type (0, None) and its grey levels.
    var rowLen = 1 + width;
    var raw = new Uint8Array(height * rowLen);
    for (var y = 0; y < height; y++) {
      var src = 4 * width * y;
      var dst = rowLen * y;
      raw[dst] = 0;
      for (var x = 0; x < width; x++, src += 4) {
        raw[dst + 1 + x] = luma(rgba[src], rgba[src + 1], rgba[src + 2]);
      }
    }

    // IHDR: width, height, bit depth 8, colour type 0 (greyscale),
    // compression 0, filter method 0, interlace 0 (none).
    var ihdr = new Uint8Array(13);
    putU32(ihdr, 0, width);
    putU32(ihdr, 4, height);
    ihdr[8] = 8;
    var idat = zlibStored(raw);

    var SIGNATURE = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    var out = new Uint8Array(SIGNATURE.length + (12 + ihdr.length) + (12 + idat.length) + 12);
    out.set(SIGNATURE, 0);
    var at = chunk(out, SIGNATURE.length, 'IHDR', ihdr);
    at = chunk(out, at, 'IDAT', idat);
    chunk(out, at, 'IEND', new Uint8Array(0));
    return out;
  }

  global.advspaceGreyPNG = { encode: encode, luma: luma };
})(window);
