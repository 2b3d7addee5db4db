package mnistweb_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/flag"
	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/mnistweb"
)

// TestLoad is the load benchmark of the web app: the real pretrained model,
// a real flag.Dir, a real Loop, HTTP over loopback (127.0.0.1 only), a Go
// load generator in the same process. It runs only with ADVSPACE_LOAD=1:
//
//	ADVSPACE_LOAD=1 go test -run TestLoad -v -timeout 10m ./mnist/mnistweb
//
// ADVSPACE_LOAD_SECONDS (default 10) sets the length of the sustained phase,
// ADVSPACE_LOAD_RATE (default 1000) its request rate. It measures and checks:
//   - saturation throughput of /api/predict (closed loop, 8 workers);
//   - /api/predict at a fixed arrival rate (open loop, so that a slow answer
//     cannot hold the next request back and hide latency): achieved rate,
//     p50 and p99 against the targets ≥ 1,000/s and p99 ≤ 25 ms;
//   - resident memory (VmRSS) before and after the sustained phase: flat;
//   - /api/flag latency while a real retrain (fine-tuning on 2 cores) runs:
//     p99 ≤ 50 ms.
func TestLoad(t *testing.T) {
	if os.Getenv("ADVSPACE_LOAD") != "1" {
		t.Skip("load benchmark: set ADVSPACE_LOAD=1 to run it (takes about a minute)")
	}
	seconds := envInt(t, "ADVSPACE_LOAD_SECONDS", 10)
	targetRate := envInt(t, "ADVSPACE_LOAD_RATE", 1000)

	w, err := mnist.Pretrained()
	require.NoError(t, err)
	train, test, err := mnist.LoadDataDir(filepath.Join("..", "..", "testdata", "mnist"))
	require.NoError(t, err)
	model, err := mnist.NewModel(w, &mnist.ModelOptions{Replay: train})
	require.NoError(t, err)
	root := t.TempDir()
	dir, err := flag.NewDir(root, flag.GrayPNG(), nil)
	require.NoError(t, err)
	loop, err := dadc.NewLoop(model, dadc.Flagger[*image.Gray](dir), dadc.Manual(), 10, &dadc.Options[*image.Gray]{CleanTest: test.Examples()})
	require.NoError(t, err)
	sp, err := mnistweb.New(loop, &mnistweb.Options{HTTP: &dadchttp.Options{FlagRate: rate.Inf}})
	require.NoError(t, err)
	srv := httptest.NewServer(sp) // 127.0.0.1:0
	defer func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		assert.NoError(t, loop.Close(ctx))
	}()

	bodies := digitDrawings(t)
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}, Timeout: 10 * time.Second}
	predict := func(i int) error {
		resp, err := client.Post(srv.URL+"/api/predict", "image/png", bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	t.Logf("machine: GOMAXPROCS=%d NumCPU=%d, model %s", runtime.GOMAXPROCS(0), runtime.NumCPU(), model.Version())

	closedLoop(t, 4, 2*time.Second, predict) // warm-up: connections, pools, page cache
	cpuBefore := cpuTime(t)
	sat := closedLoop(t, 8, 5*time.Second, predict)
	cpuPerRequest := (cpuTime(t) - cpuBefore) / time.Duration(max(len(sat.lat), 1))
	t.Logf("predict, saturation (8 workers, 5 s): %.0f req/s, p50 %s, p99 %s, errors %d", sat.rate, sat.p(50), sat.p(99), sat.errors)
	t.Logf("CPU time per predict (server and load generator together): %s; on %d otherwise idle cores that allows about %.0f req/s",
		cpuPerRequest.Round(time.Microsecond), runtime.GOMAXPROCS(0), float64(runtime.GOMAXPROCS(0))*float64(time.Second)/float64(cpuPerRequest))

	// Resident memory is sampled once the sustained phase has settled (after
	// a quarter of it) and at its end: the second must not have grown.
	runtime.GC()
	rssBefore := vmRSS(t)
	var rssStart int64
	settle := time.AfterFunc(time.Duration(seconds)*time.Second/4, func() { rssStart = vmRSS(t) })
	sustained := openLoop(t, float64(targetRate), time.Duration(seconds)*time.Second, predict)
	settle.Stop()
	rssEnd := vmRSS(t)
	t.Logf("predict, open loop at %d/s for %d s: achieved %.0f req/s, p50 %s, p99 %s, max %s, errors %d, late starts %d",
		targetRate, seconds, sustained.rate, sustained.p(50), sustained.p(99), sustained.max(), sustained.errors, sustained.dropped)
	t.Logf("resident memory: %.1f MiB before the sustained phase, %.1f MiB a quarter into it, %.1f MiB at its end",
		float64(rssBefore)/(1<<20), float64(rssStart)/(1<<20), float64(rssEnd)/(1<<20))

	// Flags while a retrain runs: store some fooling samples, start a retrain,
	// and flag at a steady 25/s (plus predictions at 200/s) until it ends.
	for i := range 12 {
		code, res := flagOnce(t, client, srv.URL, bodies[i%len(bodies)], -1)
		require.Equal(t, http.StatusCreated, code, res)
	}
	predicted := make([]int, len(bodies))
	for i, b := range bodies {
		p, err := loop.Predict(context.Background(), mustPreprocess(t, b))
		require.NoError(t, err)
		predicted[i] = p.Label
	}
	// The baseline: flags at 25/s with no retrain running (each one is
	// written and fsynced before it is acknowledged).
	calm := openLoop(t, 25, 4*time.Second, func(i int) error {
		code, res := flagOnce(t, client, srv.URL, uniqueBody(t, bodies[i%len(bodies)], i), (predicted[i%len(bodies)]+1)%10)
		if code != http.StatusCreated {
			return fmt.Errorf("flag: %d %v", code, res)
		}
		return nil
	})
	t.Logf("flag, no retrain (25/s for 4 s): p50 %s, p99 %s, max %s, errors %d", calm.p(50), calm.p(99), calm.max(), calm.errors)
	require.NoError(t, loop.Retrain(context.Background()))
	var during []time.Duration
	var duringMu sync.Mutex
	stopPredict := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopPredict:
				return
			case <-tick.C:
				bg.Go(func() { _ = predict(i) })
			}
		}
	})
	tick := time.NewTicker(40 * time.Millisecond)
	deadline := time.Now().Add(60 * time.Second)
	var inflight sync.WaitGroup
	for i := 0; time.Now().Before(deadline) && loop.Stats().Retraining; i++ {
		<-tick.C
		inflight.Go(func() {
			// The label the model gives this drawing, plus one: a fooling flag
			// (unless a promotion changes the model in between: then 200).
			label := (predicted[i%len(bodies)] + 1) % 10
			start := time.Now()
			code, res := flagOnce(t, client, srv.URL, uniqueBody(t, bodies[i%len(bodies)], 100_000+i), label)
			d := time.Since(start)
			if assert.Contains(t, []int{http.StatusCreated, http.StatusOK}, code, res) && res["retraining"] == true {
				duringMu.Lock()
				during = append(during, d)
				duringMu.Unlock()
			}
		})
	}
	tick.Stop()
	inflight.Wait()
	close(stopPredict)
	bg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, loop.WaitIdle(ctx))
	st := loop.Stats()
	// The round whose retrain ran: the last one with a retrain recorded (a
	// promotion opens a new, empty round after it).
	require.NotEmpty(t, st.Rounds)
	last := st.Rounds[len(st.Rounds)-1]
	for i := len(st.Rounds) - 1; i >= 0; i-- {
		if len(st.Rounds[i].Retrains) > 0 {
			last = st.Rounds[i]
			break
		}
	}
	flags := summarize(during, 0, 0, 0)
	t.Logf("flag during retrain: %d flags, p50 %s, p99 %s, max %s; retrain of round %d: promoted=%v clean=%v adversarial=%v error=%q",
		len(during), flags.p(50), flags.p(99), flags.max(), last.Round, last.Promoted, fmtAcc(last.CleanAccuracy), fmtAcc(last.AdversarialAccuracy), last.Error)

	rows, err := filepath.Glob(filepath.Join(root, "data", "*", "metadata.jsonl"))
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, st.FlaggedTotal, countLines(t, rows[0]), "every acknowledged flag is stored once")

	assert.Zero(t, sat.errors+sustained.errors, "no request failed")
	assert.GreaterOrEqual(t, sustained.rate, 0.97*float64(targetRate), "achieved rate")
	assert.LessOrEqual(t, sustained.p(99), 25*time.Millisecond, "predict p99")
	assert.GreaterOrEqual(t, len(during), 20, "enough flags landed while the retrain ran")
	assert.LessOrEqual(t, flags.p(99), 50*time.Millisecond, "flag p99 during a retrain")
	assert.LessOrEqual(t, float64(rssEnd), 1.10*float64(rssStart)+8<<20, "resident memory stays flat under sustained load")
}

func fmtAcc(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", *p)
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	require.Positive(t, n, name)
	return n
}

// digitDrawings turns the MNIST digits of testdata/digits into what the page
// sends: 84x84 PNGs, dark ink on white.
// uniqueBody returns the PNG drawing b with a text chunk naming n before
// its end: the same pixels in other bytes. The server answers a body it saw
// from the same client within a minute with its first answer (a retry, not
// a new flag), so a load test that means new flags sends new bodies.
func uniqueBody(t *testing.T, b []byte, n int) []byte {
	t.Helper()
	const iend = 12 // the IEND chunk: length, type, CRC
	require.True(t, bytes.HasSuffix(b[:len(b)-4], []byte("IEND")), "a PNG ending with IEND")
	text := []byte("Comment\x00flag " + strconv.Itoa(n))
	var chunk bytes.Buffer
	require.NoError(t, binary.Write(&chunk, binary.BigEndian, uint32(len(text))))
	chunk.WriteString("tEXt")
	chunk.Write(text)
	require.NoError(t, binary.Write(&chunk, binary.BigEndian, crc32.ChecksumIEEE(append([]byte("tEXt"), text...))))
	out := append([]byte{}, b[:len(b)-iend]...)
	out = append(out, chunk.Bytes()...)
	return append(out, b[len(b)-iend:]...)
}

func digitDrawings(t *testing.T) [][]byte {
	t.Helper()
	drawings, _ := labelledDigitDrawings(t)
	return drawings
}

// labelledDigitDrawings is digitDrawings with each drawing's true digit
// (from the file name, <digit>-<index>.png).
func labelledDigitDrawings(t *testing.T) (drawings [][]byte, labels []int) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "digits", "*.png"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, p := range paths {
		label, err := strconv.Atoi(strings.SplitN(filepath.Base(p), "-", 2)[0])
		require.NoError(t, err, p)
		labels = append(labels, label)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		src, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err)
		dst := image.NewRGBA(image.Rect(0, 0, 84, 84))
		for y := range 84 {
			for x := range 84 {
				g := color.GrayModel.Convert(src.At(src.Bounds().Min.X+x/3, src.Bounds().Min.Y+y/3)).(color.Gray)
				v := 255 - g.Y
				dst.Set(x, y, color.RGBA{v, v, v, 255})
			}
		}
		drawings = append(drawings, pngBytes(t, dst))
	}
	return drawings, labels
}

// flagOnce flags a drawing with a label the model does not give it (label <
// 0: chosen by asking the model first) and returns the status and answer.
func flagOnce(t *testing.T, client *http.Client, base string, body []byte, label int) (int, map[string]any) {
	if label < 0 {
		resp, err := client.Post(base+"/api/predict", "image/png", bytes.NewReader(body))
		if err != nil {
			return 0, map[string]any{"error": err.Error()}
		}
		var p struct {
			Label int `json:"label"`
		}
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil {
			return 0, map[string]any{"error": err.Error()}
		}
		label = (p.Label + 1) % 10
	}
	// confirm: the person stands by a label the model is confident against
	// (without it the server answers 409 and stores nothing).
	req, err := json.Marshal(map[string]any{"image": "data:image/png;base64," + base64.StdEncoding.EncodeToString(body), "label": label, "confirm": true})
	if err != nil {
		return 0, map[string]any{"error": err.Error()}
	}
	resp, err := client.Post(base+"/api/flag", "application/json", bytes.NewReader(req))
	if err != nil {
		return 0, map[string]any{"error": err.Error()}
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, map[string]any{"error": err.Error()}
	}
	return resp.StatusCode, out
}

type loadResult struct {
	lat     []time.Duration // sorted
	rate    float64
	errors  int64
	dropped int64
}

func summarize(lat []time.Duration, n int, elapsed time.Duration, errs int64) loadResult {
	slices.Sort(lat)
	r := loadResult{lat: lat, errors: errs}
	if elapsed > 0 {
		r.rate = float64(n) / elapsed.Seconds()
	}
	return r
}

func (r loadResult) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * q / 100)
	return r.lat[i].Round(10 * time.Microsecond)
}

func (r loadResult) max() time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[len(r.lat)-1].Round(10 * time.Microsecond)
}

// closedLoop runs workers that each send the next request as soon as the
// previous one is answered, for d.
func closedLoop(t *testing.T, workers int, d time.Duration, do func(i int) error) loadResult {
	t.Helper()
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			var mine []time.Duration
			for i := w; time.Now().Before(end); i += workers {
				s := time.Now()
				if err := do(i); err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(s))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return summarize(all, len(all), time.Since(start), errs.Load())
}

// openLoop sends requests at a fixed rate for d, each in its own goroutine,
// and measures each latency from the moment the request was due, so a
// stalled server shows up in the latencies instead of lowering the offered
// load. At most 64 requests are in flight (a browser-like bound that keeps
// an overloaded server's queue, and memory, bounded); a request due when 64
// are pending is not sent and counted as dropped ("late starts").
func openLoop(t *testing.T, perSecond float64, d time.Duration, do func(i int) error) loadResult {
	t.Helper()
	n := int(perSecond * d.Seconds())
	interval := time.Duration(float64(time.Second) / perSecond)
	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	var (
		errs, dropped atomic.Int64
		wg            sync.WaitGroup
	)
	slots := make(chan struct{}, 64)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case slots <- struct{}{}:
		default:
			dropped.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := do(i); err != nil {
				errs.Add(1)
				return
			}
			lat[i], ok[i] = time.Since(due), true
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var done []time.Duration
	for i := range n {
		if ok[i] {
			done = append(done, lat[i])
		}
	}
	r := summarize(done, len(done), elapsed, errs.Load())
	r.dropped = dropped.Load()
	return r
}

// vmRSS returns this process's resident set size in bytes (VmRSS from
// /proc/self/status; where there is none, the Go runtime's Sys). Safe to
// call from any goroutine: it reports a failure with t.Error, not t.Fatal.
func vmRSS(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.Sys)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Errorf("VmRSS: %v", err)
			}
			return kb << 10
		}
	}
	t.Error("no VmRSS in /proc/self/status")
	return 0
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return bytes.Count(b, []byte("\n"))
}

func mustPreprocess(t *testing.T, b []byte) *image.Gray {
	t.Helper()
	g, err := mnist.Preprocess(b, nil)
	require.NoError(t, err)
	return g
}
