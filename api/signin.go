package api

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/signin"
)

// SignIn is the seafarers' one-time-code sign-in (signin.Service).
type SignIn interface {
	RequestCode(ctx context.Context, msisdn, addr string) error
	Verify(ctx context.Context, msisdn, code, addr string) (*signin.Token, error)
	CodeTTL() time.Duration
}

// JWKSource publishes the public keys of Wuyou's own tokens (signin.KeyRing).
type JWKSource interface {
	JWKS() []byte
}

// signInBodyLimit bounds a sign-in body: anyone may send one, and a number
// and a code take a few dozen bytes.
const signInBodyLimit = 1 << 10

var errNoSignIn = wuyou.Errorf(wuyou.EUNAVAILABLE, "sign-in is not configured on this server")

type otpInput struct {
	MSISDN string `json:"msisdn"`
	Code   string `json:"code"`
}

// requestCode is POST /v1/auth/otp (no token): 202 for every well-formed
// number within the limits, enrolled or not (CONTRACT §7.4).
func (s *Server) requestCode(c *fiber.Ctx) error {
	if s.cfg.SignIn == nil {
		return errNoSignIn
	}
	var in struct {
		MSISDN string `json:"msisdn"`
	}
	if err := strictBody(c, &in); err != nil {
		return err
	}
	if err := s.cfg.SignIn.RequestCode(c.UserContext(), in.MSISDN, s.clientAddress(c)); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"expires_in": int64(s.cfg.SignIn.CodeTTL() / time.Second)})
}

// verifyCode is POST /v1/auth/otp:verify (no token): the code for a
// seafarer token, 401 for a wrong or expired one.
func (s *Server) verifyCode(c *fiber.Ctx) error {
	if s.cfg.SignIn == nil {
		return errNoSignIn
	}
	var in otpInput
	if err := strictBody(c, &in); err != nil {
		return err
	}
	tok, err := s.cfg.SignIn.Verify(c.UserContext(), in.MSISDN, in.Code, s.clientAddress(c))
	if err != nil {
		if wuyou.ErrorCode(err) == wuyou.EUNAUTHORIZED {
			c.Set(fiber.HeaderWWWAuthenticate, bearerChallenge)
		}
		return err
	}
	// RFC 6749 §5.1: token answers are not cached.
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{
		"access_token": tok.AccessToken,
		"token_type":   "Bearer",
		"expires_in":   int64(tok.ExpiresIn / time.Second),
		"seafarer_id":  tok.SeafarerID,
	})
}

// jwks is GET /.well-known/jwks.json: the public keys of the tokens Wuyou
// signs itself, every key that signs or may still have live tokens.
func (s *Server) jwks(c *fiber.Ctx) error {
	if s.cfg.OwnKeys == nil {
		return wuyou.Errorf(wuyou.ENOTFOUND, "this server signs no tokens")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	// Short: a key is published ahead of signing by more than this.
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(s.cfg.OwnKeys.JWKS())
}

// clientAddress is the address limits count a request under: the peer's,
// or, when the peer is a trusted proxy (Config.TrustedProxies), the
// nearest address in X-Forwarded-For that is not one. Every
// X-Forwarded-For line is read, in order (a proxy may add a line of its
// own rather than extend the client's), so entries a client wrote itself
// sit left of its real address and are never reached. A hop written with a
// port ("192.0.2.1:4711", "[2001:db8::1]:443") counts by its address.
func (s *Server) clientAddress(c *fiber.Ctx) string {
	peer := c.Context().RemoteIP().String()
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(line), ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := hopAddress(strings.TrimSpace(hops[i]))
		if !ok {
			break // a proxy wrote nonsense: count under the proxy
		}
		if !s.trusted(addr.String()) {
			return addr.String()
		}
	}
	return peer
}

// hopAddress reads one X-Forwarded-For entry: an address, with or without
// a port.
func hopAddress(hop string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr().Unmap(), true
	}
	addr, err := netip.ParseAddr(strings.Trim(hop, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

func (s *Server) trusted(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies reads WUYOU_TRUSTED_PROXIES: addresses or CIDR
// prefixes, comma-separated.
func ParseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, &net.ParseError{Type: "IP address or CIDR prefix", Text: f}
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}
