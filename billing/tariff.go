package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/wuyou/wuyou"
)

// Tariff is the list of tariff versions in force over time. A call is rated by
// the version in force when it started, never by when its event arrived, so a
// price change does not reprice calls that were made before it.
//
// A Tariff is built by DefaultTariff, LoadTariff or ParseTariff and never
// changes afterwards, so one value can be shared by every goroutine. The zero
// Tariff has no versions and cannot rate.
//
// The file format is documented by testdata/tariff.example.yaml.
type Tariff struct {
	versions []tariffVersion // effectiveFrom strictly increasing
	// finalAction is what the carrier is told to do when a real-time
	// session's final grant is used up (CONTRACT §7.3).
	finalAction string
	// freeNumbers are the E.164 prefixes (free_numbers) of numbers whose
	// calls are always free, whatever the version.
	freeNumbers []string
}

// Final actions of a tariff (final_action).
const (
	FinalContinueAsOverage = "continue_as_overage"
	FinalTerminate         = "terminate"
)

// FinalAction is what the carrier does when a session's final grant is used
// up: the tariff's final_action, continue_as_overage by default.
func (t *Tariff) FinalAction() string {
	if t.finalAction == "" {
		return FinalContinueAsOverage
	}
	return t.finalAction
}

// tariffVersion is one validated version, indexed for rating.
type tariffVersion struct {
	id               string // effective_from in RFC 3339 UTC
	effectiveFrom    time.Time
	currency         string
	increment        int64
	dataIncrement    int64 // bytes a data session's volume is rounded up to
	domesticEligible bool
	types            map[string]bool
	directions       map[string]bool
	byNetwork        map[string]*zone
	byCountry        map[string]*zone
	fallback         *zone // the default zone
}

type zone struct {
	name      string
	overage   int64 // minor units per started increment
	wholesale int64
	// Data is priced per started MB (BytesPerMB), SMS per message; nil
	// when the file does not price them (the type is then not eligible).
	dataOverage, dataWholesale *int64
	smsOverage, smsWholesale   *int64
}

// FreeNumber reports whether a call to number is free: number starts with
// one of the tariff's free_numbers prefixes.
func (t *Tariff) FreeNumber(number string) bool {
	for _, p := range t.freeNumbers {
		if strings.HasPrefix(number, p) {
			return true
		}
	}
	return false
}

// Rate rates one call for a seafarer whose home network is in homeCountry
// (ISO 3166 alpha-2). It uses the latest version whose effective_from is not
// after c.Time; a call older than every version uses the first one, so there
// is always a price.
//
// The call's zone is the zone matching its network (a ship's maritime network
// is priced the same in every port), else the zone listing its visited
// country, else the default zone.
//
// Each unit has its own rounding and prices (UnitOf the call's type):
// seconds are the duration rounded up to the version's increment, priced per
// started increment; bytes are the volume rounded up to the version's data
// increment, priced per started MB; an SMS is 1, priced per message.
//
// A call whose CalledNumber starts with one of the tariff's free_numbers is
// Free: not eligible, whatever its unit, so it draws nothing and bills
// nothing.
func (t *Tariff) Rate(c Call, homeCountry string) Rating {
	v := t.versionAt(c.Time)
	z := v.zoneFor(c)
	free := c.CalledNumber != "" && t.FreeNumber(c.CalledNumber)
	r := Rating{
		Free:           free,
		Eligible:       !free && v.covers(c, homeCountry),
		Unit:           UnitOf(c.Type),
		Increment:      v.increment,
		Zone:           z.name,
		OveragePrice:   Money{Minor: z.overage, Currency: v.currency},
		WholesalePrice: Money{Minor: z.wholesale, Currency: v.currency},
		TariffVersion:  v.id,
	}
	switch r.Unit {
	case UnitBytes:
		r.Increment = BytesPerMB
		r.OveragePrice.Minor, r.WholesalePrice.Minor = deref(z.dataOverage), deref(z.dataWholesale)
		if r.Eligible {
			r.Billable = roundUp(c.VolumeBytes, v.dataIncrement)
		}
	case UnitSMS:
		r.Increment = 1
		r.OveragePrice.Minor, r.WholesalePrice.Minor = deref(z.smsOverage), deref(z.smsWholesale)
		if r.Eligible {
			r.Billable = 1
		}
	default:
		if r.Eligible {
			r.BillableSeconds = roundUp(c.DurationSeconds, v.increment)
			r.Billable = r.BillableSeconds
		}
	}
	return r
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func (t *Tariff) versionAt(at time.Time) *tariffVersion {
	next := sort.Search(len(t.versions), func(i int) bool { return t.versions[i].effectiveFrom.After(at) })
	if next == 0 {
		return &t.versions[0]
	}
	return &t.versions[next-1]
}

func (v *tariffVersion) zoneFor(c Call) *zone {
	if z, ok := v.byNetwork[c.Network]; ok {
		return z
	}
	if z, ok := v.byCountry[c.VisitedCountry]; ok {
		return z
	}
	return v.fallback
}

// covers says whether the call draws from grants: the welfare packs pay for
// calls abroad, so a call in the home country draws nothing unless the
// version says otherwise.
func (v *tariffVersion) covers(c Call, homeCountry string) bool {
	domestic := c.VisitedCountry == homeCountry
	return v.types[c.Type] && v.directions[c.Direction] && (!domestic || v.domesticEligible)
}

// DefaultTariff is the built-in tariff used when WUYOU_TARIFF is empty: CNY,
// per-minute increments, voice calls, SMS and data (rounded up to 1 KiB)
// abroad in both directions on both networks, priced by zone (asia, europe,
// americas, maritime, rest_of_world): voice per started minute, data per
// started MB, SMS per message.
func DefaultTariff() *Tariff { return defaultTariff }

// defaultTariff is built once from a literal and shared, as a Tariff never
// changes. Building it goes through the same validation as a file, so a
// mistake in the literal fails every test run instead of mispricing calls.
var defaultTariff = mustCompile(tariffFile{Versions: []versionFile{{
	EffectiveFrom: "2026-01-01T00:00:00Z",
	Currency:      "CNY",
	EligibleTypes: []string{TypeVoice, TypeSMS, TypeData},
	Zones: []zoneFile{
		{Name: "maritime", Networks: []string{NetworkMaritime}, OveragePerIncrement: fen(499), WholesalePerIncrement: fen(300),
			DataOveragePerMB: fen(3000), DataWholesalePerMB: fen(2000), SMSOveragePerMessage: fen(300), SMSWholesalePerMessage: fen(200)},
		{Name: "asia", Countries: strings.Fields(`BD BN HK ID IN JP KH KR LK MM MO MY PH PK SG TH TW VN`),
			OveragePerIncrement: fen(99), WholesalePerIncrement: fen(45),
			DataOveragePerMB: fen(300), DataWholesalePerMB: fen(100), SMSOveragePerMessage: fen(100), SMSWholesalePerMessage: fen(40)},
		{Name: "europe", Countries: strings.Fields(`AL BE BG CY DE DK EE ES FI FR GB GE GR HR IE IS IT LT LV ME MT NL NO PL PT RO RU SE SI TR UA`),
			OveragePerIncrement: fen(199), WholesalePerIncrement: fen(90),
			DataOveragePerMB: fen(600), DataWholesalePerMB: fen(200), SMSOveragePerMessage: fen(150), SMSWholesalePerMessage: fen(60)},
		{Name: "americas", Countries: strings.Fields(`AR BR BS CA CL CO CR EC GT JM MX PA PE TT US UY VE`),
			OveragePerIncrement: fen(199), WholesalePerIncrement: fen(90),
			DataOveragePerMB: fen(600), DataWholesalePerMB: fen(200), SMSOveragePerMessage: fen(150), SMSWholesalePerMessage: fen(60)},
		{Name: "rest_of_world", Default: true, OveragePerIncrement: fen(299), WholesalePerIncrement: fen(150),
			DataOveragePerMB: fen(1000), DataWholesalePerMB: fen(400), SMSOveragePerMessage: fen(200), SMSWholesalePerMessage: fen(80)},
	},
}}})

func fen(minor int64) *int64 { return &minor }

func mustCompile(f tariffFile) *Tariff {
	t, err := compile(f)
	if err != nil {
		panic("billing: built-in tariff is invalid: " + err.Error())
	}
	return t
}

// LoadTariff reads and validates a tariff file, JSON or YAML by its extension
// (.json, .yaml, .yml). A file that cannot be read is returned as the
// os error, wrapped; a file that is not a valid tariff is an EINVALID
// *wuyou.Error whose message starts with the path and whose Fields name every
// problem (see ParseTariff).
func LoadTariff(path string) (*Tariff, error) {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if format != "json" && format != "yaml" && format != "yml" {
		return nil, wuyou.Errorf(wuyou.EINVALID, "tariff file %s: name must end in .json, .yaml or .yml", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tariff: %w", err)
	}
	t, err := ParseTariff(b, format)
	var invalid *wuyou.Error
	if errors.As(err, &invalid) {
		invalid.Message = "tariff file " + path + ": " + invalid.Message
	}
	return t, err
}

// ParseTariff parses and validates a tariff in format "json" or "yaml" (or
// "yml"). Any failure is an EINVALID *wuyou.Error. Its Fields name where each
// problem is, as a path into the file such as "versions[1].zones[2].countries[0]"
// (or "tariff" with a line number when the file does not even parse), and
// every problem found is listed, not just the first.
func ParseTariff(b []byte, format string) (*Tariff, error) {
	var f tariffFile
	var err error
	switch format {
	case "json":
		err = decodeTariffJSON(b, &f, false)
	case "yaml", "yml":
		err = decodeTariffYAML(b, &f)
	default:
		return nil, wuyou.Invalid([]wuyou.FieldError{{Field: "format", Message: fmt.Sprintf("%q is not json or yaml", format)}})
	}
	if err != nil {
		return nil, err
	}
	return compile(f)
}

// The tariff file as written. YAML is converted to JSON first, so the json
// tags are the field names of both formats. Pointers tell a field left out
// from one written as zero: a left-out increment takes the default, a
// left-out price is an error rather than free calls.
type tariffFile struct {
	Versions    versionList `json:"versions"`
	FinalAction string      `json:"final_action"`
	// FreeNumbers are E.164 prefixes ("+" and 1 to 15 digits) of numbers
	// whose calls are always free, in every version.
	FreeNumbers []string `json:"free_numbers"`
}

type versionFile struct {
	EffectiveFrom      string   `json:"effective_from"`
	Currency           string   `json:"currency"`
	IncrementSeconds   *int64   `json:"increment_seconds"`
	DataIncrementBytes *int64   `json:"data_increment_bytes"`
	DomesticEligible   bool     `json:"domestic_eligible"`
	EligibleTypes      []string `json:"eligible_types"`
	EligibleDirections []string `json:"eligible_directions"`
	Zones              zoneList `json:"zones"`
}

type zoneFile struct {
	Name                  string   `json:"name"`
	Default               bool     `json:"default"`
	Countries             []string `json:"countries"`
	Networks              []string `json:"networks"`
	OveragePerIncrement   *int64   `json:"overage_per_increment"`
	WholesalePerIncrement *int64   `json:"wholesale_per_increment"`
	// Data and SMS prices: required in every zone of a version whose
	// eligible_types list the type, optional (and unused) otherwise.
	DataOveragePerMB       *int64 `json:"data_overage_per_mb"`
	DataWholesalePerMB     *int64 `json:"data_wholesale_per_mb"`
	SMSOveragePerMessage   *int64 `json:"sms_overage_per_message"`
	SMSWholesalePerMessage *int64 `json:"sms_wholesale_per_message"`
}

// versionList and zoneList decode their elements one by one so that a
// decoding error (an unknown field, a string where a number belongs) can say
// which element it is in; encoding/json alone would only say "zones".
type (
	versionList []versionFile
	zoneList    []zoneFile
)

func (l *versionList) UnmarshalJSON(b []byte) (err error) {
	*l, err = decodeList[versionFile](b, "versions")
	return err
}

func (l *zoneList) UnmarshalJSON(b []byte) (err error) {
	*l, err = decodeList[zoneFile](b, "zones")
	return err
}

func decodeList[T any](b []byte, name string) ([]T, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, err
	}
	list := make([]T, len(raws))
	for i, raw := range raws {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields() // a misspelt price must not silently become "free"
		if err := dec.Decode(&list[i]); err != nil {
			return nil, &elementError{path: fmt.Sprintf("%s[%d]", name, i), err: err}
		}
	}
	return list, nil
}

// elementError places a decoding error inside one list element.
type elementError struct {
	path string
	err  error
}

func (e *elementError) Error() string { return e.path + ": " + e.err.Error() }

// decodeTariffYAML converts YAML to JSON and decodes that, so both formats
// share one schema and one set of messages. Line numbers are only known to
// the YAML parser, so they appear for YAML syntax errors alone.
func decodeTariffYAML(b []byte, f *tariffFile) error {
	j, err := yaml.YAMLToJSONStrict(b) // strict: a key written twice is an error, not a silent override
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n  ", " ")
		return wuyou.Invalid([]wuyou.FieldError{{Field: "tariff", Message: "not valid YAML: " + msg}})
	}
	return decodeTariffJSON(j, f, true)
}

// decodeTariffJSON decodes one JSON object, refusing unknown fields and
// trailing data. fromYAML only changes the wording of errors.
func decodeTariffJSON(b []byte, f *tariffFile, fromYAML bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(f)
	if err == nil {
		if _, trailing := dec.Token(); trailing != io.EOF {
			return wuyou.Invalid([]wuyou.FieldError{{Field: "tariff", Message: fmt.Sprintf("%s: unexpected data after the tariff", lineOf(b, dec.InputOffset()))}})
		}
		return nil
	}
	return wuyou.Invalid([]wuyou.FieldError{decodeProblem(err, b, fromYAML)})
}

// decodeProblem turns an encoding/json error into a FieldError that names the
// field, or the line for a syntax error.
func decodeProblem(err error, src []byte, fromYAML bool) wuyou.FieldError {
	var path []string
	for {
		ee, ok := err.(*elementError)
		if !ok {
			break
		}
		path = append(path, ee.path)
		err = ee.err
	}
	field := func(name string) string {
		if name != "" {
			path = append(path, name)
		}
		if len(path) == 0 {
			return "tariff"
		}
		return strings.Join(path, ".")
	}

	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return wuyou.FieldError{Field: "tariff", Message: "is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return wuyou.FieldError{Field: "tariff", Message: "ends before the tariff is complete"}
	case errors.As(err, &syntaxErr):
		// Only possible for JSON input: JSON made from YAML is always well formed.
		return wuyou.FieldError{Field: "tariff", Message: fmt.Sprintf("%s: %s", lineOf(src, syntaxErr.Offset), strings.TrimPrefix(syntaxErr.Error(), "json: "))}
	case errors.As(err, &typeErr):
		msg := fmt.Sprintf("must be %s, not %s", describeType(typeErr.Type), typeErr.Value)
		if fromYAML && typeErr.Value == "bool" && typeErr.Type.Kind() == reflect.String {
			msg += ` (YAML reads an unquoted yes/no/on/off as a boolean: quote it, e.g. "NO" for Norway)`
		}
		return wuyou.FieldError{Field: field(typeErr.Field), Message: msg}
	default:
		// encoding/json has no type for an unknown field; its message is
		// `json: unknown field "x"`, and anything else is reported as is.
		return wuyou.FieldError{Field: field(""), Message: strings.TrimPrefix(err.Error(), "json: ")}
	}
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

// lineOf says where byte offset off falls in src, as "line L, column C".
func lineOf(src []byte, off int64) string {
	before := src[:min(max(off, 0), int64(len(src)))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// What a valid file may say.
var (
	countryCode  = regexp.MustCompile(`^[A-Z]{2}$`)
	e164Prefix   = regexp.MustCompile(`^\+[0-9]{1,15}$`)
	currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

	knownTypes      = []string{TypeVoice, TypeSMS, TypeData}
	knownDirections = []string{DirectionMO, DirectionMT}
	knownNetworks   = []string{NetworkTerrestrial, NetworkMaritime}
)

// Defaults for fields a version may leave out (and DefaultIncrement).
var (
	defaultTypes      = []string{TypeVoice}
	defaultDirections = knownDirections
)

// problems collects every validation failure of a file, so an operator fixes
// them in one round rather than one per restart.
type problems []wuyou.FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, wuyou.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// compile validates a decoded file and indexes it for rating.
func compile(f tariffFile) (*Tariff, error) {
	var errs problems
	if len(f.Versions) == 0 {
		errs.add("versions", "at least one version is required")
	}
	t := &Tariff{versions: make([]tariffVersion, len(f.Versions)), finalAction: f.FinalAction}
	if a := f.FinalAction; a != "" && a != FinalContinueAsOverage && a != FinalTerminate {
		errs.add("final_action", "%q is not one of %s, %s", a, FinalContinueAsOverage, FinalTerminate)
	}
	for i, p := range f.FreeNumbers {
		path := fmt.Sprintf("free_numbers[%d]", i)
		if !e164Prefix.MatchString(p) {
			errs.add(path, "%q is not an E.164 prefix (+ and 1 to 15 digits, e.g. +112)", p)
		} else if j := slices.Index(f.FreeNumbers, p); j < i {
			errs.add(path, "%s is already free_numbers[%d]", p, j)
		} else {
			t.freeNumbers = append(t.freeNumbers, p)
		}
	}
	var prev time.Time // effective_from of the last version that had a valid one
	for i, vf := range f.Versions {
		path := fmt.Sprintf("versions[%d]", i)
		v := &t.versions[i]
		compileVersion(vf, path, v, &errs)
		if v.effectiveFrom.IsZero() {
			continue
		}
		if !prev.IsZero() && !v.effectiveFrom.After(prev) {
			errs.add(path+".effective_from", "%s is not after the previous version's %s: versions must be in strictly increasing order of effective_from",
				v.id, prev.Format(time.RFC3339Nano))
		}
		prev = v.effectiveFrom
	}
	if err := wuyou.Invalid(errs); err != nil {
		return nil, err
	}
	return t, nil
}

// compileVersion validates one version into v, leaving v.effectiveFrom zero
// when effective_from is not usable.
func compileVersion(vf versionFile, path string, v *tariffVersion, errs *problems) {
	if vf.EffectiveFrom == "" {
		errs.add(path+".effective_from", "is required")
	} else if at, err := time.Parse(time.RFC3339, vf.EffectiveFrom); err != nil {
		errs.add(path+".effective_from", "%q is not an RFC 3339 timestamp such as 2026-01-01T00:00:00Z", vf.EffectiveFrom)
	} else {
		v.effectiveFrom = at.UTC()
		v.id = v.effectiveFrom.Format(time.RFC3339Nano)
	}

	if vf.Currency == "" {
		errs.add(path+".currency", "is required")
	} else if !currencyCode.MatchString(vf.Currency) {
		errs.add(path+".currency", "%q is not an ISO 4217 code (three uppercase letters, e.g. CNY)", vf.Currency)
	}
	v.currency = vf.Currency

	v.increment = DefaultIncrement
	if vf.IncrementSeconds != nil {
		v.increment = *vf.IncrementSeconds
		if v.increment < 1 || v.increment > 3600 {
			errs.add(path+".increment_seconds", "%d is not between 1 and 3600", v.increment)
		}
	}

	v.dataIncrement = DefaultDataIncrement
	if vf.DataIncrementBytes != nil {
		v.dataIncrement = *vf.DataIncrementBytes
		if v.dataIncrement < 1 || v.dataIncrement > BytesPerMB {
			errs.add(path+".data_increment_bytes", "%d is not between 1 and %d", v.dataIncrement, BytesPerMB)
		}
	}

	v.domesticEligible = vf.DomesticEligible
	v.types = valueSet(vf.EligibleTypes, defaultTypes, knownTypes, path+".eligible_types", errs)
	v.directions = valueSet(vf.EligibleDirections, defaultDirections, knownDirections, path+".eligible_directions", errs)
	compileZones(vf.Zones, path+".zones", v, errs)
}

// valueSet validates an optional list of words. Left out (nil), it takes the
// default; written as an empty list it is refused, as covering nothing at all
// is more likely a mistake than a plan.
func valueSet(given, defaults, known []string, path string, errs *problems) map[string]bool {
	if given == nil {
		given = defaults
	} else if len(given) == 0 {
		errs.add(path, "must not be empty; leave it out for the default %s", strings.Join(defaults, ", "))
	}
	set := make(map[string]bool, len(given))
	for i, s := range given {
		if !slices.Contains(known, s) {
			errs.add(fmt.Sprintf("%s[%d]", path, i), "%q is not one of %s", s, strings.Join(known, ", "))
		}
		set[s] = true
	}
	return set
}

// compileZones validates the zones of one version and indexes them. Every
// country and every network belongs to at most one zone, and exactly one
// zone is the default, so a call always has exactly one price.
func compileZones(zfs []zoneFile, path string, v *tariffVersion, errs *problems) {
	if len(zfs) == 0 {
		errs.add(path, "at least one zone is required, one of them the default")
		return
	}
	v.byCountry = make(map[string]*zone)
	v.byNetwork = make(map[string]*zone)
	byName := make(map[string]int)
	defaultAt := -1
	for j, zf := range zfs {
		zpath := fmt.Sprintf("%s[%d]", path, j)
		z := &zone{name: zf.Name}

		if zf.Name == "" {
			errs.add(zpath+".name", "is required")
		} else if k, taken := byName[zf.Name]; taken {
			errs.add(zpath+".name", "%q is already the name of %s[%d]", zf.Name, path, k)
		} else {
			byName[zf.Name] = j
		}

		switch {
		case len(zf.Countries) > 0 && len(zf.Networks) > 0:
			errs.add(zpath, "zone %q lists both countries and networks; a zone matches by one or the other", zf.Name)
		case len(zf.Countries) == 0 && len(zf.Networks) == 0 && !zf.Default:
			errs.add(zpath, "zone %q matches no call: list countries or networks, or make it the default", zf.Name)
		}
		for k, cc := range zf.Countries {
			cpath := fmt.Sprintf("%s.countries[%d]", zpath, k)
			if !countryCode.MatchString(cc) {
				errs.add(cpath, "%q is not an ISO 3166 alpha-2 code (two uppercase letters)", cc)
			} else if other, taken := v.byCountry[cc]; taken && other == z {
				errs.add(cpath, "%s is listed twice", cc)
			} else if taken {
				errs.add(cpath, "%s is already in zone %q; a country belongs to one zone", cc, other.name)
			} else {
				v.byCountry[cc] = z
			}
		}
		for k, nw := range zf.Networks {
			npath := fmt.Sprintf("%s.networks[%d]", zpath, k)
			if !slices.Contains(knownNetworks, nw) {
				errs.add(npath, "%q is not one of %s", nw, strings.Join(knownNetworks, ", "))
			} else if other, taken := v.byNetwork[nw]; taken && other == z {
				errs.add(npath, "%s is listed twice", nw)
			} else if taken {
				errs.add(npath, "%s is already in zone %q; a network belongs to one zone", nw, other.name)
			} else {
				v.byNetwork[nw] = z
			}
		}

		z.overage = price(zf.OveragePerIncrement, zpath+".overage_per_increment", errs)
		z.wholesale = price(zf.WholesalePerIncrement, zpath+".wholesale_per_increment", errs)
		z.dataOverage = unitPrice(zf.DataOveragePerMB, v.types[TypeData], TypeData, "per started MB", zpath+".data_overage_per_mb", errs)
		z.dataWholesale = unitPrice(zf.DataWholesalePerMB, v.types[TypeData], TypeData, "per started MB", zpath+".data_wholesale_per_mb", errs)
		z.smsOverage = unitPrice(zf.SMSOveragePerMessage, v.types[TypeSMS], TypeSMS, "per message", zpath+".sms_overage_per_message", errs)
		z.smsWholesale = unitPrice(zf.SMSWholesalePerMessage, v.types[TypeSMS], TypeSMS, "per message", zpath+".sms_wholesale_per_message", errs)

		if zf.Default {
			if defaultAt >= 0 {
				errs.add(zpath+".default", "only one zone may be the default and %s[%d] (%q) already is", path, defaultAt, zfs[defaultAt].Name)
			} else {
				defaultAt, v.fallback = j, z
			}
		}
	}
	if defaultAt < 0 {
		errs.add(path, "no zone is the default; exactly one zone needs default: true to price countries no zone lists")
	}
}

// price validates a required price in minor units. It is required rather
// than defaulting to zero so that leaving it out cannot make calls free.
func price(p *int64, path string, errs *problems) int64 {
	switch {
	case p == nil:
		errs.add(path, "is required (minor units per started increment; 0 if free)")
		return 0
	case *p < 0:
		errs.add(path, "%d is negative", *p)
	}
	return *p
}

// unitPrice validates a data or SMS price: required (so that it cannot
// silently be free) when the version's eligible_types list typ, optional
// otherwise; never negative. Left out, it is nil.
func unitPrice(p *int64, eligible bool, typ, per, path string, errs *problems) *int64 {
	switch {
	case p == nil && eligible:
		errs.add(path, "is required because eligible_types lists %s (minor units %s; 0 if free)", typ, per)
	case p != nil && *p < 0:
		errs.add(path, "%d is negative", *p)
	}
	return p
}
