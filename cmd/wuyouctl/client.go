package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// client talks to the Wuyou API (CONTRACT §4) with the global options'
// server and bearer token.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// newClient checks the global options once, so a typo in --server or a
// missing token is reported before any file is read or sent.
func newClient(opts *globalOptions) (*client, error) {
	u, err := url.Parse(strings.TrimRight(opts.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: must be an http:// or https:// URL such as %s", opts.Server, defaultServer)
	}
	if opts.Token == "" {
		return nil, fmt.Errorf("no bearer token: pass --token or set %s (see `wuyouctl token mint`)", envToken)
	}
	// No overall timeout: a bulk upload on a maritime link may take long.
	// Requests end with the command's context (Ctrl-C).
	return &client{base: u, token: opts.Token, http: &http.Client{}}, nil
}

// apiRequest is one request to the API.
type apiRequest struct {
	method string
	path   string // already escaped, e.g. "/v1/seafarers/" + url.PathEscape(id)
	header http.Header
	// body is sent as is when set, with contentType; json is marshalled
	// and sent as application/json otherwise.
	body          io.Reader
	contentLength int64
	contentType   string
	json          any
}

// do sends r and decodes a 2xx JSON answer into out (nil: ignored) and
// returns the raw body too. A non-2xx answer is an *apiError.
func (c *client) do(ctx context.Context, r apiRequest, out any) ([]byte, error) {
	body, contentType := r.body, r.contentType
	if r.json != nil {
		b, err := json.Marshal(r.json)
		if err != nil {
			return nil, err
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base.String()+r.path, body)
	if err != nil {
		return nil, err
	}
	if r.contentLength > 0 {
		req.ContentLength = r.contentLength
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "wuyouctl")

	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, unwrapURLError(err))
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", r.method, r.path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return raw, newAPIError(res, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("%s %s: the server's answer is not the JSON expected: %w", r.method, r.path, err)
		}
	}
	return raw, nil
}

// unwrapURLError drops net/url's `Post "http://…": ` prefix: the URL is
// already in the message around it.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// fieldError is one entry of a problem's "errors".
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// apiError is a non-2xx answer: an RFC 9457 problem when the server sent
// one, else the status and the start of the body.
type apiError struct {
	Status int
	Title  string
	Detail string
	Errors []fieldError
}

// maxPlainErrorBody bounds how much of a body that is not a problem
// document (a proxy's HTML page) an error repeats.
const maxPlainErrorBody = 200

func newAPIError(res *http.Response, body []byte) *apiError {
	e := &apiError{Status: res.StatusCode, Title: http.StatusText(res.StatusCode)}
	mediaType, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	var p struct {
		Title  string       `json:"title"`
		Detail string       `json:"detail"`
		Errors []fieldError `json:"errors"`
	}
	if (mediaType == "application/problem+json" || mediaType == "application/json") && json.Unmarshal(body, &p) == nil {
		if p.Title != "" {
			e.Title = p.Title
		}
		e.Detail, e.Errors = p.Detail, p.Errors
		return e
	}
	detail := strings.TrimSpace(string(body))
	if len(detail) > maxPlainErrorBody {
		detail = detail[:maxPlainErrorBody] + "…"
	}
	e.Detail = detail
	return e
}

// Error reads "409 Conflict: <detail>", then one indented line per field
// error.
func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Title)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, f := range e.Errors {
		b.WriteString("\n  ")
		if f.Field != "" {
			b.WriteString(f.Field + ": ")
		}
		b.WriteString(f.Message)
	}
	return b.String()
}

// byteCount renders a byte count for people: 512 B, 1.5 KiB, 12.3 MiB.
func byteCount(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}
