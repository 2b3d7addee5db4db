package flag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"

	"github.com/advspace/advspace/internal/imgorient"
)

// Codec turns a model input into the bytes of a file and back. Handlers use it
// to store inputs of any type; the file name of a stored input is its sample
// ID followed by Ext.
//
// Implementations must be safe for concurrent use; Decode(Encode(in)) must
// give back an input equal to in.
type Codec[In any] interface {
	// Ext is the file name extension, with its dot, for instance ".png".
	Ext() string
	// Encode returns the file content for in.
	Encode(in In) ([]byte, error)
	// Decode parses file content written by Encode.
	Decode(b []byte) (In, error)
}

// GrayPNG() returns the codec that stores a grayscale image (such as a 28x28
// MNIST input) as an 8-bit grayscale PNG, the format the Hugging Face
// ImageFolder loader and dataset viewer show as an image. Decode also accepts
// RGB and paletted PNGs and converts them to gray, and turns a PNG that
// carries an EXIF Orientation tag (an eXIf chunk, any of the eight values) the
// way a browser displays it, so that what is read, trained on or shown is
// upright; Encode writes no such tag.
func GrayPNG() Codec[*image.Gray] { return grayPNG{} }

type grayPNG struct{}

func (grayPNG) Ext() string { return ".png" }

func (grayPNG) Encode(in *image.Gray) ([]byte, error) {
	if in == nil {
		return nil, errors.New("flag: GrayPNG() cannot encode a nil image")
	}
	if in.Rect.Empty() {
		return nil, fmt.Errorf("flag: GrayPNG() cannot encode an empty image (bounds %v)", in.Rect)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, in); err != nil {
		return nil, fmt.Errorf("flag: encoding PNG: %w", err)
	}
	return buf.Bytes(), nil
}

func (grayPNG) Decode(b []byte) (*image.Gray, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("flag: decoding PNG: %w", err)
	}
	img = imgorient.Apply(img, imgorient.Read(b))
	if g, ok := img.(*image.Gray); ok {
		return g, nil
	}
	// A PNG written by another tool may be RGB or paletted; convert it.
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Rect, img, img.Bounds().Min, draw.Src)
	return g, nil
}

// JSONCodec stores inputs as JSON documents (".json"), for inputs that are not
// images: text, feature vectors, structs.
func JSONCodec[In any]() Codec[In] { return jsonCodec[In]{} }

type jsonCodec[In any] struct{}

func (jsonCodec[In]) Ext() string { return ".json" }

func (jsonCodec[In]) Encode(in In) ([]byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("flag: encoding JSON input: %w", err)
	}
	return b, nil
}

func (jsonCodec[In]) Decode(b []byte) (In, error) {
	var in In
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("flag: decoding JSON input: %w", err)
	}
	return in, nil
}
