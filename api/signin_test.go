package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/signin"
	"github.com/wuyou/wuyou/token"
)

// Seafarers' sign-in through the API (CONTRACT §7.4), as an attacker would
// try it: every answer checked against api/openapi.json.

// smsBox records the texts handed to the SMS gateway.
type smsBox struct {
	mu   sync.Mutex
	sent []struct{ msisdn, text string }
}

func (b *smsBox) SendSMS(_ context.Context, _, msisdn, _, _, text string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, struct{ msisdn, text string }{msisdn, text})
	return nil
}

func (b *smsBox) count(msisdn string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.sent {
		if m.msisdn == msisdn {
			n++
		}
	}
	return n
}

var leadingCode = regexp.MustCompile(`^(\d{6}) `)

// code waits for the n-th SMS (from 1) to msisdn and returns its code.
func (b *smsBox) code(t *testing.T, msisdn string, n int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		seen := 0
		for _, m := range b.sent {
			if m.msisdn == msisdn {
				if seen++; seen == n {
					b.mu.Unlock()
					c := leadingCode.FindStringSubmatch(m.text)
					require.NotNil(t, c, "SMS without a code: %q", m.text)
					return c[1]
				}
			}
		}
		b.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no SMS %d to %s", n, msisdn)
	return ""
}

type signInRig struct {
	*apiFixture
	box  *smsBox
	keys *signin.KeyRing
	doc  *openapi3.T
}

// mustSignInRig is the seeded API fixture with sign-in: Wuyou's own keys
// over the fixture's PostgreSQL, codes in its Redis, SMS into a box. The
// peer address of app.Test (0.0.0.0) is a trusted proxy, so tests say the
// client's address in X-Forwarded-For.
func mustSignInRig(t testing.TB, limits signin.Limits) *signInRig {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := MustAPIFixture(t)
	keys, err := signin.OpenKeyRing(ctx, f.pool, nil, signin.KeyOptions{TokenTTL: time.Hour})
	require.NoError(t, err)
	secret, err := signin.Secret(ctx, f.pool, "otp", time.Now())
	require.NoError(t, err)
	box := &smsBox{}
	svc, err := signin.New(signin.Config{Redis: f.rdb, Prefix: f.prefix, Secret: secret, Counter: NewRedisRateLimitStore(f.rdb, f.prefix),
		Holders: f.crew, SMS: box, Keys: keys, Issuer: signin.Issuer, Audience: "wuyou", TokenTTL: time.Hour, Limits: limits})
	require.NoError(t, err)
	svc.Start(1)
	t.Cleanup(func() { svc.Close(context.Background()) })

	jwks, err := token.JWKS(f.key)
	require.NoError(t, err)
	verifier, err := NewVerifierFromJWKS(jwks, tenancyIssuer, "wuyou", nil)
	require.NoError(t, err)
	verifier.AcceptOwn(keys, signin.Issuer, "wuyou")
	cfg := f.config(f.issuer, verifier, log)
	cfg.SignIn, cfg.OwnKeys = svc, keys
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}
	f.server = New(cfg)
	f.app = f.server.App()
	rig := &signInRig{apiFixture: f, box: box, keys: keys}
	if tt, ok := t.(*testing.T); ok {
		rig.doc = mustLoadOpenAPI(tt)
	}
	return rig
}

// post sends a sign-in request from client address addr, checked against
// the document; it returns the status, headers and body.
func (r *signInRig) post(t *testing.T, path, addr string, body any) (int, http.Header, []byte) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case []byte:
		raw = b
	default:
		var err error
		raw, err = json.Marshal(b)
		require.NoError(t, err)
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	for _, line := range strings.Split(addr, "\n") { // several lines: several headers
		req.Header.Add("X-Forwarded-For", line)
	}
	res, err := r.app.Test(req, 10_000)
	require.NoError(t, err)
	defer res.Body.Close()
	answer, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	requireAnswerAsDocumented(t, r.doc, req, res, answer)
	return res.StatusCode, res.Header, answer
}

func (r *signInRig) signIn(t *testing.T, msisdn string) string {
	t.Helper()
	n := r.box.count(msisdn) + 1
	status, _, body := r.post(t, "/v1/auth/otp", "192.0.2.10", map[string]string{"msisdn": msisdn})
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	code := r.box.code(t, msisdn, n)
	status, _, body = r.post(t, "/v1/auth/otp:verify", "192.0.2.10", map[string]string{"msisdn": msisdn, "code": code})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	require.NoError(t, json.Unmarshal(body, &tok))
	require.Equal(t, "Bearer", tok.TokenType)
	require.EqualValues(t, 3600, tok.ExpiresIn)
	return tok.AccessToken
}

// A seafarer with only a phone signs in and reads their own allowance, and
// nobody else's; the token verifies with the published JWKS.
func TestSignIn_CodeBySMSGivesASeafarerTokenForTheirOwnDataOnly(t *testing.T) {
	t.Parallel()
	r := mustSignInRig(t, signin.Limits{})
	tok := r.signIn(t, r.a1.MSISDN)

	status, body := sendDocumented(t, r.apiFixture, r.doc, http.MethodGet, "/v1/me/allowance", tok, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var a struct {
		SeafarerID string `json:"seafarer_id"`
	}
	require.NoError(t, json.Unmarshal(body, &a))
	require.Equal(t, r.a1.ID, a.SeafarerID)
	status, body = sendDocumented(t, r.apiFixture, r.doc, http.MethodGet, "/v1/seafarers/"+r.a2.ID+"/allowance", tok, nil)
	require.Equal(t, http.StatusNotFound, status, "another seafarer's allowance: %s", body)
	status, body = sendDocumented(t, r.apiFixture, r.doc, http.MethodGet, "/v1/companies", tok, nil)
	require.Equal(t, http.StatusForbidden, status, "%s", body)

	// The JWKS publishes the key, and it alone verifies the token.
	res, err := r.app.Test(httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil), 10_000)
	require.NoError(t, err)
	jwksBody, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", jwksBody)
	published, err := token.ParseJWKS(jwksBody)
	require.NoError(t, err)
	require.Len(t, published, 1)
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		require.Equal(t, published[0].KID, tk.Header["kid"])
		return published[0].Key, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(signin.Issuer), jwt.WithAudience("wuyou"))
	require.NoError(t, err)
	require.Equal(t, "seafarer", claims["role"])
	require.Equal(t, r.a1.ID, claims["sub"])
}

// Forgeries: Wuyou's own key vouches only for seafarers, the provider's
// keys cannot speak as Wuyou, and Wuyou's keys cannot speak as the provider.
func TestSignIn_OwnKeysVouchOnlyForSeafarersAndNeitherSetForTheOther(t *testing.T) {
	t.Parallel()
	r := mustSignInRig(t, signin.Limits{})
	own, err := r.keys.Signer()
	require.NoError(t, err)
	mint := func(k *token.SigningKey, iss, role, sub, company string) string {
		tok, err := k.Mint(token.Claims{Issuer: iss, Audience: "wuyou", Subject: sub, Role: role, CompanyID: company, TTL: time.Hour}, time.Now())
		require.NoError(t, err)
		return tok
	}
	for name, tok := range map[string]string{
		"own key, union role":              mint(own, signin.Issuer, token.RoleUnion, "x", ""),
		"own key, company role":            mint(own, signin.Issuer, token.RoleCompany, "x", r.companyA.ID),
		"own key, carrier role":            mint(own, signin.Issuer, token.RoleCarrier, "x", ""),
		"own key, provider's issuer":       mint(own, tenancyIssuer, token.RoleUnion, "x", ""),
		"provider's key, Wuyou's issuer":   mint(r.key, signin.Issuer, token.RoleSeafarer, r.a1.ID, ""),
		"provider's key, Wuyou's as union": mint(r.key, signin.Issuer, token.RoleUnion, "x", ""),
	} {
		status, body := sendDocumented(t, r.apiFixture, r.doc, http.MethodGet, "/v1/seafarers/"+r.a1.ID+"/allowance", tok, nil)
		require.Equal(t, http.StatusUnauthorized, status, "%s: %s", name, body)
	}
	// A seafarer token of Wuyou's own works (the control).
	status, body := sendDocumented(t, r.apiFixture, r.doc, http.MethodGet, "/v1/seafarers/"+r.a1.ID+"/allowance",
		mint(own, signin.Issuer, token.RoleSeafarer, r.a1.ID, ""), nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
}

// Enumeration by status: a number nobody holds is answered exactly as an
// enrolled one, for the request, the limit and the verification.
func TestSignIn_AnswersAreTheSameForEnrolledAndUnknownNumbers(t *testing.T) {
	t.Parallel()
	r := mustSignInRig(t, signin.Limits{})
	const stranger = "+8613877776666"
	type answer struct {
		status int
		retry  string
		body   string
	}
	ask := func(path string, body map[string]string) answer {
		status, h, raw := r.post(t, path, "192.0.2.20", body)
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m), "%s", raw)
		delete(m, "request_id") // differs per request
		norm, _ := json.Marshal(m)
		return answer{status, h.Get("Retry-After"), string(norm)}
	}
	for _, step := range []struct {
		name, path string
		body       func(msisdn string) map[string]string
	}{
		{"first request", "/v1/auth/otp", func(m string) map[string]string { return map[string]string{"msisdn": m} }},
		{"request in the cooldown", "/v1/auth/otp", func(m string) map[string]string { return map[string]string{"msisdn": m} }},
		{"a wrong code", "/v1/auth/otp:verify", func(m string) map[string]string { return map[string]string{"msisdn": m, "code": "000000"} }},
	} {
		known, unknown := ask(step.path, step.body(r.a2.MSISDN)), ask(step.path, step.body(stranger))
		// Retry-After may differ by the second the two requests straddle.
		if known.retry != "" && unknown.retry != "" {
			k, _ := strconv.Atoi(known.retry)
			u, _ := strconv.Atoi(unknown.retry)
			require.LessOrEqual(t, k-u, 1, step.name)
			require.LessOrEqual(t, u-k, 1, step.name)
			known.retry, unknown.retry = "", ""
			known.body = regexp.MustCompile(`\d+ seconds`).ReplaceAllString(known.body, "N seconds")
			unknown.body = regexp.MustCompile(`\d+ seconds`).ReplaceAllString(unknown.body, "N seconds")
		}
		require.Equal(t, known, unknown, "%s: enrolled and unknown numbers are answered differently", step.name)
	}
	require.Equal(t, 0, r.box.count(stranger), "an SMS went to a number nobody holds")
}

// Guessing through the API: wrong codes are 401 with a bearer challenge;
// past the number's tries the answer is 429 with Retry-After, for the right
// code too.
func TestSignIn_GuessingEndsIn429EvenForTheRightCode(t *testing.T) {
	t.Parallel()
	r := mustSignInRig(t, signin.Limits{TriesPerCode: 100, TriesPerNumber: 4})
	status, _, body := r.post(t, "/v1/auth/otp", "192.0.2.30", map[string]string{"msisdn": r.b1.MSISDN})
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	code := r.box.code(t, r.b1.MSISDN, 1)
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	for i := range 4 {
		status, h, body := r.post(t, "/v1/auth/otp:verify", "192.0.2.30", map[string]string{"msisdn": r.b1.MSISDN, "code": wrong})
		require.Equal(t, http.StatusUnauthorized, status, "try %d: %s", i+1, body)
		require.Equal(t, bearerChallenge, h.Get("WWW-Authenticate"))
	}
	status, h, body := r.post(t, "/v1/auth/otp:verify", "192.0.2.31", map[string]string{"msisdn": r.b1.MSISDN, "code": code})
	require.Equal(t, http.StatusTooManyRequests, status, "the right code past the limit, from another address: %s", body)
	secs, err := strconv.Atoi(h.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", h.Get("Retry-After"))
	require.True(t, secs >= 1 && secs <= 3600, "Retry-After %d", secs)
}

// Flooding sends: one client address is limited across numbers; entries a
// client writes itself into X-Forwarded-For (left of what the trusted
// proxy appended) change nothing.
func TestSignIn_FloodingSendsIsLimitedPerAddressWhateverTheClientForwards(t *testing.T) {
	t.Parallel()
	r := mustSignInRig(t, signin.Limits{SendsPerAddress: 5})
	for i, forged := range []string{
		"10.0.0.1, 198.51.100.77",      // the client's own entry, then the proxy's
		"10.0.1.1\n198.51.100.77",      // the same as two header lines (a proxy adding a line of its own)
		"10.0.2.1, 198.51.100.77:4711", // the proxy writes the client's port too
		"198.51.100.77",
		"[::ffff:198.51.100.77]:443",
	} {
		status, _, body := r.post(t, "/v1/auth/otp", forged, map[string]string{"msisdn": "+86137000000" + strconv.Itoa(10+i)})
		require.Equal(t, http.StatusAccepted, status, "send %d: %s", i, body)
	}
	status, h, body := r.post(t, "/v1/auth/otp", "10.9.9.9, 198.51.100.77", map[string]string{"msisdn": "+8613700000099"})
	require.Equal(t, http.StatusTooManyRequests, status, "%s", body)
	require.NotEmpty(t, h.Get("Retry-After"))
	// Another client behind the same proxy is not affected.
	status, _, body = r.post(t, "/v1/auth/otp", "198.51.100.78", map[string]string{"msisdn": "+8613700000099"})
	require.Equal(t, http.StatusAccepted, status, "%s", body)
}

// Bad input is refused, naming the field, before anything is counted or sent.
func TestSignIn_BadInputNamesTheField(t *testing.T) {
	t.Parallel()
	r := mustSignInRig(t, signin.Limits{})
	for _, tc := range []struct {
		path  string
		body  any
		field string
	}{
		{"/v1/auth/otp", map[string]any{"msisdn": "8613800000001"}, "msisdn"},
		{"/v1/auth/otp", map[string]any{"msisdn": 8613800000001}, "msisdn"},
		{"/v1/auth/otp", map[string]any{"msisdn": r.a1.MSISDN, "role": "union"}, "role"},
		{"/v1/auth/otp:verify", map[string]any{"msisdn": r.a1.MSISDN, "code": "12 345"}, "code"},
		{"/v1/auth/otp:verify", map[string]any{"msisdn": r.a1.MSISDN, "code": 123456}, "code"},
		{"/v1/auth/otp:verify", map[string]any{"msisdn": "+1", "code": "123456"}, "msisdn"},
	} {
		status, _, body := r.post(t, tc.path, "192.0.2.40", tc.body)
		require.Equal(t, http.StatusBadRequest, status, "%v: %s", tc.body, body)
		requireProblemNamesField(t, body, tc.field)
	}
	status, _, body := r.post(t, "/v1/auth/otp", "192.0.2.40", []byte(`{"msisdn":"`+strings.Repeat("1", 4096)+`"}`))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, "%s", body)
	require.Equal(t, 0, r.box.count(r.a1.MSISDN), "refused requests sent a code")
	// The refusals used none of the number's sends: a well-formed request now passes.
	status, _, body = r.post(t, "/v1/auth/otp", "192.0.2.40", map[string]string{"msisdn": r.a1.MSISDN})
	require.Equal(t, http.StatusAccepted, status, "%s", body)
}

// A server without sign-in says so; without own keys it publishes none.
func TestSignIn_NotConfiguredIs503And404(t *testing.T) {
	t.Parallel()
	app := New(Config{}).App()
	req := httptest.NewRequest(http.MethodPost, "/v1/auth/otp", strings.NewReader(`{"msisdn":"+8613800000001"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := app.Test(req, -1)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res, err = app.Test(httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil), -1)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}
