package mnist

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/advspace/advspace/internal/kernels"
)

// The head of the training graph (dropout masks, fc1 + ReLU, fc2, and the
// cross-entropy loss on log-softmax) as custom gorgonia ops, for the same
// reason as the convolution ops of fusedops.go: each owns its output and
// gradient tensors and rewrites them every step, so the step allocates
// nothing for them, and none needs gorgonia's broadcasting or transposes.
// Like those, they are stateful and serve one goroutine at a time.

// opBase carries the boilerplate every op here shares.
type opBase struct{ name string }

func (b opBase) ReturnsPtr() bool     { return true }
func (b opBase) CallsExtern() bool    { return false }
func (b opBase) OverwritesInput() int { return -1 }
func (b opBase) String() string       { return b.name }

func hashOf(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func matType(a hm.Type) G.TensorType { return G.TensorType{Dims: 2, Of: a} }

// maskOp multiplies x (rows, cols) element-wise by a mask of the same shape
// (the dropout masks, drawn outside the graph). Its gradient with respect
// to x is the output gradient times the mask; the mask is not differentiated.
type maskOp struct {
	opBase
	rows, cols int
	out, dx    *tensor.Dense
}

func newMaskOp(name string, rows, cols int) *maskOp {
	return &maskOp{opBase: opBase{name}, rows: rows, cols: cols,
		out: tensor.New(tensor.WithShape(rows, cols), tensor.Of(tensor.Float32)),
		dx:  tensor.New(tensor.WithShape(rows, cols), tensor.Of(tensor.Float32))}
}

func (op *maskOp) Arity() int { return 2 }
func (op *maskOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(matType(a), matType(a), matType(a))
}
func (op *maskOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.rows, op.cols}, nil
}
func (op *maskOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "mnist.mask(%s)@%p", op.name, op) }
func (op *maskOp) Hashcode() uint32      { return hashOf(op) }

func (op *maskOp) Do(vals ...G.Value) (G.Value, error) {
	n := op.rows * op.cols
	if len(vals) != 2 {
		return nil, fmt.Errorf("mnist: %v takes 2 inputs, got %d", op, len(vals))
	}
	x, err := float32s(vals[0], n, op.name+" input")
	if err != nil {
		return nil, err
	}
	m, err := float32s(vals[1], n, op.name+" mask")
	if err != nil {
		return nil, err
	}
	out := op.out.Float32s()
	for i, v := range x {
		out[i] = v * m[i]
	}
	return op.out, nil
}

func (op *maskOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *maskOp) SymDiff(inputs G.Nodes, _ *G.Node, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("mnist: %v takes 2 inputs, got %d", op, len(inputs))
	}
	d, err := G.ApplyOp(&maskDiffOp{opBase{op.name + "Diff"}, op}, inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("mnist: gradient of %v: %w", op, err)
	}
	return G.Nodes{d, nil}, nil
}

// maskDiffOp is maskOp's gradient with respect to x: (mask, grad) -> grad*mask.
type maskDiffOp struct {
	opBase
	fwd *maskOp
}

func (op *maskDiffOp) Arity() int { return 2 }
func (op *maskDiffOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(matType(a), matType(a), matType(a))
}
func (op *maskDiffOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.fwd.rows, op.fwd.cols}, nil
}
func (op *maskDiffOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "mnist.maskDiff@%p", op.fwd) }
func (op *maskDiffOp) Hashcode() uint32      { return hashOf(op) }

func (op *maskDiffOp) Do(vals ...G.Value) (G.Value, error) {
	n := op.fwd.rows * op.fwd.cols
	if len(vals) != 2 {
		return nil, fmt.Errorf("mnist: %v takes 2 inputs, got %d", op, len(vals))
	}
	m, err := float32s(vals[0], n, op.name+" mask")
	if err != nil {
		return nil, err
	}
	g, err := float32s(vals[1], n, op.name+" gradient")
	if err != nil {
		return nil, err
	}
	dx := op.fwd.dx.Float32s()
	for i, v := range g {
		dx[i] = v * m[i]
	}
	return op.fwd.dx, nil
}

// fcOp is a fully connected layer, out = x·W + b, optionally followed by a
// ReLU. x is (batch, in), W is (in, out) (gorgonia layout: the transpose of
// PyTorch's) and b is (out).
type fcOp struct {
	opBase
	batch, in, outN int
	relu            bool

	out        *tensor.Dense
	dx, dw, db *tensor.Dense
	gr         []float32 // the output gradient through the ReLU, (batch, out)
}

func newFCOp(name string, batch, in, out int, relu bool) *fcOp {
	f32 := func(s ...int) *tensor.Dense { return tensor.New(tensor.WithShape(s...), tensor.Of(tensor.Float32)) }
	return &fcOp{opBase: opBase{name}, batch: batch, in: in, outN: out, relu: relu,
		out: f32(batch, out), dx: f32(batch, in), dw: f32(in, out), db: f32(out), gr: make([]float32, batch*out)}
}

func (op *fcOp) Arity() int { return 3 }
func (op *fcOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(matType(a), matType(a), G.TensorType{Dims: 1, Of: a}, matType(a))
}
func (op *fcOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.batch, op.outN}, nil
}
func (op *fcOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "mnist.fc(%s,%d,%d,%d,%t)@%p", op.name, op.batch, op.in, op.outN, op.relu, op)
}
func (op *fcOp) Hashcode() uint32 { return hashOf(op) }

func (op *fcOp) inputs(vals []G.Value) (x, w, b []float32, err error) {
	if len(vals) < 3 {
		return nil, nil, nil, fmt.Errorf("mnist: %v takes 3 inputs, got %d", op, len(vals))
	}
	if x, err = float32s(vals[0], op.batch*op.in, op.name+" input"); err != nil {
		return nil, nil, nil, err
	}
	if w, err = float32s(vals[1], op.in*op.outN, op.name+" weight"); err != nil {
		return nil, nil, nil, err
	}
	if b, err = float32s(vals[2], op.outN, op.name+" bias"); err != nil {
		return nil, nil, nil, err
	}
	return x, w, b, nil
}

func (op *fcOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 3 {
		return nil, fmt.Errorf("mnist: %v takes 3 inputs, got %d", op, len(vals))
	}
	x, w, b, err := op.inputs(vals)
	if err != nil {
		return nil, err
	}
	out := op.out.Float32s()
	splitRange(op.batch, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			oi := out[i*op.outN : (i+1)*op.outN]
			copy(oi, b)
			for k, v := range x[i*op.in : (i+1)*op.in] {
				if v != 0 { // ReLU and dropout leave many zeros
					kernels.Axpy(oi, w[k*op.outN:(k+1)*op.outN], v)
				}
			}
			if op.relu {
				for j, v := range oi {
					oi[j] = max(0, v)
				}
			}
		}
	})
	return op.out, nil
}

func (op *fcOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *fcOp) SymDiff(inputs G.Nodes, _ *G.Node, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("mnist: %v takes 3 inputs, got %d", op, len(inputs))
	}
	out := make(G.Nodes, 3)
	for wrt := range 3 {
		n, err := G.ApplyOp(&fcDiffOp{opBase{fmt.Sprintf("%sDiff%c", op.name, "XWB"[wrt])}, op, wrt}, inputs[0], inputs[1], grad)
		if err != nil {
			return nil, fmt.Errorf("mnist: gradient of %v: %w", op, err)
		}
		out[wrt] = n
	}
	return out, nil
}

// fcDiffOp is fcOp's gradient with respect to input wrt (0 x, 1 W, 2 b).
// Inputs: x, W and the output gradient.
type fcDiffOp struct {
	opBase
	fwd *fcOp
	wrt int
}

func (op *fcDiffOp) Arity() int { return 3 }
func (op *fcDiffOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	res := G.TensorType{Dims: []int{2, 2, 1}[op.wrt], Of: a}
	return hm.NewFnType(matType(a), matType(a), matType(a), res)
}
func (op *fcDiffOp) result() *tensor.Dense {
	return []*tensor.Dense{op.fwd.dx, op.fwd.dw, op.fwd.db}[op.wrt]
}
func (op *fcDiffOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.result().Shape().Clone(), nil
}
func (op *fcDiffOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "mnist.fcDiff(%d)@%p", op.wrt, op.fwd) }
func (op *fcDiffOp) Hashcode() uint32      { return hashOf(op) }

func (op *fcDiffOp) Do(vals ...G.Value) (G.Value, error) {
	f := op.fwd
	if len(vals) != 3 {
		return nil, fmt.Errorf("mnist: %v takes 3 inputs, got %d", op, len(vals))
	}
	x, err := float32s(vals[0], f.batch*f.in, op.name+" input")
	if err != nil {
		return nil, err
	}
	w, err := float32s(vals[1], f.in*f.outN, op.name+" weight")
	if err != nil {
		return nil, err
	}
	g, err := float32s(vals[2], f.batch*f.outN, op.name+" gradient")
	if err != nil {
		return nil, err
	}
	// The gradient through the ReLU: zero where the output was clipped.
	gr := f.gr
	copy(gr, g)
	if f.relu {
		for j, v := range f.out.Float32s() {
			if v <= 0 {
				gr[j] = 0
			}
		}
	}
	switch op.wrt {
	case 0: // dx = gr · Wᵀ, images split over the cores
		dx := f.dx.Float32s()
		splitRange(f.batch, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gi := gr[i*f.outN : (i+1)*f.outN]
				for k := range f.in {
					dx[i*f.in+k] = kernels.Dot(gi, w[k*f.outN:(k+1)*f.outN])
				}
			}
		})
	case 1: // dW = xᵀ · gr, rows of dW split over the cores (each sums the batch in order)
		dw := f.dw.Float32s()
		splitRange(f.in, func(lo, hi int) {
			clear(dw[lo*f.outN : hi*f.outN])
			for i := range f.batch {
				gi := gr[i*f.outN : (i+1)*f.outN]
				for k := lo; k < hi; k++ {
					if v := x[i*f.in+k]; v != 0 {
						kernels.Axpy(dw[k*f.outN:(k+1)*f.outN], gi, v)
					}
				}
			}
		})
	default: // db = column sums of gr
		db := f.db.Float32s()
		clear(db)
		for i := range f.batch {
			for j, v := range gr[i*f.outN : (i+1)*f.outN] {
				db[j] += v
			}
		}
	}
	return op.result(), nil
}

// logSoftmaxRows writes log(softmax(z)) of each row of z (rows of cols
// values) into dst, in float64 after subtracting the row's maximum.
func logSoftmaxRows(dst, z []float32, cols int) {
	for i := 0; i < len(z); i += cols {
		row := z[i : i+cols]
		m := row[0]
		for _, v := range row[1:] {
			m = max(m, v)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - m))
		}
		ls := math.Log(sum)
		for j, v := range row {
			dst[i+j] = float32(float64(v-m) - ls)
		}
	}
}

// logSoftmaxOp computes the log-probabilities of a (batch, classes) logit
// matrix. It gives the graph its log-probability node; training's loss is
// lossOp, which computes the same values itself, so this op has no
// gradient and must not be on the path to a cost.
type logSoftmaxOp struct {
	opBase
	rows, cols int
	out        *tensor.Dense
}

func (op *logSoftmaxOp) Arity() int { return 1 }
func (op *logSoftmaxOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(matType(a), matType(a))
}
func (op *logSoftmaxOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.rows, op.cols}, nil
}
func (op *logSoftmaxOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "mnist.logSoftmax@%p", op) }
func (op *logSoftmaxOp) Hashcode() uint32      { return hashOf(op) }
func (op *logSoftmaxOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("mnist: %v takes 1 input, got %d", op, len(vals))
	}
	z, err := float32s(vals[0], op.rows*op.cols, "logits")
	if err != nil {
		return nil, err
	}
	logSoftmaxRows(op.out.Float32s(), z, op.cols)
	return op.out, nil
}

// lossOp is the cross-entropy of soft targets y with log-softmax(z),
// averaged over the batch: −(1/batch) Σᵢ Σₖ yᵢₖ·log softmax(zᵢ)ₖ, a scalar.
// With one-hot y it is the NLL loss of the seed. Its gradient with respect
// to z is (softmax(zᵢ)·Σₖyᵢₖ − yᵢ)/batch times the output gradient; y is
// not differentiated.
type lossOp struct {
	opBase
	rows, cols int
	logp       []float32
	loss       *G.F32
	dz         *tensor.Dense
}

func newLossOp(rows, cols int) *lossOp {
	return &lossOp{opBase: opBase{"NLLLogSoftmax"}, rows: rows, cols: cols, logp: make([]float32, rows*cols),
		loss: new(G.F32), dz: tensor.New(tensor.WithShape(rows, cols), tensor.Of(tensor.Float32))}
}

func (op *lossOp) Arity() int { return 2 }
func (op *lossOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(matType(a), matType(a), a)
}
func (op *lossOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *lossOp) WriteHash(h hash.Hash)                          { fmt.Fprintf(h, "mnist.loss@%p", op) }
func (op *lossOp) Hashcode() uint32                               { return hashOf(op) }

func (op *lossOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("mnist: %v takes 2 inputs, got %d", op, len(vals))
	}
	z, err := float32s(vals[0], op.rows*op.cols, "logits")
	if err != nil {
		return nil, err
	}
	y, err := float32s(vals[1], op.rows*op.cols, "targets")
	if err != nil {
		return nil, err
	}
	logSoftmaxRows(op.logp, z, op.cols)
	var s float64
	for i, t := range y {
		s += float64(t) * float64(op.logp[i])
	}
	*op.loss = G.F32(-s / float64(op.rows))
	return op.loss, nil
}

func (op *lossOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *lossOp) SymDiff(inputs G.Nodes, _ *G.Node, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("mnist: %v takes 2 inputs, got %d", op, len(inputs))
	}
	d, err := G.ApplyOp(&lossDiffOp{opBase{"NLLLogSoftmaxDiff"}, op}, inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("mnist: gradient of %v: %w", op, err)
	}
	return G.Nodes{d, nil}, nil
}

// lossDiffOp is lossOp's gradient with respect to z: inputs y and the
// (scalar) output gradient; it reads the log-probabilities lossOp kept.
type lossDiffOp struct {
	opBase
	fwd *lossOp
}

func (op *lossDiffOp) Arity() int { return 2 }
func (op *lossDiffOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(matType(a), a, matType(a))
}
func (op *lossDiffOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.fwd.rows, op.fwd.cols}, nil
}
func (op *lossDiffOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "mnist.lossDiff@%p", op.fwd) }
func (op *lossDiffOp) Hashcode() uint32      { return hashOf(op) }

func (op *lossDiffOp) Do(vals ...G.Value) (G.Value, error) {
	f := op.fwd
	if len(vals) != 2 {
		return nil, fmt.Errorf("mnist: %v takes 2 inputs, got %d", op, len(vals))
	}
	y, err := float32s(vals[0], f.rows*f.cols, "targets")
	if err != nil {
		return nil, err
	}
	var g float32
	switch v := vals[1].(type) {
	case *G.F32:
		g = float32(*v)
	case tensor.Tensor:
		d, ok := v.Data().(float32)
		if !ok {
			return nil, fmt.Errorf("mnist: %v: loss gradient holds %T, want float32", op, v.Data())
		}
		g = d
	default:
		return nil, fmt.Errorf("mnist: %v: loss gradient is %T", op, vals[1])
	}
	scale := g / float32(f.rows)
	dz := f.dz.Float32s()
	for i := 0; i < len(y); i += f.cols {
		var ysum float32
		for _, t := range y[i : i+f.cols] {
			ysum += t
		}
		for j := i; j < i+f.cols; j++ {
			dz[j] = scale * (float32(math.Exp(float64(f.logp[j])))*ysum - y[j])
		}
	}
	return f.dz, nil
}
