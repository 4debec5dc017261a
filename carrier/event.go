// Package carrier owns what crosses the boundary with the mobile carrier over
// Kafka: the usage events (CDRs) coming in on carrier.usage.v1, the consumer
// that turns them into debits, and the events Wuyou publishes back
// (dead letters, late events, notifications, the ledger).
package carrier

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
)

// Usage event types on carrier.usage.v1; the words' home is billing, which
// rates by them.
const (
	TypeVoice = billing.TypeVoice
	TypeSMS   = billing.TypeSMS
	TypeData  = billing.TypeData
)

// MaxEventBytes bounds one usage event; anything larger is dead-lettered.
const MaxEventBytes = 64 << 10

// UsageEvent is one CDR as the carrier sends it: a CloudEvents 1.0 document
// in structured mode.
type UsageEvent struct {
	SpecVersion string    `json:"specversion"`
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Type        string    `json:"type"`
	Time        time.Time `json:"time"`
	Subject     string    `json:"subject"` // the seafarer's MSISDN
	Data        UsageData `json:"data"`
}

// UsageData is the body of a usage event.
type UsageData struct {
	CallID          string `json:"call_id"`
	Direction       string `json:"direction"` // MO or MT
	DurationSeconds int64  `json:"duration_seconds"`
	CalledNumber    string `json:"called_number"`
	VisitedCountry  string `json:"visited_country"` // ISO 3166 alpha-2
	Network         string `json:"network"`         // terrestrial or maritime
	// VolumeBytes is a data session's volume: required on
	// carrier.usage.data, 0 to MaxVolumeBytes; ignored on other types.
	VolumeBytes int64 `json:"volume_bytes,omitzero"`
}

// MaxVolumeBytes bounds one data session's volume (1 TiB): far above any
// session over a satellite or roaming link, low enough that no sum of a
// month's sessions can overflow.
const MaxVolumeBytes = 1 << 40

// Identity is what makes an event unique: its CloudEvents source and id.
// An event is applied at most once per identity.
func (e *UsageEvent) Identity() string { return e.Source + "\x00" + e.ID }

// usageEventJSON is a usage event as it arrives, before it is validated.
// Time and Data are pointers so that absent or null can be told from empty.
// Unknown keeps the members that are not fields (CloudEvents extensions are
// allowed) so that a name differing from a field only in case can be refused.
type usageEventJSON struct {
	SpecVersion string                   `json:"specversion"`
	ID          string                   `json:"id"`
	Source      string                   `json:"source"`
	Type        string                   `json:"type"`
	Time        *string                  `json:"time"`
	Subject     string                   `json:"subject"`
	Data        *usageDataJSON           `json:"data"`
	Unknown     map[string]unknownMember `json:",unknown"`
}

type usageDataJSON struct {
	UsageData
	// VolumeBytes shadows UsageData's so that a data event without one can
	// be told from one of 0 bytes.
	VolumeBytes *int64                   `json:"volume_bytes"`
	Unknown     map[string]unknownMember `json:",unknown"`
}

// unknownMember is the value of a member that is not a field: only its name
// matters, so the value is checked and skipped, not copied.
type unknownMember struct{}

func (*unknownMember) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return dec.SkipValue() }

// The member names of an event and of its data, exactly as they must be
// spelled.
var (
	eventMembers = []string{"specversion", "id", "source", "type", "time", "subject", "data"}
	dataMembers  = []string{"call_id", "direction", "duration_seconds", "called_number", "visited_country", "network", "volume_bytes"}
)

// Error reasons of DecodeUsageEvent: the error_code of a dead letter.
const (
	ReasonTooLarge      = "too_large"      // more than MaxEventBytes
	ReasonMalformedJSON = "malformed_json" // not exactly one JSON object: syntax, trailing data, BOM, invalid UTF-8
	ReasonDuplicateKey  = "duplicate_key"  // a name twice in one object, or twice but for case
	ReasonInvalidField  = "invalid_field"  // a field breaks its rule or has the wrong JSON type
)

// Call times outside these years are refused: before 1970 no carrier had a
// CDR, and after 9999 RFC 3339 has no four-digit year to write it in.
const (
	minCallYear = 1970
	maxCallYear = 9999
)

// DecodeUsageEvent parses and validates one usage event. A failure is an
// EINVALID *wuyou.Error whose Reason is a stable error_code for the
// dead-letter headers (Reason* constants) and whose Fields say what is wrong.
//
// It is strict where a lenient reader would let one event be read two ways:
// the bytes must be exactly one JSON object (only whitespace around it; no
// byte order mark), names are matched exactly (a "SUBJECT" beside "subject"
// is refused, not merged), and a name may appear only once in an object.
// Members that are not fields, such as CloudEvents extensions, are allowed.
// The call time is not compared with the clock here: see CheckCallTime.
func DecodeUsageEvent(b []byte) (*UsageEvent, error) {
	if len(b) > MaxEventBytes {
		return nil, &wuyou.Error{Code: wuyou.EINVALID, Reason: ReasonTooLarge, Message: "event larger than 64 KiB"}
	}
	// A top-level null or array would otherwise unmarshal as an empty event.
	if jsontext.Value(b).Kind() != '{' {
		return nil, malformed("event is not a JSON object")
	}
	var raw usageEventJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, decodeError(b, err)
	}
	var errs []wuyou.FieldError
	if hasCaseVariant(raw.Unknown, eventMembers) || (raw.Data != nil && hasCaseVariant(raw.Data.Unknown, dataMembers)) {
		dup, variants := caseVariants(b)
		if dup != nil {
			return nil, dup
		}
		errs = variants
	}
	ev, fieldErrs := raw.validate()
	if errs = append(errs, fieldErrs...); len(errs) > 0 {
		return nil, invalidFields(errs)
	}
	return ev, nil
}

// validate checks every field and builds the event, or names every bad field.
func (raw *usageEventJSON) validate() (*UsageEvent, []wuyou.FieldError) {
	ev := &UsageEvent{SpecVersion: raw.SpecVersion, ID: raw.ID, Source: raw.Source, Type: raw.Type, Subject: raw.Subject}
	var errs []wuyou.FieldError
	add := func(field, msg string) { errs = append(errs, wuyou.FieldError{Field: field, Message: msg}) }
	if ev.SpecVersion != "1.0" {
		add("specversion", `must be "1.0"`)
	}
	// The identity is source + NUL + id, so neither may hold a control character.
	if ev.ID == "" || len(ev.ID) > 256 || !validText(ev.ID) {
		add("id", "required, at most 256 bytes of UTF-8 text without control characters")
	}
	if ev.Source == "" || len(ev.Source) > 256 || !validText(ev.Source) {
		add("source", "required, at most 256 bytes of UTF-8 text without control characters")
	}
	switch ev.Type {
	case TypeVoice, TypeSMS, TypeData:
	default:
		add("type", "must be "+TypeVoice+", "+TypeSMS+" or "+TypeData)
	}
	if raw.Time == nil {
		add("time", "required")
	} else if t, msg := parseCallTime(*raw.Time); msg != "" {
		add("time", msg)
	} else {
		ev.Time = t
	}
	if !crew.ValidMSISDN(ev.Subject) {
		add("subject", "must be "+crew.MSISDNRule)
	}
	if raw.Data == nil {
		add("data", "required")
		return ev, errs
	}
	d := raw.Data.UsageData
	ev.Data = d
	if !validText(d.CallID) {
		add("data.call_id", "must be UTF-8 text without control characters")
	}
	if d.Direction != billing.DirectionMO && d.Direction != billing.DirectionMT {
		add("data.direction", "must be "+billing.DirectionMO+" or "+billing.DirectionMT)
	}
	if d.DurationSeconds < 0 || d.DurationSeconds > 7*24*3600 {
		add("data.duration_seconds", "must be between 0 and 604800")
	}
	if !validCountryCode(d.VisitedCountry) {
		add("data.visited_country", "must be an ISO 3166 alpha-2 code")
	}
	if d.Network != billing.NetworkTerrestrial && d.Network != billing.NetworkMaritime {
		add("data.network", "must be "+billing.NetworkTerrestrial+" or "+billing.NetworkMaritime)
	}
	if len(d.CalledNumber) > 32 || !validText(d.CalledNumber) {
		add("data.called_number", "at most 32 characters, without control characters")
	}
	switch v := raw.Data.VolumeBytes; {
	case v == nil && ev.Type == TypeData:
		add("data.volume_bytes", "required on "+TypeData+": the session's volume in bytes")
	case v != nil && (*v < 0 || *v > MaxVolumeBytes):
		add("data.volume_bytes", "must be between 0 and "+strconv.FormatInt(MaxVolumeBytes, 10))
	case v != nil && ev.Type == TypeData:
		ev.Data.VolumeBytes = *v
	}
	return ev, errs
}

// parseCallTime reads an RFC 3339 timestamp into UTC, or says what is wrong
// with it. Neither time.Parse(time.RFC3339, …) nor, as of Go 1.26,
// Time.UnmarshalText is strict (both take a one-digit hour, a comma before
// the fraction, an offset of +24:00: go.dev/issue/54580), so the form is
// checked first and time.Parse only checks the ranges.
func parseCallTime(s string) (time.Time, string) {
	if !rfc3339Form(s) {
		return time.Time{}, "must be an RFC 3339 timestamp such as 2026-11-28T10:15:00Z"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, "must be an RFC 3339 timestamp with a real date and time"
	}
	// The year is bounded in UTC, the form the event is kept in:
	// 9999-12-31T23:30:00-01:00 is already in the year 10000.
	t = t.UTC()
	if y := t.Year(); y < minCallYear || y > maxCallYear {
		return time.Time{}, fmt.Sprintf("must be in the years %d to %d (UTC)", minCallYear, maxCallYear)
	}
	return t, ""
}

// rfc3339Form reports whether s has the form of an RFC 3339 date-time:
// YYYY-MM-DDThh:mm:ss, an optional fraction after a period, then Z or an
// offset ±hh:mm below 24 hours. Upper-case T and Z only, as Go writes them.
func rfc3339Form(s string) bool {
	const shape = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(shape)+1 {
		return false
	}
	for i := range len(shape) {
		if shape[i] == 'd' && !isDigit(s[i]) || shape[i] != 'd' && s[i] != shape[i] {
			return false
		}
	}
	s = s[len(shape):]
	if s[0] == '.' {
		n := 1
		for n < len(s) && isDigit(s[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		s = s[n:]
	}
	if s == "Z" {
		return true
	}
	return len(s) == len("+07:00") && (s[0] == '+' || s[0] == '-') && s[3] == ':' &&
		isDigit(s[1]) && isDigit(s[2]) && isDigit(s[4]) && isDigit(s[5]) &&
		(s[1]-'0')*10+(s[2]-'0') < 24 && s[4] < '6'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// CheckCallTime refuses a call that starts more than skew after now: a
// carrier's clock may run a little ahead, but a call from the future would
// draw on grants that are not active yet and sit past the dedupe window. The
// error is EINVALID with Reason invalid_field on "time", like a field
// DecodeUsageEvent refuses, so the event is dead-lettered the same way.
func CheckCallTime(callTime, now time.Time, skew time.Duration) error {
	if !callTime.After(now.Add(skew)) {
		return nil
	}
	return invalidFields([]wuyou.FieldError{{Field: "time", Message: "more than " + shortDuration(skew) + " after now"}})
}

// shortDuration writes 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// validText reports whether s is UTF-8 without control characters (C0, DEL
// or C1). The JSON decoder already refuses invalid UTF-8; this also guards
// against escaped ones such as \u0000.
func validText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		} else if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:]) && !strings.ContainsFunc(s[i:], unicode.IsControl)
		}
	}
	return true
}

// validCountryCode reports whether s looks like an ISO 3166 alpha-2 code:
// two upper-case ASCII letters.
func validCountryCode(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

// hasCaseVariant reports whether any unknown member name equals one of the
// fields but for case (Unicode simple folding: "ſubject" too).
func hasCaseVariant(unknown map[string]unknownMember, fields []string) bool {
	for name := range unknown {
		for _, f := range fields {
			if strings.EqualFold(name, f) {
				return true
			}
		}
	}
	return false
}

// caseVariants reads b's member names again (b is known to be valid JSON)
// and refuses names that differ from a field only in case. Beside the field
// itself ("subject" and "SUBJECT") the name is a duplicate_key error: a
// reader matching names without case, as many do, would take either value.
// Alone, the name is an unknown member worth naming in the field errors,
// since the field it was meant to be is then missing.
func caseVariants(b []byte) (dup error, errs []wuyou.FieldError) {
	var top, data map[string]jsontext.Value
	if json.Unmarshal(b, &top) != nil {
		return nil, nil
	}
	if v, ok := top["data"]; ok && v.Kind() == '{' {
		_ = json.Unmarshal(v, &data)
	}
	var dups []wuyou.FieldError
	check := func(prefix string, members map[string]jsontext.Value, fields []string) {
		for _, name := range slices.Sorted(maps.Keys(members)) {
			for _, f := range fields {
				if name == f || !strings.EqualFold(name, f) {
					continue
				}
				if _, both := members[f]; both {
					dups = append(dups, wuyou.FieldError{Field: prefix + f,
						Message: fmt.Sprintf("appears twice, as %q and as %s: names are case-sensitive", f, strconv.QuoteToASCII(name))})
				} else {
					errs = append(errs, wuyou.FieldError{Field: prefix + f,
						Message: fmt.Sprintf("is spelled %s: names are case-sensitive", strconv.QuoteToASCII(name))})
				}
			}
		}
	}
	check("", top, eventMembers)
	check("data.", data, dataMembers)
	if len(dups) > 0 {
		return duplicateKey(dups), nil
	}
	return nil, errs
}

// decodeError turns an error of json.Unmarshal into the decoder's error.
// Unmarshal stops at the first value of the wrong type without reading the
// rest, so the whole document is checked first: one that is also malformed
// or repeats a name is refused for that, whatever the order of its members.
func decodeError(b []byte, err error) error {
	var semantic *json.SemanticError
	if errors.As(err, &semantic) {
		if err := json.Unmarshal(b, new(jsontext.Value)); err != nil {
			return syntaxError(err)
		}
		dup, variants := caseVariants(b)
		if dup != nil {
			return dup
		}
		if fe, ok := typeError(semantic); ok {
			return invalidFields(append(variants, fe))
		}
	}
	return syntaxError(err)
}

// syntaxError is malformed_json, or duplicate_key naming the repeated name.
func syntaxError(err error) error {
	var syntactic *jsontext.SyntacticError
	if errors.As(err, &syntactic) && errors.Is(syntactic.Err, jsontext.ErrDuplicateName) {
		return duplicateKey([]wuyou.FieldError{{Field: pointerField(syntactic.JSONPointer), Message: "appears twice in one object"}})
	}
	return malformed("event is not one JSON object: " + err.Error())
}

// typeError names the field whose value has the wrong JSON type.
func typeError(e *json.SemanticError) (wuyou.FieldError, bool) {
	field := pointerField(e.JSONPointer)
	var msg string
	switch {
	case field == "data":
		msg = "must be a JSON object"
	case field == "data.duration_seconds":
		msg = "must be a whole number of seconds: a JSON integer, without fraction or exponent"
	case field == "data.volume_bytes":
		msg = "must be a whole number of bytes: a JSON integer between 0 and " + strconv.FormatInt(MaxVolumeBytes, 10) + ", without fraction or exponent"
	case field == "time":
		msg = "must be an RFC 3339 timestamp in a JSON string"
	case slices.Contains(eventMembers, field) || strings.HasPrefix(field, "data.") && slices.Contains(dataMembers, field[len("data."):]):
		msg = "must be a JSON string"
	default:
		return wuyou.FieldError{}, false
	}
	return wuyou.FieldError{Field: field, Message: msg}, true
}

// pointerField writes a JSON pointer the way field errors name fields:
// /data/call_id is data.call_id. Names that are not plain text are quoted.
func pointerField(p jsontext.Pointer) string {
	var parts []string
	for tok := range p.Tokens() {
		if !validText(tok) || strings.ContainsAny(tok, `."`) {
			tok = strconv.QuoteToASCII(tok)
		}
		parts = append(parts, tok)
	}
	return strings.Join(parts, ".")
}

func malformed(msg string) error {
	return &wuyou.Error{Code: wuyou.EINVALID, Reason: ReasonMalformedJSON, Message: msg}
}

func duplicateKey(fields []wuyou.FieldError) error {
	err := invalidFields(fields).(*wuyou.Error)
	err.Reason = ReasonDuplicateKey
	err.Message = "duplicate key: " + err.Message
	return err
}

func invalidFields(fields []wuyou.FieldError) error {
	err := wuyou.Invalid(fields).(*wuyou.Error)
	err.Reason = ReasonInvalidField
	return err
}
