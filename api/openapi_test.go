package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true,
}

// openAPIPath converts a fiber route path to its OpenAPI form: ":id" becomes
// "{id}" and an escaped colon "\:" a literal ":" (".../seafarers\:bulk" is
// ".../seafarers:bulk", as the contract writes it).
func openAPIPath(fiberPath string) string {
	var b strings.Builder
	for i := 0; i < len(fiberPath); i++ {
		c := fiberPath[i]
		switch {
		case c == '\\' && i+1 < len(fiberPath) && fiberPath[i+1] == ':':
			b.WriteByte(':')
			i++
		case c == ':':
			j := i + 1
			for j < len(fiberPath) && (fiberPath[j] == '_' || fiberPath[j] >= 'a' && fiberPath[j] <= 'z' ||
				fiberPath[j] >= 'A' && fiberPath[j] <= 'Z' || fiberPath[j] >= '0' && fiberPath[j] <= '9') {
				j++
			}
			b.WriteString("{" + fiberPath[i+1:j] + "}")
			if j < len(fiberPath) && fiberPath[j] == '?' { // optional parameter
				j++
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestOpenAPIPath(t *testing.T) {
	for in, want := range map[string]string{
		"/healthz":                                  "/healthz",
		"/v1/companies/:id":                         "/v1/companies/{id}",
		`/v1/companies/:id/seafarers\:bulk`:         "/v1/companies/{id}/seafarers:bulk",
		`/v1/seafarers/:id/grants/:grant_id\:void`:  "/v1/seafarers/{id}/grants/{grant_id}:void",
		"/v1/carrier/subscribers/:msisdn/allowance": "/v1/carrier/subscribers/{msisdn}/allowance",
	} {
		if got := openAPIPath(in); got != want {
			t.Errorf("openAPIPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

func mustParseOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("api/openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// pageRoutes are the browser pages web.Mount registers; the OpenAPI
// document describes the API only.
var pageRoutes = map[string]bool{"/": true, "/console": true, "/assets/*": true}

// TestOpenAPIDescribesEveryRoute keeps api/openapi.json and routes() in
// step: a route added without its description, or a description left after
// its route is gone, fails here.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	s := New(Config{})
	registered := map[string]bool{}
	for _, r := range s.App().GetRoutes(true) {
		if r.Method == fiber.MethodHead { // fiber adds HEAD to every GET
			continue
		}
		if pageRoutes[r.Path] { // web pages for browsers, not API operations
			continue
		}
		registered[r.Method+" "+openAPIPath(r.Path)] = true
	}
	if len(registered) == 0 {
		t.Fatal("the server registers no routes")
	}

	documented := map[string]bool{}
	for path, item := range mustParseOpenAPI(t).Paths {
		for key := range item {
			if openAPIMethods[key] {
				documented[strings.ToUpper(key)+" "+path] = true
			}
		}
	}

	var undocumented, unregistered []string
	for op := range registered {
		if !documented[op] {
			undocumented = append(undocumented, op)
		}
	}
	for op := range documented {
		if !registered[op] {
			unregistered = append(unregistered, op)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unregistered)
	if len(undocumented) > 0 {
		t.Errorf("routes registered in server.go but missing from api/openapi.json:\n\t%s", strings.Join(undocumented, "\n\t"))
	}
	if len(unregistered) > 0 {
		t.Errorf("operations in api/openapi.json that server.go does not register:\n\t%s", strings.Join(unregistered, "\n\t"))
	}
}

// TestOpenAPIDocumentIsValidJSON checks the document's shape (OpenAPI 3.x,
// every $ref resolves, every path parameter declared, /v1 secured and the
// operations routes not) and that GET /openapi.json serves it.
func TestOpenAPIDocumentIsValidJSON(t *testing.T) {
	doc := mustParseOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	if len(doc.Paths) == 0 {
		t.Fatal("the document has no paths")
	}

	var whole any
	if err := json.Unmarshal(openAPIDocument, &whole); err != nil {
		t.Fatal(err)
	}
	checkRefs(t, whole, whole, "#")

	for path, item := range doc.Paths {
		for method, raw := range item {
			if !openAPIMethods[method] {
				continue
			}
			var o struct {
				Summary    string                       `json:"summary"`
				Security   *[]map[string][]string       `json:"security"`
				Parameters []map[string]json.RawMessage `json:"parameters"`
				Responses  map[string]json.RawMessage   `json:"responses"`
			}
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Errorf("%s %s: %v", method, path, err)
				continue
			}
			name := strings.ToUpper(method) + " " + path
			if o.Summary == "" {
				t.Errorf("%s: no summary", name)
			}
			if len(o.Responses) == 0 {
				t.Errorf("%s: no responses", name)
			}
			secured := o.Security == nil || len(*o.Security) > 0 // nil inherits the document's bearerAuth
			// Sign-in is how a seafarer gets a token: it cannot need one.
			signIn := strings.HasPrefix(path, "/v1/auth/")
			if v1 := strings.HasPrefix(path, "/v1/") && !signIn; v1 != secured {
				t.Errorf("%s: secured = %v, want %v", name, secured, v1)
			}
			if v1 := strings.HasPrefix(path, "/v1/") && !signIn; v1 && o.Responses["401"] == nil {
				t.Errorf("%s: no 401 response", name)
			}
			declared := map[string]bool{}
			for _, p := range o.Parameters {
				p = resolveParameter(t, whole, p)
				var in, pname string
				_ = json.Unmarshal(p["in"], &in)
				_ = json.Unmarshal(p["name"], &pname)
				if in == "path" {
					declared[pname] = true
				}
			}
			for _, seg := range strings.Split(path, "{")[1:] {
				pname, _, _ := strings.Cut(seg, "}")
				if !declared[pname] {
					t.Errorf("%s: path parameter %q not declared", name, pname)
				}
				delete(declared, pname)
			}
			for pname := range declared {
				t.Errorf("%s: declares path parameter %q that the path lacks", name, pname)
			}
		}
	}

	resp, err := New(Config{}).App().Test(httptest.NewRequest(http.MethodGet, "/openapi.json", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d, want 200: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get(fiber.HeaderContentType); !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		t.Errorf("GET /openapi.json Content-Type = %q, want application/json", ct)
	}
	if string(body) != string(openAPIDocument) {
		t.Error("GET /openapi.json does not serve api/openapi.json")
	}
}

// checkRefs fails the test for every "$ref" in v that does not name a node
// of root.
func checkRefs(t *testing.T, root, v any, at string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if k == "$ref" {
				ref, _ := child.(string)
				if _, err := lookupRef(root, ref); err != nil {
					t.Errorf("%s: %v", at, err)
				}
				continue
			}
			checkRefs(t, root, child, at+"/"+k)
		}
	case []any:
		for i, child := range v {
			checkRefs(t, root, child, fmt.Sprintf("%s/%d", at, i))
		}
	}
}

// lookupRef resolves a local JSON pointer reference ("#/components/...").
func lookupRef(root any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	node := root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := node.(map[string]any)
		if !ok || m[tok] == nil {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
		node = m[tok]
	}
	return node, nil
}

// resolveParameter follows a parameter's $ref, if it has one.
func resolveParameter(t *testing.T, root any, p map[string]json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	var ref string
	if raw, ok := p["$ref"]; !ok || json.Unmarshal(raw, &ref) != nil {
		return p
	}
	node, err := lookupRef(root, ref)
	if err != nil {
		t.Error(err)
		return p
	}
	raw, _ := json.Marshal(node)
	var out map[string]json.RawMessage
	_ = json.Unmarshal(raw, &out)
	return out
}

// mustLoadOpenAPI loads api/openapi.json with kin-openapi and validates it
// as an OpenAPI 3 document.
func mustLoadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("api/openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// sendDocumented sends method path with the token and a body (nil: none; a
// []byte as it is; anything else as JSON) and checks the answer against the
// operation of api/openapi.json documenting path, before returning its
// status and body.
func sendDocumented(t *testing.T, f *apiFixture, doc *openapi3.T, method, path, tok string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set(fiber.HeaderAuthorization, "Bearer "+tok)
	if r != nil {
		req.Header.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	}
	res, err := f.app.Test(req, 10_000)
	require.NoError(t, err)
	defer res.Body.Close()
	answer, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	requireAnswerAsDocumented(t, doc, req, res, answer)
	return res.StatusCode, answer
}

// requireAnswerAsDocumented checks a live answer of method path against the
// document: its status is documented, and its content type and body match
// that response's schema.
func requireAnswerAsDocumented(t *testing.T, doc *openapi3.T, req *http.Request, res *http.Response, body []byte) {
	t.Helper()
	item := documentedPathItem(doc, req.URL.Path)
	if item == nil {
		t.Fatalf("%s is not in the document", req.URL.Path)
	}
	op := item.GetOperation(req.Method)
	if op == nil {
		t.Fatalf("%s %s is not in the document", req.Method, req.URL.Path)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: doc, Path: req.URL.Path, PathItem: item, Method: req.Method, Operation: op},
		},
		Status:  res.StatusCode,
		Header:  res.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s answered %d %s, which the document does not describe: %v\n%s",
			req.Method, req.URL.Path, res.StatusCode, res.Header.Get(fiber.HeaderContentType), err, body)
	}
}

// documentedPathItem is the document's path that path is an instance of:
// itself, or the template whose {parameters} each stand for one segment
// or part of one (as in /v1/seafarers/{id}/grants/{grant_id}:void), the
// template with fewest parameters when several match.
func documentedPathItem(doc *openapi3.T, path string) *openapi3.PathItem {
	if item := doc.Paths.Find(path); item != nil {
		return item
	}
	var best *openapi3.PathItem
	fewest := -1
	param := regexp.MustCompile(`\{[^}/]+\}`)
	for template, item := range doc.Paths.Map() {
		parts := param.Split(template, -1)
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		if !regexp.MustCompile("^" + strings.Join(parts, "[^/:]+") + "$").MatchString(path) {
			continue
		}
		if n := len(parts) - 1; fewest < 0 || n < fewest {
			best, fewest = item, n
		}
	}
	return best
}

func TestOpenAPIDocumentIsAValidOpenAPI3DocumentWithServers(t *testing.T) {
	doc := mustLoadOpenAPI(t)
	if len(doc.Servers) == 0 {
		t.Fatal("the document names no servers")
	}
}

func TestReadinessAnswersAreTheDocumentedOnes(t *testing.T) {
	doc := mustLoadOpenAPI(t)
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 127.0.0.1:9092: connect: connection refused") }
	for _, tc := range []struct {
		name  string
		ready map[string]func(context.Context) error
		want  int
	}{
		{"every dependency answers: 200", map[string]func(context.Context) error{"redis": ok, "kafka": ok}, http.StatusOK},
		{"kafka is down: 503 problem with checks", map[string]func(context.Context) error{"redis": ok, "kafka": down}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
			res, err := New(Config{Ready: tc.ready}).App().Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.want {
				t.Fatalf("GET /readyz = %d, want %d: %s", res.StatusCode, tc.want, body)
			}
			requireAnswerAsDocumented(t, doc, req, res, body)
			if tc.want == http.StatusServiceUnavailable {
				var p problem
				if err := json.Unmarshal(body, &p); err != nil {
					t.Fatal(err)
				}
				if p.Checks["kafka"] == "ok" || p.Checks["redis"] != "ok" || p.RequestID == "" || res.Header.Get(fiber.HeaderRetryAfter) == "" {
					t.Errorf("503 answer: checks %v, request_id %q, Retry-After %q", p.Checks, p.RequestID, res.Header.Get(fiber.HeaderRetryAfter))
				}
			}
		})
	}
}
