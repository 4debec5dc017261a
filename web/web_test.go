package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// firstViewBudget is what the seafarer page may cost on its first load, in
// compressed bytes: HTML, stylesheet and script together.
const firstViewBudget = 50 << 10

func mustApp(t *testing.T) *fiber.App {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	Mount(app)
	return app
}

func mustGet(t *testing.T, app *fiber.App, path string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return res, body
}

var (
	assetRef     = regexp.MustCompile(`(?:href|src)="(/assets/[^"]+)"`)
	inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	inlineStyle  = regexp.MustCompile(`<style|\sstyle=|\son[a-z]+=`)
)

// firstViewAssets lists the stylesheet and scripts a page loads.
func firstViewAssets(t *testing.T, html []byte) []string {
	t.Helper()
	var out []string
	for _, m := range assetRef.FindAllSubmatch(html, -1) {
		out = append(out, string(m[1]))
	}
	if len(out) < 2 {
		t.Fatalf("the page references %d assets, want a stylesheet and a script: %q", len(out), out)
	}
	return out
}

func TestSeafarerFirstViewTransfersUnder50KB(t *testing.T) {
	app := mustApp(t)
	for _, enc := range []string{"gzip", "br"} {
		t.Run(enc, func(t *testing.T) {
			res, html := mustGet(t, app, "/", "Accept-Encoding", enc)
			if got := res.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("GET / Content-Encoding = %q, want %q", got, enc)
			}
			total := len(html)
			plain := decode(t, enc, html)
			for _, asset := range firstViewAssets(t, plain) {
				res, body := mustGet(t, app, asset, "Accept-Encoding", enc)
				if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != enc {
					t.Fatalf("GET %s = %d, Content-Encoding %q", asset, res.StatusCode, res.Header.Get("Content-Encoding"))
				}
				total += len(body)
			}
			t.Logf("seafarer page first view, %s: %d bytes", enc, total)
			if total >= firstViewBudget {
				t.Errorf("first view costs %d bytes compressed with %s, budget %d", total, enc, firstViewBudget)
			}
		})
	}
}

func decode(t *testing.T, enc string, body []byte) []byte {
	t.Helper()
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return out
	case "br":
		out, err := fasthttp.AppendUnbrotliBytes(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	return body
}

func TestEveryPageAndAssetCarriesAStrictContentSecurityPolicy(t *testing.T) {
	app := mustApp(t)
	site, err := loadSite()
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/", "/console"}
	for name := range site.assets {
		paths = append(paths, "/assets/"+name)
	}
	for _, path := range paths {
		res, _ := mustGet(t, app, path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, res.StatusCode)
			continue
		}
		csp := res.Header.Get("Content-Security-Policy")
		if csp == "" {
			t.Errorf("GET %s: no Content-Security-Policy", path)
		}
		for _, weak := range []string{"unsafe-inline", "unsafe-eval", "*"} {
			if strings.Contains(csp, weak) {
				t.Errorf("GET %s: Content-Security-Policy allows %s: %s", path, weak, csp)
			}
		}
		for _, must := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, must) {
				t.Errorf("GET %s: Content-Security-Policy lacks %q", path, must)
			}
		}
		for header, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Vary": "Accept-Encoding"} {
			if got := res.Header.Get(header); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, header, got, want)
			}
		}
	}
}

func TestPagesHoldNoInlineScriptStyleOrSecret(t *testing.T) {
	site, err := loadSite()
	if err != nil {
		t.Fatal(err)
	}
	for route, page := range site.pages {
		html := page.plain
		if m := inlineScript.Find(html); m != nil {
			t.Errorf("page %s has an inline script: %q", route, m)
		}
		if m := inlineStyle.Find(html); m != nil {
			t.Errorf("page %s has inline style or an inline event handler: %q", route, m)
		}
		for _, ref := range firstViewAssets(t, html) {
			if site.assets[strings.TrimPrefix(ref, "/assets/")] == nil {
				t.Errorf("page %s references %s, which is not served", route, ref)
			}
		}
	}
	secret := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.|-----BEGIN|(?i)api[_-]?key\s*[:=]`)
	for name, asset := range site.assets {
		if m := secret.Find(asset.plain); m != nil {
			t.Errorf("asset %s holds what looks like a secret: %q", name, m)
		}
		if strings.HasSuffix(name, ".js") && bytes.Contains(asset.plain, []byte("localStorage.setItem(TOKEN")) {
			t.Errorf("asset %s keeps the token in localStorage; only memory or sessionStorage may hold it", name)
		}
	}
}

func TestAssetsAreNamedByContentAndCachedForAYear(t *testing.T) {
	app := mustApp(t)
	site, err := loadSite()
	if err != nil {
		t.Fatal(err)
	}
	hashed := regexp.MustCompile(`^[a-z]+\.[0-9a-f]{8}\.(js|css)$`)
	for name := range site.assets {
		if !hashed.MatchString(name) {
			t.Errorf("asset %s is not named by its content hash", name)
		}
		res, _ := mustGet(t, app, "/assets/"+name)
		if got := res.Header.Get("Cache-Control"); !strings.Contains(got, "immutable") || !strings.Contains(got, "max-age=31536000") {
			t.Errorf("GET /assets/%s Cache-Control = %q, want a year, immutable", name, got)
		}
	}
	for _, page := range []string{"/", "/console"} {
		res, _ := mustGet(t, app, page)
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s Cache-Control = %q, want no-cache (revalidated, so a release is seen at once)", page, got)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s Content-Type = %q", page, ct)
		}
	}
	for _, missing := range []string{"/assets/seafarer.js", "/assets/nope.00000000.js", "/assets/"} {
		if res, _ := mustGet(t, app, missing); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", missing, res.StatusCode)
		}
	}
}

func TestRevalidatedPageCostsA304(t *testing.T) {
	app := mustApp(t)
	res, _ := mustGet(t, app, "/", "Accept-Encoding", "gzip")
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("GET / has no ETag")
	}
	res, body := mustGet(t, app, "/", "Accept-Encoding", "gzip", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("GET / If-None-Match %s = %d with %d bytes, want 304 and none", etag, res.StatusCode, len(body))
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("a 304 lacks the Content-Security-Policy")
	}
}

func TestEncodingsCarryTheSameBytes(t *testing.T) {
	app := mustApp(t)
	site, err := loadSite()
	if err != nil {
		t.Fatal(err)
	}
	for path, r := range map[string]*resource{"/": site.pages["/"], "/console": site.pages["/console"]} {
		for _, enc := range []string{"gzip", "br", "identity"} {
			res, body := mustGet(t, app, path, "Accept-Encoding", enc)
			if enc != "identity" {
				body = decode(t, enc, body)
			} else if res.Header.Get("Content-Encoding") != "" {
				t.Errorf("GET %s with identity: Content-Encoding %q", path, res.Header.Get("Content-Encoding"))
			}
			if !bytes.Equal(body, r.plain) {
				t.Errorf("GET %s with %s serves other bytes than the page", path, enc)
			}
		}
	}
}

func TestPagesReferenceTheirBundlesByHashedName(t *testing.T) {
	site, err := loadSite()
	if err != nil {
		t.Fatal(err)
	}
	for page, bundle := range map[string]string{"/": "seafarer.js", "/console": "console.js"} {
		want := site.assetPaths[bundle]
		if want == "" || !bytes.Contains(site.pages[page].plain, []byte(`"`+want+`"`)) {
			t.Errorf("page %s does not load %s as %s", page, bundle, want)
		}
		if !bytes.Contains(site.pages[page].plain, []byte(`"`+site.assetPaths["style.css"]+`"`)) {
			t.Errorf("page %s does not load the stylesheet as %s", page, site.assetPaths["style.css"])
		}
	}
}
