package mnistweb

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/mnist"
)

// Defaults of CodecOptions.
const (
	DefaultMaxBytes  = dadchttp.DefaultMaxBodyBytes
	DefaultMaxPixels = 2048 * 2048
)

// CodecOptions configure a Codec. Zero fields mean the defaults.
type CodecOptions struct {
	// MaxBytes bounds an encoded image. Default 5 MiB.
	MaxBytes int64
	// MaxPixels bounds the declared width*height of an image, checked
	// before its pixels are decoded. Default 2048*2048.
	MaxPixels int
	// MaxConcurrent bounds the images decoded at once; more wait their
	// turn. Default GOMAXPROCS: decoding is CPU-bound, so more at once
	// only adds memory (a 100 KB 16-bit interlaced 2048x2048 PNG takes
	// about 80 MB while image/png decodes it).
	MaxConcurrent int
}

// Codec is the dadchttp.Codec of drawings: it takes PNG or JPEG images, as
// raw request bodies or as base64 data URLs in the JSON member "image", and
// turns them into the model's 28x28 input with mnist.Preprocess; it shows
// an input as a data:image/png;base64 URL of the 28x28 image. Labels are
// the digits "0" to "9". Safe for concurrent use.
type Codec struct {
	opts mnist.PreprocessOptions
	enc  *png.Encoder
	// slots holds one token per decode allowed at once.
	slots chan struct{}
	// inFlight and maxInFlight count decodes, for tests.
	inFlight, maxInFlight atomic.Int32
}

var (
	_ dadchttp.Codec[*image.Gray]       = (*Codec)(nil)
	_ dadchttp.BodyDecoder[*image.Gray] = (*Codec)(nil)
)

// NewCodec returns a Codec; opts may be nil.
func NewCodec(opts *CodecOptions) *Codec {
	var o CodecOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	return &Codec{
		slots: make(chan struct{}, o.MaxConcurrent),
		opts:  mnist.PreprocessOptions{MaxPixels: o.MaxPixels, MaxBytes: o.MaxBytes},
		// Uncompressed: a 28x28 PNG is under 1 KB either way, and setting up
		// a compressor costs 15 to 200 times as much as storing (the pool
		// empties at every GC).
		enc: &png.Encoder{CompressionLevel: png.NoCompression, BufferPool: &pngPool{}},
	}
}

// Spec describes drawings: member "image", labels "0" to "9".
func (c *Codec) Spec() dadchttp.InputSpec {
	labels := make([]string, mnist.Classes)
	for i := range labels {
		labels[i] = fmt.Sprint(i)
	}
	return dadchttp.InputSpec{Field: "image", Example: `"data:image/png;base64,..."`, Noun: "the drawing", Labels: labels}
}

// MediaTypes are image/png and image/jpeg.
func (c *Codec) MediaTypes() []string { return []string{"image/png", "image/jpeg"} }

const imageFormatHint = `send the drawing as a raw image/png or image/jpeg body, or as JSON {"image": "data:image/png;base64,..."}`

// DecodeBody preprocesses a raw PNG or JPEG body.
func (c *Codec) DecodeBody(_ string, body []byte) (*image.Gray, error) {
	return c.preprocess(body)
}

// DecodeJSON decodes a JSON string holding a PNG or JPEG data URL.
func (c *Codec) DecodeJSON(raw json.RawMessage) (*image.Gray, error) {
	var u string
	if raw != nil {
		if err := json.Unmarshal(raw, &u); err != nil {
			return nil, &dadchttp.Error{Status: http.StatusBadRequest, Message: `malformed JSON: field "image" must be a string, a data URL such as data:image/png;base64,...`}
		}
	}
	b, err := decodeDataURL(u)
	if err != nil {
		return nil, err
	}
	return c.preprocess(b)
}

func badRequest(format string, args ...any) error {
	return dadchttp.Errorf(http.StatusBadRequest, format, args...)
}

// decodeDataURL returns the bytes of a data URL holding a PNG or JPEG.
func decodeDataURL(u string) ([]byte, error) {
	if u == "" {
		return nil, badRequest(`image is missing: send {"image": "data:image/png;base64,..."}`)
	}
	rest, ok := strings.CutPrefix(u, "data:")
	meta, data, ok2 := strings.Cut(rest, ",")
	if !ok || !ok2 {
		return nil, badRequest("image must be a data URL such as data:image/png;base64,...")
	}
	params := strings.Split(meta, ";")
	mediaType := strings.ToLower(strings.TrimSpace(params[0]))
	if mediaType != "image/png" && mediaType != "image/jpeg" {
		return nil, dadchttp.Errorf(http.StatusUnsupportedMediaType, "image must be a PNG or JPEG data URL, not %q", mediaType)
	}
	if params[len(params)-1] != "base64" {
		return nil, badRequest("image must be a base64 data URL (data:image/png;base64,...)")
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, badRequest("image is not valid base64: %v", err)
	}
	return b, nil
}

// preprocess turns uploaded bytes into the model's 28x28 input.
func (c *Codec) preprocess(b []byte) (*image.Gray, error) {
	c.slots <- struct{}{}
	n := c.inFlight.Add(1)
	for m := c.maxInFlight.Load(); n > m && !c.maxInFlight.CompareAndSwap(m, n); m = c.maxInFlight.Load() {
	}
	g, err := mnist.Preprocess(b, &c.opts)
	c.inFlight.Add(-1)
	<-c.slots
	switch {
	case err == nil:
		return g, nil
	case errors.Is(err, mnist.ErrEmptyImage):
		return nil, dadchttp.Errorf(http.StatusUnprocessableEntity, "the drawing is empty: draw a digit first")
	case errors.Is(err, mnist.ErrImageTooLarge):
		return nil, dadchttp.Errorf(http.StatusRequestEntityTooLarge, "the image is too large: %s",
			strings.TrimPrefix(strings.TrimPrefix(err.Error(), "mnist: "), "image too large: "))
	case errors.Is(err, mnist.ErrDamagedImage):
		return nil, badRequest("%s: send the whole file, as the drawing program saved it", strings.TrimPrefix(err.Error(), "mnist: "))
	case errors.Is(err, mnist.ErrNotImage):
		return nil, badRequest("the image is not a PNG or JPEG image: %s", imageFormatHint)
	default:
		return nil, badRequest("the image cannot be read: %v", err)
	}
}

// Render returns g as a data:image/png;base64 URL; a nil image is "".
func (c *Codec) Render(g *image.Gray) (any, error) {
	if g == nil {
		return "", nil
	}
	var buf bytes.Buffer
	if err := c.enc.Encode(&buf, g); err != nil {
		return nil, fmt.Errorf("mnistweb: encode png: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// pngPool reuses PNG encoder buffers across requests.
type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}
func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }
