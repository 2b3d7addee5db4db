package mnist

import (
	"context"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gorgoniaLogProbs runs the eval-mode gorgonia graph of network.go built
// from gorgonia's own operations (the training network without dropout and
// without the fused convolution ops) on imgs in one batch and returns each
// image's log-probabilities.
func gorgoniaLogProbs(t *testing.T, w *Weights, imgs [][]uint8) [][Classes]float32 {
	t.Helper()
	p, err := toParams(w)
	require.NoError(t, err)
	net, err := buildNetworkWith(len(imgs), p, false, true)
	require.NoError(t, err)
	vm, err := net.newVM()
	require.NoError(t, err)
	defer func() { assert.NoError(t, vm.Close()) }()
	buf := make([]float32, len(imgs)*InputSize)
	for i, img := range imgs {
		normalizeInto(buf[i*InputSize:(i+1)*InputSize], img)
	}
	require.NoError(t, G.Let(net.x, tensor.New(tensor.WithShape(len(imgs), 1, Side, Side), tensor.WithBacking(buf))))
	require.NoError(t, vm.RunAll())
	data, ok := net.logp.Value().Data().([]float32)
	require.True(t, ok)
	require.Len(t, data, len(imgs)*Classes)
	out := make([][Classes]float32, len(imgs))
	for i := range out {
		copy(out[i][:], data[i*Classes:])
	}
	return out
}

// referenceLogProbs is a plain float64 implementation of the network,
// written for clarity rather than speed, to measure the rounding error of
// both float32 implementations.
func referenceLogProbs(w *Weights, pixels []uint8) [Classes]float64 {
	f64 := func(name string) []float64 {
		v := make([]float64, len(w.Tensors[name]))
		for i, x := range w.Tensors[name] {
			v[i] = float64(x)
		}
		return v
	}
	// convPoolReLU: (inCh, side, side) -> (outCh, (side-4)/2, (side-4)/2).
	convPoolReLU := func(in []float64, inCh, side int, wt, bias []float64) []float64 {
		outCh, cs, ps := len(bias), side-kernel+1, (side-kernel+1)/2
		conv := make([]float64, outCh*cs*cs)
		for o := 0; o < outCh; o++ {
			for y := 0; y < cs; y++ {
				for x := 0; x < cs; x++ {
					s := bias[o]
					for c := 0; c < inCh; c++ {
						for ky := 0; ky < kernel; ky++ {
							for kx := 0; kx < kernel; kx++ {
								s += wt[((o*inCh+c)*kernel+ky)*kernel+kx] * in[(c*side+y+ky)*side+x+kx]
							}
						}
					}
					conv[(o*cs+y)*cs+x] = s
				}
			}
		}
		out := make([]float64, outCh*ps*ps)
		for o := 0; o < outCh; o++ {
			for y := 0; y < ps; y++ {
				for x := 0; x < ps; x++ {
					m := math.Inf(-1)
					for _, d := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
						m = math.Max(m, conv[(o*cs+2*y+d[0])*cs+2*x+d[1]])
					}
					out[(o*ps+y)*ps+x] = math.Max(0, m)
				}
			}
		}
		return out
	}
	linear := func(in, wt, bias []float64) []float64 {
		out := make([]float64, len(bias))
		for o := range out {
			out[o] = bias[o]
			for i, v := range in {
				out[o] += wt[o*len(in)+i] * v
			}
		}
		return out
	}
	x := make([]float64, InputSize)
	for i, p := range pixels {
		x[i] = float64(pixelLUT[p])
	}
	h := convPoolReLU(x, 1, Side, f64("conv1.weight"), f64("conv1.bias"))
	h = convPoolReLU(h, conv1Chans, pool1Side, f64("conv2.weight"), f64("conv2.bias"))
	h = linear(h, f64("fc1.weight"), f64("fc1.bias"))
	for i := range h {
		h[i] = math.Max(0, h[i])
	}
	z := linear(h, f64("fc2.weight"), f64("fc2.bias"))
	m := slices.Max(z)
	var sum float64
	for _, v := range z {
		sum += math.Exp(v - m)
	}
	var lp [Classes]float64
	for i, v := range z {
		lp[i] = v - m - math.Log(sum)
	}
	return lp
}

// TestForwardMatchesGorgonia checks the inference path against the gorgonia
// graph that training optimises (to 1e-5 in log-probabilities) and against
// a float64 implementation (no less accurately than gorgonia), on 100 MNIST
// test images and 20 random images, for the pretrained weights and freshly
// initialised ones. A third case, weights scaled up 4x (activations 256x),
// stresses the rounding: there the two float32 implementations may differ
// by more than 1e-5, so it checks only that the fast path stays as close to
// the float64 answer as gorgonia does.
func TestForwardMatchesGorgonia(t *testing.T) {
	_, test := loadSubset(t)
	rng := rand.New(rand.NewSource(9))
	imgs := make([][]uint8, 0, 120)
	for i := 0; i < 100; i++ {
		imgs = append(imgs, test.Pixels(i))
	}
	noise, _ := randomBatch(rng, 20)
	imgs = append(imgs, noise...)

	large := InitWeights(5)
	for _, v := range large.Tensors {
		for i := range v {
			v[i] *= 4
		}
	}
	for _, tc := range []struct {
		name       string
		w          *Weights
		vsGorgonia bool // compare with gorgonia to 1e-5
	}{
		{"pretrained", pretrainedWeights(t), true},
		{"init", InitWeights(1), true},
		{"large", large, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gorg := gorgoniaLogProbs(t, tc.w, imgs)
			f, err := newForwardNet(tc.w)
			require.NoError(t, err)
			var worstFast, worstGorgonia float64
			for i, img := range imgs {
				got := f.logProbs((*[InputSize]uint8)(img))
				ref := referenceLogProbs(tc.w, img)
				var sum float64
				for k := range got {
					if tc.vsGorgonia {
						// 1e-5, relative for log-probabilities below -1
						// (float32 resolves -49.6 only to 4e-6).
						assert.InDelta(t, float64(gorg[i][k]), got[k], 1e-5*max(1, math.Abs(got[k])), "image %d class %d", i, k)
					}
					scale := max(1, math.Abs(ref[k]))
					worstFast = max(worstFast, math.Abs(got[k]-ref[k])/scale)
					worstGorgonia = max(worstGorgonia, math.Abs(float64(gorg[i][k])-ref[k])/scale)
					sum += math.Exp(got[k])
				}
				assert.InDelta(t, 1, sum, 1e-12, "image %d: probabilities sum to 1", i)
			}
			t.Logf("largest error against float64 (relative, log-probabilities): fast path %.2g, gorgonia %.2g", worstFast, worstGorgonia)
			assert.LessOrEqual(t, worstFast, max(1e-5, 2*worstGorgonia))
		})
	}
}

// TestForwardLayout checks the weight layout with hand-made weights whose
// answer is known without either implementation: only one conv1 tap, one
// conv2 tap, one fc1 weight and one fc2 weight are set, so the logit of
// class 3 is a known function of a single input pixel.
func TestForwardLayout(t *testing.T) {
	w := NewZeroWeights()
	// conv1 channel 2 reads tap (ky=1, kx=3); conv2 channel 7 reads input
	// channel 2 at tap (ky=4, kx=0); fc1 unit 11 reads conv2 channel 7 at
	// pooled position (y=1, x=2), NCHW index 7*16+1*4+2; class 3 reads unit 11.
	w.Tensors["conv1.weight"][2*25+1*5+3] = 1
	w.Tensors["conv2.weight"][7*250+2*25+4*5+0] = 1
	w.Tensors["fc1.weight"][11*320+7*16+1*4+2] = 1
	w.Tensors["fc2.weight"][3*50+11] = 1
	f, err := newForwardNet(w)
	require.NoError(t, err)

	// Pooled conv2 position (1, 2) covers conv2 outputs rows 2-3, cols 4-5,
	// which read pooled conv1 (row+4, col+0): rows 6-7, cols 4-5, which cover
	// conv1 outputs rows 12-15, cols 8-11, which read pixels (row+1, col+3):
	// rows 13-16, cols 11-14. One bright pixel there lights class 3 only.
	const bright = 255
	var px [InputSize]uint8
	px[15*Side+12] = bright
	lp := f.logProbs(&px)
	// The background's input value pixelLUT[0] is negative, so the ReLUs
	// clear everything but the bright pixel's value, which every layer passes
	// on unchanged (weight 1, bias 0) to the logit of class 3; the other
	// logits are 0.
	want := float64(pixelLUT[bright])
	norm := math.Log(9 + math.Exp(want))
	for k, got := range lp {
		if k == 3 {
			assert.InDelta(t, want-norm, got, 1e-6)
		} else {
			assert.InDelta(t, -norm, got, 1e-6, "class %d", k)
		}
	}

	// A pixel outside that window leaves every class equal.
	px = [InputSize]uint8{}
	px[20*Side+20] = bright
	lp = f.logProbs(&px)
	for k, got := range lp {
		assert.InDelta(t, -math.Log(Classes), got, 1e-9, "class %d", k)
	}
}

// TestForwardAllocations checks that the inference path allocates nothing
// and that Predict allocates only its answer (the Probabilities slice).
func TestForwardAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, test := loadSubset(t)
	m, err := NewModel(pretrainedWeights(t), nil)
	require.NoError(t, err)
	px := (*[InputSize]uint8)(test.Pixels(0))
	assert.Zero(t, testing.AllocsPerRun(100, func() { m.fwd.logProbs(px) }))
	in := test.Gray(0)
	ctx := context.Background()
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() {
		if _, err := m.Predict(ctx, in); err != nil {
			t.Error(err)
		}
	}))
}

func TestNewForwardNetRejectsBadWeights(t *testing.T) {
	w := InitWeights(1)
	w.Tensors["fc1.weight"] = w.Tensors["fc1.weight"][:100]
	_, err := newForwardNet(w)
	assert.ErrorIs(t, err, ErrInvalidWeights)
}
