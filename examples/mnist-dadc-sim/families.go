package main

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strings"

	"github.com/advspace/advspace/mnist"
)

// A family is one kind of hard drawing, made by distorting MNIST training
// digits. Each family has a "drawn" part (what the simulated people submit)
// and a disjoint "unseen" part (made from other source digits, only ever
// used to measure the model).
type family struct {
	name    string
	about   string
	distort func(src []uint8, rng *rand.Rand) []uint8
}

// families lists every family the simulator knows, by name.
var familyList = []family{
	{"rotated", "rotated by 40-65 degrees either way", func(src []uint8, rng *rand.Rand) []uint8 {
		deg := 40 + 25*rng.Float64()
		if rng.Intn(2) == 0 {
			deg = -deg
		}
		a := deg * math.Pi / 180
		return affine(src, math.Cos(a), -math.Sin(a), math.Sin(a), math.Cos(a), 0, 0)
	}},
	{"offcentre", "shrunk to 70-80% and drawn towards a corner", func(src []uint8, rng *rand.Rand) []uint8 {
		s := 0.7 + 0.1*rng.Float64()
		dx := (4 + 2*rng.Float64()) * float64(2*rng.Intn(2)-1)
		dy := (4 + 2*rng.Float64()) * float64(2*rng.Intn(2)-1)
		return affine(src, s, 0, 0, s, dx, dy)
	}},
	{"slanted", "sheared sideways by 0.8-1.1", func(src []uint8, rng *rand.Rand) []uint8 {
		k := 0.8 + 0.3*rng.Float64()
		if rng.Intn(2) == 0 {
			k = -k
		}
		return affine(src, 1, k, 0, 1, 0, 0)
	}},
	{"thick", "strokes thickened by 2 px and squashed sideways to 70%", func(src []uint8, rng *rand.Rand) []uint8 {
		return affine(dilate(dilate(src)), 0.7+0.05*rng.Float64(), 0, 0, 1, 0, 0)
	}},
	{"gaps", "a 3-4 px band through the middle erased", func(src []uint8, rng *rand.Rand) []uint8 {
		out := slices.Clone(src)
		w := 3 + rng.Intn(2)
		horizontal := rng.Intn(2) == 0
		c := 12 + rng.Intn(4)
		for y := range mnist.Side {
			for x := range mnist.Side {
				v := y
				if !horizontal {
					v = x
				}
				if v >= c && v < c+w {
					out[y*mnist.Side+x] = 0
				}
			}
		}
		return out
	}},
}

func familyByName(name string) (family, error) {
	for _, f := range familyList {
		if f.name == name {
			return f, nil
		}
	}
	names := make([]string, len(familyList))
	for i, f := range familyList {
		names[i] = f.name
	}
	return family{}, fmt.Errorf("unknown family %q; choose among %s", name, strings.Join(names, ", "))
}

// affine maps src through out(p) = src(A⁻¹(p − c − t) + c) where A = [[a b] [c d]]
// and c is the image centre, sampling bilinearly (0 outside the image).
func affine(src []uint8, a, b, c, d, tx, ty float64) []uint8 {
	det := a*d - b*c
	ia, ib, ic, id := d/det, -b/det, -c/det, a/det
	const ctr = (mnist.Side - 1) / 2.0
	out := make([]uint8, mnist.InputSize)
	for y := range mnist.Side {
		for x := range mnist.Side {
			px, py := float64(x)-ctr-tx, float64(y)-ctr-ty
			sx, sy := ia*px+ib*py+ctr, ic*px+id*py+ctr
			out[y*mnist.Side+x] = bilinear(src, sx, sy)
		}
	}
	return out
}

func bilinear(src []uint8, x, y float64) uint8 {
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	at := func(xi, yi int) float64 {
		if xi < 0 || yi < 0 || xi >= mnist.Side || yi >= mnist.Side {
			return 0
		}
		return float64(src[yi*mnist.Side+xi])
	}
	xi, yi := int(x0), int(y0)
	v := (1-fx)*(1-fy)*at(xi, yi) + fx*(1-fy)*at(xi+1, yi) + (1-fx)*fy*at(xi, yi+1) + fx*fy*at(xi+1, yi+1)
	return uint8(math.Round(min(max(v, 0), 255)))
}

// dilate is a 3x3 max filter: strokes grow by one pixel on every side.
func dilate(src []uint8) []uint8 {
	out := make([]uint8, mnist.InputSize)
	for y := range mnist.Side {
		for x := range mnist.Side {
			var m uint8
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					xx, yy := x+dx, y+dy
					if xx >= 0 && yy >= 0 && xx < mnist.Side && yy < mnist.Side {
						m = max(m, src[yy*mnist.Side+xx])
					}
				}
			}
			out[y*mnist.Side+x] = m
		}
	}
	return out
}

// drawings is one family's generated images.
type drawings struct {
	family        family
	drawn, unseen *mnist.Dataset
}

// makeDrawings builds family f's drawn and unseen parts from disjoint source
// digits of src (indices drawnIdx and unseenIdx), deterministically for seed.
func makeDrawings(f family, src *mnist.Dataset, drawnIdx, unseenIdx []int, seed int64) drawings {
	rng := rand.New(rand.NewSource(seed))
	build := func(idx []int) *mnist.Dataset {
		d := &mnist.Dataset{Rows: mnist.Side, Cols: mnist.Side}
		for _, i := range idx {
			d.Images = append(d.Images, f.distort(src.Pixels(i), rng)...)
			d.Labels = append(d.Labels, src.Labels[i])
		}
		return d
	}
	return drawings{family: f, drawn: build(drawnIdx), unseen: build(unseenIdx)}
}
