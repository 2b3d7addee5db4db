package mnistweb_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist"
)

// findBrowser returns the Chromium/Chrome to drive: $CHROME_PATH, else the
// usual names on PATH. With ADVSPACE_REQUIRE_BROWSER=1 (set by CI) a missing
// browser fails the test instead of skipping it.
func findBrowser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_PATH"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CHROME_PATH=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium or Chrome found (set CHROME_PATH, or apt-get install chromium)"
	if os.Getenv("ADVSPACE_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "; ADVSPACE_REQUIRE_BROWSER=1 requires the browser test to run")
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless browser for one test and returns its context.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after the browser exits, which would fail the
	// test in TempDir's cleanup. It is removed with retries below.
	profile, err := os.MkdirTemp("", "advspace-chromium-")
	require.NoError(t, err)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(findBrowser(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc() // kills the browser and waits for it
		for range 50 {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the browser profile %s", profile)
	})
	return ctx
}

// pageProblems collects what the page reports as broken: uncaught
// exceptions and console/log errors (a CSP violation is one).
type pageProblems struct {
	mu   sync.Mutex
	list []string
}

func (p *pageProblems) listen(ctx context.Context) {
	chromedp.ListenTarget(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			p.list = append(p.list, "exception: "+e.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				p.list = append(p.list, "console.error: "+strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.LevelError {
				p.list = append(p.list, fmt.Sprintf("log %s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		}
	})
}

func (p *pageProblems) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.list...)
}

// drawStroke drags the mouse through points (page CSS pixels) with the left
// button held, in small steps, like a person drawing.
func drawStroke(points [][2]float64) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		x, y := points[0][0], points[0][1]
		if err := input.DispatchMouseEvent(input.MouseMoved, x, y).Do(ctx); err != nil {
			return err
		}
		if err := input.DispatchMouseEvent(input.MousePressed, x, y).WithButton(input.Left).WithButtons(1).WithClickCount(1).Do(ctx); err != nil {
			return err
		}
		for _, p := range points[1:] {
			const steps = 12
			for i := 1; i <= steps; i++ {
				nx := x + (p[0]-x)*float64(i)/steps
				ny := y + (p[1]-y)*float64(i)/steps
				if err := input.DispatchMouseEvent(input.MouseMoved, nx, ny).WithButton(input.Left).WithButtons(1).Do(ctx); err != nil {
					return err
				}
			}
			x, y = p[0], p[1]
		}
		return input.DispatchMouseEvent(input.MouseReleased, x, y).WithButton(input.Left).WithButtons(0).WithClickCount(1).Do(ctx)
	})
}

type rect struct{ X, Y, Width, Height float64 }

// TestBrowserDrawAndFlag drives the real page in headless Chromium: draw a
// digit with the mouse, wait for the prediction, pick another digit, press
// Flag, and find the sample in the store and the count on the page.
func TestBrowserDrawAndFlag(t *testing.T) {
	ctx := newBrowser(t, 1100, 1300)
	f := newFixture(t, &fixtureOptions{model: browserModel(t), cleanTest: testSubset(t).Examples()})
	srv := httptest.NewServer(f.space)
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
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#pad", chromedp.ByID),
		chromedp.Evaluate(`(function(){var r=document.getElementById('pad').getBoundingClientRect();return {x:r.x,y:r.y,width:r.width,height:r.height};})()`, &box),
	))
	require.Greater(t, box.Width, 100.0, "canvas laid out")

	at := func(fx, fy float64) [2]float64 { return [2]float64{box.X + fx*box.Width, box.Y + fy*box.Height} }
	var predicted, hint string
	require.NoError(t, chromedp.Run(ctx,
		// A 7: the top bar, then the long diagonal.
		drawStroke([][2]float64{at(0.28, 0.22), at(0.72, 0.22), at(0.45, 0.82)}),
		chromedp.Poll(`document.getElementById('pred-label').textContent !== '?' && !document.getElementById('yes').disabled`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Text("#pred-label", &predicted, chromedp.ByID),
		chromedp.Text("#pred-hint", &hint, chromedp.ByID),
	))
	label, err := strconv.Atoi(strings.TrimSpace(predicted))
	require.NoError(t, err, "prediction shown: %q (%s)", predicted, hint)
	var seenSrc string
	var seenOK bool
	require.NoError(t, chromedp.Run(ctx, chromedp.AttributeValue("#pred-input", "src", &seenSrc, &seenOK, chromedp.ByID)))
	assert.True(t, strings.HasPrefix(seenSrc, "data:image/png;base64,"), "the 28x28 the model saw is shown")

	// The person says it is another digit: the model was fooled. (We drew
	// a 7, so that is the truth unless the model said 7.)
	correct := 7
	if label == 7 {
		correct = 1
	}
	var result, count string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click(fmt.Sprintf("#digit-%d", correct), chromedp.ByID),
		chromedp.Poll(`!document.getElementById('flag').disabled`, nil, chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.Click("#flag", chromedp.ByID),
		chromedp.Poll(`document.getElementById('result').textContent.indexOf('saved') >= 0`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Text("#result", &result, chromedp.ByID),
		chromedp.Text("#count", &count, chromedp.ByID),
		// The dashboard catches up: the gallery shows the sample.
		chromedp.Poll(`document.querySelectorAll('#gallery li').length === 1`, nil, chromedp.WithPollingTimeout(20*time.Second)),
	))
	assert.Equal(t, "✔ (1) saved — you fooled the model", strings.TrimSpace(result))
	assert.Equal(t, "1", strings.TrimSpace(count))

	rows, pngs := f.stored()
	require.Len(t, rows, 1, "the flag is in metadata.jsonl")
	require.Len(t, pngs, 1)
	assert.Equal(t, correct, rows[0].Label)
	assert.Equal(t, label, rows[0].ModelLabel)
	assert.Equal(t, rows[0].FileName, filepath.Base(pngs[0]))
	assert.Regexp(t, `^[0-9a-f]{32}$`, rows[0].Session, "the page's anonymous session cookie is stored")

	// The same drawing cannot be flagged twice by accident.
	var flagDisabled bool
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('flag').disabled && document.getElementById('yes').disabled`, &flagDisabled)))
	assert.True(t, flagDisabled)

	assert.Empty(t, problems.get(), "the page logged errors (a CSP violation, an exception, a failed request)")
}

// TestBrowserYesAndUndo checks the other controls: Undo and Clear change the
// drawing, and "Yes" records an attempt that stores nothing.
func TestBrowserYesAndUndo(t *testing.T) {
	ctx := newBrowser(t, 420, 900) // a phone-sized window: the canvas scales to the width
	f := newFixture(t, &fixtureOptions{model: browserModel(t)})
	srv := httptest.NewServer(f.space)
	defer func() {
		_ = f.space.Close() // ends the page's event stream, which would hold srv.Close up
		srv.Close()
	}()
	var problems pageProblems
	problems.listen(ctx)

	var box rect
	var scrollWidth, innerWidth float64
	require.NoError(t, chromedp.Run(ctx,
		cdplog.Enable(),
		runtime.Enable(),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#pad", chromedp.ByID),
		chromedp.Evaluate(`(function(){var r=document.getElementById('pad').getBoundingClientRect();return {x:r.x,y:r.y,width:r.width,height:r.height};})()`, &box),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollWidth),
		chromedp.Evaluate(`window.innerWidth`, &innerWidth),
	))
	assert.LessOrEqual(t, box.X+box.Width, innerWidth, "canvas fits a phone-width window")
	assert.LessOrEqual(t, scrollWidth, innerWidth, "no horizontal scrolling on a phone")

	at := func(fx, fy float64) [2]float64 { return [2]float64{box.X + fx*box.Width, box.Y + fy*box.Height} }
	var undoDisabled, clearDisabled bool
	require.NoError(t, chromedp.Run(ctx,
		drawStroke([][2]float64{at(0.5, 0.15), at(0.5, 0.85)}),
		drawStroke([][2]float64{at(0.2, 0.5), at(0.8, 0.5)}),
		chromedp.Click("#undo", chromedp.ByID),
		chromedp.Poll(`document.getElementById('pred-label').textContent !== '?' && !document.getElementById('yes').disabled`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Click("#yes", chromedp.ByID),
		chromedp.Poll(`document.getElementById('result').textContent === 'the model got it right'`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Click("#clear", chromedp.ByID),
		chromedp.Poll(`document.getElementById('pred-label').textContent === '?'`, nil, chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.Evaluate(`document.getElementById('undo').disabled`, &undoDisabled),
		chromedp.Evaluate(`document.getElementById('clear').disabled`, &clearDisabled),
	))
	assert.True(t, undoDisabled)
	assert.True(t, clearDisabled)
	rows, pngs := f.stored()
	assert.Empty(t, rows, "Yes stores nothing")
	assert.Empty(t, pngs)
	assert.Equal(t, 1, f.loop.Stats().Attempts, "Yes counts an attempt")
	assert.Empty(t, problems.get())
}

// browserModel is the model behind the browser tests: the real pretrained
// MNIST network, as served by the app, replaying the testdata subset when
// it retrains.
func browserModel(t *testing.T) dadc.Model[*image.Gray] {
	t.Helper()
	w, err := mnist.Pretrained()
	require.NoError(t, err)
	train, _, err := mnist.LoadDataDir(filepath.Join("..", "..", "testdata", "mnist"))
	require.NoError(t, err)
	m, err := mnist.NewModel(w, &mnist.ModelOptions{Replay: train})
	require.NoError(t, err)
	return m
}

// testSubset is the MNIST test subset in testdata (the retrain gate's clean set).
func testSubset(t *testing.T) *mnist.Dataset {
	t.Helper()
	_, test, err := mnist.LoadDataDir(filepath.Join("..", "..", "testdata", "mnist"))
	require.NoError(t, err)
	return test
}

// rotatedDrawings are the testdata digits turned by each of the angles (in
// degrees), drawn as the page sends them (84x84, dark ink on white), with
// their true digits. Turned digits fool an MNIST model now and then: honest
// adversarial samples for the screenshot's dashboard.
func rotatedDrawings(t *testing.T, angles []float64) (drawings [][]byte, labels []int) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "digits", "*.png"))
	require.NoError(t, err)
	for _, p := range paths {
		label, err := strconv.Atoi(strings.SplitN(filepath.Base(p), "-", 2)[0])
		require.NoError(t, err)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		src, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err)
		for _, deg := range angles {
			sin, cos := math.Sincos(deg * math.Pi / 180)
			dst := image.NewRGBA(image.Rect(0, 0, 84, 84))
			for y := range 84 {
				for x := range 84 {
					// Inverse rotation about the centre, then 3x down to the 28x28.
					dx, dy := float64(x)-41.5, float64(y)-41.5
					sx := (cos*dx+sin*dy)/3 + 14
					sy := (-sin*dx+cos*dy)/3 + 14
					v := uint8(255)
					if sx >= 0 && sy >= 0 && sx < 28 && sy < 28 {
						g := color.GrayModel.Convert(src.At(int(sx), int(sy))).(color.Gray)
						v = 255 - g.Y
					}
					dst.Set(x, y, color.RGBA{v, v, v, 255})
				}
			}
			drawings = append(drawings, pngBytes(t, dst))
			labels = append(labels, label)
		}
	}
	return drawings, labels
}
