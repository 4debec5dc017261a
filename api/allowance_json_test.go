package api

import (
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/quota"
)

// TestAllowanceJSONKnowsEveryField pins the fields appendAllowanceJSON
// writes. A field added to quota.Allowance or quota.Grant fails it: write
// the field in allowance_json.go, then add it here.
func TestAllowanceJSONKnowsEveryField(t *testing.T) {
	fields := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			f := rt.Field(i)
			out = append(out, f.Name+" "+f.Type.String()+" "+f.Tag.Get("json"))
		}
		return out
	}
	require.Equal(t, []string{
		"SeafarerID string seafarer_id",
		"RemainingSeconds int64 remaining_seconds",
		"RemainingMinutes int64 remaining_minutes",
		"Grants []*quota.Grant grants",
		"Period string period",
		"UsedSeconds int64 used_seconds",
		"OverageSeconds int64 overage_seconds",
		"AsOf time.Time as_of",
	}, fields(quota.Allowance{}), "quota.Allowance changed: update appendAllowanceJSON")
	require.Equal(t, []string{
		"ID string id",
		"ProgrammeID string programme_id",
		"GrantedSeconds int64 granted_seconds",
		"RemainingSeconds int64 remaining_seconds",
		"EffectiveAt time.Time effective_at",
		"ExpiresAt time.Time expires_at",
		"IssuedAt time.Time issued_at",
		"Priority int priority",
		"Status string status",
		"Voided bool -",
	}, fields(quota.Grant{}), "quota.Grant changed: update appendGrantJSON")
}

// TestAllowanceJSONIsEncodingJSON: on random allowances, strange strings
// and times included, the answer is byte for byte encoding/json's, and a
// value encoding/json refuses is refused the same way.
func TestAllowanceJSONIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "sf_01JD3X", "gr_bench_1_0", "2026-11", "active", "a\"b", `back\slash`, "<script>", "a&b", "tab\there",
		"nul\x00", "\x7f", "é", "\u2028", "\xff\xfe", "海员", "~!@#$%^*()_+{}|:?"}
	zones := []*time.Location{time.UTC, time.FixedZone("CST", 8*3600), time.FixedZone("odd", -(9*3600 + 30*60 + 15)),
		time.FixedZone("day", 24*3600), time.FixedZone("-day", -24*3600-60), time.Local}
	times := func() time.Time {
		switch r.IntN(40) {
		case 0:
			return time.Time{}
		case 1:
			return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		case 2:
			return time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		zone := zones[r.IntN(3)]
		if r.IntN(20) == 0 {
			zone = zones[r.IntN(len(zones))]
		}
		return time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).In(zone).Round(time.Duration(r.IntN(3)) * time.Millisecond)
	}
	str := func() string {
		if r.IntN(20) == 0 {
			return strs[r.IntN(len(strs))]
		}
		return strs[r.IntN(5)]
	}
	num := func() int64 { return r.Int64N(1<<40) - 1<<39 }
	var fast, left, refused int
	for i := range 20000 {
		a := &quota.Allowance{SeafarerID: str(), RemainingSeconds: num(), RemainingMinutes: num(), Period: str(),
			UsedSeconds: num(), OverageSeconds: num(), AsOf: times()}
		switch n := r.IntN(5); n {
		case 0:
		case 1:
			a.Grants = []*quota.Grant{}
		default:
			for range n {
				if r.IntN(10) == 0 {
					a.Grants = append(a.Grants, nil)
					continue
				}
				a.Grants = append(a.Grants, &quota.Grant{ID: str(), ProgrammeID: str(), GrantedSeconds: num(), RemainingSeconds: num(),
					EffectiveAt: times(), ExpiresAt: times(), IssuedAt: times(), Priority: int(num()), Status: str(), Voided: r.IntN(2) == 0})
			}
		}
		if i == 0 {
			a = nil
		}
		want, wantErr := json.Marshal(a)
		got, ok := appendAllowanceJSON(nil, a)
		if wantErr != nil {
			require.False(t, ok, "encoding/json refused %+v (%v); the fast path must leave it to it", a, wantErr)
			refused++
			continue
		}
		if !ok {
			left++
			continue
		}
		require.Equal(t, string(want), string(got))
		fast++
	}
	t.Logf("fast path %d, left to encoding/json %d, refused %d", fast, left, refused)
	// every path was taken, the fast one most
	require.Greater(t, fast, 5000)
	require.Greater(t, left, 500)
	require.Greater(t, refused, 500)
}

// TestAllowanceAnswerIsCJSON: the handler's answer (headers and body) is
// what c.JSON wrote before, on the fast path and on the fallback.
func TestAllowanceAnswerIsCJSON(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.UTC)
	fast := &quota.Allowance{SeafarerID: "sf_1", RemainingSeconds: 60, RemainingMinutes: 1, Period: "2026-11", AsOf: now,
		Grants: []*quota.Grant{{ID: "gr_1", ProgrammeID: "pg_1", GrantedSeconds: 60, RemainingSeconds: 60, EffectiveAt: now, ExpiresAt: now.Add(time.Hour), IssuedAt: now, Status: "active"}}}
	slow := *fast
	slow.SeafarerID = "sf_<1>"
	refused := *fast
	refused.AsOf = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, a := range []*quota.Allowance{fast, &slow, &refused} {
		answer := func(h fiber.Handler) (int, string, string) {
			app := fiber.New()
			app.Get("/", h)
			res, err := app.Test(httptest.NewRequest("GET", "/", nil))
			require.NoError(t, err)
			var body [4096]byte
			n, _ := res.Body.Read(body[:])
			return res.StatusCode, res.Header.Get("Content-Type"), string(body[:n])
		}
		wantStatus, wantType, wantBody := answer(func(c *fiber.Ctx) error { return c.JSON(a) })
		status, ctype, body := answer(func(c *fiber.Ctx) error { return writeAllowanceJSON(c, a) })
		require.Equal(t, wantStatus, status)
		require.Equal(t, wantType, ctype)
		require.Equal(t, wantBody, body)
	}
}
