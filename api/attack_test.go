package api

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/token"
)

// The token attack suite runs against a server listening on a real port,
// through fasthttp's own request parsing, the error handler and the
// listener: what an attacker on the network reaches. Every bad token is 401
// problem+json with the Bearer challenge, and is refused without one Redis
// command or PostgreSQL query, so a flood of forged tokens costs signature checks and nothing
// else. "None slow" is recorded, not asserted (timings on a shared CI
// machine are noise): the table of case, route, status and duration is
// logged and, with WUYOU_ARTIFACTS set, written to
// test-artifacts/auth-attacks.md at the repository root.

// attackRoutes are a write route and a read route: a token accepted on
// either would reach the stores at once.
var attackRoutes = []struct {
	method, path string
	body         string
}{
	{http.MethodPost, "/v1/companies", `{"name":"Forged Shipping","registration_no":"FORGED-1"}`},
	{http.MethodGet, "/v1/me/allowance", ""},
}

func TestTokenAttacks_EveryBadTokenIs401ProblemWithoutTouchingTheStores(t *testing.T) {
	f := MustAuthFixture(t)
	ls := MustLiveServer(t, f.verifier, nil)
	good := claimsWith(validMapClaims(), "role", token.RoleUnion)
	union := MustCraft(t, jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", good)
	craft := func(method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
		return bearer(MustCraft(t, method, key, kid, claims))
	}

	attacks := []struct {
		name          string
		authorization string
	}{
		{"no Authorization header", ""},
		{"wrong scheme (Basic)", "Basic " + base64.StdEncoding.EncodeToString([]byte("union:password"))},
		{"alg none", craft(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "ed-1", good)},
		{"HS256 signed with the RSA public key", craft(jwt.SigningMethodHS256, publicKeyPEM(t, f.rs), "rs-1", good)},
		{"HS256 signed with the JWKS", craft(jwt.SigningMethodHS256, f.jwks, "ec-1", good)},
		{"unknown kid", bearer(MustMint(t, f.outsider, seafarerClaims()))},
		{"kid naming a key of another algorithm", craft(jwt.SigningMethodES256, f.ec.Private, "ed-1", good)},
		{"signed by a key not in the JWKS", craft(jwt.SigningMethodEdDSA, f.outsider.Private, "ed-1", good)},
		{"expired", craft(jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "exp", authTestNow.Add(-time.Hour).Unix()))},
		{"nbf in the future", craft(jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "nbf", authTestNow.Add(time.Hour).Unix()))},
		{"wrong iss", craft(jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "iss", "https://evil.example"))},
		{"wrong aud", craft(jwt.SigningMethodES256, f.ec.Private, "ec-1", claimsWith(good, "aud", "another-service"))},
		{"missing role", craft(jwt.SigningMethodRS256, f.rs.Private, "rs-1", claimsWith(good, "role", nil))},
		{"unknown role", craft(jwt.SigningMethodEdDSA, f.ed.Private, "ed-1", claimsWith(good, "role", "admin"))},
		{"tampered payload", bearer(replaceSegment(MustMint(t, f.ed, seafarerClaims()), 1, jsonOf(t, good)))},
		{"truncated signature", bearer(union[:len(union)-6])},
		{"header of thousands of dots", bearer(strings.Repeat(".", 5000))},
		{"header of 100,000 dots", bearer(strings.Repeat(".", 100_000))},
		{"1 MB token", bearer(union + strings.Repeat("A", 1<<20))},
	}

	var table []string
	for _, a := range attacks {
		for _, route := range attackRoutes {
			t.Run(a.name+" on "+route.method+" "+route.path, func(t *testing.T) {
				var body io.Reader
				if route.body != "" {
					body = strings.NewReader(route.body)
				}
				before := ls.commands.n.Load()
				res := ls.do(t, route.method, route.path, a.authorization, body)
				table = append(table, fmt.Sprintf("| %s | %s %s | %d | %s |", a.name, route.method, route.path, res.status, res.elapsed.Round(10*time.Microsecond)))
				requireProblem(t, res, http.StatusUnauthorized)
				require.Equal(t, `Bearer realm="wuyou"`, res.header.Get("WWW-Authenticate"))
				require.Zero(t, ls.commands.n.Load()-before, "a refused token must not cost a Redis command or a PostgreSQL query")
			})
		}
	}

	// The control: the same route with a good token does reach the stores, so
	// the counter above would have seen a refused token that got through.
	before := ls.commands.n.Load()
	res := ls.do(t, http.MethodPost, "/v1/companies", bearer(union), strings.NewReader(attackRoutes[0].body))
	require.Equal(t, http.StatusCreated, res.status, "body: %s", res.body)
	require.Positive(t, ls.commands.n.Load()-before)
	table = append(table, fmt.Sprintf("| valid union token (control) | POST /v1/companies | %d | %s |", res.status, res.elapsed.Round(10*time.Microsecond)))

	report := "| case | route | status | duration |\n| --- | --- | --- | --- |\n" + strings.Join(table, "\n") + "\n"
	t.Logf("token attacks against a live server:\n%s", report)
	writeArtifact(t, "auth-attacks.md", "# Token attacks against a live server\n\n"+report)
}

// writeArtifact writes a test report under test-artifacts/ at the
// repository root when WUYOU_ARTIFACTS is set.
func writeArtifact(tb testing.TB, name, content string) {
	tb.Helper()
	if os.Getenv("WUYOU_ARTIFACTS") == "" {
		return
	}
	dir := filepath.Join("..", "test-artifacts")
	require.NoError(tb, os.MkdirAll(dir, 0o755))
	require.NoError(tb, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
}
