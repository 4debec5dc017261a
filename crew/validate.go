package crew

import (
	"strconv"
	"strings"
	"time"

	"github.com/wuyou/wuyou"
)

// Field limits of an enrolment (contract §4).
const (
	maxBookNoLen        = 32  // bytes; the book number is ASCII only
	maxNameRunes        = 100 // characters, not bytes: 张伟 is 2, not 6
	maxVesselNameRunes  = 100
	maxUnionMemberRunes = 32
)

// dateLayout is the contract's date format for sign_on and sign_off.
const dateLayout = "2006-01-02"

// Normalize removes what people add around values without changing the
// values: surrounding whitespace (including the ideographic space U+3000)
// on every field, lower-case nationality codes, and an "IMO" prefix on the
// vessel's IMO number ("IMO 9074729" → "9074729"). It does not repair
// anything else: an MSISDN written "+86 138 0000 0001" stays invalid.
func (e *Enrolment) Normalize() {
	e.BookNo = strings.TrimSpace(e.BookNo)
	e.Name = strings.TrimSpace(e.Name)
	e.Nationality = strings.ToUpper(strings.TrimSpace(e.Nationality))
	e.MSISDN = strings.TrimSpace(e.MSISDN)
	e.VesselIMO = NormalizeIMO(e.VesselIMO)
	e.VesselName = strings.TrimSpace(e.VesselName)
	e.SignOn = strings.TrimSpace(e.SignOn)
	e.SignOff = strings.TrimSpace(e.SignOff)
	e.UnionMemberNo = strings.TrimSpace(e.UnionMemberNo)
	e.Lang = normalizeLang(e.Lang)
}

// normalizeLang trims a language tag and spells a known one as wuyou.Lang
// does (tags are case-insensitive); an unknown one stays for checkLang to
// refuse.
func normalizeLang(s string) string {
	s = strings.TrimSpace(s)
	if l, ok := wuyou.Lang(s); ok {
		return l
	}
	return s
}

// checkLang is the rule for a seafarer's lang: one Wuyou speaks (wuyou.Langs).
func checkLang(s string) string {
	if _, ok := wuyou.Lang(s); !ok {
		return "must be one of " + strings.Join(wuyou.Langs, ", ")
	}
	return ""
}

// Validate checks every field of an enrolment against the contract and
// returns nil or an EINVALID *wuyou.Error whose Fields name every bad field
// (one message per field, in contract order). Call Normalize first; Validate
// does not trim.
func (e Enrolment) Validate() error {
	return wuyou.Invalid(e.fieldErrors())
}

func (e Enrolment) fieldErrors() []wuyou.FieldError {
	var errs []wuyou.FieldError
	add := func(field, msg string) {
		if msg != "" {
			errs = append(errs, wuyou.FieldError{Field: field, Message: msg})
		}
	}
	add("seafarer_book_no", checkBookNo(e.BookNo))
	add("name", wuyou.CheckText(e.Name, true, maxNameRunes))
	add("nationality", checkCountry(e.Nationality))
	add("msisdn", checkMSISDN(e.MSISDN))
	add("vessel_imo", checkIMO(e.VesselIMO))
	add("vessel_name", wuyou.CheckText(e.VesselName, false, maxVesselNameRunes))
	signOnMsg, signOffMsg := checkDate(e.SignOn), checkDate(e.SignOff)
	if signOnMsg == "" && signOffMsg == "" && e.SignOn != "" && e.SignOff != "" && e.SignOff < e.SignOn {
		// YYYY-MM-DD strings order like the dates they name.
		signOffMsg = "must not be before sign_on (" + e.SignOn + ")"
	}
	add("sign_on", signOnMsg)
	add("sign_off", signOffMsg)
	add("union_member_no", wuyou.CheckText(e.UnionMemberNo, false, maxUnionMemberRunes))
	if e.Lang != "" {
		add("lang", checkLang(e.Lang))
	}
	return errs
}

// Field limits of a company.
const (
	maxCompanyNameRunes = 200
	maxRegistrationNo   = 64
)

// validCompany trims a new company's name and registration number and checks
// them, returning them trimmed or an EINVALID *wuyou.Error naming each bad
// field.
func validCompany(name, registrationNo string) (string, string, error) {
	name, registrationNo = strings.TrimSpace(name), strings.TrimSpace(registrationNo)
	var errs []wuyou.FieldError
	if msg := wuyou.CheckText(name, true, maxCompanyNameRunes); msg != "" {
		errs = append(errs, wuyou.FieldError{Field: "name", Message: msg})
	}
	if msg := wuyou.CheckText(registrationNo, true, maxRegistrationNo); msg != "" {
		errs = append(errs, wuyou.FieldError{Field: "registration_no", Message: msg})
	}
	return name, registrationNo, wuyou.Invalid(errs)
}

// Normalize trims the fields present the way Enrolment.Normalize does. It
// replaces the pointers rather than writing through them, so the caller's
// strings are left alone.
func (u *SeafarerUpdate) Normalize() {
	trim := func(p *string, f func(string) string) *string {
		if p == nil {
			return nil
		}
		s := f(*p)
		return &s
	}
	u.MSISDN = trim(u.MSISDN, strings.TrimSpace)
	u.VesselIMO = trim(u.VesselIMO, NormalizeIMO)
	u.VesselName = trim(u.VesselName, strings.TrimSpace)
	u.SignOn = trim(u.SignOn, strings.TrimSpace)
	u.SignOff = trim(u.SignOff, strings.TrimSpace)
	u.Status = trim(u.Status, strings.TrimSpace)
	u.Lang = trim(u.Lang, normalizeLang)
}

// ValidateUpdate checks the fields present in u (non-nil) with the rules of
// Validate and returns nil or an EINVALID *wuyou.Error naming every bad
// field. An empty vessel_imo, vessel_name, sign_on or sign_off clears that
// field; an empty msisdn is refused. How the dates and the status fit
// together is checked against the record, by the rules of signing.go.
func ValidateUpdate(u SeafarerUpdate) error {
	var errs []wuyou.FieldError
	add := func(field string, p *string, check func(string) string) {
		if p == nil {
			return
		}
		if msg := check(*p); msg != "" {
			errs = append(errs, wuyou.FieldError{Field: field, Message: msg})
		}
	}
	add("msisdn", u.MSISDN, checkMSISDN)
	add("vessel_imo", u.VesselIMO, checkIMO)
	add("vessel_name", u.VesselName, func(s string) string { return wuyou.CheckText(s, false, maxVesselNameRunes) })
	add("sign_on", u.SignOn, checkDate)
	add("sign_off", u.SignOff, checkDate)
	add("lang", u.Lang, checkLang)
	add("status", u.Status, func(s string) string {
		switch s {
		case StatusActive, StatusSignedOff, StatusSuspended:
			return ""
		}
		return "must be one of " + StatusActive + ", " + StatusSignedOff + ", " + StatusSuspended
	})
	return wuyou.Invalid(errs)
}

// MSISDNRule says in words what ValidMSISDN accepts, for the messages of
// every place that refuses an MSISDN ("msisdn must be " + MSISDNRule).
const MSISDNRule = "an E.164 number: '+' then 8 to 15 digits, not starting with 0, no spaces (e.g. +8613800000001)"

// ValidMSISDN reports whether s is an E.164 number as the contract writes
// it: "+" then 8 to 15 ASCII digits, the first not 0 (no country code
// starts with 0). No spaces, dashes or other punctuation. It is the one
// MSISDN rule of Wuyou: enrolment, the carrier's usage events, the
// settlement reconciliation and carriersim all call it.
func ValidMSISDN(s string) bool {
	if len(s) < 1+8 || len(s) > 1+15 || s[0] != '+' || s[1] == '0' {
		return false
	}
	return allDigits(s[1:])
}

// ValidIMO reports whether s is a 7-digit IMO ship number whose last digit
// is its check digit: the first six digits weighted 7, 6, 5, 4, 3, 2, summed,
// mod 10 (9074729: 9·7+0·6+7·5+4·4+7·3+2·2 = 139 → 9). s must be the bare
// digits; NormalizeIMO strips an "IMO" prefix.
func ValidIMO(s string) bool {
	if len(s) != 7 || !allDigits(s) {
		return false
	}
	sum := 0
	for i := 0; i < 6; i++ {
		sum += int(s[i]-'0') * (7 - i)
	}
	return sum%10 == int(s[6]-'0')
}

// NormalizeIMO trims s and strips an "IMO" prefix in any case, with or
// without a space after it: "IMO 9074729", "imo9074729" → "9074729".
func NormalizeIMO(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 3 && strings.EqualFold(s[:3], "IMO") {
		s = strings.TrimSpace(s[3:])
	}
	return s
}

// ValidCountry reports whether s is an officially assigned ISO 3166-1
// alpha-2 code, in upper case ("CN", "PH"). User-assigned codes such as XK
// and reserved ones such as UK are not.
func ValidCountry(s string) bool {
	return len(s) == 2 && countries[s]
}

// countries is the set of codes in iso3166Alpha2.
var countries = func() map[string]bool {
	m := make(map[string]bool, 249)
	for _, c := range strings.Fields(iso3166Alpha2) {
		m[c] = true
	}
	return m
}()

// iso3166Alpha2 lists the 249 officially assigned ISO 3166-1 alpha-2 codes
// (as of 2024; the same list as tzdata's iso3166.tab).
const iso3166Alpha2 = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"YE YT " +
	"ZA ZM ZW "

// The check functions return "" for a good value or the message for a bad one.

func checkBookNo(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > maxBookNoLen:
		return "must be at most " + strconv.Itoa(maxBookNoLen) + " characters"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "may contain only letters A-Z, digits and hyphens"
		}
	}
	return ""
}

func checkMSISDN(s string) string {
	switch {
	case s == "":
		return "is required"
	case !ValidMSISDN(s):
		return "must be " + MSISDNRule
	}
	return ""
}

func checkCountry(s string) string {
	if s == "" || ValidCountry(s) {
		return ""
	}
	return "must be an ISO 3166-1 alpha-2 country code such as CN or PH"
}

func checkIMO(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) != 7 || !allDigits(s):
		return "must be a 7-digit IMO number (e.g. 9074729)"
	case !ValidIMO(s):
		return "is not a valid IMO number: the check digit does not match"
	}
	return ""
}

func checkDate(s string) string {
	if s == "" {
		return ""
	}
	if len(s) != len(dateLayout) || s[4] != '-' || s[7] != '-' ||
		!allDigits(s[:4]) || !allDigits(s[5:7]) || !allDigits(s[8:]) {
		return "must be a date written YYYY-MM-DD"
	}
	if _, err := time.Parse(dateLayout, s); err != nil {
		return "is not a real date"
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// plausibleID reports whether id can name a record. Ids come from URLs and
// tokens; one with braces would move a key to another hash tag.
func plausibleID(id string) bool {
	return id != "" && len(id) <= 64 && !strings.ContainsAny(id, "{} ")
}

func checkStatusFilter(status string) error {
	switch status {
	case "", StatusActive, StatusSignedOff, StatusSuspended:
		return nil
	}
	return wuyou.Invalid([]wuyou.FieldError{{Field: "status", Message: "must be one of " + StatusActive + ", " + StatusSignedOff + ", " + StatusSuspended}})
}

// The registry's conflict and not-found errors, with their fields and messages.

func conflict(field, msg string) error {
	e := &wuyou.Error{Code: wuyou.ECONFLICT, Message: msg}
	if field != "" {
		e.Fields = []wuyou.FieldError{{Field: field, Message: msg}}
	}
	return e
}

func msisdnTaken(msisdn string) error {
	return conflict("msisdn", "MSISDN "+msisdn+" belongs to another seafarer")
}

func seafarerNotFound(id string) error {
	return wuyou.Errorf(wuyou.ENOTFOUND, "seafarer %s not found", id)
}

func companyNotFound(id string) error {
	return wuyou.Errorf(wuyou.ENOTFOUND, "company %s not found", id)
}
