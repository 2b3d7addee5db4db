package mnistweb_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
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
