package mnist

import "image"

// Dataset is a set of labelled grayscale images in MNIST format: ink bright
// (255) on a dark (0) background, Rows x Cols pixels each, stored contiguously.
type Dataset struct {
	Rows, Cols int
	// Images holds Len()*Rows*Cols bytes, image after image, row-major.
	Images []uint8
	// Labels holds one class (0-9) per image.
	Labels []uint8
}

// Len returns the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

// Pixels returns image i's bytes (a sub-slice of Images; do not modify).
func (d *Dataset) Pixels(i int) []uint8 {
	n := d.Rows * d.Cols
	return d.Images[i*n : (i+1)*n : (i+1)*n]
}

// Gray returns image i as an *image.Gray (a copy).
func (d *Dataset) Gray(i int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, d.Cols, d.Rows))
	copy(g.Pix, d.Pixels(i))
	return g
}

// Subset returns a new Dataset holding the images at the given indices, in order.
func (d *Dataset) Subset(indices []int) *Dataset {
	n := d.Rows * d.Cols
	s := &Dataset{Rows: d.Rows, Cols: d.Cols, Images: make([]uint8, 0, len(indices)*n), Labels: make([]uint8, 0, len(indices))}
	for _, i := range indices {
		s.Images = append(s.Images, d.Pixels(i)...)
		s.Labels = append(s.Labels, d.Labels[i])
	}
	return s
}
