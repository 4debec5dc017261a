// Package audit owns the staff audit trail (CONTRACT §7.5): who did what.
// Every write a person's token makes, once it has succeeded, becomes one
// Record: the actor (sub, role, company), the action, the resource it
// changed, the request's id and a short summary. Records are only ever
// added; nothing changes or deletes one. PGLog keeps them in PostgreSQL
// (migration 00008_audit.sql).
package audit

import (
	"strings"
	"time"

	"github.com/wuyou/wuyou"
)

// Record is one write, as GET /v1/audit shows it.
type Record struct {
	ID        string      `json:"id"`
	At        time.Time   `json:"at"`
	Actor     wuyou.Actor `json:"actor"`
	Action    string      `json:"action"`
	Resource  string      `json:"resource"`
	RequestID string      `json:"request_id"`
	Summary   string      `json:"summary"`
}

// Actions: what a record says was done. The resource names what it was
// done to, as a path below /v1 ("seafarers/sf_…", "programmes/pr_…").
const (
	ActionCompanyCreate     = "company.create"
	ActionSeafarerEnrol     = "seafarer.enrol"
	ActionSeafarerBulkEnrol = "seafarer.bulk_enrol"
	ActionSeafarerUpdate    = "seafarer.update"
	ActionProgrammeCreate   = "programme.create"
	ActionIssuanceStart     = "issuance.start"
	ActionGrantVoid         = "grant.void"
	ActionPeriodClose       = "period.close"
	ActionReconcile         = "reconciliation.run"
)

// IDPrefix starts every record's id.
const IDPrefix = "au_"

// MaxSummaryRunes bounds a summary: a line, not the request body.
const MaxSummaryRunes = 500

// Filter selects records, newest first. Zero fields select everything.
// CompanyID, when set, keeps only records made with that company's tokens:
// what a company may see of the trail.
type Filter struct {
	Actor     string // the actor's sub
	Resource  string
	CompanyID string
	From, To  time.Time // From inclusive, To exclusive
	Cursor    string    // the last id of the previous page
	Limit     int
}

// Check validates f and returns it with its limit defaulted and capped.
// EINVALID naming each bad field ("from", "to", "cursor", "actor",
// "resource") otherwise.
func (f Filter) Check() (Filter, error) {
	var errs []wuyou.FieldError
	if f.Cursor != "" && !wuyou.IsULIDWithPrefix(f.Cursor, IDPrefix) {
		errs = append(errs, wuyou.FieldError{Field: "cursor", Message: "is not a cursor this list returned"})
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		errs = append(errs, wuyou.FieldError{Field: "from", Message: "must not be after to"})
	}
	for _, q := range [...]struct{ field, value string }{{"actor", f.Actor}, {"resource", f.Resource}} {
		if msg := wuyou.CheckText(q.value, false, 200); msg != "" {
			errs = append(errs, wuyou.FieldError{Field: q.field, Message: msg})
		}
	}
	if f.Limit <= 0 {
		f.Limit = wuyou.DefaultListLimit
	}
	f.Limit = min(f.Limit, wuyou.MaxListLimit)
	return f, wuyou.Invalid(errs)
}

// Summary makes s fit a record: control characters become spaces, and it
// is cut to MaxSummaryRunes.
func Summary(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if r := []rune(s); len(r) > MaxSummaryRunes {
		s = string(r[:MaxSummaryRunes-1]) + "…"
	}
	return s
}
