package mnist

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Input geometry of the network. (The input normalisation, NormMean and
// NormStd, lives with the weights file format.)
const (
	// Side is the width and height of the network's input, in pixels.
	Side = 28
	// InputSize is the number of pixels of one input (Side*Side).
	InputSize = Side * Side
	// Classes is the number of output classes (the digits 0-9).
	Classes = 10

	hidden     = 50  // fc1 width
	flatSize   = 320 // 20 channels * 4 * 4 after the second pool
	conv2Chans = 20
	conv2Plane = 16 // 4*4 values per channel after the second pool
	dropP      = 0.5
)

// graphBuildMu serialises graph and tape-machine construction: gorgonia's
// NewTapeMachine mutates bound tensors and bumps package-global counters, so
// building two VMs at once is a data race even on separate graphs (see
// reference/gorgonia.md §1.6). Running finished VMs concurrently is safe.
var graphBuildMu sync.Mutex

// normalized returns the network input for a pixel intensity v in [0, 255]
// (fractional for interpolated pixels).
func normalized(v float64) float32 {
	return float32((v/255 - NormMean) / NormStd)
}

// pixelLUT maps a byte to its normalised network input value.
var pixelLUT = func() (t [256]float32) {
	for i := range t {
		t[i] = normalized(float64(i))
	}
	return t
}()

// normalizeInto writes the network inputs for pixels into dst (len(pixels) values).
func normalizeInto(dst []float32, pixels []uint8) {
	for i, p := range pixels {
		dst[i] = pixelLUT[p]
	}
}

// params holds the eight parameter tensors in gorgonia layout, in Layout
// order. They differ from the PyTorch layout only for the fc weights, which
// gorgonia multiplies as h·W and so stores as [in, out].
type params [8]*tensor.Dense

// gorgoniaShape returns the gorgonia-side shape of Layout[i].
func gorgoniaShape(i int) []int {
	s := layout[i].Shape
	if len(s) == 2 { // fc weight: [out, in] -> [in, out]
		return []int{s[1], s[0]}
	}
	return s
}

// shapeSize returns the number of values of a Layout shape (known valid and
// small; the safetensors decoder checks shapes read from files).
func shapeSize(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// toParams copies w into fresh gorgonia-layout tensors.
func toParams(w *Weights) (params, error) {
	var p params
	if err := w.Validate(); err != nil {
		return p, err
	}
	for i, spec := range layout {
		src := w.Tensors[spec.Name]
		data := make([]float32, len(src))
		if len(spec.Shape) == 2 {
			out, in := spec.Shape[0], spec.Shape[1]
			for o := 0; o < out; o++ {
				for k := 0; k < in; k++ {
					data[k*out+o] = src[o*in+k]
				}
			}
		} else {
			copy(data, src)
		}
		p[i] = tensor.New(tensor.WithShape(gorgoniaShape(i)...), tensor.WithBacking(data))
	}
	return p, nil
}

// toWeights copies gorgonia-layout parameters back into PyTorch layout.
func (p *params) toWeights() *Weights {
	w := &Weights{Tensors: make(map[string][]float32, len(layout))}
	for i, spec := range layout {
		src := p[i].Data().([]float32)
		data := make([]float32, len(src))
		if len(spec.Shape) == 2 {
			out, in := spec.Shape[0], spec.Shape[1]
			for o := 0; o < out; o++ {
				for k := 0; k < in; k++ {
					data[o*in+k] = src[k*out+o]
				}
			}
		} else {
			copy(data, src)
		}
		w.Tensors[spec.Name] = data
	}
	return w
}

// InitWeights returns freshly initialised weights the way PyTorch initialises
// Conv2d and Linear layers by default (kaiming-uniform with a=sqrt(5), which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases alike), drawn
// from a generator seeded with seed.
func InitWeights(seed int64) *Weights {
	rng := rand.New(rand.NewSource(seed))
	fanIn := map[string]int{"conv1": 1 * 5 * 5, "conv2": 10 * 5 * 5, "fc1": 320, "fc2": 50}
	w := &Weights{Tensors: make(map[string][]float32, len(layout))}
	for _, spec := range layout {
		layer, _, _ := strings.Cut(spec.Name, ".")
		bound := 1 / math.Sqrt(float64(fanIn[layer]))
		data := make([]float32, shapeSize(spec.Shape))
		for i := range data {
			data[i] = float32((rng.Float64()*2 - 1) * bound)
		}
		w.Tensors[spec.Name] = data
	}
	return w
}

// network is one gorgonia graph of the MNIST model for a fixed batch size.
// A network (and its VM) must only be used by one goroutine at a time.
type network struct {
	g      *G.ExprGraph
	batch  int
	x      *G.Node    // (batch, 1, 28, 28) input
	learn  G.Nodes    // the eight parameter nodes, Layout order
	logp   *G.Node    // (batch, 10) log-probabilities
	values params     // the tensors bound to learn (owned by this network)
	train  *trainPart // nil for inference graphs

	conv1, conv2 *convPoolOp // the fused convolution layers (nil in builtin graphs)
}

// trainPart holds what only a training graph has: labels, the dropout masks
// (fed per step from a seeded generator, so training is reproducible) and the
// loss.
type trainPart struct {
	y     *G.Node // (batch, 10) one-hot labels
	mask2 *G.Node // (batch, 320) channel-dropout mask after conv2 (one value per channel, repeated)
	mask1 *G.Node // (batch, 50) dropout mask after fc1
	cost  *G.Node // scalar NLL loss
}

// buildNetwork builds the graph for the given batch size on the parameter
// tensors p (bound, not copied: the caller gives each network its own). When
// training is true, the graph also has the dropout masks, the labels, the NLL
// loss and its gradients. Without them it is the eval-mode network, the
// reference that the inference path of forward.go is tested against.
//
// The channel dropout of the seed (Dropout2d after conv2, before max-pool and
// ReLU) is applied after pool and ReLU instead, on the flattened (batch, 320)
// activations with one mask value per channel. That is the same function:
// each mask value m is 0 or 1/(1-p) >= 0, and maxpool(m·x) = m·maxpool(x),
// relu(m·x) = m·relu(x) for m >= 0; it is cheaper on the smaller tensor.
func buildNetwork(batch int, p params, training bool) (n *network, err error) {
	return buildNetworkWith(batch, p, training, false)
}

// buildNetworkWith is buildNetwork with a choice of convolution layers:
// builtin selects gorgonia's own Conv2d, BroadcastAdd, MaxPool2D and
// Rectify (the reference the fused ops are tested against) instead of the
// fused convPoolOps.
func buildNetworkWith(batch int, p params, training, builtin bool) (n *network, err error) {
	defer func() {
		// gorgonia panics on some construction errors (e.g. NewTapeMachine,
		// MaxPool2D); turn them into errors so library callers never panic.
		if r := recover(); r != nil {
			n, err = nil, fmt.Errorf("mnist: building the network graph: %v", r)
		}
	}()
	g := G.NewGraph()
	n = &network{g: g, batch: batch, values: p}
	n.x = G.NewTensor(g, tensor.Float32, 4, G.WithShape(batch, 1, Side, Side), G.WithName("x"))
	for i, spec := range layout {
		node := G.NewTensor(g, tensor.Float32, len(gorgoniaShape(i)), G.WithShape(gorgoniaShape(i)...), G.WithName(spec.Name), G.WithValue(p[i]))
		n.learn = append(n.learn, node)
	}
	w1, b1, w2, b2, w3, b3, w4, b4 := n.learn[0], n.learn[1], n.learn[2], n.learn[3], n.learn[4], n.learn[5], n.learn[6], n.learn[7]

	var h *G.Node
	if builtin {
		if h, err = builtinConvLayers(n.x, w1, b1, w2, b2, batch); err != nil {
			return nil, err
		}
	} else {
		// conv1 -> +bias -> maxpool 2 -> relu, then the same for conv2,
		// flattened (NCHW order, as PyTorch's view): two fused custom ops.
		n.conv1 = newConvPoolOp(batch, 1, conv1Chans, Side, false, false)
		if h, err = G.ApplyOp(n.conv1, n.x, w1, b1); err != nil {
			return nil, fmt.Errorf("mnist: conv1: %w", err)
		}
		n.conv2 = newConvPoolOp(batch, conv1Chans, conv2Chans, pool1Side, true, true)
		if h, err = G.ApplyOp(n.conv2, h, w2, b2); err != nil {
			return nil, fmt.Errorf("mnist: conv2: %w", err)
		}
	}
	var tp *trainPart
	if training {
		tp = &trainPart{
			y:     G.NewMatrix(g, tensor.Float32, G.WithShape(batch, Classes), G.WithName("y")),
			mask2: G.NewMatrix(g, tensor.Float32, G.WithShape(batch, flatSize), G.WithName("mask2")),
			mask1: G.NewMatrix(g, tensor.Float32, G.WithShape(batch, hidden), G.WithName("mask1")),
		}
	}
	if !builtin {
		if err := n.fusedHead(h, tp); err != nil {
			return nil, err
		}
		return n, nil
	}
	if training {
		if h, err = G.HadamardProd(h, tp.mask2); err != nil {
			return nil, fmt.Errorf("mnist: dropout2d: %w", err)
		}
	}
	// fc1 -> relu -> dropout
	if h, err = G.Mul(h, w3); err != nil {
		return nil, fmt.Errorf("mnist: fc1: %w", err)
	}
	if h, err = G.BroadcastAdd(h, b3, nil, []byte{0}); err != nil {
		return nil, fmt.Errorf("mnist: fc1 bias: %w", err)
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, fmt.Errorf("mnist: relu3: %w", err)
	}
	if training {
		if h, err = G.HadamardProd(h, tp.mask1); err != nil {
			return nil, fmt.Errorf("mnist: dropout: %w", err)
		}
	}
	// fc2 -> log-softmax
	if h, err = G.Mul(h, w4); err != nil {
		return nil, fmt.Errorf("mnist: fc2: %w", err)
	}
	if h, err = G.BroadcastAdd(h, b4, nil, []byte{0}); err != nil {
		return nil, fmt.Errorf("mnist: fc2 bias: %w", err)
	}
	if n.logp, err = G.LogSoftMax(h); err != nil {
		return nil, fmt.Errorf("mnist: log-softmax: %w", err)
	}
	if training {
		// NLL loss on log-probabilities: -mean over the batch of logp[label].
		picked, err := G.HadamardProd(n.logp, tp.y)
		if err != nil {
			return nil, fmt.Errorf("mnist: loss: %w", err)
		}
		if picked, err = G.Sum(picked, 1); err != nil {
			return nil, fmt.Errorf("mnist: loss: %w", err)
		}
		if picked, err = G.Mean(picked); err != nil {
			return nil, fmt.Errorf("mnist: loss: %w", err)
		}
		if tp.cost, err = G.Neg(picked); err != nil {
			return nil, fmt.Errorf("mnist: loss: %w", err)
		}
		if _, err = G.Grad(tp.cost, n.learn...); err != nil {
			return nil, fmt.Errorf("mnist: gradients: %w", err)
		}
		n.train = tp
	}
	return n, nil
}

// newVM compiles a tape machine for n, under graphBuildMu. Training graphs
// bind dual values (gradients) to the parameters; inference graphs run in
// eval mode. Each network gets its own graph, so the eval-mode flag that
// gorgonia keeps on shared ops cannot leak between training and inference.
func (n *network) newVM() (vm G.VM, err error) {
	graphBuildMu.Lock()
	defer graphBuildMu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			vm, err = nil, fmt.Errorf("mnist: compiling the network: %v", r)
		}
	}()
	if n.train != nil {
		return G.NewTapeMachine(n.g, G.BindDualValues(n.learn...)), nil
	}
	return G.NewTapeMachine(n.g, G.EvalMode()), nil
}

// fusedHead builds the layers after the convolutions from the custom ops
// of fusedhead.go: dropout masks, fc1 + ReLU, fc2, log-softmax and, when
// tp is not nil, the loss and its gradients.
func (n *network) fusedHead(h *G.Node, tp *trainPart) (err error) {
	w3, b3, w4, b4 := n.learn[4], n.learn[5], n.learn[6], n.learn[7]
	if tp != nil {
		if h, err = G.ApplyOp(newMaskOp("Dropout2d", n.batch, flatSize), h, tp.mask2); err != nil {
			return fmt.Errorf("mnist: dropout2d: %w", err)
		}
	}
	if h, err = G.ApplyOp(newFCOp("FC1ReLU", n.batch, flatSize, hidden, true), h, w3, b3); err != nil {
		return fmt.Errorf("mnist: fc1: %w", err)
	}
	if tp != nil {
		if h, err = G.ApplyOp(newMaskOp("Dropout", n.batch, hidden), h, tp.mask1); err != nil {
			return fmt.Errorf("mnist: dropout: %w", err)
		}
	}
	z, err := G.ApplyOp(newFCOp("FC2", n.batch, hidden, Classes, false), h, w4, b4)
	if err != nil {
		return fmt.Errorf("mnist: fc2: %w", err)
	}
	lsm := &logSoftmaxOp{opBase: opBase{"LogSoftmax"}, rows: n.batch, cols: Classes,
		out: tensor.New(tensor.WithShape(n.batch, Classes), tensor.Of(tensor.Float32))}
	if n.logp, err = G.ApplyOp(lsm, z); err != nil {
		return fmt.Errorf("mnist: log-softmax: %w", err)
	}
	if tp == nil {
		return nil
	}
	if tp.cost, err = G.ApplyOp(newLossOp(n.batch, Classes), z, tp.y); err != nil {
		return fmt.Errorf("mnist: loss: %w", err)
	}
	if _, err = G.Grad(tp.cost, n.learn...); err != nil {
		return fmt.Errorf("mnist: gradients: %w", err)
	}
	n.train = tp
	return nil
}

// builtinConvLayers builds the two convolution layers from gorgonia's own
// operations: Conv2d, BroadcastAdd, MaxPool2D, Rectify and a final Reshape
// to (batch, 320).
func builtinConvLayers(x, w1, b1, w2, b2 *G.Node, batch int) (h *G.Node, err error) {
	h, err = G.Conv2d(x, w1, tensor.Shape{5, 5}, []int{0, 0}, []int{1, 1}, []int{1, 1})
	if err != nil {
		return nil, fmt.Errorf("mnist: conv1: %w", err)
	}
	if h, err = G.BroadcastAdd(h, b1, nil, []byte{0, 2, 3}); err != nil {
		return nil, fmt.Errorf("mnist: conv1 bias: %w", err)
	}
	if h, err = G.MaxPool2D(h, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}); err != nil {
		return nil, fmt.Errorf("mnist: pool1: %w", err)
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, fmt.Errorf("mnist: relu1: %w", err)
	}
	if h, err = G.Conv2d(h, w2, tensor.Shape{5, 5}, []int{0, 0}, []int{1, 1}, []int{1, 1}); err != nil {
		return nil, fmt.Errorf("mnist: conv2: %w", err)
	}
	if h, err = G.BroadcastAdd(h, b2, nil, []byte{0, 2, 3}); err != nil {
		return nil, fmt.Errorf("mnist: conv2 bias: %w", err)
	}
	if h, err = G.MaxPool2D(h, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}); err != nil {
		return nil, fmt.Errorf("mnist: pool2: %w", err)
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, fmt.Errorf("mnist: relu2: %w", err)
	}
	if h, err = G.Reshape(h, tensor.Shape{batch, flatSize}); err != nil {
		return nil, fmt.Errorf("mnist: flatten: %w", err)
	}
	return h, nil
}
