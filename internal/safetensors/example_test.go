package safetensors_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/advspace/advspace/internal/safetensors"
)

func Example() {
	var buf bytes.Buffer
	tensors := []safetensors.Tensor{{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}}
	if err := safetensors.Encode(&buf, tensors, map[string]string{"format": "pt"}); err != nil {
		log.Fatal(err)
	}
	got, md, err := safetensors.Decode(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got[0].Name, got[0].Shape, got[0].Data, md["format"])
	// Output: w [2 2] [1 2 3 4] pt
}
