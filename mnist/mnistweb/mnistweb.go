package mnistweb

import (
	"fmt"
	"image"

	"github.com/advspace/advspace/dadc/dadchttp"
)

// Options configure New. Nil or zero fields mean the defaults.
type Options struct {
	// HTTP configures the web layer (limits, logs, metrics, proxies). Its
	// Page and HubDataset are set by New when empty.
	HTTP *dadchttp.Options
	// Codec configures the image decoding. Its MaxBytes defaults to
	// HTTP.MaxBodyBytes.
	Codec *CodecOptions
	// HubDataset is the Hub dataset the flags go to ("owner/name"), linked
	// from the page and reported by /api/stats.
	HubDataset string
}

// New returns the MNIST web app over loop: the drawing page, the JSON API,
// events, /healthz and /metrics (see package dadchttp for the routes). Close
// it before the loop. Errors wrap dadchttp.ErrConfig.
func New(loop dadchttp.Loop[*image.Gray], opts *Options) (*dadchttp.Handler[*image.Gray], error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	var hopts dadchttp.Options
	if o.HTTP != nil {
		hopts = *o.HTTP
	}
	if hopts.HubDataset == "" {
		hopts.HubDataset = o.HubDataset
	}
	if hopts.Page == nil {
		page, err := Page(&PageOptions{HubDataset: hopts.HubDataset})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", dadchttp.ErrConfig, err)
		}
		hopts.Page = page
	}
	var copts CodecOptions
	if o.Codec != nil {
		copts = *o.Codec
	}
	if copts.MaxBytes == 0 {
		copts.MaxBytes = hopts.MaxBodyBytes
	}
	return dadchttp.New(loop, NewCodec(&copts), &hopts)
}
