package dadchttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/dadc/dadctest"
)

// wordCodec takes words as JSON strings; its model guesses whether a word
// is short (label 0) or long (label 1).
type wordCodec struct{}

func (wordCodec) Spec() dadchttp.InputSpec {
	return dadchttp.InputSpec{Field: "word", Example: `"hello"`, Noun: "the word", Labels: []string{"short", "long"}}
}

func (wordCodec) DecodeJSON(raw json.RawMessage) (string, error) {
	var w string
	if err := json.Unmarshal(raw, &w); err != nil || w == "" {
		return "", dadchttp.Errorf(http.StatusBadRequest, `word must be a non-empty string: send {"word": "hello"}`)
	}
	return w, nil
}

func (wordCodec) Render(w string) (any, error) { return w, nil }

// A loop over words served over HTTP: any input kind plugs in with a Codec.
func Example() {
	model := dadctest.NewModel("len-v0", 2, func(w string) int {
		if len(w) > 5 {
			return 1
		}
		return 0
	})
	flagger := dadctest.NewFlagger[string](nil)
	loop, err := dadc.NewLoop[string](model, flagger, dadc.Manual(), 2, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	app, err := dadchttp.New(loop, dadchttp.Codec[string](wordCodec{}), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(app)
	// Whoever constructs it closes it, in reverse order.
	defer loop.Close(context.Background())
	defer app.Close()
	defer srv.Close()

	post := func(path, body string) {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out struct {
			Label   int    `json:"label"`
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(b, &out)
		fmt.Println(strings.TrimSpace(fmt.Sprint(resp.StatusCode, " ", out.Label, " ", out.Message+out.Error)))
	}
	post("/api/predict", `{"word": "tiny"}`)
	// The model is sure of its answer: a disagreement must be confirmed.
	post("/api/flag", `{"word": "supercalifragilistic", "label": 0}`)
	post("/api/flag", `{"word": "supercalifragilistic", "label": 0, "confirm": true}`)
	post("/api/flag", `{"word": 7, "label": 0}`)
	// Output:
	// 200 0
	// 409 0 The model is 90% sure this is a long. Is it really a short? Nothing was stored: send the same request with "confirm": true to store it.
	// 201 0 ✔ (1) saved — you fooled the model
	// 400 0 word must be a non-empty string: send {"word": "hello"}
}
