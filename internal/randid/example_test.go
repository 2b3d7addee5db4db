package randid_test

import (
	"bytes"
	"fmt"

	"github.com/advspace/advspace/internal/randid"
)

func ExampleHex() {
	id := randid.Hex(4) // e.g. "9f86d081"
	fmt.Println(len(id))
	// Output: 8
}

func ExampleHexFrom() {
	id, err := randid.HexFrom(bytes.NewReader([]byte{0xde, 0xad, 0xbe, 0xef}), 4)
	fmt.Println(id, err)
	// Output: deadbeef <nil>
}
