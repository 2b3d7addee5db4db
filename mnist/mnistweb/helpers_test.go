package mnistweb_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/flag"
	"github.com/advspace/advspace/mnist/mnistweb"
)

// digitModel always answers the same digit (0.91 sure), so a test knows
// which labels fool it. Training returns the same kind of model under the
// requested version after an optional delay, honouring ctx.
type digitModel struct {
	digit      int
	version    string
	trainDelay time.Duration
}

func (m *digitModel) Predict(ctx context.Context, in *image.Gray) (dadc.Prediction, error) {
	if err := ctx.Err(); err != nil {
		return dadc.Prediction{}, err
	}
	if in == nil || in.Rect.Dx() != 28 || in.Rect.Dy() != 28 {
		return dadc.Prediction{}, errFakeInput
	}
	p := make([]float64, 10)
	for i := range p {
		p[i] = 0.01
	}
	p[m.digit] = 0.91
	return dadc.Prediction{Label: m.digit, Probabilities: p, ModelVersion: m.version}, nil
}

func (m *digitModel) Version() string { return m.version }

func (m *digitModel) Train(ctx context.Context, req dadc.TrainRequest[*image.Gray]) (dadc.Model[*image.Gray], error) {
	select {
	case <-time.After(m.trainDelay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &digitModel{digit: m.digit, version: req.Version, trainDelay: m.trainDelay}, nil
}

type fakeErr string

func (e fakeErr) Error() string { return string(e) }

const errFakeInput = fakeErr("digitModel: input must be 28x28")

// fixture is a Space over a real Loop and a real flag.Dir in a temp folder.
type fixture struct {
	t     *testing.T
	root  string
	dir   *flag.Dir[*image.Gray]
	loop  *dadc.Loop[*image.Gray]
	space *dadchttp.Handler[*image.Gray]
}

type fixtureOptions struct {
	model     dadc.Model[*image.Gray]
	policy    dadc.RetrainPolicy
	cleanTest []dadc.Example[*image.Gray]
	config    func(*dadchttp.Options)
}

func newFixture(t *testing.T, o *fixtureOptions) *fixture {
	t.Helper()
	if o == nil {
		o = &fixtureOptions{}
	}
	if o.model == nil {
		o.model = &digitModel{digit: 3, version: "fake-v0"}
	}
	if o.policy == nil {
		o.policy = dadc.Manual()
	}
	root := t.TempDir()
	dir, err := flag.NewDir(root, flag.GrayPNG(), nil)
	require.NoError(t, err)
	// The fixture's models cannot generalise to held-out samples, so the
	// default gate (which demands a significant held-out gain) would reject
	// them all; the web tests check the app, not the gate.
	promote := dadc.GateFunc(func(dadc.GateInput) dadc.GateDecision {
		return dadc.GateDecision{Promote: true, Reasons: []string{"ok test fixture gate: promotes every candidate"}}
	})
	loop, err := dadc.NewLoop(o.model, dadc.Flagger[*image.Gray](dir), o.policy, 10, &dadc.Options[*image.Gray]{CleanTest: o.cleanTest, Gate: promote})
	require.NoError(t, err)
	// Confirmation is off unless a test turns it on: most tests flag
	// confident disagreements on purpose.
	cfg := dadchttp.Options{FlagRate: 1000, FlagBurst: 1000, ConfirmThreshold: 2}
	if o.config != nil {
		o.config(&cfg)
	}
	sp, err := mnistweb.New(loop, &mnistweb.Options{HTTP: &cfg})
	require.NoError(t, err)
	t.Cleanup(func() {
		// Whoever constructs it closes it, in reverse order.
		_ = sp.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, loop.Close(ctx))
		require.NoError(t, dir.Close())
	})
	return &fixture{t: t, root: root, dir: dir, loop: loop, space: sp}
}

// do serves one request from client IP 192.0.2.1 and returns the recorder.
func (f *fixture) do(method, target, contentType string, body []byte) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.doFrom("192.0.2.1", method, target, contentType, body)
}

func (f *fixture) doFrom(ip, method, target, contentType string, body []byte) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.RemoteAddr = ip + ":40000"
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	f.space.ServeHTTP(rec, req)
	return rec
}

// stored returns the metadata rows and the PNG files found in the store.
func (f *fixture) stored() (rows []flag.MetadataRow, pngs []string) {
	f.t.Helper()
	matches, err := filepath.Glob(filepath.Join(f.root, "data", "*", "metadata.jsonl"))
	require.NoError(f.t, err)
	for _, m := range matches {
		rows = append(rows, readRows(f.t, m)...)
	}
	pngs, err = filepath.Glob(filepath.Join(f.root, "data", "*", "*.png"))
	require.NoError(f.t, err)
	return rows, pngs
}

func readRows(t *testing.T, path string) []flag.MetadataRow {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var rows []flag.MetadataRow
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r flag.MetadataRow
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		rows = append(rows, r)
	}
	return rows
}

// drawing renders a person's drawing: dark ink on a white w x h canvas, a
// thick stroke shaped like a 7 (or nothing when blank).
func drawing(w, h int, blank bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	if blank {
		return img
	}
	ink := image.NewUniform(color.RGBA{17, 17, 17, 255})
	t := max(w/14, 2)
	// top bar
	draw.Draw(img, image.Rect(w/4, h/5, 3*w/4, h/5+t), ink, image.Point{}, draw.Src)
	// diagonal down-left
	for y := h / 5; y < 4*h/5; y++ {
		x := 3*w/4 - (y-h/5)*(w/3)/(3*h/5)
		draw.Draw(img, image.Rect(x-t/2, y, x+t/2+1, y+1), ink, image.Point{}, draw.Src)
	}
	return img
}

func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

func jpegBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

func dataURL(mediaType string, b []byte) string {
	return "data:" + mediaType + ";base64," + base64.StdEncoding.EncodeToString(b)
}

// hugePNG is a valid PNG header that claims width x height pixels: a decoder
// that trusted it would allocate width*height*4 bytes.
func hugePNG(t *testing.T, width, height uint32) []byte {
	t.Helper()
	b := pngBytes(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	// IHDR data starts after the 8-byte signature, 4-byte length and 4-byte type.
	binary.BigEndian.PutUint32(b[16:], width)
	binary.BigEndian.PutUint32(b[20:], height)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// syncBuffer is a goroutine-safe bytes.Buffer for captured logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ http.Handler = (*dadchttp.Handler[*image.Gray])(nil)
