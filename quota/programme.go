package quota

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// Programme limits (contract §4).
const (
	maxProgrammeNameRunes = 200
	minPackSeconds        = 60
	maxPackSeconds        = 10_000_000
	minValidDays          = 1
	maxValidDays          = 3660
	maxPriority           = 1000
)

// Validate checks a programme against the contract and returns nil or an
// EINVALID error whose Fields name every bad field.
func (in ProgrammeInput) Validate() error {
	var errs []wuyou.FieldError
	add := func(field, msg string) {
		errs = append(errs, wuyou.FieldError{Field: field, Message: msg})
	}
	name := strings.TrimSpace(in.Name)
	if msg := wuyou.CheckText(name, true, maxProgrammeNameRunes); msg != "" {
		add("name", msg) // the rule every name follows
	}
	errs = append(errs, in.packErrors()...) // units.go
	switch {
	case in.Recurrence != nil && in.ValidDays != 0:
		add("valid_days", "must be left out of a recurring programme: its grants run to the month's end")
	case in.Recurrence == nil && (in.ValidDays < minValidDays || in.ValidDays > maxValidDays):
		add("valid_days", fmt.Sprintf("must be between %d and %d", minValidDays, maxValidDays))
	}
	if a := in.FinalAction; a != "" && a != billing.FinalContinueAsOverage && a != billing.FinalTerminate {
		add("final_action", "must be continue_as_overage or terminate (left out: the tariff's)")
	}
	if in.Priority < 0 || in.Priority > maxPriority {
		add("priority", fmt.Sprintf("must be between 0 and %d", maxPriority))
	}
	if in.BudgetPacks < 0 {
		add("budget_packs", "must not be negative (0 means unlimited)")
	}
	if in.StartsAt.IsZero() {
		add("starts_at", "is required")
	}
	switch {
	case in.EndsAt.IsZero():
		add("ends_at", "is required")
	case !in.StartsAt.IsZero() && !in.EndsAt.After(in.StartsAt):
		add("ends_at", "must be after starts_at")
	}
	errs = append(errs, in.recurrenceErrors()...)
	errs = append(errs, notifyAtErrors(in.NotifyAt)...) // notify.go
	return wuyou.Invalid(errs)
}

// ProgrammeUsage tells how many seconds the seafarers have drawn from a
// programme's grants (GET /v1/programmes/{id} seconds_used): PGStatements,
// a sum over the ledger in PostgreSQL.
type ProgrammeUsage interface {
	// SecondsUsed returns the seconds drawn from the programme's grants, 0
	// for a programme nothing was drawn from. Errors are the store's.
	SecondsUsed(ctx context.Context, programmeID string) (int64, error)
}

// fillCounters sets the derived fields from the stored counters.
func (p *Programme) fillCounters(packsIssued, secondsUsed int64) {
	p.PacksIssued = packsIssued
	p.SecondsGranted = packsIssued * p.PackSeconds
	p.SecondsUsed = secondsUsed
	p.BudgetRemainingPacks = nil
	if p.BudgetPacks > 0 {
		rem := max(p.BudgetPacks-packsIssued, 0)
		p.BudgetRemainingPacks = &rem
	}
}

// newID returns prefix + a ULID stamped with t.
func newID(prefix string, t time.Time) (string, error) {
	id, err := ulid.New(ulid.Timestamp(t), ulid.DefaultEntropy())
	if err != nil {
		return "", fmt.Errorf("quota: new id: %w", err)
	}
	return prefix + id.String(), nil
}

// hasControl reports whether s holds a control character (C0, DEL or C1).
// Names are shown on screens and statements; a NUL would also make
// PostgreSQL refuse the row.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// storableKey reports whether s can be stored and looked up as a text key
// in PostgreSQL: valid UTF-8 without NUL. Anything else names nothing
// stored, so lookups answer ENOTFOUND without asking the database.
func storableKey(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
