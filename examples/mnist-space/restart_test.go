package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/mnistdata"
)

// rangeOf is the indices lo, lo+1, …, hi−1.
func rangeOf(lo, hi int) []int {
	r := make([]int, hi-lo)
	for i := range r {
		r[i] = lo + i
	}
	return r
}

// childArgsEnv, when set in the environment of the test binary, makes it run
// the program itself (with these JSON-encoded arguments) instead of the
// tests: the restart test's child process, which it kills with SIGKILL.
const childArgsEnv = "MNIST_SPACE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(childArgsEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, "bad", childArgsEnv, err)
			os.Exit(2)
		}
		// The URL goes to stdout, on one line, for the parent to read.
		os.Exit(run(context.Background(), args, os.Getenv, os.Stderr, func(url string) { fmt.Println(url) }))
	}
	os.Exit(m.Run())
}

// startChild runs the program in a child process (this test binary, see
// TestMain) and returns it with its URL once it listens.
func startChild(t *testing.T, args []string) (*exec.Cmd, string, *lockedBuffer) {
	t.Helper()
	b, err := json.Marshal(append([]string{"-addr", "127.0.0.1:0"}, args...))
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(b))
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "http://") {
				urls <- sc.Text()
			}
		}
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		require.True(t, ok, "the child exited before listening:\n%s", stderr.String())
		return cmd, u, stderr
	case <-time.After(60 * time.Second):
		t.Fatalf("the child is not listening after 60 s:\n%s", stderr.String())
		return nil, "", nil
	}
}

// thickPNG is MNIST digit i of ds with its strokes thickened by 2 pixels
// and squashed sideways to 70% (bilinear), as a white-on-black 28×28 PNG: a
// drawing the model often gets wrong.
func thickPNG(t *testing.T, ds *mnist.Dataset, i int) string {
	t.Helper()
	src := dilate(dilate(ds.Pixels(i)))
	g := image.NewGray(image.Rect(0, 0, mnist.Side, mnist.Side))
	const mid = (mnist.Side - 1) / 2.0
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= mnist.Side || y >= mnist.Side {
			return 0
		}
		return float64(src[y*mnist.Side+x])
	}
	for y := range mnist.Side {
		for x := range mnist.Side {
			sx := (float64(x)-mid)/0.7 + mid
			x0 := int(math.Floor(sx))
			fx := sx - float64(x0)
			g.Pix[y*mnist.Side+x] = uint8(math.Round((1-fx)*at(x0, y) + fx*at(x0+1, y)))
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, g))
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}

// dilate is a 3×3 grey-level dilation (each pixel the maximum of its neighbours).
func dilate(src []uint8) []uint8 {
	out := make([]uint8, len(src))
	for y := range mnist.Side {
		for x := range mnist.Side {
			var m uint8
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					if xx, yy := x+dx, y+dy; xx >= 0 && yy >= 0 && xx < mnist.Side && yy < mnist.Side {
						m = max(m, src[yy*mnist.Side+xx])
					}
				}
			}
			out[y*mnist.Side+x] = m
		}
	}
	return out
}

type drawing struct {
	url   string
	label int
}

// foolingDrawings returns n thick, squashed MNIST training digits that fool
// the model serving at base (found with /api/predict, which is not rate
// limited), and that model's version.
func foolingDrawings(t *testing.T, base, mnistDir string, n int) ([]drawing, string) {
	t.Helper()
	train, _, err := mnist.LoadDataDir(mnistDir)
	require.NoError(t, err)
	train = train.Subset(rangeOf(45000, 60000))
	var fooling []drawing
	version := ""
	for i := 0; len(fooling) < n && i < train.Len(); i++ {
		u := thickPNG(t, train, i)
		got, v := predictLabel(t, base, u)
		version = v
		if got != int(train.Labels[i]) {
			fooling = append(fooling, drawing{u, int(train.Labels[i])})
		}
	}
	require.Len(t, fooling, n, "enough thick digits fool the model")
	return fooling, version
}

// watchRetrains opens the event stream of the program at base and returns a
// channel that receives the kind of the first retrain decision
// (model_promoted, model_rejected or retrain_failed), or "" if the stream
// ends first.
func watchRetrains(t *testing.T, base string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"api/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	out := make(chan string, 1)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev struct {
				Kind string `json:"kind"`
			}
			if json.Unmarshal([]byte(line), &ev) != nil {
				continue
			}
			switch ev.Kind {
			case "model_promoted", "model_rejected", "retrain_failed":
				out <- ev.Kind
				return
			}
		}
	}()
	return out
}

// predictLabel asks the server's /api/predict for the digit of a data URL.
func predictLabel(t *testing.T, base, dataURL string) (label int, version string) {
	t.Helper()
	code, out := postJSON(t, base+"api/predict", map[string]any{"image": dataURL})
	require.Equal(t, http.StatusOK, code, out)
	return int(out["label"].(float64)), out["model_version"].(string)
}

// flagFrom posts a flag as the client at ip (through the trusted proxy
// 127.0.0.1), so that the per-client flag rate limit does not slow the test,
// and requires that it is stored.
func flagFrom(t *testing.T, base, ip, dataURL string, label int) map[string]any {
	t.Helper()
	code, out := flagStatus(t, base, ip, dataURL, label)
	require.Equal(t, http.StatusCreated, code, out)
	return out
}

// flagStatus posts a flag as the client at ip and returns the status and answer.
func flagStatus(t *testing.T, base, ip, dataURL string, label int) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"image": dataURL, "label": label, "confirm": true})
	require.NoError(t, err)
	req, err := http.NewRequest("POST", base+"api/flag", bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// statsRaw is /api/stats decoded as JSON values, to compare whole answers.
func statsRaw(t *testing.T, base string) map[string]any {
	t.Helper()
	resp, err := http.Get(base + "api/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// The app-level restart test (issue 9): the real program, in a child
// process, is flagged enough thick, squashed digits that the gate promotes a
// retrained model; it is killed with SIGKILL (no shutdown, nothing flushed on
// the way out); a restart on the same data folder serves the same version,
// /api/stats shows the same rounds, decisions and counts, and the promoted
// model still gets the flagged drawings right.
func TestRunRestartAfterSIGKILLKeepsThePromotedModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds, retrains and restarts the real program (about 30 s on 2 busy cores); run without -short")
	}
	// The full MNIST set: with the 1,000 test images of the small subset the
	// gate's clean budget (0.3 points) is 3 images, and replaying its 2,000
	// training images loses more than that.
	const flags = 60
	data := t.TempDir()
	mnistDir, err := mnistdata.Dir(t.Context())
	require.NoError(t, err)
	args := []string{"-data", data, "-mnist-dir", mnistDir, "-retrain-every", fmt.Sprint(flags),
		"-validations", "0", "-confirm-threshold", "2", "-trust-proxy", "127.0.0.1"}
	cmd, base, childErr := startChild(t, args)

	fooling, version0 := foolingDrawings(t, base, mnistDir, flags)

	// Watch the event stream, then flag: the last flag starts the retrain.
	events := watchRetrains(t, base)
	for k, d := range fooling {
		out := flagFrom(t, base, fmt.Sprintf("10.0.%d.%d", k/200, k%200+1), d.url, d.label)
		require.Equal(t, true, out["fooled"], out)
	}
	decided := <-events
	require.Equal(t, "model_promoted", decided, "%s", childErr.String())
	before := statsRaw(t, base)
	require.NotEqual(t, version0, before["model_version"], "a new model serves")
	require.EqualValues(t, 1, before["round"])

	// The crash: SIGKILL, no shutdown.
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	require.Equal(t, "signal: killed", exitErr.Error())

	p := start(t, args, nil)
	after := statsRaw(t, p.url)
	for _, k := range []string{"model_version", "round", "flagged_total", "attempts", "model_error_rate", "per_label",
		"training_pool", "held_out", "reference_clean_accuracy", "rounds"} {
		assert.Equal(t, before[k], after[k], "/api/stats %q after the restart", k)
	}
	right := 0
	for _, d := range fooling {
		got, v := predictLabel(t, p.url, d.url)
		require.Equal(t, before["model_version"], v)
		if got == d.label {
			right++
		}
	}
	// Every fifth flag is held out; the others trained the promoted model.
	assert.GreaterOrEqual(t, right, flags*8/10, "the promoted model gets %d of the %d flagged drawings right (the embedded model none)", right, flags)
	t.Logf("after the restart: %s serves; %d/%d flagged drawings right", after["model_version"], right, flags)
	require.Equal(t, 0, p.stop(t), p.stderr.String())
}

// TestFlagLatencyDuringRetrain measures /api/flag of the real program while
// a real retrain (the default recipe, full MNIST replay) runs: flags at 25/s,
// each one stored and fsynced before it is answered, until the retrain
// decides; it checks p99 ≤ 50 ms (issue 9). A measurement on the machine at
// hand, so it runs only with ADVSPACE_LOAD=1:
//
//	ADVSPACE_LOAD=1 go test -run TestFlagLatencyDuringRetrain -v ./examples/mnist-space
func TestFlagLatencyDuringRetrain(t *testing.T) {
	if os.Getenv("ADVSPACE_LOAD") != "1" {
		t.Skip("latency measurement: set ADVSPACE_LOAD=1 to run it")
	}
	const flags = 60
	mnistDir, err := mnistdata.Dir(t.Context())
	require.NoError(t, err)
	p := start(t, []string{"-data", t.TempDir(), "-mnist-dir", mnistDir, "-retrain-every", fmt.Sprint(flags),
		"-validations", "0", "-confirm-threshold", "2", "-trust-proxy", "127.0.0.1"}, nil)
	fooling, _ := foolingDrawings(t, p.url, mnistDir, flags+1000)
	events := watchRetrains(t, p.url)
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	// The baseline: the flags before the retrain, at the same rate; the
	// last one starts the retrain.
	var calm []time.Duration
	for k, d := range fooling[:flags] {
		<-tick.C
		t0 := time.Now()
		flagFrom(t, p.url, fmt.Sprintf("10.0.%d.%d", k/200, k%200+1), d.url, d.label)
		calm = append(calm, time.Since(t0))
	}
	var lat []time.Duration
	decided := ""
	for k := flags; decided == "" && k < len(fooling); k++ {
		select {
		case decided = <-events:
			continue
		case <-tick.C:
		}
		t0 := time.Now()
		code, out := flagStatus(t, p.url, fmt.Sprintf("10.1.%d.%d", k/200, k%200+1), fooling[k].url, fooling[k].label)
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, code, out) // 200: a promoted model got it right
		if out["retraining"] == true {
			lat = append(lat, time.Since(t0))
		}
	}
	require.NotEmpty(t, decided, "the retrain decided before the drawings ran out")
	require.GreaterOrEqual(t, len(lat), 20, "enough flags landed while the retrain ran")
	pct := func(d []time.Duration, q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	slices.Sort(calm)
	slices.Sort(lat)
	t.Logf("flag, no retrain: %d flags at 25/s, p50 %s, p99 %s, max %s", len(calm), pct(calm, 0.5), pct(calm, 0.99), calm[len(calm)-1])
	t.Logf("flag during a retrain (%s): %d flags at 25/s, p50 %s, p99 %s, max %s", decided, len(lat), pct(lat, 0.5), pct(lat, 0.99), lat[len(lat)-1])
	assert.LessOrEqual(t, pct(lat, 0.99), 50*time.Millisecond, "flag p99 during a retrain")
}
