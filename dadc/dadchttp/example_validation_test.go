package dadchttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchttp"
	"github.com/advspace/advspace/dadc/dadctest"
)

// Validation by other people: alice's flag trains only once bob confirms
// her label (K = 1); she cannot confirm it herself.
func Example_validation() {
	model := dadctest.NewModel("len-v0", 2, func(w string) int {
		if len(w) > 5 {
			return 1
		}
		return 0
	})
	vals, _ := dadc.NewValidations(1, 2)
	loop, err := dadc.NewLoop[string](model, dadctest.NewFlagger[string](nil), dadc.Manual(), 2, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	app, err := dadchttp.New(loop, dadchttp.Codec[string](wordCodec{}), &dadchttp.Options{
		Validation: &dadchttp.ValidationOptions{Validations: vals}, // Persist: a flag.RecordLog's Append
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(app)
	defer loop.Close(context.Background())
	defer app.Close()
	defer srv.Close()

	do := func(method, path, session, body string) string {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: dadchttp.SessionCookie, Value: session})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprint(resp.StatusCode, " ", strings.TrimSpace(string(b)))
	}
	do("POST", "/api/flag", "alice", `{"word": "tiny", "label": 1, "confirm": true}`)
	id := loop.Samples(1)[0].ID
	fmt.Println(strings.Replace(do("POST", "/api/validate", "alice", `{"id": "`+id+`", "verdict": "correct"}`), id, "ID", 1))
	fmt.Println(strings.Replace(do("GET", "/api/validate/next", "bob", ""), id, "ID", 1))
	fmt.Println(strings.Replace(do("POST", "/api/validate", "bob", `{"id": "`+id+`", "verdict": "correct"}`), id, "ID", 1))
	fmt.Println("trainable:", vals.Trainable(id))
	// Output:
	// 403 {"error":"you cannot validate your own sample: other people validate it; ask /api/validate/next for someone else's"}
	// 200 {"id":"ID","label":1,"label_name":"long","model_label":0,"required":1,"word":"tiny"}
	// 200 {"id":"ID","status":"verified","correct":1,"incorrect":0,"flagged":0,"required":1}
	// trainable: true
}
