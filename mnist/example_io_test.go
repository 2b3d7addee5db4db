package mnist_test

import (
	"bytes"
	"fmt"
	"log"
	"os"

	"github.com/advspace/advspace/mnist"
)

// Load the small MNIST subset shipped in testdata (the full set: see package
// mnistdata).
func ExampleLoadDataDir() {
	train, test, err := mnist.LoadDataDir("../testdata/mnist")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("train: %d images of %dx%d, first label %d\n", train.Len(), train.Rows, train.Cols, train.Labels[0])
	fmt.Printf("test: %d images, first label %d\n", test.Len(), test.Labels[0])
	// Output:
	// train: 2000 images of 28x28, first label 5
	// test: 1000 images, first label 7
}

// Turn a drawing (PNG or JPEG, any size, dark on light or light on dark) into
// the model's 28x28 input, then into the normalized floats the network reads.
func ExamplePreprocess() {
	png, err := os.ReadFile("../testdata/digits/7-0.png")
	if err != nil {
		log.Fatal(err)
	}
	input, err := mnist.Preprocess(png, nil)
	if err != nil {
		log.Fatal(err) // errors.Is(err, mnist.ErrEmptyImage) for a blank drawing
	}
	x := make([]float32, 28*28)
	if err := mnist.Normalize(input, x); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v -> %d floats, background %.4f\n", input.Bounds(), len(x), x[0])
	// Output: (0,0)-(28,28) -> 784 floats, background -0.4242
}

// Write weights as safetensors (PyTorch's state_dict names and shapes) and
// read them back.
func ExampleWeights_Encode() {
	w := mnist.NewZeroWeights()
	w.Tensors["fc2.bias"][3] = 0.5
	var buf bytes.Buffer
	if err := w.Encode(&buf); err != nil {
		log.Fatal(err)
	}
	back, err := mnist.DecodeWeights(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(back.Tensors), "tensors,", back.Tensors["fc2.bias"][3], back.Metadata["format"])
	// Output: 8 tensors, 0.5 pt
}

// Layout names the tensors every weights file holds, in PyTorch state_dict
// order.
func ExampleLayout() {
	for _, s := range mnist.Layout() {
		fmt.Println(s.Name, s.Shape)
	}
	// Output:
	// conv1.weight [10 1 5 5]
	// conv1.bias [10]
	// conv2.weight [20 10 5 5]
	// conv2.bias [20]
	// fc1.weight [50 320]
	// fc1.bias [50]
	// fc2.weight [10 50]
	// fc2.bias [10]
}
