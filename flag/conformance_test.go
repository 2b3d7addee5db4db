package flag

import (
	"context"
	"errors"
	"image"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

// The dadc.Flagger conformance suite runs on every handler of the package,
// as slog runs slogtest on its own handlers. Where a handler is used with
// parts it does not own (a Hub and its Dir, an Outbox and the Dir it delivers
// to, a FanOut and its handlers), the test builds them and closes them in
// reverse order, through a small owner type.

func grayEqual(a, b *image.Gray) bool {
	return a != nil && b != nil && a.Rect.Size() == b.Rect.Size() && string(a.Pix) == string(b.Pix)
}

// owned is a flagger under test together with the parts the test built for
// it: Samples and Flush come from the parts named, Close closes everything
// in reverse order of construction.
type owned struct {
	dadc.Flagger[*image.Gray]
	source  dadc.SampleSource[*image.Gray]
	flusher dadc.Flusher
	closers []func() error // in order of construction
}

func (o *owned) Samples(ctx context.Context) ([]dadc.Sample[*image.Gray], error) {
	if o.flusher != nil {
		if err := o.flusher.Flush(ctx); err != nil {
			return nil, err
		}
	}
	return o.source.Samples(ctx)
}

func (o *owned) Flush(ctx context.Context) error {
	if o.flusher == nil {
		return nil
	}
	return o.flusher.Flush(ctx)
}

func (o *owned) Close() error {
	var errs []error
	for i := len(o.closers) - 1; i >= 0; i-- {
		errs = append(errs, o.closers[i]())
	}
	o.closers = nil
	return errors.Join(errs...)
}

func TestFlaggerConformance(t *testing.T) {
	hub := hubtest.New(nil)
	client, err := hfhub.NewClient(&hfhub.Options{
		Endpoint: "http://hub.test", Token: hubtest.DefaultToken,
		HTTPClient: &http.Client{Transport: hub.Transport()},
	})
	require.NoError(t, err)

	cases := []struct {
		name       string
		persistent bool
		new        func(t *testing.T, dir string) (dadc.Flagger[*image.Gray], error)
	}{
		{"Dir", true, func(t *testing.T, dir string) (dadc.Flagger[*image.Gray], error) {
			return NewDir(dir, GrayPNG(), &DirOptions{Shard: "c"})
		}},
		{"Log/JSONL", true, func(t *testing.T, dir string) (dadc.Flagger[*image.Gray], error) {
			return NewLog(filepath.Join(dir, "flags.jsonl"), JSONL, GrayPNG(), nil)
		}},
		{"Log/CSV", true, func(t *testing.T, dir string) (dadc.Flagger[*image.Gray], error) {
			return NewLog(filepath.Join(dir, "flags.csv"), CSV, GrayPNG(), nil)
		}},
		{"Outbox", true, func(t *testing.T, dir string) (dadc.Flagger[*image.Gray], error) {
			d, err := NewDir(filepath.Join(dir, "dataset"), GrayPNG(), &DirOptions{Shard: "c"})
			if err != nil {
				return nil, err
			}
			o, err := NewOutbox(filepath.Join(dir, "outbox"), d, GrayPNG(), &OutboxOptions{Workers: 4})
			if err != nil {
				return nil, errors.Join(err, d.Close())
			}
			return &owned{Flagger: o, source: d, flusher: o, closers: []func() error{d.Close, o.Close}}, nil
		}},
		{"FanOut", true, func(t *testing.T, dir string) (dadc.Flagger[*image.Gray], error) {
			d, err := NewDir(filepath.Join(dir, "dataset"), GrayPNG(), &DirOptions{Shard: "c"})
			if err != nil {
				return nil, err
			}
			l, err := NewLog(filepath.Join(dir, "flags.jsonl"), JSONL, GrayPNG(), nil)
			if err != nil {
				return nil, errors.Join(err, d.Close())
			}
			f := NewFanOut[*image.Gray](d, l)
			return &owned{Flagger: f, source: f, flusher: f, closers: []func() error{d.Close, l.Close}}, nil
		}},
		{"Hub", true, func(t *testing.T, dir string) (dadc.Flagger[*image.Gray], error) {
			d, err := NewDir(dir, GrayPNG(), &DirOptions{Shard: "c"})
			if err != nil {
				return nil, err
			}
			// A repo per directory: a reopened flagger finds its own.
			id := hfhub.RepoID{Namespace: hubtest.DefaultUser, Name: "conformance-" + filepath.Base(filepath.Dir(dir)) + "-" + filepath.Base(dir)}
			h, err := NewHub(client, id, d, nil)
			if err != nil {
				return nil, errors.Join(err, d.Close())
			}
			return &owned{Flagger: h, source: h, flusher: h, closers: []func() error{d.Close, h.Close}}, nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &dadctest.FlaggerSuite[*image.Gray]{
				New:        func(dir string) (dadc.Flagger[*image.Gray], error) { return c.new(t, dir) },
				NewInput:   testImage,
				EqualInput: grayEqual,
				Persistent: c.persistent,
			}
			s.Run(t)
		})
	}
	// What the Hub flaggers acknowledged reached the fake Hub: the suite's
	// first rule flags 5 samples and flushes.
	var rows int
	for _, r := range hub.Repos() {
		if strings.Contains(r, "FlagAndList") {
			meta, _ := hub.File("dataset", strings.TrimPrefix(r, "dataset:"), "main", "data/c/"+MetadataFile)
			rows = strings.Count(string(meta), "\n")
		}
	}
	require.Equal(t, 5, rows)
}
