// Package web owns the pages people open in a browser: the seafarer's
// allowance page at "/" (a phone on a slow, expensive maritime link) and the
// console for company and union staff at "/console". Both are static files
// embedded in the binary. They hold no secrets: they talk to the /v1 API with
// the bearer token the person brings, and the API decides what each role may
// do; the pages only hide what the role could not do anyway.
//
// Everything is prepared once, when Mount runs: the shared JavaScript is
// bundled with each page's own, every asset is named by a hash of its
// content (so it can be cached for a year) and compressed with gzip and
// brotli, so a request costs a map lookup and a write.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

//go:embed assets
var files embed.FS

// ContentSecurityPolicy is sent with every page and asset. No inline script
// or style is allowed anywhere: scripts and styles come from /assets/ only,
// and the pages talk to nothing but their own origin.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// bundles are the assets served under /assets/: each is its sources joined
// in order. The seafarer page needs one stylesheet and one script, so its
// first view costs three requests on a link where every round trip is slow.
var bundles = []struct {
	name    string
	sources []string
}{
	{"style.css", []string{"style.css"}},
	{"seafarer.js", []string{"common.js", "seafarer.js"}},
	{"console.js", []string{"common.js", "console-union.js", "console-audit.js", "console.js"}},
}

// pages maps each page route to its HTML file.
var pages = []struct{ route, file string }{
	{"/", "seafarer.html"},
	{"/console", "console.html"},
}

// resource is one response body, ready in each encoding.
type resource struct {
	contentType  string
	cacheControl string
	etag         string
	plain        []byte
	gzip         []byte
	brotli       []byte
}

// site is the prepared set of pages and assets.
type site struct {
	// pages by route ("/", "/console").
	pages map[string]*resource
	// assets by hashed name ("seafarer.3f2a9c1b.js").
	assets map[string]*resource
	// assetPaths maps a bundle's plain name ("seafarer.js") to the path the
	// pages reference ("/assets/seafarer.3f2a9c1b.js").
	assetPaths map[string]string
}

// loadSite returns the site, built once from the embedded files.
var loadSite = sync.OnceValues(func() (*site, error) { return build(files) })

// contentTypes are set explicitly: the system's MIME table may name
// JavaScript otherwise, and nosniff makes browsers strict about it.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// build bundles, names, rewrites and compresses the files under assets/.
func build(fsys fs.FS) (*site, error) {
	s := &site{pages: map[string]*resource{}, assets: map[string]*resource{}, assetPaths: map[string]string{}}
	var rewrites []string
	for _, b := range bundles {
		var body bytes.Buffer
		for _, src := range b.sources {
			data, err := fs.ReadFile(fsys, "assets/"+src)
			if err != nil {
				return nil, fmt.Errorf("web: bundle %s: %w", b.name, err)
			}
			body.Write(data)
			if !bytes.HasSuffix(data, []byte("\n")) {
				body.WriteByte('\n')
			}
		}
		sum := sha256.Sum256(body.Bytes())
		ext := path.Ext(b.name)
		hashed := strings.TrimSuffix(b.name, ext) + "." + hex.EncodeToString(sum[:4]) + ext
		s.assets[hashed] = newResource(body.Bytes(), contentTypes[ext], "public, max-age=31536000, immutable")
		s.assetPaths[b.name] = "/assets/" + hashed
		rewrites = append(rewrites, `"/assets/`+b.name+`"`, `"/assets/`+hashed+`"`)
	}
	rewrite := strings.NewReplacer(rewrites...)
	for _, p := range pages {
		data, err := fs.ReadFile(fsys, "assets/"+p.file)
		if err != nil {
			return nil, fmt.Errorf("web: page %s: %w", p.route, err)
		}
		// HTML is revalidated on every visit (a 304 costs a few bytes), so a
		// new release is picked up at once and its assets by their new names.
		s.pages[p.route] = newResource([]byte(rewrite.Replace(string(data))), fiber.MIMETextHTMLCharsetUTF8, "no-cache")
	}
	return s, nil
}

func newResource(body []byte, contentType, cacheControl string) *resource {
	sum := sha256.Sum256(body)
	return &resource{
		contentType:  contentType,
		cacheControl: cacheControl,
		// Weak: the gzip, brotli and plain bodies are one representation.
		etag:   `W/"` + hex.EncodeToString(sum[:8]) + `"`,
		plain:  body,
		gzip:   fasthttp.AppendGzipBytesLevel(nil, body, fasthttp.CompressBestCompression),
		brotli: fasthttp.AppendBrotliBytesLevel(nil, body, fasthttp.CompressBrotliBestCompression),
	}
}

// Mount registers the pages and their assets on app: GET "/", "/console"
// and "/assets/*". They need no token; the API behind them does. Mount them
// before any catch-all handler.
func Mount(app *fiber.App) {
	s, err := loadSite()
	serve := func(find func(c *fiber.Ctx) *resource) fiber.Handler {
		return func(c *fiber.Ctx) error {
			if err != nil {
				return err // the embedded files are broken: a build defect, reported as 500
			}
			r := find(c)
			if r == nil {
				return fiber.NewError(fiber.StatusNotFound, "no such asset")
			}
			return r.write(c)
		}
	}
	for _, p := range pages {
		route := p.route
		app.Get(route, serve(func(*fiber.Ctx) *resource { return s.pages[route] }))
	}
	app.Get("/assets/*", serve(func(c *fiber.Ctx) *resource { return s.assets[c.Params("*")] }))
}

// write sends r in the best encoding the client accepts, or 304 when the
// client holds the same version.
func (r *resource) write(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.Set(fiber.HeaderContentSecurityPolicy, ContentSecurityPolicy)
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set(fiber.HeaderCacheControl, r.cacheControl)
	h.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	h.Set(fiber.HeaderETag, r.etag)
	if strings.Contains(c.Get(fiber.HeaderIfNoneMatch), r.etag[2:]) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	h.SetContentType(r.contentType)
	req := &c.Request().Header
	switch {
	case req.HasAcceptEncoding("br"):
		h.Set(fiber.HeaderContentEncoding, "br")
		return c.Send(r.brotli)
	case req.HasAcceptEncoding("gzip"):
		h.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(r.gzip)
	default:
		return c.Send(r.plain)
	}
}
