package mnist

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/internal/kernels"
)

// PredictPixelsInto is PredictPixels that writes its answer into p and
// reuses p.Probabilities when it has room for Classes values, so that a
// caller that keeps one Prediction per goroutine classifies without
// allocating. p's other fields are overwritten; p.Probabilities is replaced
// by a new slice only when its capacity is under Classes. The answer equals
// PredictPixels'. Errors are those of PredictPixels (ErrBadInput for a
// length other than InputSize, ctx's error), and leave p unchanged. Safe
// for concurrent use with distinct p.
func (m *Model) PredictPixelsInto(ctx context.Context, pixels []uint8, p *dadc.Prediction) error {
	if len(pixels) != InputSize {
		return fmt.Errorf("%w: got %d pixels, want %d", ErrBadInput, len(pixels), InputSize)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	logp := m.fwd.logProbs((*[InputSize]uint8)(pixels))
	if cap(p.Probabilities) < Classes {
		p.Probabilities = make([]float64, Classes)
	}
	p.Probabilities = p.Probabilities[:Classes]
	for i, lp := range logp {
		p.Probabilities[i] = math.Exp(lp)
	}
	p.Label, p.ModelVersion = argmax(&logp), m.version
	return nil
}

// The inference path: a direct float32 implementation of the network's
// eval-mode forward pass (dropout off) over an immutable copy of the weights.
// It computes the same function as the gorgonia graph of network.go, which
// remains the training path (forward_test.go checks that the two agree).
//
// Why not gorgonia for inference: for this tiny network (about 0.5M
// multiply-adds per image) a tape machine run spends most of its time on
// hundreds of allocations, im2col copies and transposes rather than on the
// arithmetic, and a tape machine can serve only one caller at a time. forwardNet.logProbs is a pure function of read-only
// weights with its scratch on the caller's stack, so any number of
// goroutines may call it at once and a call allocates nothing.

// Geometry of the convolutional layers (valid 5x5 convolutions, stride 1,
// each followed by a 2x2 max-pool of stride 2).
const (
	kernel     = 5                       // convolution kernel side
	kernelArea = kernel * kernel         // taps per input channel
	conv1Chans = 10                      // conv1 output channels
	pool1Side  = (Side - kernel + 1) / 2 // 12: side of conv1's pooled planes
	pool1Plane = pool1Side * pool1Side
	pool2Side  = (pool1Side - kernel + 1) / 2 // 4: side of conv2's pooled planes
	rowBlock   = kernels.BlockCols            // conv output columns computed together by the kernels
)

// Compile-time checks of the geometry the loops below rely on: the conv
// output rows split into whole row blocks, and conv2's pooled planes are the
// 4x4 planes that the flatten step (and the fc1 weights) expect.
var (
	_ [0]struct{} = [(2*pool1Side)%rowBlock + (2*pool2Side)%rowBlock]struct{}{}
	_ [0]struct{} = [pool2Side*pool2Side - conv2Plane]struct{}{}
	_ [0]struct{} = [conv2Chans*conv2Plane - flatSize]struct{}{}
)

// forwardNet holds the weights in PyTorch layout (conv weights [out, in, kh,
// kw], fc weights [out, in]), in fixed-size arrays so that the compiler knows
// every length. It is never mutated after newForwardNet.
type forwardNet struct {
	conv1W [conv1Chans * kernelArea]float32
	conv1B [conv1Chans]float32
	conv2W [conv2Chans * conv1Chans * kernelArea]float32
	conv2B [conv2Chans]float32
	fc1W   [hidden * flatSize]float32
	fc1B   [hidden]float32
	fc2W   [Classes * hidden]float32
	fc2B   [Classes]float32
}

// newForwardNet copies w into a forwardNet; weights that do not match Layout
// are an error wrapping ErrInvalidWeights.
func newForwardNet(w *Weights) (*forwardNet, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	f := &forwardNet{}
	for _, t := range []struct {
		name string
		dst  []float32
	}{
		{"conv1.weight", f.conv1W[:]}, {"conv1.bias", f.conv1B[:]},
		{"conv2.weight", f.conv2W[:]}, {"conv2.bias", f.conv2B[:]},
		{"fc1.weight", f.fc1W[:]}, {"fc1.bias", f.fc1B[:]},
		{"fc2.weight", f.fc2W[:]}, {"fc2.bias", f.fc2B[:]},
	} {
		src := w.Tensors[t.name]
		if len(src) != len(t.dst) {
			return nil, fmt.Errorf("%w: %s has %d values, want %d", ErrInvalidWeights, t.name, len(src), len(t.dst))
		}
		copy(t.dst, src)
	}
	return f, nil
}

// logProbs returns the network's log-probabilities for one image given as
// 784 row-major MNIST-format bytes. It is safe for concurrent use.
func (f *forwardNet) logProbs(pixels *[InputSize]uint8) [Classes]float64 {
	var x [InputSize]float32
	normalizeInto(x[:], pixels[:])

	// conv1 -> maxpool 2 -> relu: (1, 28, 28) -> (10, 12, 12).
	var h1 [conv1Chans * pool1Plane]float32
	convPoolReLU(h1[:], nil, x[:], Side, 1, f.conv1W[:], f.conv1B[:], pool1Side)

	// conv2 -> maxpool 2 -> relu: (10, 12, 12) -> (20, 4, 4), which is
	// already the flattened NCHW order of PyTorch's view(-1, 320).
	var h2 [flatSize]float32
	convPoolReLU(h2[:], nil, h1[:], pool1Side, conv1Chans, f.conv2W[:], f.conv2B[:], pool2Side)

	// fc1 -> relu.
	var h3 [hidden]float32
	for o := range h3 {
		h3[o] = max(0, f.fc1B[o]+dot(h2[:], f.fc1W[o*flatSize:(o+1)*flatSize]))
	}

	// fc2 -> log-softmax.
	var z [Classes]float32
	for o := range z {
		z[o] = f.fc2B[o] + dot(h3[:], f.fc2W[o*hidden:(o+1)*hidden])
	}
	return logSoftmax(&z)
}

// logProbsMany computes out[i] = f.logProbs(in[i]) for every i, splitting
// the inputs over GOMAXPROCS goroutines. Every in[i] must hold InputSize
// bytes (it panics otherwise).
func (f *forwardNet) logProbsMany(out [][Classes]float64, in [][]uint8) {
	workers := min(runtime.GOMAXPROCS(0), len(in))
	run := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = f.logProbs((*[InputSize]uint8)(in[i]))
		}
	}
	if workers <= 1 {
		run(0, len(in))
		return
	}
	var wg sync.WaitGroup
	for k := 1; k < workers; k++ {
		wg.Go(func() { run(k*len(in)/workers, (k+1)*len(in)/workers) })
	}
	run(0, len(in)/workers)
	wg.Wait()
}

// convPoolReLU computes relu(maxpool2x2(conv5x5(in, w) + b)) for all output
// channels of one image. in holds inChans planes of inSide x inSide values,
// w is [out, inChans, 5, 5] and b is [out]; out receives len(b) planes of
// poolSide x poolSide values (poolSide = (inSide-4)/2), channel-major as in
// NCHW.
//
// When arg is not nil (training) it receives, for every output value, the
// position y*(inSide-4)+x in its channel's convolution plane of the
// maximum that the value came from, or -1 when the ReLU clipped it to zero
// (its gradient is then zero). Ties in the pool go to the first of
// top-left, top-right, bottom-left, bottom-right, as in PyTorch.
//
// The bias is added after the pooling: max(a+b, c+b) = max(a, c)+b, exactly
// so in floating point because rounding is monotonic, and it saves three
// quarters of the additions. The whole layer is one kernels.ConvPoolLayer
// call (SIMD where the CPU has it; the same values, bit for bit, on AVX2 and
// AVX-512).
func convPoolReLU(out []float32, arg []int32, in []float32, inSide, inChans int, w, b []float32, poolSide int) {
	kernels.ConvPoolLayer(out, arg, in, inSide, inChans, w, b, poolSide)
}

// dot returns the dot product of a and b[:len(a)] (SIMD where the CPU has it).
func dot(a, b []float32) float32 { return kernels.Dot(a, b) }

// logSoftmax returns log(softmax(z)), computed in float64 after subtracting
// the largest logit, so that exp cannot overflow and the probabilities
// exp(logp) sum to 1 to float64 precision.
func logSoftmax(z *[Classes]float32) [Classes]float64 {
	m := float64(z[0])
	for _, v := range z[1:] {
		m = max(m, float64(v))
	}
	var lp [Classes]float64
	var sum float64
	for i, v := range z {
		lp[i] = float64(v) - m
		sum += math.Exp(lp[i])
	}
	logSum := math.Log(sum)
	for i := range lp {
		lp[i] -= logSum
	}
	return lp
}
