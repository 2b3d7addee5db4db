package hubtest_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/advspace/advspace/hfhub/hubtest"
)

// A test starts a fake Hub, talks to it over HTTP as a Hub client would, and
// inspects what was committed.
func Example() {
	hub := hubtest.NewServer(nil) // accepts hubtest.DefaultToken
	defer hub.Close()

	post := func(path, contentType, body string) int {
		req, _ := http.NewRequest("POST", hub.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+hubtest.DefaultToken)
		req.Header.Set("Content-Type", contentType)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	fmt.Println("create:", post("/api/repos/create", "application/json", `{"name":"flags","type":"dataset"}`))
	content := base64.StdEncoding.EncodeToString([]byte(`{"file_name":"a.png","label":3}` + "\n"))
	fmt.Println("commit:", post("/api/datasets/hubtest/flags/commit/main", "application/x-ndjson",
		`{"key":"header","value":{"summary":"Add metadata"}}`+"\n"+
			`{"key":"file","value":{"path":"data/metadata.jsonl","content":"`+content+`","encoding":"base64"}}`+"\n"))

	for _, c := range hub.Commits("dataset", "hubtest/flags") {
		fmt.Println(c.Summary, c.Changed)
	}
	res, _ := http.Get(hub.URL() + "/datasets/hubtest/flags/resolve/main/data/metadata.jsonl")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(string(body))
	fmt.Println(res.Header.Get("ETag") == `"`+hubtest.GitBlobOID(body)+`"`)
	// Output:
	// create: 200
	// commit: 200
	// initial commit [.gitattributes]
	// Add metadata [data/metadata.jsonl]
	// {"file_name":"a.png","label":3}
	// true
}

// Faults make the next matching requests fail, to test a client's retries.
func ExampleServer_InjectFault() {
	hub := hubtest.NewServer(nil)
	defer hub.Close()
	hub.InjectFault(hubtest.Fault{Op: hubtest.OpWhoami, Status: http.StatusServiceUnavailable, Times: 2})

	for range 3 {
		req, _ := http.NewRequest("GET", hub.URL()+"/api/whoami-v2", nil)
		req.Header.Set("Authorization", "Bearer "+hubtest.DefaultToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		res.Body.Close()
		fmt.Println(res.StatusCode, res.Header.Get("X-Error-Message"))
	}
	// Output:
	// 503 Service Unavailable (hubtest: injected fault)
	// 503 Service Unavailable (hubtest: injected fault)
	// 200
}
