// Package console is Sluice's web console: pages, a script and a style
// sheet embedded in the binary and served under /ui/ by the API (which
// puts them behind its token check; see api.WithConsole). The pages hold
// no data: the script reads everything from the API a browser may call,
// the same routes the CLI uses, plus /v1/overview, /v1/pipes/{name}/history
// and /v1/pipes/{name}/failures.
//
// The script is plain JavaScript written for this console, with no
// framework, no build step and no npm packages: what is embedded is what
// is served, so there is nothing to install or rebuild to run it.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Handler serves the console: /ui/ is the single page (the pipe list, a
// pipe's page and the forms are routes of its script, after '#'),
// /ui/login the sign-in page, /ui/assets/ the script and style sheet.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// Pages are small and change with the binary: never stale.
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, sub, name)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ui/{$}", page("index.html"))
	mux.Handle("GET /ui/login", page("login.html"))
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".html") || r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // pages have their own paths; no listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	return mux
}
