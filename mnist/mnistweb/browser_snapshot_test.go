package mnistweb_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist"
)

// pageSnapshotFixture is the page's predict body that examples/mnist-bench
// times, and canvasSnapshotFixture the same canvas as Chromium's own PNG,
// both captured from Chromium by TestBrowserPredictSendsGreyPNG.
var (
	pageSnapshotFixture   = filepath.Join("..", "..", "examples", "mnist-bench", "page-snapshot-84.png")
	canvasSnapshotFixture = filepath.Join("..", "..", "examples", "mnist-bench", "canvas-rgba-84.png")
)

// captureHook runs in the page before its own scripts: it wraps fetch so
// that every predict request leaves, in window.advspaceSent, its body and
// the send canvas's toDataURL('image/png') taken at the same moment (the
// canvas is found among the canvases the page creates: it is the only
// 84x84 one).
const captureHook = `(function () {
  var canvases = [];
  var create = document.createElement;
  document.createElement = function (tag) {
    var e = create.apply(this, arguments);
    if (String(tag).toLowerCase() === 'canvas') { canvases.push(e); }
    return e;
  };
  function b64(u8) {
    var s = '';
    for (var i = 0; i < u8.length; i += 0x8000) { s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000)); }
    return btoa(s);
  }
  window.advspaceBase64 = b64;
  window.advspaceCanvases = canvases;
  window.advspaceSent = [];
  var orig = window.fetch;
  window.fetch = function (path, opts) {
    if (path === 'api/predict') {
      var send = canvases.filter(function (c) { return c.width === 84 && c.height === 84; });
      window.advspaceSent.push({
        type: Object.prototype.toString.call(opts.body),
        body: opts.body instanceof Uint8Array ? b64(opts.body) : '',
        contentType: opts.headers['Content-Type'],
        canvas: send.length === 1 ? send[0].toDataURL('image/png') : 'send canvases: ' + send.length
      });
    }
    return orig.apply(this, arguments);
  };
})();`

// predictBodies records the bodies of the POST /api/predict requests that
// reach the server.
type predictBodies struct {
	mu     sync.Mutex
	bodies [][]byte
	types  []string
}

func (p *predictBodies) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/predict" {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			p.mu.Lock()
			p.bodies = append(p.bodies, b)
			p.types = append(p.types, r.Header.Get("Content-Type"))
			p.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		next.ServeHTTP(w, r)
	})
}

func (p *predictBodies) last() (body []byte, contentType string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bodies) == 0 {
		return nil, "", 0
	}
	return p.bodies[len(p.bodies)-1], p.types[len(p.types)-1], len(p.bodies)
}

// sentPredict is one predict request as captureHook saw it in the page.
type sentPredict struct {
	Type        string `json:"type"`
	Body        string `json:"body"`
	ContentType string `json:"contentType"`
	Canvas      string `json:"canvas"`
}

// TestBrowserPredictSendsGreyPNG draws a seven on the real page in headless
// Chromium and checks what the page sends to predict: an 8-bit greyscale
// PNG of stored deflate blocks (greypng.js) whose every pixel is the
// luminance (color.GrayModel) of the send canvas's RGBA, so that
// mnist.Preprocess gives the same 28x28 as for the canvas's own PNG.
// With ADVSPACE_PAGE_SNAPSHOT=DIR it also writes the body it checked to
// DIR/page-snapshot-84.png and the canvas's PNG to DIR/canvas-rgba-84.png
// (how examples/mnist-bench's fixtures were made).
func TestBrowserPredictSendsGreyPNG(t *testing.T) {
	ctx := newBrowser(t, 1100, 1300)
	f := newFixture(t, nil)
	var seen predictBodies
	srv := httptest.NewServer(seen.wrap(f.space))
	defer func() {
		_ = f.space.Close() // ends the page's event stream, which would hold srv.Close up
		srv.Close()
	}()
	var problems pageProblems
	problems.listen(ctx)

	var box rect
	require.NoError(t, chromedp.Run(ctx,
		cdplog.Enable(),
		runtime.Enable(),
		chromedp.ActionFunc(func(ctx2 context.Context) error {
			_, err := page.AddScriptToEvaluateOnNewDocument(captureHook).Do(ctx2)
			return err
		}),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#pad", chromedp.ByID),
		chromedp.Evaluate(`(function(){var r=document.getElementById('pad').getBoundingClientRect();return {x:r.x,y:r.y,width:r.width,height:r.height};})()`, &box),
	))
	require.Greater(t, box.Width, 100.0, "canvas laid out")
	at := func(fx, fy float64) [2]float64 { return [2]float64{box.X + fx*box.Width, box.Y + fy*box.Height} }
	var sent []sentPredict
	require.NoError(t, chromedp.Run(ctx,
		// The seven of TestBrowserDrawAndFlag.
		drawStroke([][2]float64{at(0.28, 0.22), at(0.72, 0.22), at(0.45, 0.82)}),
		chromedp.Poll(`document.getElementById('pred-label').textContent !== '?' && !document.getElementById('yes').disabled`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate(`window.advspaceSent`, &sent),
	))
	require.NotEmpty(t, sent, "the page sent a prediction request")
	last := sent[len(sent)-1]
	assert.Equal(t, "[object Uint8Array]", last.Type)
	assert.Equal(t, "image/png", last.ContentType)
	body, err := base64.StdEncoding.DecodeString(last.Body)
	require.NoError(t, err)
	got, gotType, n := seen.last()
	assert.Equal(t, len(sent), n, "every request the page made reached the server")
	assert.Equal(t, "image/png", gotType)
	require.Equal(t, body, got, "the server got the bytes the page encoded")

	// The layout: greyscale, filter None, stored blocks, checksums right.
	rows := checkGreyStoredPNG(t, body, 84, 84)
	img, err := png.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	grey, ok := img.(*image.Gray)
	require.True(t, ok, "image/png decodes the body to %T, want *image.Gray", img)
	require.Equal(t, image.Rect(0, 0, 84, 84), grey.Bounds())
	for y := range 84 {
		require.Equal(t, rows[y*85+1:(y+1)*85], grey.Pix[y*grey.Stride:y*grey.Stride+84])
	}

	// The pixels: the luminance of the send canvas's RGBA, every one.
	canvasPNG := dataURLBytes(t, last.Canvas)
	rgba, err := png.Decode(bytes.NewReader(canvasPNG))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 84, 84), rgba.Bounds())
	mismatched, ink := lumaMismatch(t, grey, rgba)
	assert.Zero(t, mismatched, "pixels whose grey level is not the canvas's luminance")
	assert.Greater(t, ink, 200, "the seven is in the snapshot (dark pixels)")
	assert.Equal(t, greyStoredPNG(lumaOf(rgba)), body, "byte for byte the reference encoding of the canvas's luminance")

	// The canvas's toBlob (what the page sent before) writes the same
	// bytes as its toDataURL, so examples/mnist-bench's RGBA fixture is
	// what the page used to send.
	var blob string
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`new Promise(function (resolve) {
  var c = window.advspaceCanvases.filter(function (c) { return c.width === 84 && c.height === 84; })[0];
  c.toBlob(function (b) { b.arrayBuffer().then(function (a) { resolve(window.advspaceBase64(new Uint8Array(a))); }); }, 'image/png');
})`, &blob, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })))
	assert.Equal(t, base64.StdEncoding.EncodeToString(canvasPNG), blob, "toBlob and toDataURL write the same PNG")

	// The same 28x28 for the model.
	fromGrey, err := mnist.Preprocess(body, nil)
	require.NoError(t, err)
	fromRGBA, err := mnist.Preprocess(canvasPNG, nil)
	require.NoError(t, err)
	assert.Equal(t, fromRGBA.Pix, fromGrey.Pix)
	assert.Empty(t, problems.get())

	if dir := os.Getenv("ADVSPACE_PAGE_SNAPSHOT"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "page-snapshot-84.png"), body, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "canvas-rgba-84.png"), canvasPNG, 0o644))
	}
}

// TestBrowserGreyPNGEncoder runs the page's encoder (greypng.js) in
// Chromium on pixel arrays of known colours and checks its files with
// image/png and zlib: every size, one stored block up to 65,535 bytes of
// rows and more past that (including the exact boundary), and grey levels
// equal to color.GrayModel for colours that are not grey.
func TestBrowserGreyPNGEncoder(t *testing.T) {
	ctx := newBrowser(t, 800, 600)
	f := newFixture(t, nil)
	srv := httptest.NewServer(f.space)
	defer func() {
		_ = f.space.Close()
		srv.Close()
	}()
	// Pixels: a few chosen colours first (black, white, and pure blue 5,
	// which a rounding slip turns to 1), then r = x, g = y and b mixed, and
	// every third row pseudo-random (a 32-bit xorshift).
	const encodeAll = `(function (sizes) {
  function b64(u8) {
    var s = '';
    for (var i = 0; i < u8.length; i += 0x8000) { s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000)); }
    return btoa(s);
  }
  var seed = 2463534242;
  function rnd() { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed & 0xff; }
  return sizes.map(function (wh) {
    var w = wh[0], h = wh[1], px = new Uint8Array(4 * w * h);
    for (var y = 0; y < h; y++) {
      for (var x = 0; x < w; x++) {
        var i = 4 * (y * w + x);
        if (y % 3 === 2) { px[i] = rnd(); px[i + 1] = rnd(); px[i + 2] = rnd(); }
        else { px[i] = x & 0xff; px[i + 1] = y & 0xff; px[i + 2] = (7 * x + 13 * y) & 0xff; }
        px[i + 3] = 255;
      }
    }
    var chosen = [[0, 0, 0], [255, 255, 255], [0, 0, 5], [17, 17, 17], [255, 0, 0], [0, 255, 0]];
    for (var k = 0; k < chosen.length && k < w * h; k++) { px.set(chosen[k], 4 * k); }
    var bad = '';
    try { window.advspaceGreyPNG.encode(px, w + 1, h); } catch (e) { bad = e.message; }
    return { w: w, h: h, rgba: b64(px), png: b64(window.advspaceGreyPNG.encode(px, w, h)), bad: bad };
  });
})`
	sizes := [][2]int{
		{1, 1},
		{84, 84},
		{256, 255}, // 255 rows of 257 bytes: exactly 65,535, one full block
		{255, 256}, // 65,536: a full block and a block of one byte
		{300, 300}, // 90,300: two blocks
	}
	sizesJSON, err := json.Marshal(sizes)
	require.NoError(t, err)
	var out []struct {
		W, H      int
		RGBA, PNG string
		Bad       string
	}
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#pad", chromedp.ByID),
		chromedp.Evaluate(fmt.Sprintf("%s(%s)", encodeAll, string(sizesJSON)), &out),
	))
	require.Len(t, out, len(sizes))
	for i, o := range out {
		w, h := sizes[i][0], sizes[i][1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			require.Equal(t, [2]int{w, h}, [2]int{o.W, o.H})
			assert.Contains(t, o.Bad, "want", "a pixel array of the wrong size is refused")
			px, err := base64.StdEncoding.DecodeString(o.RGBA)
			require.NoError(t, err)
			file, err := base64.StdEncoding.DecodeString(o.PNG)
			require.NoError(t, err)
			checkGreyStoredPNG(t, file, w, h)
			img, err := png.Decode(bytes.NewReader(file))
			require.NoError(t, err)
			grey, ok := img.(*image.Gray)
			require.True(t, ok, "image/png decodes it to %T, want *image.Gray", img)
			require.Equal(t, image.Rect(0, 0, w, h), grey.Bounds())
			wrong := 0
			for y := range h {
				for x := range w {
					p := px[4*(y*w+x):]
					want := color.GrayModel.Convert(color.NRGBA{p[0], p[1], p[2], 255}).(color.Gray).Y
					if grey.GrayAt(x, y).Y != want {
						if wrong < 5 {
							t.Errorf("(%d,%d) = rgb(%d,%d,%d): grey %d, want %d", x, y, p[0], p[1], p[2], grey.GrayAt(x, y).Y, want)
						}
						wrong++
					}
				}
			}
			assert.Zero(t, wrong, "pixels whose grey level is not color.GrayModel's")
			want := image.NewGray(image.Rect(0, 0, w, h))
			for i := range want.Pix {
				want.Pix[i] = color.GrayModel.Convert(color.NRGBA{px[4*i], px[4*i+1], px[4*i+2], 255}).(color.Gray).Y
			}
			assert.Equal(t, greyStoredPNG(want), file, "byte for byte the reference encoding")
		})
	}
}

// TestPageSnapshotFixtures checks examples/mnist-bench's two snapshots of
// one drawing: the page's has the layout the page sends now, the canvas's
// is an opaque RGBA PNG, and their luminance is the same, pixel for pixel,
// so the benchmark's two rows differ by the encoding alone.
func TestPageSnapshotFixtures(t *testing.T) {
	body, err := os.ReadFile(pageSnapshotFixture)
	require.NoError(t, err)
	checkGreyStoredPNG(t, body, 84, 84)
	img, err := png.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	grey := img.(*image.Gray)

	canvas, err := os.ReadFile(canvasSnapshotFixture)
	require.NoError(t, err)
	rgba, err := png.Decode(bytes.NewReader(canvas))
	require.NoError(t, err)
	require.IsType(t, &image.NRGBA{}, rgba, "Chromium writes 8-bit RGBA")
	require.Equal(t, grey.Bounds(), rgba.Bounds())
	mismatched, ink := lumaMismatch(t, grey, rgba)
	assert.Zero(t, mismatched, "pixels whose luminance differs between the two")
	assert.Greater(t, ink, 200, "a drawing (dark pixels)")

	fromGrey, err := mnist.Preprocess(body, nil)
	require.NoError(t, err)
	fromRGBA, err := mnist.Preprocess(canvas, nil)
	require.NoError(t, err)
	assert.Equal(t, fromRGBA.Pix, fromGrey.Pix)
}

// dataURLBytes decodes a data:image/png;base64 URL.
// lumaMismatch counts the pixels of grey whose level is not color.GrayModel's
// of the same pixel of rgba (as large), and rgba's dark pixels (ink); it
// fails at a pixel of rgba that is not opaque.
func lumaMismatch(t *testing.T, grey *image.Gray, rgba image.Image) (mismatched, ink int) {
	t.Helper()
	b := rgba.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := rgba.At(x, y)
			_, _, _, a := c.RGBA()
			require.Equal(t, uint32(0xffff), a, "opaque at (%d,%d)", x, y)
			want := color.GrayModel.Convert(c).(color.Gray).Y
			if grey.GrayAt(x, y).Y != want {
				mismatched++
			}
			if want < 128 {
				ink++
			}
		}
	}
	return mismatched, ink
}

func dataURLBytes(t *testing.T, u string) []byte {
	t.Helper()
	const prefix = "data:image/png;base64,"
	require.True(t, len(u) > len(prefix) && u[:len(prefix)] == prefix, "a PNG data URL: %.60q", u)
	b, err := base64.StdEncoding.DecodeString(u[len(prefix):])
	require.NoError(t, err)
	return b
}
