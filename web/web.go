// Package web serves the browser pages (playground) as static files embedded
// in the binary: no build step, no CDN, a strict Content-Security-Policy so the
// pages can only talk to the server that served them.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// CSP allows scripts, styles and fetches from the serving origin only; images
// may also be data:/blob: URLs (b64_json results, mask canvas).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; connect-src 'self'; form-action 'none'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// Handler serves the embedded pages and assets; mount it at /web/ with the
// prefix stripped, and /playground as an alias of playground.html.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed directive guarantees "static" exists
	}
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", CSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		fsrv.ServeHTTP(w, r)
	})
}
