package webrtc

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"time"
)

// Page paths served by PageHandler.
const (
	PagePath   = "/phone"
	ScriptPath = "/phone.js"
	StylePath  = "/phone.css"
)

// pageCSP is the pages' Content-Security-Policy: scripts, styles and fetches from this origin
// only, nothing inline, no framing, no plugins, no forms, no base-URL tricks.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; media-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed assets/phone.html assets/phone.js assets/phone.css
var assets embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// PageHandler serves the softphone: GET /phone (the page), /phone.js and /phone.css, from files
// embedded in the binary. Every response carries a strict Content-Security-Policy (no inline
// script or style) and headers that forbid framing and sniffing. Other paths get 404.
func PageHandler() http.Handler {
	files := map[string]asset{}
	for p, name := range map[string]string{
		PagePath:   "assets/phone.html",
		ScriptPath: "assets/phone.js",
		StylePath:  "assets/phone.css",
	} {
		b, err := assets.ReadFile(name)
		if err != nil {
			panic("webrtc: embedded page asset missing: " + name) // a build defect, not a runtime condition
		}
		sum := sha256.Sum256(b)
		files[p] = asset{body: b, ctype: contentType(name), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := files[r.URL.Path]
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "microphone=(self), camera=(), geolocation=()")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "application/octet-stream"
}
