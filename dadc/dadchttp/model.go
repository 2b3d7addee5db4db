package dadchttp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/advspace/advspace/dadc"
)

// ModelVersionHeader names the response header that carries the version of
// the model GET /api/model downloads.
const ModelVersionHeader = "X-Model-Version"

// serveModel streams the serving model's weights from the model store, with
// its version in ModelVersionHeader and a file name that includes it. The
// weights come from the store, not from the served model, because a model the
// loop has replaced may already be closed; the version is read once, so the
// header and the bytes always belong together.
func (h *Handler[In]) serveModel(w http.ResponseWriter, r *http.Request) {
	if h.models == nil {
		writeError(w, http.StatusNotFound, "this server keeps no model store, so it has no model to download")
		return
	}
	version := h.loop.Stats().ModelVersion
	rc, card, err := h.models.Open(r.Context(), version)
	if errors.Is(err, dadc.ErrModelNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("the serving model %s is not in the model store (yet); try again in a moment", version))
		return
	}
	if err != nil {
		h.fail(w, r, fmt.Errorf("opening model %s: %w", version, err))
		return
	}
	defer rc.Close()
	ext := path.Ext(h.modelFile)
	name := strings.TrimSuffix(h.modelFile, ext) + "-" + safeFileChars(card.Version) + ext
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(ModelVersionHeader, card.Version)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("Cache-Control", "no-store")
	if _, err := io.Copy(w, rc); err != nil {
		h.log.Warn("dadchttp: sending the model failed", "version", card.Version, "error", err)
	}
}

// safeFileChars keeps letters, digits, '.', '-' and '_' of s and replaces
// anything else (such as the ':' of "sha256:…") with '-'.
func safeFileChars(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}
