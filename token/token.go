// Package token owns Wuyou's bearer tokens and the keys that sign them: the
// roles a token may carry, the one algorithm each kind of key signs with,
// signing keys (generated, loaded from PEM, written as PEM), the public JWKS
// that publishes them and reading such a JWKS back, and minting. Minting and
// reading keys live together so that what `wuyouctl token mint`, the embedded
// dev mode and the tests produce is exactly what api's Verifier accepts.
package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wuyou/wuyou"
)

// Roles a token may carry in its "role" claim (CONTRACT §2).
const (
	RoleSeafarer = "seafarer" // sub is the seafarer id; reads only their own data
	RoleCompany  = "company"  // company_id names the company whose crew it manages
	RoleUnion    = "union"    // everything
	RoleCarrier  = "carrier"  // /v1/carrier/* only
)

// Signing algorithms Wuyou accepts. Each is bound to one kind of key, so a
// key's algorithm follows from the key itself.
const (
	AlgEdDSA = "EdDSA" // Ed25519
	AlgES256 = "ES256" // ECDSA P-256, SHA-256
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5, SHA-256, at least 2048-bit modulus
)

// minRSABits is the smallest RSA modulus accepted in a JWKS or a key file.
const minRSABits = 2048

// SigningKey is a private signing key with its kid and alg.
type SigningKey struct {
	KID     string
	Alg     string        // AlgEdDSA, AlgES256 or AlgRS256; follows from Private
	Private crypto.Signer // ed25519.PrivateKey, *ecdsa.PrivateKey (P-256) or *rsa.PrivateKey
}

// GenerateSigningKey makes a new key for alg: "EdDSA" (Ed25519), "ES256"
// (P-256) or "RS256" (2048-bit RSA). Its KID is the key's RFC 7638 JWK
// thumbprint; set KID to name it otherwise.
func GenerateSigningKey(alg string) (*SigningKey, error) {
	var (
		private crypto.Signer
		err     error
	)
	switch alg {
	case AlgEdDSA:
		_, private, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		private, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		private, err = rsa.GenerateKey(rand.Reader, minRSABits)
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q (want %s, %s or %s)", alg, AlgEdDSA, AlgES256, AlgRS256)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return newSigningKey(private, "")
}

// LoadSigningKey reads a private key from a PEM file: PKCS#8 ("PRIVATE KEY"),
// SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). The algorithm is
// inferred from the key type. An empty kid means the key's RFC 7638 thumbprint,
// the same kid GenerateSigningKey gives.
func LoadSigningKey(pemPath, kid string) (*SigningKey, error) {
	data, err := os.ReadFile(pemPath)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	k, err := ParseSigningKeyPEM(data, kid)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pemPath, err)
	}
	return k, nil
}

// ParseSigningKeyPEM is LoadSigningKey on the PEM bytes themselves. Blocks
// other than a private key (such as "EC PARAMETERS", which openssl writes
// before an EC key) are skipped.
func ParseSigningKeyPEM(data []byte, kid string) (*SigningKey, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key PEM block found")
		}
		var (
			parsed any
			err    error
		)
		switch block.Type {
		case "PRIVATE KEY":
			parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			parsed, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported; decrypt it first")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		signer, ok := parsed.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", parsed)
		}
		return newSigningKey(signer, kid)
	}
}

// newSigningKey infers the algorithm of private and names it kid, or its
// thumbprint when kid is empty.
func newSigningKey(private crypto.Signer, kid string) (*SigningKey, error) {
	alg, err := signingAlg(private)
	if err != nil {
		return nil, err
	}
	k := &SigningKey{KID: kid, Alg: alg, Private: private}
	if k.KID == "" {
		if k.KID, err = k.Thumbprint(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// signingAlg is the one algorithm Wuyou uses with a private key of this type.
func signingAlg(private crypto.Signer) (string, error) {
	if k, ok := private.(ed25519.PrivateKey); ok && len(k) != ed25519.PrivateKeySize {
		return "", errors.New("malformed Ed25519 private key")
	}
	switch private.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey:
		return publicAlg(private.Public())
	default:
		return "", fmt.Errorf("unsupported private key type %T (want Ed25519, P-256 or RSA)", private)
	}
}

// publicAlg is the one algorithm a public key of this type verifies: the
// rule both signing keys and the keys read from a JWKS follow.
func publicAlg(public crypto.PublicKey) (string, error) {
	switch k := public.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("malformed Ed25519 public key")
		}
		return AlgEdDSA, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("unsupported EC curve %s (want P-256 for ES256)", k.Curve.Params().Name)
		}
		return AlgES256, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits is too short (want at least %d)", k.N.BitLen(), minRSABits)
		}
		return AlgRS256, nil
	default:
		return "", fmt.Errorf("unsupported key type %T (want Ed25519, P-256 or RSA)", public)
	}
}

// PrivatePEM encodes the private key as PKCS#8 PEM ("PRIVATE KEY").
func (k *SigningKey) PrivatePEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// publicJWK is the public half of k as a JWK with kid, alg and use=sig.
func (k *SigningKey) publicJWK() (jwkset.JWKMarshal, error) {
	if k.KID == "" {
		return jwkset.JWKMarshal{}, errors.New("signing key has no kid")
	}
	alg, err := signingAlg(k.Private)
	if err != nil {
		return jwkset.JWKMarshal{}, err
	}
	if alg != k.Alg {
		return jwkset.JWKMarshal{}, fmt.Errorf("key %q: alg %q does not match its key type (%s)", k.KID, k.Alg, alg)
	}
	jwk, err := jwkset.NewJWKFromKey(k.Private.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(alg), KID: k.KID, USE: jwkset.UseSig},
	})
	if err != nil {
		return jwkset.JWKMarshal{}, fmt.Errorf("key %q: %w", k.KID, err)
	}
	return jwk.Marshal(), nil
}

// Thumbprint is the RFC 7638 JWK SHA-256 thumbprint of the public key,
// base64url without padding. It depends on the key material only.
func (k *SigningKey) Thumbprint() (string, error) {
	if k == nil || k.Private == nil {
		return "", errors.New("signing key has no private key")
	}
	jwk, err := jwkset.NewJWKFromKey(k.Private.Public(), jwkset.JWKOptions{})
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	m := jwk.Marshal()
	// The required members in lexicographic order, no whitespace. Every
	// value is a JWK name or base64url, so strconv.Quote is exact JSON.
	var members [][2]string
	switch m.KTY {
	case jwkset.KtyOKP:
		members = [][2]string{{"crv", string(m.CRV)}, {"kty", string(m.KTY)}, {"x", m.X}}
	case jwkset.KtyEC:
		members = [][2]string{{"crv", string(m.CRV)}, {"kty", string(m.KTY)}, {"x", m.X}, {"y", m.Y}}
	case jwkset.KtyRSA:
		members = [][2]string{{"e", m.E}, {"kty", string(m.KTY)}, {"n", m.N}}
	default:
		return "", fmt.Errorf("no thumbprint for key type %q", m.KTY)
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(kv[0]) + ":" + strconv.Quote(kv[1]))
	}
	b.WriteByte('}')
	sum := sha256.Sum256(b.Bytes())
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// JWKS returns the public JWKS JSON of keys, each with kid, alg and use=sig:
// the file WUYOU_JWT_JWKS names. Two keys with one kid are an error.
func JWKS(keys ...*SigningKey) ([]byte, error) {
	set := jwkset.JWKSMarshal{Keys: make([]jwkset.JWKMarshal, 0, len(keys))}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k == nil {
			return nil, errors.New("nil signing key")
		}
		if seen[k.KID] {
			return nil, fmt.Errorf("two keys with kid %q", k.KID)
		}
		seen[k.KID] = true
		m, err := k.publicJWK()
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, m)
	}
	out, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	return append(out, '\n'), nil
}

// PublicKey is one key read from a JWKS, with the only algorithm it may verify.
type PublicKey struct {
	KID string
	Alg string           // AlgEdDSA, AlgES256 or AlgRS256; follows from Key
	Key crypto.PublicKey // ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
}

// ParseJWKS reads the public keys of JWKS JSON, such as JWKS writes. Keys
// that cannot serve (no kid, kty/crv/alg Wuyou does not accept, use other
// than "sig", RSA under 2048 bits, malformed) are skipped. It is an error when
// no key is left or when two usable keys share a kid. Private parts in the
// JWKS are ignored.
func ParseJWKS(jwksJSON []byte) ([]PublicKey, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(jwksJSON, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := make([]PublicKey, 0, len(set.Keys))
	seen := make(map[string]bool, len(set.Keys))
	for _, m := range set.Keys {
		k, ok := usableKey(m)
		if !ok {
			continue
		}
		if seen[k.KID] {
			return nil, fmt.Errorf("JWKS has two keys with kid %q", k.KID)
		}
		seen[k.KID] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable signing key (EdDSA/Ed25519, ES256/P-256 or RS256 with a kid)")
	}
	return keys, nil
}

// usableKey returns the public key of m with the one algorithm it verifies,
// or ok=false when Wuyou does not accept it.
func usableKey(m jwkset.JWKMarshal) (PublicKey, bool) {
	if m.KID == "" || (m.USE != "" && m.USE != jwkset.UseSig) {
		return PublicKey{}, false
	}
	// Only the public members are read: a JWKS that also holds private keys
	// must not put them in a verifier.
	pub := jwkset.JWKMarshal{KTY: m.KTY, CRV: m.CRV, X: m.X, Y: m.Y, N: m.N, E: m.E}
	jwk, err := jwkset.NewJWKFromMarshal(pub, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return PublicKey{}, false
	}
	alg, err := publicAlg(jwk.Key())
	if err != nil || (m.ALG != "" && string(m.ALG) != alg) {
		return PublicKey{}, false
	}
	return PublicKey{KID: m.KID, Alg: alg, Key: jwk.Key()}, true
}

// Payload is the JWT claims set Wuyou writes and reads.
type Payload struct {
	jwt.RegisteredClaims
	Role      string `json:"role,omitempty"`
	CompanyID string `json:"company_id,omitempty"`
}

// UnmarshalJSON reads a claims set whose exp, nbf and iat, when present,
// are NumericDates: JSON numbers (RFC 7519 §2, §4.1.4-6). jwt's NumericDate
// also takes a string holding a number ("exp":"1893456000"), which no
// conforming issuer writes; such a token does not decode, so it is refused
// (401) rather than honoured. Names are matched as encoding/json matches
// them (case-insensitively, the last of repeated names), so the value
// checked is the value decoded.
func (p *Payload) UnmarshalJSON(b []byte) error {
	var dates struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &dates); err != nil {
		return err
	}
	for _, d := range [...]struct {
		name string
		raw  json.RawMessage
	}{{"exp", dates.Exp}, {"nbf", dates.Nbf}, {"iat", dates.Iat}} {
		if d.raw != nil && !isJSONNumber(d.raw) {
			return fmt.Errorf("token: claim %s must be a NumericDate (a JSON number)", d.name)
		}
	}
	type plain Payload // without this method
	return json.Unmarshal(b, (*plain)(p))
}

// isJSONNumber reports whether raw, one JSON value, is a number.
func isJSONNumber(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && (raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9')
}

// Claims is what a minted token says. Issuer, Audience, Subject and Role
// are required; CompanyID is required for, and only allowed with, the company
// role; TTL must be positive. NotBefore is optional.
type Claims struct {
	Issuer    string
	Audience  string
	Subject   string
	Role      string
	CompanyID string
	TTL       time.Duration
	NotBefore time.Time
}

// Validate returns EINVALID naming every claim that would make api's Verifier
// refuse the token.
func (c Claims) Validate() error {
	var errs []wuyou.FieldError
	required := func(field, value string) {
		if value == "" {
			errs = append(errs, wuyou.FieldError{Field: field, Message: "required"})
		}
	}
	required("iss", c.Issuer)
	required("aud", c.Audience)
	required("sub", c.Subject)
	switch c.Role {
	case RoleSeafarer, RoleUnion, RoleCarrier:
		if c.CompanyID != "" {
			errs = append(errs, wuyou.FieldError{Field: "company_id", Message: "only the company role has a company_id"})
		}
	case RoleCompany:
		required("company_id", c.CompanyID)
	case "":
		required("role", c.Role)
	default:
		errs = append(errs, wuyou.FieldError{Field: "role", Message: fmt.Sprintf("unknown role %q (want seafarer, company, union or carrier)", c.Role)})
	}
	if c.TTL <= 0 {
		errs = append(errs, wuyou.FieldError{Field: "ttl", Message: "must be positive"})
	}
	return wuyou.Invalid(errs)
}

// Mint signs a token for c, issued at now and expiring at now+TTL, with the
// key's kid and alg in its header. It returns EINVALID when c is invalid.
func (k *SigningKey) Mint(c Claims, now time.Time) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	var method jwt.SigningMethod
	switch k.Alg {
	case AlgEdDSA:
		method = jwt.SigningMethodEdDSA
	case AlgES256:
		method = jwt.SigningMethodES256
	case AlgRS256:
		method = jwt.SigningMethodRS256
	default:
		return "", fmt.Errorf("unsupported signing algorithm %q", k.Alg)
	}
	if alg, err := signingAlg(k.Private); err != nil {
		return "", err
	} else if alg != k.Alg {
		return "", fmt.Errorf("key %q: alg %q does not match its key type (%s)", k.KID, k.Alg, alg)
	}
	if k.KID == "" {
		return "", errors.New("signing key has no kid")
	}

	claims := Payload{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{c.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(c.TTL)),
		},
		Role:      c.Role,
		CompanyID: c.CompanyID,
	}
	if !c.NotBefore.IsZero() {
		claims.NotBefore = jwt.NewNumericDate(c.NotBefore)
	}
	token := jwt.NewWithClaims(method, claims)
	token.Header["kid"] = k.KID
	signed, err := token.SignedString(k.Private)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}
