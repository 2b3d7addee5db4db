package mnistweb

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var staticFiles embed.FS

// PageOptions configure the page. The zero value is a page without a
// dataset link.
type PageOptions struct {
	// HubDataset, if set, is the Hub dataset ("owner/name") the page links
	// to.
	HubDataset string
}

// Page returns the drawing page as an http.Handler for a dadchttp.Handler's
// Options.Page: GET / is the page (canvas, prediction with probability
// bars, the 28x28 the model saw, digit picker, Flag, counters) and GET
// /static/NAME its script and style sheet, all embedded (no CDN; works
// offline). It uses relative URLs only, so it works under any prefix.
func Page(opts *PageOptions) (http.Handler, error) {
	var o PageOptions
	if opts != nil {
		o = *opts
	}
	tmpl, err := template.ParseFS(staticFiles, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("mnistweb: parse page: %w", err)
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, struct{ HubDataset string }{o.HubDataset}); err != nil {
		return nil, fmt.Errorf("mnistweb: render page: %w", err)
	}
	return &pageHandler{index: page.Bytes()}, nil
}

type pageHandler struct{ index []byte }

func (p *pageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" || r.URL.Path == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(p.index)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	if name == r.URL.Path || name == "" || name == "index.html" || strings.Contains(name, "/") || !fs.ValidPath(name) {
		notFound(w)
		return
	}
	if _, err := fs.Stat(staticFiles, "static/"+name); err != nil {
		notFound(w)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, staticFiles, "static/"+name)
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"error":"no such file"}` + "\n"))
}
