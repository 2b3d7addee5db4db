package mnist

import "slices"

// TensorSpec names one tensor of the network and its shape, exactly as in the
// state_dict() of the PyTorch model it mirrors (conv1 and conv2 as
// nn.Conv2d(1, 10, 5) and nn.Conv2d(10, 20, 5), fc1 and fc2 as
// nn.Linear(320, 50) and nn.Linear(50, 10)).
type TensorSpec struct {
	Name  string
	Shape []int
}

// layout lists the network's tensors in state_dict order; Layout returns a copy.
var layout = []TensorSpec{
	{"conv1.weight", []int{10, 1, 5, 5}},
	{"conv1.bias", []int{10}},
	{"conv2.weight", []int{20, 10, 5, 5}},
	{"conv2.bias", []int{20}},
	{"fc1.weight", []int{50, 320}},
	{"fc1.bias", []int{50}},
	{"fc2.weight", []int{10, 50}},
	{"fc2.bias", []int{10}},
}

// Layout returns the network's eight tensors in PyTorch state_dict order
// (conv1.weight [10 1 5 5], conv1.bias [10], conv2.weight [20 10 5 5],
// conv2.bias [20], fc1.weight [50 320], fc1.bias [50], fc2.weight [10 50],
// fc2.bias [10]). Weights files hold exactly these tensors, as float32, with
// these names and shapes. The result is a fresh copy that the caller may
// change.
func Layout() []TensorSpec {
	out := make([]TensorSpec, len(layout))
	for i, s := range layout {
		out[i] = TensorSpec{Name: s.Name, Shape: slices.Clone(s.Shape)}
	}
	return out
}

// NumParams is the number of trainable parameters of the network (21,840).
const NumParams = 10*1*5*5 + 10 + 20*10*5*5 + 20 + 50*320 + 50 + 10*50 + 10

// Weights holds the network's parameters in PyTorch layout (row-major, fc
// weights as [out, in]). A Weights value is not safe for concurrent mutation;
// models take a private copy (Clone) so callers may reuse theirs.
type Weights struct {
	// Tensors maps each tensor name of Layout to its row-major float32 data.
	Tensors map[string][]float32
	// Metadata is the safetensors __metadata__ map (string to string).
	Metadata map[string]string
}

// Clone returns a deep copy of w.
func (w *Weights) Clone() *Weights {
	c := &Weights{Tensors: make(map[string][]float32, len(w.Tensors))}
	for k, v := range w.Tensors {
		c.Tensors[k] = slices.Clone(v)
	}
	if w.Metadata != nil {
		c.Metadata = make(map[string]string, len(w.Metadata))
		for k, v := range w.Metadata {
			c.Metadata[k] = v
		}
	}
	return c
}
