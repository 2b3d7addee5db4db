// Package dadchttp is the web layer of a dynamic adversarial data collection
// loop: an http.Handler over any dadc loop, generic over the input type.
//
// A Handler serves, relative to wherever it is mounted:
//
//	GET  /              the page, if Options.Page is set (with a session cookie)
//	GET  /static/...    the page's files, if Options.Page is set
//	POST /api/predict   JSON {FIELD: input}, or a raw body the codec takes
//	POST /api/flag      JSON {FIELD: input, "label": 0..n-1, "confirm"?: true}
//	GET  /api/stats     the loop's statistics and round history
//	GET  /api/validate/next  a sample someone else flagged, to validate
//	POST /api/validate  JSON {"id", "verdict": "correct"|"incorrect"|"flagged", "label"?}
//	POST /api/retract   JSON {"id"}: the writer withdraws their sample
//	GET  /api/samples   recent fooling samples (?limit=1..100, default 20)
//	GET  /api/events    Server-Sent Events: retrain started, model promoted, ...
//	GET  /healthz       liveness (503 once closed)
//	GET  /metrics       Prometheus text format
//
// FIELD and the input's form come from a Codec, the only part that knows
// the input kind: it decodes a request value into an input (with an *Error
// carrying the HTTP status for what a person must fix), renders an input
// for display, and names the labels. Package
// github.com/advspace/advspace/mnist/mnistweb has the codec of drawings and
// the drawing page.
//
// Every answer is JSON; bad input gets a 4xx status with {"error": "..."}
// and changes nothing. /api/flag answers 201 when the model was fooled and
// the sample is durable, 200 {"fooled": false, ...} when the model was right,
// 429 with Retry-After when the client flags too fast, and 507 when the
// flagger's disk is full. A flag whose label disagrees with a model at
// least Options.ConfirmThreshold sure of its answer (default 0.9) is
// answered 409 {"needs_confirmation": true, ...} and stored only when sent
// again with "confirm": true.
//
// With Options.Validation, other people validate each stored sample (as in
// Dynabench): /api/validate/next offers a sample the session did not write
// and has not judged (204 when none); /api/validate records a verdict (403
// for your own sample, 409 for a second verdict, 404 for an unknown id);
// /api/retract lets the writer withdraw a sample (403 for anyone else). A
// sample is verified after K matching "correct" verdicts and rejected after
// K others; give the loop dadc.Validations.Trainable as its training
// filter so that only verified samples train. /api/stats then reports the
// verified model error rate per round and for the asking session. The
// session is the anonymous cookie the page sets.
//
// The cross-cutting concerns are middleware, func(http.Handler)
// http.Handler, usable on their own routes too: SecurityHeaders, BodyLimit
// (which lets a client that sends its whole body before reading still read
// the 413), RequestLog, RequestMetrics, RateLimit with a per-client Limiter
// (RemoteIP, or ForwardedClientIP behind trusted reverse proxies), and
// Idempotency (an Idempotency-Key header, or the same body from the same
// client within a short window, gets the first answer again and stores
// nothing new).
//
// Lifecycle: whoever constructs a part closes it, in reverse order of
// construction. Stop the HTTP server (http.Server.Shutdown; register
// Handler.Close with RegisterOnShutdown so that open event streams end),
// close the Handler, then the loop, then the flaggers you built. Close is
// idempotent.
//
// All methods of a Handler are safe for concurrent use.
package dadchttp
