package mnist

import (
	"context"
	"fmt"
	"image"
	"io"

	"github.com/advspace/advspace/dadc"
)

// maxStoredWeights bounds what Loader reads: the network's weights take
// 87 KB as safetensors (NumParams float32 values and a small header).
const maxStoredWeights = 1 << 20

// Loader returns the dadc.ModelLoader for MNIST models: it reads safetensors
// weights (as Model.Export writes them) and builds a Model with opts (nil:
// defaults), reporting the card's version. A dadc.Loop with a model store
// uses it to serve the latest stored model after a restart. The loader is
// safe for concurrent use.
func Loader(opts *ModelOptions) dadc.ModelLoader[*image.Gray] {
	var o ModelOptions
	if opts != nil {
		o = *opts
	}
	return dadc.LoaderFunc[*image.Gray](func(ctx context.Context, card dadc.ModelCard, r io.Reader) (dadc.Model[*image.Gray], error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(r, maxStoredWeights+1))
		if err != nil {
			return nil, fmt.Errorf("mnist: reading stored weights of %s: %w", card.Version, err)
		}
		if len(b) > maxStoredWeights {
			return nil, fmt.Errorf("mnist: stored weights of %s are larger than %d bytes; they are not this network's", card.Version, maxStoredWeights)
		}
		w, err := DecodeWeights(b)
		if err != nil {
			return nil, fmt.Errorf("mnist: stored weights of %s: %w", card.Version, err)
		}
		mo := o
		mo.Version = card.Version
		return NewModel(w, &mo)
	})
}
