package mnist

import (
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomBatch returns n random MNIST-like images (a blob of ink) and labels.
func randomBatch(rng *rand.Rand, n int) ([][]uint8, []int) {
	imgs := make([][]uint8, n)
	labels := make([]int, n)
	for k := range imgs {
		img := make([]uint8, InputSize)
		for i := range img {
			if rng.Float64() < 0.2 {
				img[i] = uint8(rng.Intn(256))
			}
		}
		imgs[k], labels[k] = img, rng.Intn(Classes)
	}
	return imgs, labels
}

// TestGradientCheck compares the backpropagated gradients of the training
// graph (dropout off) with central finite differences of the loss, for a
// sample of parameters from every tensor.
func TestGradientCheck(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const batch = 4
	s, err := newTrainSession(InitWeights(7), batch, rng)
	require.NoError(t, err)
	defer s.close()
	imgs, labels := randomBatch(rng, batch)
	require.NoError(t, s.load(imgs, labels, false))
	s.setDropoutOff()

	loss := func() float64 {
		l, err := s.forwardBackward()
		require.NoError(t, err)
		s.zeroGrads()
		return l
	}
	_, err = s.forwardBackward()
	require.NoError(t, err)
	gs, err := s.grads()
	require.NoError(t, err)
	analytic := make([][]float32, len(gs))
	for i, g := range gs {
		analytic[i] = append([]float32(nil), g...)
	}
	s.zeroGrads()

	for pi, spec := range layout {
		w := s.net.values[pi].Data().([]float32)
		for trial := 0; trial < 6; trial++ {
			j := rng.Intn(len(w))
			orig := w[j]
			const h = 1e-3
			w[j] = orig + h
			up := loss()
			w[j] = orig - h
			down := loss()
			w[j] = orig
			numeric := (up - down) / (2 * h)
			got := float64(analytic[pi][j])
			tol := 3e-3 + 2e-2*math.Abs(numeric)
			assert.InDelta(t, numeric, got, tol, "%s[%d]: numeric %.6f analytic %.6f", spec.Name, j, numeric, got)
		}
	}
}

func TestParamsRoundTrip(t *testing.T) {
	w := InitWeights(11)
	p, err := toParams(w)
	require.NoError(t, err)
	total := 0
	for i, d := range p {
		assert.Equal(t, gorgoniaShape(i), []int(d.Shape()), layout[i].Name)
		total += d.Shape().TotalSize()
	}
	assert.Equal(t, NumParams, total)
	// fc1.weight is [50,320] in PyTorch and [320,50] here: element (o,i) moves to (i,o).
	assert.Equal(t, w.Tensors["fc1.weight"][3*320+7], p[4].Data().([]float32)[7*50+3])
	assert.Equal(t, w.Tensors, p.toWeights().Tensors)
}

func TestInitWeightsLikePyTorch(t *testing.T) {
	w := InitWeights(1)
	require.NoError(t, w.Validate())
	for name, fanIn := range map[string]int{"conv1.weight": 25, "conv1.bias": 25, "conv2.weight": 250, "fc1.weight": 320, "fc2.bias": 50} {
		bound := 1 / math.Sqrt(float64(fanIn))
		var maxAbs float64
		for _, v := range w.Tensors[name] {
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		assert.LessOrEqual(t, maxAbs, bound, name)
		assert.Greater(t, maxAbs, bound*0.8, name)
	}
	assert.Equal(t, w.Tensors, InitWeights(1).Tensors)
	assert.NotEqual(t, w.Tensors, InitWeights(2).Tensors)
}

func TestNetworkShapes(t *testing.T) {
	p, err := toParams(InitWeights(1))
	require.NoError(t, err)
	for _, training := range []bool{false, true} {
		n, err := buildNetwork(5, p, training)
		require.NoError(t, err)
		assert.Equal(t, []int{5, 1, 28, 28}, []int(n.x.Shape()))
		assert.Equal(t, []int{5, 10}, []int(n.logp.Shape()))
		if training {
			assert.Equal(t, []int{5, 320}, []int(n.train.mask2.Shape()))
			assert.Equal(t, []int{5, 50}, []int(n.train.mask1.Shape()))
			assert.True(t, n.train.cost.IsScalar())
		} else {
			assert.Nil(t, n.train)
		}
	}
}

// TestFusedGradientsMatchGorgonia checks that the training graph with the
// fused convolution ops gives the same loss and the same gradients for every
// parameter as the graph of gorgonia's own Conv2d, BroadcastAdd, MaxPool2D
// and Rectify (relative 1e-4), with dropout off and with the same dropout
// masks.
func TestFusedGradientsMatchGorgonia(t *testing.T) {
	for _, dropout := range []bool{false, true} {
		rng := rand.New(rand.NewSource(5))
		const batch = 6
		imgs, labels := randomBatch(rng, batch)
		var losses [2]float64
		var grads [2][][]float32
		for k, builtin := range []bool{false, true} {
			s, err := newTrainSessionWith(InitWeights(3), batch, rand.New(rand.NewSource(8)), builtin)
			require.NoError(t, err)
			require.NoError(t, s.load(imgs, labels, false))
			s.noDropout = !dropout
			s.fillMasks()
			losses[k], err = s.forwardBackward()
			require.NoError(t, err)
			gs, err := s.grads()
			require.NoError(t, err)
			for _, g := range gs {
				grads[k] = append(grads[k], append([]float32(nil), g...))
			}
			s.close()
		}
		assert.InDelta(t, losses[1], losses[0], 1e-5*math.Abs(losses[1]), "loss, dropout %t", dropout)
		for pi, spec := range layout {
			var scale float64
			for _, v := range grads[1][pi] {
				scale = max(scale, math.Abs(float64(v)))
			}
			require.Greater(t, scale, 0.0, "%s has a zero gradient", spec.Name)
			for j := range grads[1][pi] {
				assert.InDelta(t, float64(grads[1][pi][j]), float64(grads[0][pi][j]), 1e-4*scale, "%s[%d], dropout %t", spec.Name, j, dropout)
			}
		}
	}
}

// TestFusedGradientsFiniteDifferences checks the training graph's gradients
// (the fused ops, dropout off) against central finite differences of the
// loss computed in float64 by referenceLogProbs, to a relative 1e-4 of each
// tensor's largest gradient. The difference quotient divides by the actual
// float32 step, so the weights' float32 storage adds no error.
func TestFusedGradientsFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	const batch = 4
	w := InitWeights(13)
	s, err := newTrainSession(w, batch, rng)
	require.NoError(t, err)
	defer s.close()
	imgs, labels := randomBatch(rng, batch)
	require.NoError(t, s.load(imgs, labels, false))
	s.noDropout = true
	s.fillMasks()
	_, err = s.forwardBackward()
	require.NoError(t, err)
	gs, err := s.grads()
	require.NoError(t, err)

	loss := func(w *Weights) float64 {
		var sum float64
		for k, img := range imgs {
			sum -= referenceLogProbs(w, img)[labels[k]]
		}
		return sum / batch
	}
	for pi, spec := range layout {
		var scale float64
		for _, v := range gs[pi] {
			scale = max(scale, math.Abs(float64(v)))
		}
		require.Greater(t, scale, 0.0, spec.Name)
		vals := w.Tensors[spec.Name]
		for trial := 0; trial < 8; trial++ {
			j := rng.Intn(len(vals))
			// Gorgonia keeps fc weights as [in, out]; Layout (PyTorch) as [out, in].
			gj := j
			if len(spec.Shape) == 2 {
				out, in := spec.Shape[0], spec.Shape[1]
				gj = (j%in)*out + j/in
			}
			orig := vals[j]
			const h = 1e-5 // small: max-pool and ReLU kinks lie closer than 1e-3
			vals[j] = orig + h
			up, upW := loss(w), vals[j]
			vals[j] = orig - h
			down, downW := loss(w), vals[j]
			vals[j] = orig
			numeric := (up - down) / float64(upW-downW)
			assert.InDelta(t, numeric, float64(gs[pi][gj]), 1e-4*scale, "%s[%d]", spec.Name, j)
		}
	}
}
