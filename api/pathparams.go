package api

import (
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
)

// pathSegment returns the route parameter name decoded as RFC 3986 decodes
// a path segment: "%2B" and a literal "+" both stand for "+". The server's
// UnescapePath decodes the whole path by query-string rules, in which "+"
// is a space: right for no path, and wrong for an MSISDN, whose "+" a
// client rarely escapes (/v1/carrier/subscribers/+8613800000001/allowance).
// Every route that takes an MSISDN in its path reads it with this.
func pathSegment(c *fiber.Ctx, name string) string {
	route := strings.Split(c.Route().Path, "/")
	raw := strings.Split(string(c.Request().URI().PathOriginal()), "/")
	if len(route) == len(raw) {
		for i, seg := range route {
			if seg != ":"+name {
				continue
			}
			if v, err := url.PathUnescape(raw[i]); err == nil {
				return v
			}
			break
		}
	}
	return utils.CopyString(c.Params(name))
}
