package mnist

import (
	"image"

	"github.com/advspace/advspace/internal/imgorient"
)

// displayOriented returns img, decoded from the encoded file data, turned the
// way the file's EXIF Orientation tag says it is to be displayed (all eight
// values; a JPEG's Exif APP1 segment or a PNG's eXIf chunk), so that a phone
// photo stored sideways reaches the model upright, as a browser shows it. An
// image without the tag, or with an unreadable or reserved value, is
// returned as stored, as browsers do. Preprocess calls it right after
// decoding.
func displayOriented(data []byte, img image.Image) image.Image {
	return imgorient.Apply(img, imgorient.Read(data))
}
