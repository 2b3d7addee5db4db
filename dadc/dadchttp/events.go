package dadchttp

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/advspace/advspace/dadc"
)

func (h *Handler[In]) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	select {
	case h.streams <- struct{}{}:
		defer func() { <-h.streams }()
	default:
		writeError(w, http.StatusServiceUnavailable, "too many open event streams; the page falls back to polling")
		return
	}
	events, cancel := h.loop.Subscribe(16)
	defer cancel()
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		// A server WriteTimeout would cut the stream; each write gets its own deadline.
		_ = rc.SetWriteDeadline(time.Now().Add(2 * EventKeepAlive))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 3000\n: connected\n\n")) {
		return
	}
	tick := time.NewTicker(EventKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-tick.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			if !retrainEvent(ev.Kind) {
				continue
			}
			b, err := json.Marshal(ev)
			if err != nil {
				h.log.Error("encode event", "error", err)
				continue
			}
			if !write(append(append([]byte("data: "), b...), '\n', '\n')) {
				return
			}
		}
	}
}

// retrainEvent reports whether events of kind k go to the event stream.
// Flagged and attempt events are not sent: one per submission to every open
// page would grow with the square of the audience; pages poll /api/stats
// for counts instead.
func retrainEvent(k dadc.EventKind) bool {
	switch k {
	case dadc.EventRetrainStarted, dadc.EventModelPromoted, dadc.EventModelRejected, dadc.EventRetrainFailed:
		return true
	}
	return false
}
