package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// Asset is a static file of a page (CSS, JS, SVG), served with its type and an ETag so
// browsers revalidate it rather than fetch it again.
type Asset struct {
	Body []byte
	Type string
	ETag string
}

// assetTypes are the types of the files pages have.
var assetTypes = map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}

// Assets reads every file of dir in fsys (an embedded directory), by name. It panics on a
// directory that cannot be read: the files are embedded, so that is a build mistake.
func Assets(fsys fs.FS, dir string) map[string]Asset {
	out := map[string]Asset{}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		out[e.Name()] = Asset{Body: body, Type: assetTypes[path.Ext(e.Name())], ETag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return out
}

// Serve writes the asset, revalidated by its ETag (304 when the browser has it).
func (a Asset) Serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.Type)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.ETag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.Body))
}
