package mnistweb_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
)

// postAs posts JSON as session and decodes the answer.
func postAs(t *testing.T, client *http.Client, url, session string, v any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: dadchttp.SessionCookie, Value: session})
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// shot saves a screenshot under $ADVSPACE_SHOTS (for people to look at; not
// committed), if set.
func shot(t *testing.T, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx2 context.Context) error {
		dir := os.Getenv("ADVSPACE_SHOTS")
		if dir == "" {
			return nil
		}
		var b []byte
		if err := chromedp.FullScreenshot(&b, 100).Do(ctx2); err != nil {
			return err
		}
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
	})
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	require.NoError(t, chromedp.Run(ctx, chromedp.Text(sel, &s, chromedp.ByQuery)))
	return strings.TrimSpace(s)
}

// TestBrowserConfirmValidateRetract drives the page at phone and desktop
// widths: a confident disagreement is asked about and confirmed, the
// person retracts it, validates (rejects) another session's sample, and sees
// the verified model error rate change each time; then the server goes away
// and the page says so and greys out what it shows.
func TestBrowserConfirmValidateRetract(t *testing.T) {
	for _, size := range []struct {
		name          string
		width, height int
	}{{"phone", 390, 844}, {"desktop", 1200, 1400}} {
		t.Run(size.name, func(t *testing.T) {
			ctx := newBrowser(t, size.width, size.height)
			vals, err := dadc.NewValidations(1, 10)
			require.NoError(t, err)
			f := newFixture(t, &fixtureOptions{model: browserModel(t), config: func(c *dadchttp.Options) {
				// Any disagreement with a model at least 20% sure is asked
				// about, so that the drawn digit surely triggers the dialog.
				c.ConfirmThreshold = 0.2
				c.Validation = &dadchttp.ValidationOptions{Validations: vals}
			}})
			srv := httptest.NewServer(f.space)
			closed := false
			defer func() {
				if !closed {
					_ = f.space.Close()
					srv.Close()
				}
			}()

			// Someone else flags a turned digit with a wrong label (confirmed).
			drawings, _ := rotatedDrawings(t, []float64{45})
			img := "data:image/png;base64," + base64.StdEncoding.EncodeToString(drawings[0])
			code, pred := postAs(t, srv.Client(), srv.URL+"/api/predict", "someone-else", map[string]any{"image": img})
			require.Equal(t, http.StatusOK, code, pred)
			modelSaid := int(pred["label"].(float64))
			wrong := (modelSaid + 1) % 10
			code, out := postAs(t, srv.Client(), srv.URL+"/api/flag", "someone-else", map[string]any{"image": img, "label": wrong, "confirm": true})
			require.Equal(t, http.StatusCreated, code, out)
			otherID := out["id"].(string)

			var problems pageProblems
			problems.listen(ctx)
			var box rect
			require.NoError(t, chromedp.Run(ctx,
				cdplog.Enable(), runtime.Enable(),
				chromedp.Navigate(srv.URL+"/"),
				chromedp.WaitVisible("#pad", chromedp.ByID),
				chromedp.Evaluate(`(function(){var r=document.getElementById('pad').getBoundingClientRect();return {x:r.x,y:r.y,width:r.width,height:r.height};})()`, &box),
			))
			at := func(fx, fy float64) [2]float64 { return [2]float64{box.X + fx*box.Width, box.Y + fy*box.Height} }
			var predicted string
			require.NoError(t, chromedp.Run(ctx,
				drawStroke([][2]float64{at(0.28, 0.22), at(0.72, 0.22), at(0.45, 0.82)}),
				chromedp.Poll(`document.getElementById('pred-label').textContent !== '?' && !document.getElementById('yes').disabled`, nil, chromedp.WithPollingTimeout(20*time.Second)),
				chromedp.Evaluate(`String(document.querySelector('#prob-bars li.top .digit').textContent)`, &predicted),
			))
			label, err := strconv.Atoi(predicted)
			require.NoError(t, err)
			// While drawing, the answer is in view above the canvas (on a phone too).
			var liveVisible bool
			require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`(function(){var r=document.getElementById('live').getBoundingClientRect();return r.bottom>0&&r.top<window.innerHeight&&document.getElementById('live').textContent.indexOf('Model')>=0||document.getElementById('live').textContent.indexOf('Unsure')>=0;})()`, &liveVisible)))
			assert.True(t, liveVisible, "the live answer is visible next to the canvas")

			correct := 7
			if label == 7 {
				correct = 1
			}
			var dialog string
			require.NoError(t, chromedp.Run(ctx,
				chromedp.Click(fmt.Sprintf("#digit-%d", correct), chromedp.ByID),
				chromedp.Click("#flag", chromedp.ByID),
				chromedp.Poll(`document.getElementById('confirm').open`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				chromedp.Text("#confirm-text", &dialog, chromedp.ByID),
				shot(t, size.name+"-1-confirm"),
			))
			assert.Regexp(t, fmt.Sprintf(`^The model is \d+%% sure this is a %d\. Is it really a %d\?$`, label, correct), strings.TrimSpace(dialog))
			assert.Equal(t, 1, f.loop.Stats().FlaggedTotal, "nothing stored before the person confirms")

			rate := func() string { return text(t, ctx, "#vmer") }
			require.NoError(t, chromedp.Run(ctx,
				chromedp.Click("#confirm-yes", chromedp.ByID),
				chromedp.Poll(`document.getElementById('result').textContent.indexOf('saved') >= 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				chromedp.Poll(`document.getElementById('vmer').textContent === '100.0%' && !document.getElementById('again').hidden`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				shot(t, size.name+"-2-saved"),
			))
			assert.Equal(t, 2, f.loop.Stats().FlaggedTotal)
			assert.Equal(t, "100.0%", rate())

			// Retract it: the verified rate drops to 1 of 2.
			require.NoError(t, chromedp.Run(ctx,
				chromedp.Click("#retract", chromedp.ByID),
				chromedp.Poll(`document.getElementById('result').textContent.indexOf('Retracted') === 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				chromedp.Poll(`document.getElementById('vmer').textContent === '50.0%'`, nil, chromedp.WithPollingTimeout(10*time.Second)),
			))

			// Validate the other person's drawing: it is not what they said.
			var question string
			require.NoError(t, chromedp.Run(ctx,
				chromedp.Poll(`!document.getElementById('val-item').hidden`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				chromedp.Text("#val-question", &question, chromedp.ByID),
				chromedp.ScrollIntoView("#val-question", chromedp.ByID),
				shot(t, size.name+"-3-validate"),
				chromedp.Click(fmt.Sprintf("#val-digit-%d", modelSaid), chromedp.ByID),
				chromedp.Poll(`document.getElementById('val-result').textContent.indexOf('rejected') >= 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				chromedp.Poll(`document.getElementById('vmer').textContent === '0.0%' && document.getElementById('mer').textContent === '100.0%'`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				chromedp.Poll(`document.getElementById('val-hint').textContent.indexOf('Nothing to check') === 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
				shot(t, size.name+"-4-validated"),
			))
			assert.Equal(t, fmt.Sprintf("Is this a %d?", wrong), strings.TrimSpace(question))
			st, ok := vals.State(otherID)
			require.True(t, ok)
			assert.Equal(t, dadc.StatusRejected, st.Status)
			assert.False(t, vals.Trainable(otherID))
			assert.Empty(t, problems.get(), "the page logged errors (a CSP violation, an exception, a failed request)")

			// The server goes away: the page says so and greys out the stale results.
			_ = f.space.Close()
			srv.Close()
			closed = true
			require.NoError(t, chromedp.Run(ctx,
				chromedp.Poll(`!document.getElementById('offline').hidden && document.body.classList.contains('stale')`, nil, chromedp.WithPollingTimeout(15*time.Second)),
				shot(t, size.name+"-5-offline"),
			))
		})
	}
}

// TestBrowserScreenshot builds the README's picture from honest data and
// checks what it shows: drawings from other people (digits turned by
// ±45-60°) flagged with their true digits, the fooling ones verified by a
// checker, one left for this page to check, a retrain whose decision the
// banner explains with numbers, and the page's own 7 answered truthfully.
// With ADVSPACE_SCREENSHOT=FILE the page is saved there.
func TestBrowserScreenshot(t *testing.T) {
	if testing.Short() {
		// It waits for a real retrain of the MNIST network, which takes
		// minutes under the race detector; `go test ./...` runs it.
		t.Skip("-short: skipping the screenshot test, which waits for a real retrain")
	}
	ctx := newBrowser(t, 1200, 1400)
	vals, err := dadc.NewValidations(1, 10)
	require.NoError(t, err)
	f := newFixture(t, &fixtureOptions{model: browserModel(t), cleanTest: testSubset(t).Examples(), config: func(c *dadchttp.Options) {
		c.ConfirmThreshold = dadchttp.DefaultConfirmThreshold
		c.Validation = &dadchttp.ValidationOptions{Validations: vals}
	}})
	srv := httptest.NewServer(f.space)
	defer func() {
		_ = f.space.Close()
		srv.Close()
	}()

	client := srv.Client()
	drawings, labels := rotatedDrawings(t, []float64{-60, -45, 45, 60})
	var stored []string
	for i, b := range drawings {
		img := "data:image/png;base64," + base64.StdEncoding.EncodeToString(b)
		code, out := postAs(t, client, srv.URL+"/api/flag", fmt.Sprint("person-", i%5), map[string]any{"image": img, "label": labels[i], "confirm": true})
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, code, out)
		if code == http.StatusCreated {
			stored = append(stored, out["id"].(string))
		}
	}
	require.GreaterOrEqual(t, len(stored), 3, "turned digits fool the model now and then")
	t.Logf("%d of %d turned digits fooled the model", len(stored), len(drawings))
	// The labels are true: a checker verifies all but the last.
	for _, id := range stored[:len(stored)-1] {
		code, out := postAs(t, client, srv.URL+"/api/validate", "checker", map[string]any{"id": id, "verdict": "correct"})
		require.Equal(t, http.StatusOK, code, out)
	}

	var problems pageProblems
	problems.listen(ctx)
	var box rect
	require.NoError(t, chromedp.Run(ctx,
		cdplog.Enable(), runtime.Enable(),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#pad", chromedp.ByID),
		chromedp.Poll(`document.getElementById('round').textContent === '0'`, nil, chromedp.WithPollingTimeout(10*time.Second)),
	))
	// A retrain on the verified samples, announced with its numbers.
	require.NoError(t, f.loop.Retrain(context.Background()))
	var banner string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Poll(`document.getElementById('notice').textContent.indexOf('Round 0:') === 0`, nil, chromedp.WithPollingTimeout(4*time.Minute)),
		chromedp.Text("#notice", &banner, chromedp.ByID),
		chromedp.Poll(`document.querySelectorAll('#chart-acc circle.promoted, #chart-acc g.rejected').length === 1`, nil, chromedp.WithPollingTimeout(10*time.Second)),
	))
	assert.Regexp(t, `(?i)clean accuracy \d+\.\d%.*the gate asks at least \d+\.\d%`, banner)
	require.Len(t, f.loop.Stats().Rounds, 2)

	// The page's own drawing, answered truthfully: Yes if the model is
	// right, else flagged as the 7 it is.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Evaluate(`(function(){var r=document.getElementById('pad').getBoundingClientRect();return {x:r.x,y:r.y,width:r.width,height:r.height};})()`, &box),
	))
	at := func(fx, fy float64) [2]float64 { return [2]float64{box.X + fx*box.Width, box.Y + fy*box.Height} }
	var predicted string
	require.NoError(t, chromedp.Run(ctx,
		drawStroke([][2]float64{at(0.28, 0.22), at(0.72, 0.22), at(0.45, 0.82)}),
		chromedp.Poll(`document.getElementById('pred-label').textContent !== '?' && !document.getElementById('yes').disabled`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate(`String(document.querySelector('#prob-bars li.top .digit').textContent)`, &predicted),
	))
	if predicted == "7" {
		require.NoError(t, chromedp.Run(ctx,
			chromedp.Click("#yes", chromedp.ByID),
			chromedp.Poll(`document.getElementById('result').textContent === 'the model got it right'`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		))
	} else {
		require.NoError(t, chromedp.Run(ctx,
			chromedp.Click("#digit-7", chromedp.ByID),
			chromedp.Click("#flag", chromedp.ByID),
			chromedp.Poll(`document.getElementById('confirm').open || document.getElementById('result').textContent.indexOf('saved') >= 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
			chromedp.Evaluate(`document.getElementById('confirm').open && document.getElementById('confirm-yes').click()`, nil),
			chromedp.Poll(`document.getElementById('result').textContent.indexOf('saved') >= 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		))
	}
	last := stored[len(stored)-1]
	lastLabel := -1
	if s, ok := vals.State(last); ok {
		require.Equal(t, dadc.StatusPending, s.Status)
	}
	for _, smp := range f.loop.Samples(0) {
		if smp.ID == last {
			lastLabel = smp.Label
		}
	}
	var question string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Poll(`!document.getElementById('after').hidden && !document.getElementById('val-item').hidden`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Text("#val-question", &question, chromedp.ByID),
		chromedp.Poll(`document.querySelectorAll('#gallery li').length > 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
	))
	assert.Equal(t, fmt.Sprintf("Is this a %d?", lastLabel), strings.TrimSpace(question))
	if path := os.Getenv("ADVSPACE_SCREENSHOT"); path != "" {
		var b []byte
		require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&b, 100)))
		require.NoError(t, os.WriteFile(path, b, 0o644))
		t.Logf("screenshot written to %s (%d bytes)", path, len(b))
	}
	assert.Empty(t, problems.get(), "the page logged errors (a CSP violation, an exception, a failed request)")
}

// tieModel is 49.4% sure of a 4 and 48.1% of a 9, whatever it sees.
type tieModel struct{}

func (tieModel) Version() string { return "tie-v0" }
func (tieModel) Predict(context.Context, *image.Gray) (dadc.Prediction, error) {
	p := []float64{0.003, 0.003, 0.003, 0.003, 0.494, 0.003, 0.003, 0.003, 0.004, 0.481}
	return dadc.Prediction{Label: 4, Probabilities: p, ModelVersion: "tie-v0"}, nil
}

// A near tie is shown as uncertain, with the top two and their probabilities.
func TestBrowserNearTie(t *testing.T) {
	ctx := newBrowser(t, 390, 844)
	f := newFixture(t, &fixtureOptions{model: tieModel{}})
	srv := httptest.NewServer(f.space)
	defer func() {
		_ = f.space.Close()
		srv.Close()
	}()
	var problems pageProblems
	problems.listen(ctx)
	var box rect
	require.NoError(t, chromedp.Run(ctx,
		cdplog.Enable(), runtime.Enable(),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#pad", chromedp.ByID),
		chromedp.Evaluate(`(function(){var r=document.getElementById('pad').getBoundingClientRect();return {x:r.x,y:r.y,width:r.width,height:r.height};})()`, &box),
	))
	at := func(fx, fy float64) [2]float64 { return [2]float64{box.X + fx*box.Width, box.Y + fy*box.Height} }
	var big, live, hint string
	var unsure bool
	require.NoError(t, chromedp.Run(ctx,
		drawStroke([][2]float64{at(0.3, 0.3), at(0.6, 0.7)}),
		chromedp.Poll(`document.getElementById('pred-label').textContent !== '?'`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Text("#pred-label", &big, chromedp.ByID),
		chromedp.Text("#live", &live, chromedp.ByID),
		chromedp.Text("#pred-hint", &hint, chromedp.ByID),
		chromedp.Evaluate(`document.getElementById('pred-label').classList.contains('unsure')`, &unsure),
		shot(t, "phone-6-near-tie"),
	))
	assert.Equal(t, "4/9", strings.TrimSpace(big))
	assert.True(t, unsure)
	assert.Equal(t, "Unsure: 4 (49.4%) or 9 (48.1%).", strings.TrimSpace(live))
	assert.Contains(t, hint, "cannot decide")
	assert.Empty(t, problems.get())
}
