// Package carrier owns what crosses the boundary with the mobile carrier over
// Kafka: the usage events (CDRs) coming in on carrier.usage.v1, the consumer
// that turns them into debits, and the events Wuyou publishes back
// (dead letters, late events, notifications, the ledger).
package carrier

import (
	"bytes"
	json "github.com/goccy/go-json"
	"regexp"
	"time"

	"github.com/wuyou/wuyou"
)

// Usage event types on carrier.usage.v1.
const (
	TypeVoice = "carrier.usage.voice"
	TypeSMS   = "carrier.usage.sms"
	TypeData  = "carrier.usage.data"
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
}

// Identity is what makes an event unique: its CloudEvents source and id.
// An event is applied at most once per identity.
func (e *UsageEvent) Identity() string { return e.Source + "\x00" + e.ID }

var (
	msisdnRE  = regexp.MustCompile(`^\+[0-9]{8,15}$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// DecodeUsageEvent parses and validates one usage event. A failure is an
// EINVALID *wuyou.Error whose Fields say what is wrong; its Reason is a
// stable error_code for the dead-letter headers.
func DecodeUsageEvent(b []byte) (*UsageEvent, error) {
	if len(b) > MaxEventBytes {
		return nil, &wuyou.Error{Code: wuyou.EINVALID, Reason: "too_large", Message: "event larger than 64 KiB"}
	}
	var raw struct {
		UsageEvent
		Time *string         `json:"time"`
		Data json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return nil, &wuyou.Error{Code: wuyou.EINVALID, Reason: "malformed_json", Message: "event is not a JSON object: " + err.Error()}
	}
	ev := raw.UsageEvent
	var errs []wuyou.FieldError
	add := func(field, msg string) { errs = append(errs, wuyou.FieldError{Field: field, Message: msg}) }
	if ev.SpecVersion != "1.0" {
		add("specversion", `must be "1.0"`)
	}
	if ev.ID == "" || len(ev.ID) > 256 {
		add("id", "required, at most 256 bytes")
	}
	if ev.Source == "" || len(ev.Source) > 256 {
		add("source", "required, at most 256 bytes")
	}
	switch ev.Type {
	case TypeVoice, TypeSMS, TypeData:
	default:
		add("type", "must be carrier.usage.voice, carrier.usage.sms or carrier.usage.data")
	}
	if raw.Time == nil {
		add("time", "required")
	} else if t, err := time.Parse(time.RFC3339Nano, *raw.Time); err != nil {
		add("time", "must be an RFC 3339 timestamp")
	} else {
		ev.Time = t.UTC()
	}
	if !msisdnRE.MatchString(ev.Subject) {
		add("subject", "must be an E.164 MSISDN (+ and 8-15 digits)")
	}
	if len(raw.Data) == 0 || string(raw.Data) == "null" {
		add("data", "required")
	} else if err := json.Unmarshal(raw.Data, &ev.Data); err != nil {
		add("data", "malformed: "+err.Error())
	} else {
		d := ev.Data
		if d.Direction != "MO" && d.Direction != "MT" {
			add("data.direction", "must be MO or MT")
		}
		if d.DurationSeconds < 0 || d.DurationSeconds > 7*24*3600 {
			add("data.duration_seconds", "must be between 0 and 604800")
		}
		if !countryRE.MatchString(d.VisitedCountry) {
			add("data.visited_country", "must be an ISO 3166 alpha-2 code")
		}
		if d.Network != "terrestrial" && d.Network != "maritime" {
			add("data.network", "must be terrestrial or maritime")
		}
		if len(d.CalledNumber) > 32 {
			add("data.called_number", "at most 32 characters")
		}
	}
	if len(errs) > 0 {
		err := wuyou.Invalid(errs).(*wuyou.Error)
		err.Reason = "invalid_field"
		return nil, err
	}
	return &ev, nil
}
