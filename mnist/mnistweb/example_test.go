package mnistweb_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadctest"
	"github.com/advspace/advspace/flag"
	"github.com/advspace/advspace/mnist/mnistweb"
)

// A Space mounted under /digits/ of an existing server, over a DADC loop with
// any model of 28x28 images (here a stand-in that always says 3; the real app
// uses mnist.NewModel) and a local ImageFolder store.
func Example() {
	model := dadctest.NewModel("always-3", 10, func(*image.Gray) int { return 3 })
	root, err := os.MkdirTemp("", "space-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)
	store, err := flag.NewDir(root, flag.GrayPNG(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	loop, err := dadc.NewLoop(model, dadc.Flagger[*image.Gray](store), dadc.EveryN(10), 10, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer loop.Close(context.Background())
	sp, err := mnistweb.New(loop, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sp.Close()

	mux := http.NewServeMux()
	mux.Handle("/digits/", http.StripPrefix("/digits", sp))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A drawing: a dark vertical stroke on white, like the page's canvas.
	img := image.NewGray(image.Rect(0, 0, 140, 140))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(62, 20, 78, 120), image.NewUniform(color.Black), image.Point{}, draw.Src)
	var drawing bytes.Buffer
	_ = png.Encode(&drawing, img)

	resp, err := http.Post(srv.URL+"/digits/api/predict", "image/png", bytes.NewReader(drawing.Bytes()))
	if err != nil {
		fmt.Println(err)
		return
	}
	var pred struct{ Label int }
	_ = json.NewDecoder(resp.Body).Decode(&pred)
	resp.Body.Close()
	fmt.Println("predict:", resp.StatusCode, "label", pred.Label)

	// The person says it is a 1. The model is sure it is a 3, so the page
	// asks first (409, nothing stored); confirmed, the sample is stored.
	for _, confirm := range []bool{false, true} {
		body, _ := json.Marshal(map[string]any{"image": "data:image/png;base64," + encode(drawing.Bytes()), "label": 1, "confirm": confirm})
		resp, err = http.Post(srv.URL+"/digits/api/flag", "application/json", bytes.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		var flagged struct{ Message string }
		_ = json.NewDecoder(resp.Body).Decode(&flagged)
		resp.Body.Close()
		fmt.Println("flag:", resp.StatusCode, flagged.Message)
		fmt.Println("stored:", store.Count())
	}
	// Output:
	// predict: 200 label 3
	// flag: 409 The model is 90% sure this is a 3. Is it really a 1? Nothing was stored: send the same request with "confirm": true to store it.
	// stored: 0
	// flag: 201 ✔ (1) saved — you fooled the model
	// stored: 1
}

func encode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
