package api

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/token"
)

const (
	// MaxTokenBytes bounds a bearer token. Longer ones are refused before any
	// decoding, so a megabyte of dots costs a length check.
	MaxTokenBytes = 8 << 10
	// clockLeeway absorbs clock skew between the issuer and Wuyou for exp and nbf.
	clockLeeway = 30 * time.Second
)

// Principal is who a verified token speaks for.
type Principal struct {
	Role    string
	Subject string
	// CompanyID is set for the company role only; it is empty for every other
	// role even if the token carried a company_id, so a check on CompanyID can
	// never be passed by a seafarer's or carrier's token.
	CompanyID string
}

// verificationKey is one public key from the JWKS together with the only
// algorithm it may verify and the parser pinned to that algorithm.
type verificationKey struct {
	alg    string
	public any // ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
	parser *jwt.Parser
}

// Verifier checks bearer tokens against the public keys of a JWKS: a fixed
// set (a file or inline JSON, read once) or one fetched from a URL and
// refreshed. It is safe for concurrent use.
type Verifier struct {
	keys map[string]verificationKey // by kid, when the set is fixed
	// remote, when set, is the JWKS at a URL (keys is then empty): each
	// token's kid is looked up in it, and its algorithm pinned as for a
	// fixed set.
	remote  *token.RemoteJWKS
	parsers map[string]*jwt.Parser // by algorithm
	now     func() time.Time

	// own, when set, verifies the seafarer tokens Wuyou signs itself
	// (AcceptOwn): a token whose iss is ownIssuer is checked against these
	// keys only, and only the seafarer role is accepted from them.
	own       OwnKeys
	ownIssuer string
	ownParser *jwt.Parser

	// verified remembers tokens whose signature and claims were checked, so
	// a client repeating its token (every request of a session) costs a
	// hash and a map lookup instead of a signature verification. An entry
	// is used only until the token's own expiry; the map is bounded.
	mu       sync.RWMutex
	verified map[[32]byte]verifiedToken
}

type verifiedToken struct {
	p   Principal
	exp time.Time
	// kid and public name the key that verified the token. With a remote
	// JWKS a hit counts only while the set still has that key, so a key the
	// provider removed stops verifying at the next refresh even for tokens
	// seen before.
	kid    string
	public crypto.PublicKey
	own    bool
}

// OwnKeys are the keys Wuyou signs seafarer tokens with (signin.KeyRing).
// A kid it does not know may make it read its keys again.
type OwnKeys interface {
	PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, bool)
}

// AcceptOwn makes v accept the seafarer tokens Wuyou signs itself
// (CONTRACT §7.4) beside the identity provider's: a token whose iss is
// issuer is verified with keys only (EdDSA, the same audience), and must
// carry the seafarer role; tokens of any other iss go to the provider's
// keys as before, so neither set can vouch for the other's tokens. Call it
// before the Verifier is used.
func (v *Verifier) AcceptOwn(keys OwnKeys, issuer, audience string) {
	v.own, v.ownIssuer = keys, issuer
	v.ownParser = jwt.NewParser(
		jwt.WithValidMethods([]string{token.AlgEdDSA}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithTimeFunc(v.now),
		jwt.WithLeeway(clockLeeway),
		jwt.WithStrictDecoding(),
	)
}

// maxVerifiedTokens bounds the cache of verified tokens (about 150 B each).
const maxVerifiedTokens = 100_000

// NewVerifier reads the JWKS JSON file at jwksPath; see NewVerifierFromJWKS.
func NewVerifier(jwksPath, issuer, audience string, now func() time.Time) (*Verifier, error) {
	data, err := os.ReadFile(jwksPath)
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	v, err := NewVerifierFromJWKS(data, issuer, audience, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", jwksPath, err)
	}
	return v, nil
}

// NewVerifierFromJWKS builds a Verifier from JWKS JSON. Tokens must carry the
// given iss and aud. now is the clock for exp and nbf (nil means the system
// clock).
//
// Keys are chosen by `kid` only; the algorithm is the key's (EdDSA/Ed25519,
// ES256, RS256), never the token's own choice: a token whose header alg
// differs from its key's alg is refused. none and HMAC are refused.
//
// The keys are those token.ParseJWKS reads (unusable ones skipped, private
// parts ignored); it is an error when it finds none, or when issuer or
// audience is empty.
func NewVerifierFromJWKS(jwksJSON []byte, issuer, audience string, now func() time.Time) (*Verifier, error) {
	v, err := newVerifier(issuer, audience, now)
	if err != nil {
		return nil, err
	}
	keys, err := token.ParseJWKS(jwksJSON)
	if err != nil {
		return nil, err
	}
	v.keys = make(map[string]verificationKey, len(keys))
	for _, k := range keys {
		v.keys[k.KID] = verificationKey{alg: k.Alg, public: k.Key, parser: v.parsers[k.Alg]}
	}
	return v, nil
}

// NewVerifierFromRemoteJWKS builds a Verifier over a JWKS fetched from a URL
// and refreshed (token.OpenRemoteJWKS): a token whose kid the set lacks
// makes it fetch the set again (rate-limited) before it is refused. The
// algorithm stays the key's, exactly as with NewVerifierFromJWKS.
func NewVerifierFromRemoteJWKS(remote *token.RemoteJWKS, issuer, audience string, now func() time.Time) (*Verifier, error) {
	if remote == nil {
		return nil, errors.New("no JWKS")
	}
	v, err := newVerifier(issuer, audience, now)
	if err != nil {
		return nil, err
	}
	v.remote = remote
	return v, nil
}

// OpenVerifier builds the Verifier WUYOU_JWT_JWKS names (CONTRACT §7.6): an
// http:// or https:// URL is fetched now (a failure is an error) and
// refreshed until ctx ends; a value starting with '{' is the JWKS JSON
// itself; anything else is the path of a JWKS file.
func OpenVerifier(ctx context.Context, source, issuer, audience string, now func() time.Time, log *slog.Logger) (*Verifier, error) {
	switch {
	case token.IsJWKSURL(source):
		remote, err := token.OpenRemoteJWKS(ctx, source, token.RemoteOptions{Log: log})
		if err != nil {
			return nil, err
		}
		v, err := NewVerifierFromRemoteJWKS(remote, issuer, audience, now)
		if err != nil {
			remote.Close()
			return nil, err
		}
		return v, nil
	case strings.HasPrefix(strings.TrimSpace(source), "{"):
		v, err := NewVerifierFromJWKS([]byte(source), issuer, audience, now)
		if err != nil {
			return nil, fmt.Errorf("inline JWKS: %w", err)
		}
		return v, nil
	default:
		return NewVerifier(source, issuer, audience, now)
	}
}

// newVerifier is a Verifier without keys: the parsers, one per algorithm.
func newVerifier(issuer, audience string, now func() time.Time) (*Verifier, error) {
	if issuer == "" {
		return nil, errors.New("JWT issuer is required")
	}
	if audience == "" {
		return nil, errors.New("JWT audience is required")
	}
	if now == nil {
		now = wuyou.SystemClock
	}

	// One parser per algorithm, built once: per-request work is what jwt does.
	parsers := make(map[string]*jwt.Parser, 3)
	for _, alg := range []string{token.AlgEdDSA, token.AlgES256, token.AlgRS256} {
		parsers[alg] = jwt.NewParser(
			jwt.WithValidMethods([]string{alg}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithTimeFunc(now),
			jwt.WithLeeway(clockLeeway),
			jwt.WithStrictDecoding(),
		)
	}

	return &Verifier{parsers: parsers, now: now, verified: map[[32]byte]verifiedToken{}}, nil
}

// keyLookupTimeout bounds looking a kid up in a remote JWKS, a fetch of the
// set included.
const keyLookupTimeout = 5 * time.Second

// key is the key named kid with its pinned parser.
func (v *Verifier) key(kid string) (verificationKey, bool) {
	if v.remote == nil {
		k, ok := v.keys[kid]
		return k, ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), keyLookupTimeout)
	defer cancel()
	k, ok := v.remote.Key(ctx, kid)
	if !ok {
		return verificationKey{}, false
	}
	return verificationKey{alg: k.Alg, public: k.Key, parser: v.parsers[k.Alg]}, true
}

// stillHolds reports whether a cached verification still stands: always
// for a fixed set, and for a remote one while the set has the same key
// under that kid.
func (v *Verifier) stillHolds(hit verifiedToken) bool {
	if hit.own {
		ctx, cancel := context.WithTimeout(context.Background(), keyLookupTimeout)
		defer cancel()
		k, ok := v.own.PublicKey(ctx, hit.kid)
		return ok && k.Equal(hit.public)
	}
	if v.remote == nil {
		return true
	}
	k, ok := v.key(hit.kid)
	if !ok {
		return false
	}
	current, ok := k.public.(interface{ Equal(crypto.PublicKey) bool })
	return ok && current.Equal(hit.public)
}

// tokenHeader is the part of a JOSE header read before the signature is checked.
type tokenHeader struct {
	Alg  string          `json:"alg"`
	KID  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// unauthorized is the error of every refused token: the caller learns that
// the token is not accepted, not which check failed.
func unauthorized(msg string) error { return wuyou.Errorf(wuyou.EUNAUTHORIZED, "%s", msg) }

// Verify checks signature, exp (required), nbf, iss, aud, sub and role
// (required; role one of the four; company role requires company_id). Any
// failure → *wuyou.Error EUNAUTHORIZED with a short safe message.
func (v *Verifier) Verify(token string) (Principal, error) {
	if len(token) == 0 || len(token) > MaxTokenBytes {
		return v.verify(token)
	}
	sum := sha256.Sum256([]byte(token))
	v.mu.RLock()
	hit, ok := v.verified[sum]
	v.mu.RUnlock()
	if ok && v.now().Before(hit.exp) && v.stillHolds(hit) {
		return hit.p, nil
	}
	var used keyUsed
	p, exp, err := v.verifyClaims(token, &used)
	if err != nil {
		return Principal{}, err
	}
	v.mu.Lock()
	if len(v.verified) >= maxVerifiedTokens {
		clear(v.verified) // rare; the next requests verify again
	}
	v.verified[sum] = verifiedToken{p: p, exp: exp, kid: used.kid, public: used.public, own: used.own}
	v.mu.Unlock()
	return p, nil
}

func (v *Verifier) verify(token string) (Principal, error) {
	p, _, err := v.verifyClaims(token, nil)
	return p, err
}

// keyUsed is the key that verified a token.
type keyUsed struct {
	kid    string
	public crypto.PublicKey
	own    bool
}

// verifyClaims checks everything about a token and returns its principal
// and expiry; used, when not nil, is set to the key that verified it.
func (v *Verifier) verifyClaims(raw string, used *keyUsed) (Principal, time.Time, error) {
	if len(raw) == 0 {
		return Principal{}, time.Time{}, unauthorized("missing bearer token")
	}
	if len(raw) > MaxTokenBytes || strings.Count(raw, ".") != 2 {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}

	// Choose the key by kid before parsing, so the parser admits exactly
	// that key's algorithm and the token's alg header cannot pick another.
	rawHeader, _, _ := strings.Cut(raw, ".")
	headerJSON, err := base64.RawURLEncoding.Strict().DecodeString(rawHeader)
	if err != nil {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	var header tokenHeader
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	// RFC 7515 §4.1.11: extensions marked critical must be understood; Wuyou
	// understands none.
	if header.Crit != nil {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	if v.own != nil && issuedBy(raw, v.ownIssuer) {
		return v.verifyOwn(raw, header, used)
	}
	key, ok := v.key(header.KID)
	if !ok || header.Alg != key.alg {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	if used != nil {
		*used = keyUsed{kid: header.KID, public: key.public}
	}

	claims, err := parseClaims(key.parser, raw, key.public)
	if err != nil {
		return Principal{}, time.Time{}, err
	}

	p := Principal{Role: claims.Role, Subject: claims.Subject}
	if p.Subject == "" {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	switch p.Role {
	case token.RoleSeafarer, token.RoleUnion, token.RoleCarrier:
	case token.RoleCompany:
		if claims.CompanyID == "" {
			return Principal{}, time.Time{}, unauthorized("invalid token")
		}
		p.CompanyID = claims.CompanyID
	default:
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	return p, claims.ExpiresAt.Time, nil
}

// issuedBy reports whether the (not yet verified) payload of raw names iss
// as its issuer. It only routes the token to a set of keys; the chosen
// parser then checks iss with the signature.
func issuedBy(raw, iss string) bool {
	_, rest, _ := strings.Cut(raw, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return false
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	return json.Unmarshal(b, &claims) == nil && claims.Issuer == iss
}

// verifyOwn checks a token Wuyou signed itself: its kid among the own keys,
// EdDSA, the own issuer, and the seafarer role.
func (v *Verifier) verifyOwn(raw string, header tokenHeader, used *keyUsed) (Principal, time.Time, error) {
	if header.Alg != token.AlgEdDSA {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	ctx, cancel := context.WithTimeout(context.Background(), keyLookupTimeout)
	defer cancel()
	public, ok := v.own.PublicKey(ctx, header.KID)
	if !ok {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	if used != nil {
		*used = keyUsed{kid: header.KID, public: public, own: true}
	}
	claims, err := parseClaims(v.ownParser, raw, public)
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	if claims.Role != token.RoleSeafarer || claims.Subject == "" || claims.CompanyID != "" {
		return Principal{}, time.Time{}, unauthorized("invalid token")
	}
	return Principal{Role: token.RoleSeafarer, Subject: claims.Subject}, claims.ExpiresAt.Time, nil
}

// parseClaims checks raw's signature with public and its claims with
// parser (pinned to one algorithm, iss and aud): the payload, or the 401
// that says what may be said.
func parseClaims(parser *jwt.Parser, raw string, public any) (token.Payload, error) {
	var claims token.Payload
	_, err := parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return public, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return claims, unauthorized("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return claims, unauthorized("token not yet valid")
	case err != nil:
		return claims, unauthorized("invalid token")
	}
	return claims, nil
}

// principalKey is the c.Locals key under which Authenticate stores the Principal.
type principalKey struct{}

// Authenticate is fiber middleware: reads "Authorization: Bearer <jwt>",
// verifies, stores the Principal with c.Locals; returns an EUNAUTHORIZED
// error otherwise (also when the header is missing or not Bearer). Refusals
// carry a WWW-Authenticate: Bearer challenge (RFC 6750 §3).
func Authenticate(v *Verifier) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := authenticate(v, c.Get(fiber.HeaderAuthorization))
		if err != nil {
			c.Set(fiber.HeaderWWWAuthenticate, bearerChallenge)
			return err
		}
		c.Locals(principalKey{}, p)
		return c.Next()
	}
}

// bearerChallenge is the WWW-Authenticate value of every 401. It names no
// error detail: the problem+json body says what may be said.
const bearerChallenge = `Bearer realm="wuyou"`

func authenticate(v *Verifier, header string) (Principal, error) {
	if header == "" {
		return Principal{}, unauthorized("missing bearer token")
	}
	scheme, token, _ := strings.Cut(header, " ")
	// RFC 9110 §11.1: the scheme is case-insensitive.
	if !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, unauthorized("authorization scheme must be Bearer")
	}
	return v.Verify(strings.TrimSpace(token))
}

// PrincipalOf returns the principal stored by Authenticate, or the zero
// Principal (no role) on a route Authenticate did not run on.
func PrincipalOf(c *fiber.Ctx) Principal {
	p, _ := c.Locals(principalKey{}).(Principal)
	return p
}

// Require allows only the given roles; others get EFORBIDDEN. A request that
// did not pass Authenticate gets EUNAUTHORIZED.
func Require(roles ...string) fiber.Handler {
	allowed := make(map[string]bool, len(roles))
	for _, r := range roles {
		allowed[r] = true
	}
	return func(c *fiber.Ctx) error {
		p := PrincipalOf(c)
		if p.Role == "" {
			c.Set(fiber.HeaderWWWAuthenticate, bearerChallenge)
			return unauthorized("missing bearer token")
		}
		if !allowed[p.Role] {
			return wuyou.Errorf(wuyou.EFORBIDDEN, "role %s may not do this", p.Role)
		}
		return c.Next()
	}
}
