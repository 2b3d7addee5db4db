// Package imgorient reads the EXIF Orientation tag of a JPEG or PNG file and
// turns a decoded image the way the tag says it is to be displayed, as web
// browsers do (CSS image-orientation: from-image, their default).
//
// Cameras and phones often store a photo as the sensor saw it and record in
// the Orientation tag (EXIF tag 0x0112, values 1-8) how to turn it for
// display; Go's image/jpeg and image/png decoders ignore the tag, so without
// this package a portrait photo of an upright digit reaches a model sideways.
//
// The tag is read from the first "Exif" APP1 segment of a JPEG (before the
// image data) or from the eXIf chunk of a PNG (before the first IDAT chunk,
// where the PNG specification puts it). A missing, unreadable or reserved
// value (0, or above 8) means the image is shown as stored, which is what
// browsers do with it too.
//
// The functions have no state and are safe for concurrent use.
package imgorient
