package billing

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// withFreeNumbers is twoVersions with a top-level free_numbers list.
func withFreeNumbers(list string) string {
	return strings.Replace(twoVersions, `{"versions": [`, `{"free_numbers": `+list+`, "versions": [`, 1)
}

func TestFreeNumbersAreE164PrefixesNamedByElement(t *testing.T) {
	tests := []struct {
		name, list, field, msg string
	}{
		{"a prefix starts with a plus", `["+112", "8612395"]`, "free_numbers[1]", `"8612395" is not an E.164 prefix`},
		{"a prefix has digits after the plus", `["+"]`, "free_numbers[0]", "is not an E.164 prefix"},
		{"a prefix has nothing but digits", `["+112", "+86", "+86 123"]`, "free_numbers[2]", `"+86 123" is not an E.164 prefix`},
		{"a prefix has at most 15 digits", `["+1234567890123456"]`, "free_numbers[0]", "is not an E.164 prefix"},
		{"an empty prefix would make every call free", `[""]`, "free_numbers[0]", "is not an E.164 prefix"},
		{"a prefix is listed once", `["+112", "+112"]`, "free_numbers[1]", "+112 is already free_numbers[0]"},
		{"a prefix is a string", `["+112", 112]`, "free_numbers", "must be a string, not number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tariff, err := ParseTariff([]byte(withFreeNumbers(tt.list)), "json")
			require.Nil(t, tariff)
			requireInvalid(t, err, tt.field, tt.msg)
		})
	}
	t.Run("yaml lists them at the top level too", func(t *testing.T) {
		src := "free_numbers: [\"+8612395\", \"+112\"]\nversions:\n- effective_from: '2026-01-01T00:00:00Z'\n  currency: CNY\n" +
			"  zones: [{name: all, default: true, overage_per_increment: 1, wholesale_per_increment: 1}]\n"
		tariff := MustParseTariff(t, src, "yaml")
		require.True(t, tariff.FreeNumber("+8612395000"))
		require.False(t, tariff.FreeNumber("+8612396000"))
	})
}

func TestCallsToFreeNumbersAreFreeAndDrawNothing(t *testing.T) {
	tariff := MustParseTariff(t, withFreeNumbers(`["+8612395", "+112"]`), "json")
	to := func(number string, c Call) Call { c.CalledNumber = number; return c }
	tests := []struct {
		name         string
		call         Call
		wantFree     bool
		wantEligible bool
		wantBillable int64
	}{
		{"a call to the hotline is free and bills nothing", to("+861239500", voiceAbroad(125)), true, false, 0},
		{"a call to exactly the prefix is free", to("+112", voiceAbroad(30)), true, false, 0},
		{"a free call in a later version is free too", to("+112", with(voiceAbroad(30), func(c *Call) { c.Time = c.Time.AddDate(0, 6, 0) })), true, false, 0},
		{"an SMS to the hotline is free", to("+8612395", with(voiceAbroad(0), func(c *Call) { c.Type = TypeSMS })), true, false, 0},
		{"a number that merely contains the prefix later is not free", to("+4400112", voiceAbroad(125)), false, true, 180},
		{"a number that contains the hotline later is not free", to("+18612395", voiceAbroad(61)), false, true, 120},
		{"a call with no called number is not free", voiceAbroad(61), false, true, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tariff.Rate(tt.call, home)
			require.Equal(t, tt.wantFree, r.Free)
			require.Equal(t, tt.wantEligible, r.Eligible)
			require.Equal(t, tt.wantBillable, r.Billable)
			require.Equal(t, tt.wantBillable, r.BillableSeconds)
			if tt.wantFree {
				require.Zero(t, r.OverageAmount(r.Billable).Minor, "a free call costs nothing")
				require.NotEmpty(t, r.Zone, "a free call still says which tariff saw it")
			}
		})
	}
	t.Run("a tariff without free_numbers has no free calls", func(t *testing.T) {
		r := MustParseTariff(t, twoVersions, "json").Rate(to("+112", voiceAbroad(61)), home)
		require.False(t, r.Free)
		require.Equal(t, int64(120), r.Billable)
	})
}
