package api

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou/quota"
)

// The allowance is the most read answer of the API (every seafarer's app
// asks for it), and encoding/json spent more on it than the rest of the
// request's own work together: reflection over the struct and each grant,
// and for each of the four timestamps a Time.MarshalJSON allocation that is
// then re-scanned. appendAllowanceJSON writes the same bytes directly.
//
// It is byte for byte what encoding/json writes (TestAllowanceJSONIsEncodingJSON
// checks it on random values), and it does not guess: a value it does not
// encode the simple way — a string that needs escaping, a time encoding/json
// would refuse — is left to encoding/json whole. When quota.Allowance or
// quota.Grant gains a field, TestAllowanceJSONKnowsEveryField fails until
// the field is written here too.

// writeAllowanceJSON answers a as c.JSON(a) would.
func writeAllowanceJSON(c *fiber.Ctx, a *quota.Allowance) error {
	var stack [1024]byte
	b, ok := appendAllowanceJSON(stack[:0], a)
	if !ok {
		return c.JSON(a)
	}
	c.Response().SetBody(b)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}

// appendAllowanceJSON appends encoding/json's encoding of a to b, or
// returns ok=false when a holds a value it leaves to encoding/json.
func appendAllowanceJSON(b []byte, a *quota.Allowance) (_ []byte, ok bool) {
	if a == nil {
		return append(b, "null"...), true
	}
	b = append(b, `{"seafarer_id":`...)
	if b, ok = appendJSONString(b, a.SeafarerID); !ok {
		return b, false
	}
	b = append(b, `,"remaining_seconds":`...)
	b = strconv.AppendInt(b, a.RemainingSeconds, 10)
	b = append(b, `,"remaining_minutes":`...)
	b = strconv.AppendInt(b, a.RemainingMinutes, 10)
	b = append(b, `,"grants":`...)
	if a.Grants == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, g := range a.Grants {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendGrantJSON(b, g); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"period":`...)
	if b, ok = appendJSONString(b, a.Period); !ok {
		return b, false
	}
	b = append(b, `,"used_seconds":`...)
	b = strconv.AppendInt(b, a.UsedSeconds, 10)
	b = append(b, `,"overage_seconds":`...)
	b = strconv.AppendInt(b, a.OverageSeconds, 10)
	b = append(b, `,"as_of":`...)
	if b, ok = appendJSONTime(b, a.AsOf); !ok {
		return b, false
	}
	return append(b, '}'), true
}

func appendGrantJSON(b []byte, g *quota.Grant) (_ []byte, ok bool) {
	if g == nil {
		return append(b, "null"...), true
	}
	b = append(b, `{"id":`...)
	if b, ok = appendJSONString(b, g.ID); !ok {
		return b, false
	}
	b = append(b, `,"programme_id":`...)
	if b, ok = appendJSONString(b, g.ProgrammeID); !ok {
		return b, false
	}
	b = append(b, `,"granted_seconds":`...)
	b = strconv.AppendInt(b, g.GrantedSeconds, 10)
	b = append(b, `,"remaining_seconds":`...)
	b = strconv.AppendInt(b, g.RemainingSeconds, 10)
	b = append(b, `,"effective_at":`...)
	if b, ok = appendJSONTime(b, g.EffectiveAt); !ok {
		return b, false
	}
	b = append(b, `,"expires_at":`...)
	if b, ok = appendJSONTime(b, g.ExpiresAt); !ok {
		return b, false
	}
	b = append(b, `,"issued_at":`...)
	if b, ok = appendJSONTime(b, g.IssuedAt); !ok {
		return b, false
	}
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(g.Priority), 10)
	b = append(b, `,"status":`...)
	if b, ok = appendJSONString(b, g.Status); !ok {
		return b, false
	}
	// Voided is `json:"-"`.
	return append(b, '}'), true
}

// appendJSONString appends s quoted when no byte of it needs escaping
// (printable ASCII other than the quote, the backslash and the three that
// encoding/json escapes for HTML), else reports ok=false.
func appendJSONString(b []byte, s string) (_ []byte, ok bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// appendJSONTime appends t as Time.MarshalJSON writes it (RFC 3339 with
// nanoseconds, quoted), or reports ok=false for the times it refuses: the
// same checks on the same bytes (a year that is not four digits, a zone
// offset of 24 hours or more).
func appendJSONTime(b []byte, t time.Time) (_ []byte, ok bool) {
	n0 := len(b) + 1
	b = t.AppendFormat(append(b, '"'), time.RFC3339Nano)
	switch {
	case b[n0+len("9999")] != '-':
		return b[:n0-1], false
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		h := b[len(b)-len("07:00"):]
		if ('0' <= c && c <= '9') || 10*(h[0]-'0')+(h[1]-'0') >= 24 {
			return b[:n0-1], false
		}
	}
	return append(b, '"'), true
}
