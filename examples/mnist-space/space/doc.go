// Package space is the adversarial "space" web app of advspace as a mountable
// http.Handler: a page where people draw digits and try to fool an MNIST model,
// and the JSON API behind it.
//
// A Space serves, relative to wherever it is mounted:
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
// Every answer of the API is JSON; bad input gets a 4xx status with
// {"error": "..."} and changes nothing. Bodies are limited before they are
// decoded, images are checked for their declared size before their pixels
// are, and /api/flag is rate limited per client.
//
// The work happens in a DADC loop (package dadc): a Space predicts and flags
// through it and never trains inside a request. To mount a Space under a
// prefix, strip the prefix: the page only uses relative URLs.
//
//	mux.Handle("/digits/", http.StripPrefix("/digits", sp))
//
// Config.Loop is the small Loop interface of this package, which
// *dadc.Loop[*image.Gray] implements; any model and flagger plug in through
// dadc.NewLoop. Close the Space (http.Server.RegisterOnShutdown) before the
// Loop: it ends the open event streams that would otherwise hold a graceful
// shutdown up.
//
// Security: every answer carries a Content-Security-Policy that allows only
// the Space's own scripts and styles (the page has no inline code) and data:
// images, plus X-Content-Type-Options, Referrer-Policy and X-Frame-Options;
// the page puts server data into the document as text, never as HTML. The
// API takes only application/json, image/png and image/jpeg bodies, which a
// browser will not send cross-origin without a CORS preflight that the Space
// does not grant. A person's session is an anonymous random id in an
// HttpOnly, SameSite=Lax cookie; it is stored with their samples and never
// shown to others.
//
// All methods of a Space are safe for concurrent use.
package space
