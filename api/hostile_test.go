package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
)

// Inputs a hostile client would try (issue 18). Each case says what is
// refused and why.

// requireFieldRefused checks a 400 problem+json naming field.
func requireFieldRefused(tb testing.TB, status int, header http.Header, body []byte, field string) {
	tb.Helper()
	require.Equal(tb, http.StatusBadRequest, status, "%s", body)
	require.Equal(tb, "application/problem+json", header.Get(fiber.HeaderContentType))
	var p problemBody
	require.NoError(tb, json.Unmarshal(body, &p))
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	require.Contains(tb, fields, field, "%s", body)
}

// Every name (company, seafarer, vessel, programme) follows one text rule
// (wuyou.CheckText): control characters such as NUL, tabs and line breaks
// would break screens, reports and CSV exports, and U+FFFD marks text that
// was not UTF-8. Each is refused with a 400 naming the field.
func TestEveryNameRefusesControlCharactersWith400NamingTheField(t *testing.T) {
	f := MustAPIFixture(t)
	now := time.Now().UTC()
	for _, bad := range []string{"a\u0000b", "a\tb", "a\nb", "a\u0085b", "a\ufffdb"} {
		t.Run("programme name "+jsonQuote(bad), func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "POST", path: "/v1/programmes", token: f.union,
				contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, map[string]any{
					"name": bad, "pack_seconds": 600, "valid_days": 30, "priority": 1,
					"starts_at": now, "ends_at": now.Add(24 * time.Hour),
				})})
			requireFieldRefused(t, status, header, body, "name")
		})
		t.Run("company name "+jsonQuote(bad), func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "POST", path: "/v1/companies", token: f.union,
				contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, map[string]any{"name": bad, "registration_no": "REG-X"})})
			requireFieldRefused(t, status, header, body, "name")
		})
		t.Run("seafarer name "+jsonQuote(bad), func(t *testing.T) {
			e := f.newEnrolment()
			e.Name = bad
			status, header, body := f.do(t, apiRequest{method: "POST", path: "/v1/companies/" + f.companyA.ID + "/seafarers",
				token: f.union, contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, e)})
			requireFieldRefused(t, status, header, body, "name")
		})
		t.Run("vessel name "+jsonQuote(bad), func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: "PATCH", path: "/v1/seafarers/" + f.a1.ID, token: f.union,
				contentType: fiber.MIMEApplicationJSON, body: mustJSON(t, map[string]any{"vessel_name": bad})})
			requireFieldRefused(t, status, header, body, "vessel_name")
		})
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
