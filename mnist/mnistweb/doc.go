// Package mnistweb is the MNIST part of the advspace web app: the input
// codec for drawings (PNG or JPEG uploads and data URLs to the model's 28x28
// input, and back to a PNG data URL for display) and the drawing page with
// its embedded scripts and style sheet. To predict, the page sends its
// drawing scaled to 84x84 as a PNG it encodes itself, 8-bit greyscale with
// stored (uncompressed) deflate blocks, which the server reads with one copy
// instead of inflating and converting the canvas's own RGBA PNG; its grey
// levels are image/color's GrayModel of the canvas's pixels, so the model's
// input is the same. Flags send the canvas's own (compressed) PNG, which is
// what the dataset keeps.
//
// New puts them together with package dadchttp into the whole app as one
// http.Handler over a *dadc.Loop[*image.Gray]:
//
//	GET  /              the page (static files embedded, no CDN, works offline)
//	POST /api/predict   raw image/png or image/jpeg body, or JSON {"image": data URL}
//	POST /api/flag      JSON {"image": data URL, "label": 0-9}
//	GET  /api/stats     the loop's statistics and round history
//	GET  /api/samples   recent fooling samples (?limit=1..100, default 20)
//	GET  /api/events    Server-Sent Events: retrain started, model promoted, ...
//	GET  /healthz       liveness
//	GET  /metrics       Prometheus text format
//
// To mount the app under a prefix, strip the prefix: the page only uses
// relative URLs.
//
//	mux.Handle("/digits/", http.StripPrefix("/digits", app))
//
// The page puts server data into the document as text, never as HTML, and
// has no inline script or style, so the strict Content-Security-Policy of
// dadchttp.SecurityHeaders holds. Everything here is safe for concurrent use.
package mnistweb
