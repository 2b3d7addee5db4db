package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
)

// pointCodec is the dadchttp.Codec of points: JSON {"point": {"x": 0.4,
// "y": 0.7}} with both coordinates in [0, 1]; a point is shown as itself.
type pointCodec struct{}

func (pointCodec) Spec() dadchttp.InputSpec {
	return dadchttp.InputSpec{Field: "point", Example: `{"x": 0.4, "y": 0.7}`, Noun: "the point", Labels: classes}
}

func (pointCodec) DecodeJSON(raw json.RawMessage) (Point, error) {
	if raw == nil {
		return Point{}, dadchttp.Errorf(http.StatusBadRequest, `point is missing: send {"point": {"x": 0.4, "y": 0.7}}`)
	}
	var p struct{ X, Y *float64 }
	if err := json.Unmarshal(raw, &p); err != nil || p.X == nil || p.Y == nil {
		return Point{}, dadchttp.Errorf(http.StatusBadRequest, `point must be an object with numbers x and y, such as {"x": 0.4, "y": 0.7}`)
	}
	pt := Point{*p.X, *p.Y}
	if !(pt.X >= 0 && pt.X <= 1 && pt.Y >= 0 && pt.Y <= 1) || math.IsNaN(pt.X+pt.Y) {
		return Point{}, dadchttp.Errorf(http.StatusUnprocessableEntity, "x and y must be from 0 to 1, not %g and %g", pt.X, pt.Y)
	}
	return pt, nil
}

func (pointCodec) Render(p Point) (any, error) { return p, nil }

// newWebApp is the HTTP API over loop.
func newWebApp(loop *dadc.Loop[Point], log *slog.Logger) (*dadchttp.Handler[Point], error) {
	return dadchttp.New(loop, dadchttp.Codec[Point](pointCodec{}), &dadchttp.Options{Logger: log})
}

// serve serves the HTTP API over loop on addr until ctx is done, then shuts
// down: the server, the app, the loop, in reverse order of construction
// (the caller closes the flagger it built). ready, if set, gets the base URL.
func serve(ctx context.Context, addr string, loop *dadc.Loop[Point], log *slog.Logger, ready func(url string)) error {
	app, err := newWebApp(loop, log)
	if err != nil {
		_ = loop.Close(context.Background())
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = app.Close()
		_ = loop.Close(context.Background())
		return fmt.Errorf("-http %s: %w", addr, err)
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(func() { _ = app.Close() })
	log.Info("custom-model: serving the HTTP API", "listen", ln.Addr().String())
	if ready != nil {
		ready("http://" + ln.Addr().String() + "/")
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, err, app.Close(), loop.Close(sctx))
}
