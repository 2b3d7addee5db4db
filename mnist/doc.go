// Package mnist is the MNIST digit classifier of advspace, on gorgonia: the
// network (PyTorch's classic two-convolution MNIST model), its training and
// evaluation, inference that many goroutines can call at once, weights I/O
// in safetensors with PyTorch's state_dict names and layouts, MNIST data
// sets in IDX files, drawing-to-28x28 preprocessing, and embedded pretrained
// weights. Gorgonia types never leave this package.
//
// # Inputs
//
// The model reads 28x28 grayscale images in MNIST format: bright ink on a
// dark background, the digit's longer side scaled to 20 pixels and its
// centre of mass at the centre. Preprocess turns an uploaded PNG or JPEG
// drawing or photo into that format; it reads the image the way a browser
// shows it, applying the EXIF Orientation tag (all eight values) that phones
// write when they store a photo sideways. The PNGs that browsers' canvases
// and image editors write (8-bit greyscale, RGB, RGBA or palette, not
// interlaced) are decoded straight to a luminance plane, byte for byte what
// decoding with image/png and converting gives, at a fraction of its time
// and memory (the one difference: a wrong zlib Adler-32 checksum is not
// checked, the chunk CRCs are); other PNGs and JPEGs go through the
// standard decoders.
//
// # Data
//
// LoadDataDir and LoadIDX read the MNIST IDX files (gzip-compressed or
// raw); package mnistdata finds the full data set on the machine. Weights
// are read and written as safetensors files that PyTorch's
// model.load_state_dict(safetensors.torch.load_file(path)) accepts.
//
// # Errors
//
// Every sentinel error of the package is declared in one place and wrapped
// with context; match them with errors.Is. *WeightsError and
// *ImageTooLargeError carry details for callers that need them.
package mnist
