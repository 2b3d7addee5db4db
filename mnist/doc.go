// Package mnist is the seed's MNIST digit classifier on gorgonia: the network,
// its training and evaluation, inference that many goroutines can call at
// once, weights I/O in safetensors with PyTorch's state_dict names and layouts,
// IDX data files, drawing-to-28x28 preprocessing, and embedded pretrained
// weights. Gorgonia types never leave this package.
package mnist
