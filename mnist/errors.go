package mnist

import (
	"errors"
	"fmt"

	"github.com/advspace/advspace/internal/safetensors"
	"github.com/advspace/advspace/mnist/internal/idx"
)

// Sentinel errors of package mnist. Match them with errors.Is; the typed
// errors below carry the details where a caller needs them.
var (
	// ErrBadInput is returned when an input is not a 28x28 MNIST-format image.
	ErrBadInput = errors.New("mnist: input is not a 28x28 MNIST-format image")

	// ErrEmptyImage is returned when an image holds no digit: blank, one
	// uniform colour, or strokes too faint or too small to read.
	ErrEmptyImage = errors.New("mnist: the drawing is empty: draw a digit first")
	// ErrNotImage is returned for data that is not a decodable PNG or JPEG.
	ErrNotImage = errors.New("mnist: not a PNG or JPEG image")
	// ErrDamagedImage is returned for a PNG or JPEG file that is damaged or
	// cut short (its signature is right, its content is not); such an error
	// matches ErrNotImage too.
	ErrDamagedImage = errors.New("mnist: the image file is damaged or cut short")
	// ErrImageTooLarge is wrapped by *ImageTooLargeError.
	ErrImageTooLarge = errors.New("mnist: image too large")

	// ErrNoData is returned when there is nothing (or too little) to train or
	// evaluate on.
	ErrNoData = errors.New("mnist: no data")

	// ErrSafetensors is wrapped by every error about a malformed safetensors
	// weights file: truncated, a header that is not the format's JSON, a dtype
	// other than F32, offsets that do not match the shapes or the data.
	ErrSafetensors error = safetensors.ErrMalformed
	// ErrInvalidWeights is wrapped when weights (in memory, or in a
	// well-formed safetensors file) do not fit the network: a missing, extra
	// or misshapen tensor, or a value that is NaN or infinite. *WeightsError
	// carries the details.
	ErrInvalidWeights = errors.New("mnist: invalid weights")

	// ErrIDXFormat is wrapped by every error about malformed IDX data (bad
	// magic number, truncated header or data, absurd sizes, labels outside
	// 0-9, mismatched counts, corrupt gzip).
	ErrIDXFormat error = idx.ErrFormat
	// ErrDataNotFound is wrapped when a folder lacks one of the four MNIST
	// files.
	ErrDataNotFound = errors.New("mnist: MNIST data not found")
)

// WeightsError says which tensor of a Weights value does not fit the network;
// it wraps ErrInvalidWeights.
type WeightsError struct {
	// Tensor names the tensor concerned.
	Tensor string
	// Msg says what is wrong.
	Msg string
}

func (e *WeightsError) Error() string {
	return fmt.Sprintf("mnist: invalid weights: tensor %q: %s", e.Tensor, e.Msg)
}

// Unwrap returns ErrInvalidWeights.
func (e *WeightsError) Unwrap() error { return ErrInvalidWeights }
