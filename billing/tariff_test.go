package billing

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wuyou/wuyou"
)

const home = "CN"

// twoVersions is a valid tariff whose price and increment change on
// 1 July 2026. Bad-file tests break it one field at a time.
const twoVersions = `{"versions": [
  {"effective_from": "2026-01-01T00:00:00Z", "currency": "CNY", "increment_seconds": 60,
   "zones": [
     {"name": "maritime", "networks": ["maritime"], "overage_per_increment": 499, "wholesale_per_increment": 300},
     {"name": "asia", "countries": ["SG", "JP"], "overage_per_increment": 99, "wholesale_per_increment": 45},
     {"name": "rest_of_world", "default": true, "overage_per_increment": 299, "wholesale_per_increment": 150}
   ]},
  {"effective_from": "2026-07-01T00:00:00Z", "currency": "CNY", "increment_seconds": 30,
   "zones": [
     {"name": "asia", "countries": ["SG", "JP"], "overage_per_increment": 49, "wholesale_per_increment": 22},
     {"name": "rest_of_world", "default": true, "overage_per_increment": 149, "wholesale_per_increment": 75}
   ]}
]}`

// MustParseTariff parses a tariff that the test expects to be valid.
func MustParseTariff(tb testing.TB, src, format string) *Tariff {
	tb.Helper()
	tariff, err := ParseTariff([]byte(src), format)
	require.NoError(tb, err)
	return tariff
}

// voiceAbroad is a terrestrial outgoing voice call in Singapore in March 2026.
func voiceAbroad(seconds int64) Call {
	return Call{
		Type:            TypeVoice,
		Time:            time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC),
		DurationSeconds: seconds,
		VisitedCountry:  "SG",
		Direction:       DirectionMO,
		Network:         NetworkTerrestrial,
	}
}

// with returns c changed by f, so each case states only what is special about it.
func with(c Call, f func(*Call)) Call {
	f(&c)
	return c
}

func TestDefaultTariffRating(t *testing.T) {
	cny := func(minor int64) Money { return Money{Minor: minor, Currency: "CNY"} }
	tests := []struct {
		name         string
		call         Call
		wantEligible bool
		wantBillable int64
		wantZone     string
		wantOverage  Money // price per started minute
	}{
		{"voice call abroad rounds up to the next whole minute", voiceAbroad(125), true, 180, "asia", cny(99)},
		{"one-second call bills a whole minute", voiceAbroad(1), true, 60, "asia", cny(99)},
		{"call of exactly one minute bills one minute", voiceAbroad(60), true, 60, "asia", cny(99)},
		{"zero-second call bills nothing", voiceAbroad(0), true, 0, "asia", cny(99)},
		{"received call abroad is eligible too", with(voiceAbroad(61), func(c *Call) { c.Direction = DirectionMT }), true, 120, "asia", cny(99)},
		{"domestic call is recorded but not eligible", with(voiceAbroad(300), func(c *Call) { c.VisitedCountry = home }), false, 0, "rest_of_world", cny(299)},
		{"domestic call on the maritime network is not eligible either", with(voiceAbroad(300), func(c *Call) { c.VisitedCountry, c.Network = home, NetworkMaritime }), false, 0, "maritime", cny(499)},
		{"maritime network is priced as maritime wherever the ship is", with(voiceAbroad(30), func(c *Call) { c.Network = NetworkMaritime }), true, 60, "maritime", cny(499)},
		{"europe is priced as europe", with(voiceAbroad(59), func(c *Call) { c.VisitedCountry = "NO" }), true, 60, "europe", cny(199)},
		{"americas are priced as americas", with(voiceAbroad(59), func(c *Call) { c.VisitedCountry = "BR" }), true, 60, "americas", cny(199)},
		{"country in no zone is priced as rest of world", with(voiceAbroad(59), func(c *Call) { c.VisitedCountry = "ZA" }), true, 60, "rest_of_world", cny(299)},
		{"call older than every version is rated by the first", with(voiceAbroad(59), func(c *Call) { c.Time = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) }), true, 60, "asia", cny(99)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := DefaultTariff().Rate(tt.call, home)
			require.Equal(t, tt.wantEligible, r.Eligible, "eligible")
			require.Equal(t, tt.wantBillable, r.BillableSeconds, "billable seconds")
			require.Equal(t, tt.wantZone, r.Zone, "zone")
			require.Equal(t, tt.wantOverage, r.OveragePrice, "overage price")
			require.Equal(t, int64(60), r.Increment)
			require.Equal(t, "2026-01-01T00:00:00Z", r.TariffVersion)
			require.Less(t, r.WholesalePrice.Minor, r.OveragePrice.Minor, "the fund pays less than the seafarer would")
			require.Equal(t, "CNY", r.WholesalePrice.Currency)
		})
	}
}

func TestTariffVersions(t *testing.T) {
	tariff := MustParseTariff(t, twoVersions, "json")
	change := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		start         time.Time
		wantVersion   string
		wantIncrement int64
		wantBillable  int64 // of a 125 s call
		wantOverage   int64
	}{
		{"tariff change applies by call time, not arrival: a call started before the change keeps the old price", change.Add(-time.Second), "2026-01-01T00:00:00Z", 60, 180, 99},
		{"call started at the change gets the new version", change, "2026-07-01T00:00:00Z", 30, 150, 49},
		{"call started after the change gets the new version", change.AddDate(0, 1, 0), "2026-07-01T00:00:00Z", 30, 150, 49},
		{"call before the first version is rated by the first", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "2026-01-01T00:00:00Z", 60, 180, 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tariff.Rate(with(voiceAbroad(125), func(c *Call) { c.Time = tt.start }), home)
			require.True(t, r.Eligible)
			require.Equal(t, tt.wantVersion, r.TariffVersion)
			require.Equal(t, tt.wantIncrement, r.Increment)
			require.Equal(t, tt.wantBillable, r.BillableSeconds)
			require.Equal(t, Money{Minor: tt.wantOverage, Currency: "CNY"}, r.OveragePrice)
		})
	}
	t.Run("a network zone dropped by the new version leaves maritime calls priced by country", func(t *testing.T) {
		r := tariff.Rate(with(voiceAbroad(10), func(c *Call) { c.Time, c.Network = change, NetworkMaritime }), home)
		require.Equal(t, "asia", r.Zone)
	})
}

func TestEligibilityRules(t *testing.T) {
	narrow := strings.Replace(twoVersions, `"increment_seconds": 60,`,
		`"increment_seconds": 60, "eligible_directions": ["MO"], "eligible_types": ["carrier.usage.voice", "carrier.usage.sms"], "domestic_eligible": true,`, 1)
	narrow = strings.ReplaceAll(narrow, `"wholesale_per_increment": 45}`, `"wholesale_per_increment": 45, "sms_overage_per_message": 10, "sms_wholesale_per_message": 4}`)
	narrow = strings.Replace(narrow, `"wholesale_per_increment": 300}`, `"wholesale_per_increment": 300, "sms_overage_per_message": 30, "sms_wholesale_per_message": 20}`, 1)
	narrow = strings.Replace(narrow, `"wholesale_per_increment": 150}`, `"wholesale_per_increment": 150, "sms_overage_per_message": 20, "sms_wholesale_per_message": 8}`, 1)
	tariff := MustParseTariff(t, narrow, "json")
	tests := []struct {
		name         string
		call         Call
		wantEligible bool
		wantBillable int64
	}{
		{"a version covering only MO leaves received calls uncovered", with(voiceAbroad(61), func(c *Call) { c.Direction = DirectionMT }), false, 0},
		{"a version covering MO still covers calls made", voiceAbroad(61), true, 120},
		{"a version covering sms counts each message as one sms, whatever its duration", with(voiceAbroad(61), func(c *Call) { c.Type = TypeSMS }), true, 1},
		{"data stays uncovered unless listed", with(voiceAbroad(1), func(c *Call) { c.Type, c.VolumeBytes = TypeData, 5000 }), false, 0},
		{"domestic_eligible makes home-country calls draw", with(voiceAbroad(61), func(c *Call) { c.VisitedCountry = home }), true, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tariff.Rate(tt.call, home)
			require.Equal(t, tt.wantEligible, r.Eligible)
			require.Equal(t, tt.wantBillable, r.Billable)
		})
	}
}

func TestRatingPrices(t *testing.T) {
	r := DefaultTariff().Rate(voiceAbroad(600), home) // asia: 99 fen overage, 45 fen wholesale per minute
	tests := []struct {
		name    string
		price   func(int64) Money
		seconds int64
		want    int64
	}{
		{"overage is priced per started minute", r.OverageAmount, 61, 2 * 99},
		{"overage of whole minutes costs exactly those minutes", r.OverageAmount, 180, 3 * 99},
		{"no overage costs nothing", r.OverageAmount, 0, 0},
		{"covered time costs the fund the wholesale price per started minute", r.WelfareCost, 125, 3 * 45},
		{"nothing covered costs the fund nothing", r.WelfareCost, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, Money{Minor: tt.want, Currency: "CNY"}, tt.price(tt.seconds))
		})
	}
}

func TestLoadTariff(t *testing.T) {
	const yamlTariff = `
versions:
  - effective_from: 2026-01-01T00:00:00Z   # unquoted timestamps stay text
    currency: EUR
    increment_seconds: 1
    zones:
      - name: north_sea
        countries: ["NO", DK]
        overage_per_increment: 2
        wholesale_per_increment: 1
      - name: elsewhere
        default: true
        overage_per_increment: 3
        wholesale_per_increment: 2
`
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}

	t.Run("a JSON file is read as JSON", func(t *testing.T) {
		tariff, err := LoadTariff(write("tariff.json", twoVersions))
		require.NoError(t, err)
		require.Equal(t, int64(30), tariff.Rate(with(voiceAbroad(1), func(c *Call) { c.Time = time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC) }), home).BillableSeconds)
	})
	for _, name := range []string{"tariff.yaml", "tariff.yml", "TARIFF.YAML"} {
		t.Run("a YAML file is read as YAML: "+name, func(t *testing.T) {
			tariff, err := LoadTariff(write(name, yamlTariff))
			require.NoError(t, err)
			r := tariff.Rate(with(voiceAbroad(7), func(c *Call) { c.VisitedCountry = "NO" }), home)
			require.Equal(t, Rating{
				Eligible: true, BillableSeconds: 7, Unit: UnitSeconds, Billable: 7, Increment: 1, Zone: "north_sea",
				OveragePrice: Money{2, "EUR"}, WholesalePrice: Money{1, "EUR"}, TariffVersion: "2026-01-01T00:00:00Z",
			}, r)
		})
	}
	t.Run("the documented example loads, starts as the built-in default and changes price on 1 July 2026 Beijing time", func(t *testing.T) {
		tariff, err := LoadTariff(filepath.Join("testdata", "tariff.example.yaml"))
		require.NoError(t, err)
		beforeChange := with(voiceAbroad(125), func(c *Call) { c.Time = time.Date(2026, 6, 30, 15, 59, 59, 0, time.UTC) })
		afterChange := with(beforeChange, func(c *Call) { c.Time = c.Time.Add(time.Second) })
		// The example's first version documents the built-in default, so
		// the two must price every zone alike.
		calls := []Call{with(beforeChange, func(c *Call) { c.Network = NetworkMaritime })}
		for country := range DefaultTariff().versions[0].byCountry {
			calls = append(calls, with(beforeChange, func(c *Call) { c.VisitedCountry = country }))
		}
		for _, c := range append(calls, with(beforeChange, func(c *Call) { c.VisitedCountry = "ZA" })) {
			require.Equal(t, DefaultTariff().Rate(c, home), tariff.Rate(c, home), "%+v", c)
		}
		r := tariff.Rate(afterChange, home)
		require.Equal(t, "2026-06-30T16:00:00Z", r.TariffVersion)
		require.Equal(t, int64(150), r.BillableSeconds)
	})
	t.Run("a file of another kind is refused by name", func(t *testing.T) {
		_, err := LoadTariff(write("tariff.toml", twoVersions))
		requireInvalid(t, err, "", "must end in .json, .yaml or .yml")
	})
	t.Run("an invalid file is refused naming the file and the field", func(t *testing.T) {
		path := write("bad.json", strings.Replace(twoVersions, `"CNY"`, `"cny"`, 1))
		_, err := LoadTariff(path)
		requireInvalid(t, err, "versions[0].currency", `"cny" is not an ISO 4217 code`)
		require.Contains(t, wuyou.ErrorMessage(err), path)
	})
	t.Run("a missing file is an error that says so", func(t *testing.T) {
		_, err := LoadTariff(filepath.Join(dir, "missing.yaml"))
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

// requireInvalid asserts err is EINVALID with a field error on field whose
// message contains msg. An empty field checks the error's message instead.
func requireInvalid(tb testing.TB, err error, field, msg string) {
	tb.Helper()
	var e *wuyou.Error
	require.True(tb, errors.As(err, &e), "want a *wuyou.Error, got %v", err)
	require.Equal(tb, wuyou.EINVALID, e.Code)
	if field == "" {
		require.Contains(tb, e.Message, msg)
		return
	}
	for _, fe := range e.Fields {
		if fe.Field == field && strings.Contains(fe.Message, msg) {
			return
		}
	}
	tb.Fatalf("no error on %s containing %q in %v", field, msg, e.Fields)
}

func TestParseTariffRejectsBadFiles(t *testing.T) {
	// broken returns the valid two-version tariff with one text replaced.
	broken := func(old, new string) string {
		if !strings.Contains(twoVersions, old) {
			panic("test fixture does not contain " + old)
		}
		return strings.Replace(twoVersions, old, new, 1)
	}
	tests := []struct {
		name   string
		format string
		src    string
		field  string
		msg    string
	}{
		{"an empty file has no tariff", "json", ``, "tariff", "is empty"},
		{"a tariff needs at least one version", "json", `{"versions": []}`, "versions", "at least one version is required"},
		{"a tariff without versions has none", "yaml", "versions:\n", "versions", "at least one version is required"},
		{"effective_from is required", "json", broken(`"effective_from": "2026-01-01T00:00:00Z", `, ``), "versions[0].effective_from", "is required"},
		{"effective_from must be RFC 3339", "json", broken(`2026-07-01T00:00:00Z`, `2026-07-01`), "versions[1].effective_from", `"2026-07-01" is not an RFC 3339 timestamp`},
		{"versions must be in increasing order", "json", broken(`2026-07-01T00:00:00Z`, `2025-07-01T00:00:00Z`), "versions[1].effective_from", "2025-07-01T00:00:00Z is not after the previous version's 2026-01-01T00:00:00Z"},
		{"two versions cannot start at the same instant", "json", broken(`2026-07-01T00:00:00Z`, `2026-01-01T08:00:00+08:00`), "versions[1].effective_from", "is not after the previous version's"},
		{"the currency is three uppercase letters", "json", broken(`"CNY"`, `"yuan"`), "versions[0].currency", `"yuan" is not an ISO 4217 code`},
		{"the currency is required", "json", broken(`"currency": "CNY", `, ``), "versions[0].currency", "is required"},
		{"the increment is at least one second", "json", broken(`"increment_seconds": 30`, `"increment_seconds": 0`), "versions[1].increment_seconds", "0 is not between 1 and 3600"},
		{"the increment is at most an hour", "json", broken(`"increment_seconds": 60`, `"increment_seconds": 3601`), "versions[0].increment_seconds", "3601 is not between 1 and 3600"},
		{"the increment is a whole number", "json", broken(`"increment_seconds": 60`, `"increment_seconds": 1.5`), "versions[0].increment_seconds", "must be a whole number, not number 1.5"},
		{"an overage price cannot be negative", "json", broken(`"overage_per_increment": 99`, `"overage_per_increment": -99`), "versions[0].zones[1].overage_per_increment", "-99 is negative"},
		{"a wholesale price cannot be negative", "json", broken(`"wholesale_per_increment": 75`, `"wholesale_per_increment": -1`), "versions[1].zones[1].wholesale_per_increment", "-1 is negative"},
		{"a price left out is refused, not free", "json", broken(`, "overage_per_increment": 499`, ``), "versions[0].zones[0].overage_per_increment", "is required"},
		{"a misspelt field is refused, naming its zone", "json", broken(`"overage_per_increment": 499`, `"overage_per_minute": 499`), "versions[0].zones[0]", `unknown field "overage_per_minute"`},
		{"a misspelt top-level field is refused", "json", `{"version": []}`, "tariff", `unknown field "version"`},
		{"a country code is two uppercase letters", "json", broken(`"JP"]`, `"jpn"]`), "versions[0].zones[1].countries[1]", `"jpn" is not an ISO 3166 alpha-2 code`},
		{"a country code is a string", "json", broken(`"JP"]`, `81]`), "versions[0].zones[1].countries", "must be a string, not number"},
		{"a country belongs to one zone", "json", broken(`"networks": ["maritime"]`, `"countries": ["JP"]`), "versions[0].zones[1].countries[1]", `JP is already in zone "maritime"`},
		{"a country is listed once", "json", broken(`["SG", "JP"]`, `["SG", "SG"]`), "versions[0].zones[1].countries[1]", "SG is listed twice"},
		{"a network is terrestrial or maritime", "json", broken(`["maritime"]`, `["satellite"]`), "versions[0].zones[0].networks[0]", `"satellite" is not one of terrestrial, maritime`},
		{"a zone matches by countries or networks, not both", "json", broken(`"networks": ["maritime"]`, `"networks": ["maritime"], "countries": ["KR"]`), "versions[0].zones[0]", "lists both countries and networks"},
		{"a zone must match something", "json", broken(`"networks": ["maritime"], `, ``), "versions[0].zones[0]", `zone "maritime" matches no call`},
		{"a zone has a name", "json", broken(`"name": "asia", `, ``), "versions[0].zones[1].name", "is required"},
		{"zone names are unique in a version", "json", broken(`"name": "maritime"`, `"name": "asia"`), "versions[0].zones[1].name", `"asia" is already the name of versions[0].zones[0]`},
		{"a misspelt version field is refused, naming its version", "json", broken(`"increment_seconds": 30`, `"increment_seconds": 30, "increment": 30`), "versions[1]", `unknown field "increment"`},
		{"a version needs at least one zone", "yaml", "versions:\n- effective_from: '2026-01-01T00:00:00Z'\n  currency: CNY\n  zones: []\n", "versions[0].zones", "at least one zone is required"},
		{"one zone must be the default", "json", broken(`"name": "rest_of_world", "default": true`, `"name": "rest_of_world", "countries": ["US"]`), "versions[0].zones", "no zone is the default"},
		{"only one zone may be the default", "json", broken(`"name": "asia",`, `"name": "asia", "default": true,`), "versions[0].zones[2].default", `versions[0].zones[1] ("asia") already is`},
		{"eligible types are carrier usage types", "json", broken(`"increment_seconds": 60`, `"increment_seconds": 60, "eligible_types": ["voice"]`), "versions[0].eligible_types[0]", `"voice" is not one of carrier.usage.voice, carrier.usage.sms, carrier.usage.data`},
		{"eligible directions are MO and MT", "json", broken(`"increment_seconds": 60`, `"increment_seconds": 60, "eligible_directions": ["mo"]`), "versions[0].eligible_directions[0]", `"mo" is not one of MO, MT`},
		{"an empty eligibility list is refused rather than covering nothing", "json", broken(`"increment_seconds": 60`, `"increment_seconds": 60, "eligible_directions": []`), "versions[0].eligible_directions", "must not be empty"},
		{"JSON syntax errors name the line", "json", broken(`"currency": "CNY",`, `"currency": "CNY",,`), "tariff", "line 2, column"},
		{"a truncated JSON file is refused", "json", twoVersions[:100], "tariff", "ends before the tariff is complete"},
		{"data after the tariff is refused", "json", twoVersions + `{}`, "tariff", "unexpected data after the tariff"},
		{"YAML syntax errors name the line", "yaml", "versions:\n  - currency: CNY\n   zones: [\n", "tariff", "not valid YAML: yaml: line 2: did not find expected '-' indicator"},
		{"a YAML key written twice is refused", "yaml", "versions: []\nversions: []\n", "tariff", `key "versions" already set`},
		{"unquoted NO in YAML is explained", "yaml", "versions:\n- zones:\n  - countries: [SE, NO]\n", "versions[0].zones[0].countries", `quote it, e.g. "NO" for Norway`},
		{"YAML reports a wrong type by field", "yaml", "versions:\n- increment_seconds: a minute\n", "versions[0].increment_seconds", "must be a whole number, not string"},
		{"the format is json or yaml", "toml", twoVersions, "format", `"toml" is not json or yaml`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tariff, err := ParseTariff([]byte(tt.src), tt.format)
			require.Nil(t, tariff)
			requireInvalid(t, err, tt.field, tt.msg)
		})
	}

	t.Run("every problem is reported, not only the first", func(t *testing.T) {
		src := strings.NewReplacer(`"CNY"`, `"cny"`, `"increment_seconds": 30`, `"increment_seconds": 0`).Replace(twoVersions)
		_, err := ParseTariff([]byte(src), "json")
		requireInvalid(t, err, "versions[0].currency", "ISO 4217")
		requireInvalid(t, err, "versions[1].currency", "ISO 4217")
		requireInvalid(t, err, "versions[1].increment_seconds", "between 1 and 3600")
	})
}

// tariffWithIncrement is a one-version tariff rounding to increment seconds.
func tariffWithIncrement(t *rapid.T, increment int64) *Tariff {
	t.Helper()
	tariff, err := ParseTariff(fmt.Appendf(nil, `{"versions": [{"effective_from": "2026-01-01T00:00:00Z", "currency": "CNY",
		"increment_seconds": %d, "zones": [{"name": "all", "default": true, "overage_per_increment": 7, "wholesale_per_increment": 3}]}]}`, increment), "json")
	require.NoError(t, err)
	return tariff
}

func TestRoundingProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		increment := rapid.Int64Range(1, 3600).Draw(t, "increment")
		duration := rapid.Int64Range(0, 7*24*3600).Draw(t, "duration")
		r := tariffWithIncrement(t, increment).Rate(voiceAbroad(duration), home)

		require.True(t, r.Eligible)
		require.Zero(t, r.BillableSeconds%increment, "billable is a whole number of increments")
		require.GreaterOrEqual(t, r.BillableSeconds, duration, "rounding never bills less than the call")
		require.Less(t, r.BillableSeconds-duration, increment, "rounding adds less than one increment")
		if duration == 0 {
			require.Zero(t, r.BillableSeconds, "a zero-second call bills nothing")
		}
		// Overage and welfare cost are priced on the billable seconds' increments.
		increments := r.BillableSeconds / increment
		require.Equal(t, Money{Minor: increments * 7, Currency: "CNY"}, r.OverageAmount(duration))
		require.Equal(t, Money{Minor: increments * 3, Currency: "CNY"}, r.WelfareCost(r.BillableSeconds))
	})
}

func FuzzParseTariff(f *testing.F) {
	// Seeds are small on purpose: the fuzzer minimizes every new input it
	// finds, which takes long on a file the size of the documented example.
	f.Add([]byte(twoVersions), int64(125), int64(1782000000), "SG", true, uint8(0))
	f.Add([]byte(strings.Replace(twoVersions, `"increment_seconds": 30`, `"increment_seconds": 3600`, 1)), int64(1<<62), int64(1790000000), "JP", false, uint8(2))
	f.Add([]byte(`versions:
- effective_from: 2026-01-01T00:00:00Z
  currency: CNY
  domestic_eligible: true
  eligible_types: [carrier.usage.voice, carrier.usage.sms]
  eligible_directions: [MT]
  zones:
  - {name: sea, networks: [maritime], overage_per_increment: 5, wholesale_per_increment: 4}
  - {name: nordic, countries: [SE, "NO"], overage_per_increment: 3, wholesale_per_increment: 2}
  - {name: world, default: true, overage_per_increment: 1, wholesale_per_increment: 0}
`), int64(-5), int64(-1<<40), "NO", true, uint8(5))
	f.Add([]byte(`{"versions": [{"zones": [{"countries": [NO]}]}]}`), int64(0), int64(0), "CN", false, uint8(1))

	types := []string{TypeVoice, TypeSMS, TypeData, ""}
	f.Fuzz(func(t *testing.T, src []byte, duration, startUnix int64, country string, maritime bool, kind uint8) {
		for _, format := range []string{"json", "yaml"} {
			tariff, err := ParseTariff(src, format)
			if err != nil {
				require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "a refused tariff is always invalid input: %v", err)
				continue
			}
			call := Call{
				Type:            types[int(kind)%len(types)],
				Time:            time.Unix(startUnix, 0).UTC(),
				DurationSeconds: duration,
				VisitedCountry:  country,
				Direction:       []string{DirectionMO, DirectionMT}[int(kind/4)%2],
				Network:         NetworkTerrestrial,
			}
			if maritime {
				call.Network = NetworkMaritime
			}
			call.VolumeBytes = duration
			r := tariff.Rate(call, home)
			require.NotEmpty(t, r.Zone, "every call has a zone")
			require.NotEmpty(t, r.TariffVersion)
			require.Equal(t, UnitOf(call.Type), r.Unit)
			require.GreaterOrEqual(t, r.OveragePrice.Minor, int64(0))
			require.GreaterOrEqual(t, r.WholesalePrice.Minor, int64(0))
			switch r.Unit {
			case UnitBytes:
				require.Equal(t, int64(BytesPerMB), r.Increment, "data is priced per started MB")
				require.Zero(t, r.BillableSeconds)
				if r.Eligible && duration > 0 && duration <= 1<<40 {
					require.GreaterOrEqual(t, r.Billable, duration)
				} else if !r.Eligible || duration <= 0 {
					require.Zero(t, r.Billable)
				}
				continue
			case UnitSMS:
				require.Equal(t, int64(1), r.Increment)
				require.Zero(t, r.BillableSeconds)
				if r.Eligible {
					require.Equal(t, int64(1), r.Billable, "an eligible SMS counts one")
				} else {
					require.Zero(t, r.Billable)
				}
				continue
			}
			require.GreaterOrEqual(t, r.Increment, int64(1))
			require.LessOrEqual(t, r.Increment, int64(3600))
			require.Equal(t, r.BillableSeconds, r.Billable)
			require.Zero(t, r.BillableSeconds%r.Increment, "billable is a whole number of increments")
			if !r.Eligible || duration <= 0 {
				require.Zero(t, r.BillableSeconds)
				continue
			}
			// Only a duration whose round-up fits in int64 can be billed in
			// full; real events are at most a week long.
			if duration <= (1<<63-1)/r.Increment*r.Increment {
				require.GreaterOrEqual(t, r.BillableSeconds, duration)
			}
		}
	})
}

// TestDefaultTariffRatesDataAndSMSByTheirOwnUnit pins CONTRACT §7.2's rating
// of data and SMS by the built-in tariff: a data session bills its volume
// rounded up to 1 KiB in bytes, an SMS one sms, both only abroad, each
// priced by the zone's price for its unit.
func TestDefaultTariffRatesDataAndSMSByTheirOwnUnit(t *testing.T) {
	data := func(volume int64) Call {
		return with(voiceAbroad(0), func(c *Call) { c.Type, c.VolumeBytes = TypeData, volume })
	}
	sms := with(voiceAbroad(7), func(c *Call) { c.Type = TypeSMS })
	tests := []struct {
		name         string
		call         Call
		wantUnit     string
		wantEligible bool
		wantBillable int64
		wantIncr     int64
		wantOverage  int64
		wantZone     string
	}{
		{"a data session of 0 bytes bills nothing", data(0), UnitBytes, true, 0, BytesPerMB, 300, "asia"},
		{"a data session of 1 byte bills a whole KiB", data(1), UnitBytes, true, 1024, BytesPerMB, 300, "asia"},
		{"a data session of exactly 1 KiB bills 1 KiB", data(1024), UnitBytes, true, 1024, BytesPerMB, 300, "asia"},
		{"a data session of 1 KiB and a byte bills 2 KiB", data(1025), UnitBytes, true, 2048, BytesPerMB, 300, "asia"},
		{"a data session of 3 MB bills 3 MB", data(3 << 20), UnitBytes, true, 3 << 20, BytesPerMB, 300, "asia"},
		{"data at home draws nothing", with(data(5000), func(c *Call) { c.VisitedCountry = home }), UnitBytes, false, 0, BytesPerMB, 1000, "rest_of_world"},
		{"data on the maritime network is priced as maritime", with(data(10), func(c *Call) { c.Network = NetworkMaritime }), UnitBytes, true, 1024, BytesPerMB, 3000, "maritime"},
		{"an SMS abroad counts one sms, whatever its duration", sms, UnitSMS, true, 1, 1, 100, "asia"},
		{"an SMS at home draws nothing", with(sms, func(c *Call) { c.VisitedCountry = home }), UnitSMS, false, 0, 1, 200, "rest_of_world"},
		{"an SMS in Europe is priced as Europe", with(sms, func(c *Call) { c.VisitedCountry = "DE" }), UnitSMS, true, 1, 1, 150, "europe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := DefaultTariff().Rate(tt.call, home)
			require.Equal(t, tt.wantUnit, r.Unit)
			require.Equal(t, tt.wantEligible, r.Eligible, "eligible")
			require.Equal(t, tt.wantBillable, r.Billable, "billable")
			require.Zero(t, r.BillableSeconds, "no seconds are billed for data or SMS")
			require.Equal(t, tt.wantIncr, r.Increment)
			require.Equal(t, tt.wantZone, r.Zone)
			require.Equal(t, Money{Minor: tt.wantOverage, Currency: "CNY"}, r.OveragePrice)
			require.Less(t, r.WholesalePrice.Minor, r.OveragePrice.Minor, "the fund pays less than the seafarer would")
		})
	}
	t.Run("data overage is priced per started MB", func(t *testing.T) {
		r := DefaultTariff().Rate(data(1), home)
		require.Equal(t, int64(300), r.OverageAmount(1024).Minor)
		require.Equal(t, int64(300), r.OverageAmount(BytesPerMB).Minor)
		require.Equal(t, int64(600), r.OverageAmount(BytesPerMB+1024).Minor)
		require.Equal(t, int64(200), r.WelfareCost(BytesPerMB+1).Minor)
	})
}

// TestTariffFileDataAndSMSFields pins the file format's data and SMS fields:
// a version listing data or SMS must price them in every zone, prices are
// never negative, and the data increment is bounded; each problem is named
// by its path.
func TestTariffFileDataAndSMSFields(t *testing.T) {
	const base = `{"versions": [{"effective_from": "2026-01-01T00:00:00Z", "currency": "CNY", %s
   "zones": [{"name": "world", "default": true, "overage_per_increment": 10, "wholesale_per_increment": 5 %s}]}]}`
	prices := `, "data_overage_per_mb": 500, "data_wholesale_per_mb": 200, "sms_overage_per_message": 30, "sms_wholesale_per_message": 10`
	tests := []struct {
		name      string
		version   string
		zone      string
		wantField string
		wantMsg   string
	}{
		{"data listed but not priced", `"eligible_types": ["carrier.usage.data"],`, "", "versions[0].zones[0].data_overage_per_mb", "is required because eligible_types lists carrier.usage.data"},
		{"data wholesale missing", `"eligible_types": ["carrier.usage.data"],`, `, "data_overage_per_mb": 5`, "versions[0].zones[0].data_wholesale_per_mb", "is required because eligible_types lists carrier.usage.data"},
		{"sms listed but not priced", `"eligible_types": ["carrier.usage.sms"],`, "", "versions[0].zones[0].sms_overage_per_message", "is required because eligible_types lists carrier.usage.sms"},
		{"negative data price", "", `, "data_overage_per_mb": -1`, "versions[0].zones[0].data_overage_per_mb", "-1 is negative"},
		{"negative sms price", "", `, "sms_wholesale_per_message": -2`, "versions[0].zones[0].sms_wholesale_per_message", "-2 is negative"},
		{"data increment of zero", `"data_increment_bytes": 0,`, "", "versions[0].data_increment_bytes", "0 is not between 1 and 1048576"},
		{"data increment above a MB", `"data_increment_bytes": 1048577,`, "", "versions[0].data_increment_bytes", "1048577 is not between 1 and 1048576"},
		{"data price as a string", "", `, "data_overage_per_mb": "5"`, "versions[0].zones[0].data_overage_per_mb", "must be a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTariff([]byte(fmt.Sprintf(base, tt.version, tt.zone)), "json")
			var e *wuyou.Error
			require.True(t, errors.As(err, &e), "refused: %v", err)
			var found bool
			for _, f := range e.Fields {
				if f.Field == tt.wantField && strings.Contains(f.Message, tt.wantMsg) {
					found = true
				}
			}
			require.True(t, found, "fields %+v name %s: %s", e.Fields, tt.wantField, tt.wantMsg)
		})
	}
	t.Run("a version pricing data and SMS rates them with its own increment", func(t *testing.T) {
		tariff := MustParseTariff(t, fmt.Sprintf(base, `"eligible_types": ["carrier.usage.voice", "carrier.usage.data", "carrier.usage.sms"], "data_increment_bytes": 4096,`, prices), "json")
		r := tariff.Rate(with(voiceAbroad(0), func(c *Call) { c.Type, c.VolumeBytes = TypeData, 5000 }), home)
		require.Equal(t, int64(8192), r.Billable)
		require.Equal(t, Money{Minor: 500, Currency: "CNY"}, r.OveragePrice)
		r = tariff.Rate(with(voiceAbroad(0), func(c *Call) { c.Type = TypeSMS }), home)
		require.Equal(t, int64(1), r.Billable)
		require.Equal(t, Money{Minor: 10, Currency: "CNY"}, r.WholesalePrice)
	})
	t.Run("a v1 file without data or SMS prices still loads and leaves them uncovered", func(t *testing.T) {
		tariff := MustParseTariff(t, fmt.Sprintf(base, "", ""), "json")
		r := tariff.Rate(with(voiceAbroad(0), func(c *Call) { c.Type, c.VolumeBytes = TypeData, 5000 }), home)
		require.False(t, r.Eligible)
		require.Zero(t, r.Billable)
	})
}
