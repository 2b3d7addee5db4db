package mnist

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"runtime"
	"sync"

	"github.com/advspace/advspace/internal/kernels"
	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The training graph's convolution layers are custom gorgonia operations:
// convPoolOp computes relu(maxpool2x2(conv5x5(x, w) + b)) in one pass
// (forward.go's convPoolReLU, the same code as inference), and its symbolic
// derivative is three convPoolDiffOps, one per input, which gorgonia's
// automatic differentiation wires into the graph like its own ops'. They
// replace Conv2d (im2col, a tall-skinny GEMM and an NHWC->NCHW transpose),
// BroadcastAdd, MaxPool2D and Rectify, and their backward passes.
//
// Each op owns its output tensors and rewrites them in place every step,
// so a steady-state step allocates nothing for them. The forward op keeps,
// per output value, the position of the maximum it came from (or -1 where
// the ReLU clipped it), as gorgonia's own max-pool does; the backward pass
// visits only those positions, a quarter of the convolution's outputs. That
// state makes the ops, like the graph they are in, usable by one goroutine
// at a time; inside a call they split the batch over GOMAXPROCS goroutines.

// gradShards is the fixed number of parts of the batch whose weight
// gradients are summed separately (and in parallel): 2, the cores of the
// machines this was tuned on.
const gradShards = 2

// convPoolOp is the fused conv5x5 + bias + maxpool2x2 + ReLU of one layer
// for a fixed batch. Inputs: x (batch, inC, inSide, inSide), w (outC, inC,
// 5, 5), b (outC). Output: (batch, outC, P, P) with P = (inSide-4)/2, or
// (batch, outC*P*P) when flat is set (the flattened NCHW order of PyTorch's
// view).
type convPoolOp struct {
	batch, inC, outC, inSide int
	flat                     bool // output (batch, outC*P*P)
	needDX                   bool // differentiate with respect to x (false for the network's input)

	out *tensor.Dense // forward output, owned and reused
	arg []int32       // per output value: convolution-plane position of its maximum, -1 if clipped

	dx, dw, db *tensor.Dense // gradients, owned and reused
	dwPart     [][]float32   // partial weight gradients, one per gradShards part of the batch
	patch      [][]float32   // per-worker scratch: the input gradients of one window's four slots (4*inC*25)
	hitOff     [][]int32     // per gradShards part: window offsets in x of one channel's unclipped outputs
	hitG       [][]float32   // per gradShards part: those outputs' gradients
	base       []int32       // base[a+1]: the offset in an image's input of the window of convolution position a (base[0] = 0)
	workers    int
}

func newConvPoolOp(batch, inC, outC, inSide int, flat, needDX bool) *convPoolOp {
	op := &convPoolOp{batch: batch, inC: inC, outC: outC, inSide: inSide, flat: flat, needDX: needDX}
	op.workers = max(1, min(runtime.GOMAXPROCS(0), batch))
	op.out = tensor.New(tensor.WithShape(op.outShape()...), tensor.Of(tensor.Float32))
	op.arg = make([]int32, batch*op.outSize())
	op.dx = tensor.New(tensor.WithShape(batch, inC, inSide, inSide), tensor.Of(tensor.Float32))
	op.dw = tensor.New(tensor.WithShape(outC, inC, kernel, kernel), tensor.Of(tensor.Float32))
	op.db = tensor.New(tensor.WithShape(outC), tensor.Of(tensor.Float32))
	op.dwPart = make([][]float32, gradShards)
	for i := range op.dwPart {
		op.dwPart[i] = make([]float32, outC*inC*kernelArea)
	}
	op.patch = make([][]float32, op.workers)
	for i := range op.patch {
		op.patch[i] = make([]float32, 4*inC*kernelArea)
	}
	cs := 2 * op.poolSide()
	op.base = make([]int32, 1+cs*cs)
	for a := range cs * cs {
		op.base[a+1] = int32(op.patchBase(int32(a)))
	}
	op.hitOff = make([][]int32, gradShards)
	op.hitG = make([][]float32, gradShards)
	partLen := (batch/gradShards+1)*op.poolSide()*op.poolSide() + 1
	for i := range op.hitOff {
		op.hitOff[i] = make([]int32, partLen)
		op.hitG[i] = make([]float32, partLen)
	}
	return op
}

func (op *convPoolOp) poolSide() int { return (op.inSide - kernel + 1) / 2 }
func (op *convPoolOp) outSize() int  { return op.outC * op.poolSide() * op.poolSide() }
func (op *convPoolOp) inSize() int   { return op.inC * op.inSide * op.inSide }

func (op *convPoolOp) outShape() tensor.Shape {
	if op.flat {
		return tensor.Shape{op.batch, op.outSize()}
	}
	return tensor.Shape{op.batch, op.outC, op.poolSide(), op.poolSide()}
}

// parallel splits [0, n) into op.workers contiguous ranges and runs f on
// each in its own goroutine (the caller's for the first), returning when
// all are done.
func (op *convPoolOp) parallel(n int, f func(worker, lo, hi int)) {
	workers := min(op.workers, n)
	if workers <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 1; k < workers; k++ {
		wg.Go(func() { f(k, k*n/workers, (k+1)*n/workers) })
	}
	f(0, 0, n/workers)
	wg.Wait()
}

// splitRange splits [0, n) into up to GOMAXPROCS contiguous ranges and
// runs f on each in its own goroutine (the caller's for the first),
// returning when all are done. Each index is visited by exactly one call,
// so results that are written per index do not depend on the split.
func splitRange(n int, f func(lo, hi int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	if workers == 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 1; k < workers; k++ {
		wg.Go(func() { f(k*n/workers, (k+1)*n/workers) })
	}
	f(0, n/workers)
	wg.Wait()
}

// float32s returns the float32 backing of v and checks its length. (A
// *tensor.Dense's Float32s does not box the slice, unlike Data.)
func float32s(v G.Value, want int, what string) ([]float32, error) {
	var d []float32
	switch t := v.(type) {
	case *tensor.Dense:
		if t.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("mnist: %s holds %v, want float32", what, t.Dtype())
		}
		d = t.Float32s()
	case tensor.Tensor:
		var ok bool
		if d, ok = t.Data().([]float32); !ok {
			return nil, fmt.Errorf("mnist: %s holds %T, want []float32", what, t.Data())
		}
	default:
		return nil, fmt.Errorf("mnist: %s is %T, want a tensor", what, v)
	}
	if len(d) != want {
		return nil, fmt.Errorf("mnist: %s has %d values, want %d", what, len(d), want)
	}
	return d, nil
}

func (op *convPoolOp) Arity() int { return 3 }

func (op *convPoolOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	outDims := 4
	if op.flat {
		outDims = 2
	}
	return hm.NewFnType(G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 1, Of: a}, G.TensorType{Dims: outDims, Of: a})
}

func (op *convPoolOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.outShape(), nil }

func (op *convPoolOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 3 {
		return nil, fmt.Errorf("mnist: %v takes 3 inputs, got %d", op, len(vals))
	}
	x, err := float32s(vals[0], op.batch*op.inSize(), "conv input")
	if err != nil {
		return nil, err
	}
	w, err := float32s(vals[1], op.outC*op.inC*kernelArea, "conv weight")
	if err != nil {
		return nil, err
	}
	b, err := float32s(vals[2], op.outC, "conv bias")
	if err != nil {
		return nil, err
	}
	out := op.out.Float32s()
	in, os, ps := op.inSize(), op.outSize(), op.poolSide()
	op.parallel(op.batch, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			convPoolReLU(out[i*os:(i+1)*os], op.arg[i*os:(i+1)*os], x[i*in:(i+1)*in], op.inSide, op.inC, w, b, ps)
		}
	})
	return op.out, nil
}

func (op *convPoolOp) ReturnsPtr() bool     { return true }
func (op *convPoolOp) CallsExtern() bool    { return false }
func (op *convPoolOp) OverwritesInput() int { return -1 }
func (op *convPoolOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "mnist.convPool(%d,%d,%d,%d,%t,%t)@%p", op.batch, op.inC, op.outC, op.inSide, op.flat, op.needDX, op)
}
func (op *convPoolOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *convPoolOp) String() string {
	return fmt.Sprintf("ConvPoolReLU(%d→%d)", op.inC, op.outC)
}

// DiffWRT: the weights and bias always; x only when needDX.
func (op *convPoolOp) DiffWRT(int) []bool { return []bool{op.needDX, true, true} }

// SymDiff returns the gradient nodes of x (nil unless needDX), w and b.
func (op *convPoolOp) SymDiff(inputs G.Nodes, _ *G.Node, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("mnist: %v takes 3 inputs, got %d", op, len(inputs))
	}
	x, w := inputs[0], inputs[1]
	out := make(G.Nodes, 3)
	for wrt := range 3 {
		if wrt == 0 && !op.needDX {
			continue
		}
		n, err := G.ApplyOp(&convPoolDiffOp{fwd: op, wrt: wrt}, x, w, grad)
		if err != nil {
			return nil, fmt.Errorf("mnist: gradient of %v: %w", op, err)
		}
		out[wrt] = n
	}
	return out, nil
}

// convPoolDiffOp is the gradient of a convPoolOp with respect to its input
// wrt (0 x, 1 w, 2 b). Inputs: x, w and the gradient of the forward output;
// it reads the maximum positions the forward pass recorded.
type convPoolDiffOp struct {
	fwd *convPoolOp
	wrt int
}

func (op *convPoolDiffOp) Arity() int { return 3 }

func (op *convPoolDiffOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	gDims := 4
	if op.fwd.flat {
		gDims = 2
	}
	resDims := []int{4, 4, 1}[op.wrt]
	return hm.NewFnType(G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: gDims, Of: a}, G.TensorType{Dims: resDims, Of: a})
}

func (op *convPoolDiffOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.result().Shape().Clone(), nil
}

func (op *convPoolDiffOp) result() *tensor.Dense {
	return []*tensor.Dense{op.fwd.dx, op.fwd.dw, op.fwd.db}[op.wrt]
}

func (op *convPoolDiffOp) Do(vals ...G.Value) (G.Value, error) {
	f := op.fwd
	if len(vals) != 3 {
		return nil, fmt.Errorf("mnist: %v takes 3 inputs, got %d", op, len(vals))
	}
	x, err := float32s(vals[0], f.batch*f.inSize(), "conv input")
	if err != nil {
		return nil, err
	}
	w, err := float32s(vals[1], f.outC*f.inC*kernelArea, "conv weight")
	if err != nil {
		return nil, err
	}
	g, err := float32s(vals[2], f.batch*f.outSize(), "conv output gradient")
	if err != nil {
		return nil, err
	}
	switch op.wrt {
	case 0:
		f.gradX(f.dx.Float32s(), w, g)
	case 1:
		f.gradW(f.dw.Float32s(), x, g)
	default:
		f.gradB(f.db.Float32s(), g)
	}
	return op.result(), nil
}

// The backward passes visit only the outputs the ReLU let through, at the
// convolution position of their maximum (recorded by the forward pass).
//
// gradX: per image and pooled position p, the output channels whose maximum
// was at window slot k share the input window under it, so their weights,
// scaled by their gradients, are summed into one patch per slot
// (kernels.Axpy over inC*25 values) and each patch is added into dx once
// (kernels.AddPatch5x5).
//
// gradW: per output channel, the unclipped outputs of a part of the batch
// are listed (the offset of their window in x and their gradient); the
// channel's weight gradient is then one kernels.PatchSum5x5 over that list.

// windowPos returns the convolution-plane position of slot k (0 top-left,
// 1 top-right, 2 bottom-left, 3 bottom-right) of pooled position p.
func (op *convPoolOp) windowPos(p, k int) int32 {
	ps, cs := op.poolSide(), 2*op.poolSide()
	return int32((2*(p/ps)+k/2)*cs + 2*(p%ps) + k%2)
}

// patchBase returns the offset in an image's input of the top-left value of
// the window under convolution position a.
func (op *convPoolOp) patchBase(a int32) int {
	cs := 2 * op.poolSide()
	return int(a)/cs*op.inSide + int(a)%cs
}

// gradX writes dL/dx: each unclipped output's gradient flows back through
// its maximum's 5x5 window, weighted by the kernel.
func (op *convPoolOp) gradX(dx, w, g []float32) {
	in, os, pp := op.inSize(), op.outSize(), op.poolSide()*op.poolSide()
	wSize := op.inC * kernelArea
	plane := op.inSide * op.inSide
	cs := int32(2 * op.poolSide())
	op.parallel(op.batch, func(worker, lo, hi int) {
		patch := op.patch[worker]
		clear(dx[lo*in : hi*in])
		for i := lo; i < hi; i++ {
			dxi, argi, gi := dx[i*in:(i+1)*in], op.arg[i*os:(i+1)*os], g[i*os:(i+1)*os]
			for p := range pp {
				a0 := op.windowPos(p, 0)
				var hit [4]bool
				for o := range op.outC {
					a := argi[o*pp+p]
					if a < 0 {
						continue
					}
					k := 0
					switch a - a0 {
					case 1:
						k = 1
					case cs:
						k = 2
					case cs + 1:
						k = 3
					}
					pk := patch[k*wSize : (k+1)*wSize]
					if !hit[k] {
						clear(pk)
						hit[k] = true
					}
					kernels.Axpy(pk, w[o*wSize:(o+1)*wSize], gi[o*pp+p])
				}
				for k, h := range hit {
					if h {
						kernels.AddPatch5x5(dxi, op.inSide, plane, op.inC, patch[k*wSize:(k+1)*wSize], op.patchBase(op.windowPos(p, k)))
					}
				}
			}
		}
	})
}

// gradW writes dL/dw, summed over the batch: the batch is split into
// gradShards fixed parts, each summed on its own (in parallel when there
// are cores for it), then the parts are added in order, so the result does
// not depend on scheduling or on GOMAXPROCS.
func (op *convPoolOp) gradW(dw, x, g []float32) {
	in, os, pp := op.inSize(), op.outSize(), op.poolSide()*op.poolSide()
	wSize := op.inC * kernelArea
	plane := op.inSide * op.inSide
	op.parallel(gradShards, func(_, sLo, sHi int) {
		for shard := sLo; shard < sHi; shard++ {
			part := op.dwPart[shard]
			clear(part)
			iLo, iHi := shard*op.batch/gradShards, (shard+1)*op.batch/gradShards
			for o := range op.outC {
				// Branch-free: every entry is written, only the unclipped
				// ones (a >= 0) advance n; base[0] serves the clipped ones.
				offs, gs := op.hitOff[shard], op.hitG[shard]
				n := 0
				for i := iLo; i < iHi; i++ {
					argi, gi := op.arg[i*os+o*pp:i*os+(o+1)*pp], g[i*os+o*pp:i*os+(o+1)*pp]
					img := int32(i * in)
					for p, a := range argi {
						offs[n] = img + op.base[a+1]
						gs[n] = gi[p]
						n += int(uint32(^a) >> 31)
					}
				}
				offs, gs = offs[:n], gs[:n]
				kernels.PatchSum5x5(part[o*wSize:(o+1)*wSize], x, op.inSide, plane, op.inC, offs, gs)
			}
		}
	})
	copy(dw, op.dwPart[0])
	for _, part := range op.dwPart[1:] {
		for k, v := range part {
			dw[k] += v
		}
	}
}

// gradB writes dL/db: the sum of the unclipped outputs' gradients per channel.
func (op *convPoolOp) gradB(db, g []float32) {
	pp, os := op.poolSide()*op.poolSide(), op.outSize()
	splitRange(op.outC, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			var sum float32
			for i := range op.batch {
				at := i*os + o*pp
				gi := g[at : at+pp]
				var s float32
				for j, a := range op.arg[at : at+pp] {
					// Branch-free: the gradient's bits where a >= 0, +0 where clipped.
					s += math.Float32frombits(math.Float32bits(gi[j]) & uint32(^a>>31))
				}
				sum += s
			}
			db[o] = sum
		}
	})
}

func (op *convPoolDiffOp) ReturnsPtr() bool     { return true }
func (op *convPoolDiffOp) CallsExtern() bool    { return false }
func (op *convPoolDiffOp) OverwritesInput() int { return -1 }
func (op *convPoolDiffOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "mnist.convPoolDiff(%d)@%p", op.wrt, op.fwd)
}
func (op *convPoolDiffOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *convPoolDiffOp) String() string {
	return fmt.Sprintf("ConvPoolReLUDiff%s(%d→%d)", []string{"X", "W", "B"}[op.wrt], op.fwd.inC, op.fwd.outC)
}
