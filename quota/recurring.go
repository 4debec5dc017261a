package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	_ "time/tzdata" // time zones of recurring programmes, whatever the host has installed
	"unicode/utf8"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/fanout"
)

// Recurrence values (CONTRACT §7.2). Only these exist so far.
const (
	EveryMonth       = "month"
	WhileSignedOn    = "signed_on"
	DefaultTimeZone  = "Asia/Shanghai"
	maxTimeZoneBytes = 100
)

// Recurrence makes a programme give one grant per eligible seafarer per
// month: Every is "month" (months of TimeZone), While is "signed_on" (the
// seafarer is active and signed on: sign_on ≤ the day ≤ sign_off or no
// sign_off, dates in TimeZone), RolloverMax caps the seconds of last
// month's grant left over that are added to this month's.
type Recurrence struct {
	Every       string `json:"every"`
	While       string `json:"while"`
	RolloverMax int64  `json:"rollover_max"`
	TimeZone    string `json:"time_zone"`
}

// RecurringMonth is what a recurring programme issued in one month.
type RecurringMonth struct {
	Period      string `json:"period"` // YYYY-MM in the programme's time zone
	PacksIssued int64  `json:"packs_issued"`
}

// normalizeRecurring trims the audience and fills the default time zone.
func (in *ProgrammeInput) normalizeRecurring() {
	in.CompanyID = strings.TrimSpace(in.CompanyID)
	in.VesselIMO = strings.TrimSpace(in.VesselIMO)
	if in.VesselIMO != "" {
		in.VesselIMO = crew.NormalizeIMO(in.VesselIMO)
	}
	if in.Recurrence != nil {
		r := *in.Recurrence
		r.Every, r.While, r.TimeZone = strings.TrimSpace(r.Every), strings.TrimSpace(r.While), strings.TrimSpace(r.TimeZone)
		if r.TimeZone == "" {
			r.TimeZone = DefaultTimeZone
		}
		in.Recurrence = &r
	}
}

// recurrenceErrors checks the recurrence and the audience: both or neither.
func (in ProgrammeInput) recurrenceErrors() []wuyou.FieldError {
	var errs []wuyou.FieldError
	add := func(field, msg string) {
		errs = append(errs, wuyou.FieldError{Field: field, Message: msg})
	}
	r := in.Recurrence
	if r == nil {
		for _, f := range []struct {
			field string
			set   bool
		}{{"company_id", in.CompanyID != ""}, {"vessel_imo", in.VesselIMO != ""}, {"all", in.All}} {
			if f.set {
				add(f.field, "names an audience, which only a recurring programme has (add a recurrence, or issue packs with an issuance)")
			}
		}
		return errs
	}
	if r.Every != EveryMonth {
		add("recurrence.every", `must be "month"`)
	}
	if r.While != WhileSignedOn {
		add("recurrence.while", `must be "signed_on"`)
	}
	unit := unitOrSeconds(in.Unit)
	if limit := maxPackAmount(unit); r.RolloverMax < 0 || r.RolloverMax > limit {
		add("recurrence.rollover_max", fmt.Sprintf("must be between 0 and %d %s (the programme's unit)", limit, unit))
	}
	if _, err := recurrenceZone(r.TimeZone); err != nil {
		add("recurrence.time_zone", err.Error())
	}
	given := 0
	for _, set := range []bool{in.CompanyID != "", in.VesselIMO != "", in.All} {
		if set {
			given++
		}
	}
	if given != 1 {
		add("audience", "a recurring programme needs exactly one of company_id, vessel_imo and all:true")
	}
	switch {
	case in.CompanyID == "":
	case len(in.CompanyID) > maxSeafarerIDLen || !utf8.ValidString(in.CompanyID) || hasControl(in.CompanyID):
		add("company_id", fmt.Sprintf("must be a company id of at most %d characters, valid UTF-8 without control characters", maxSeafarerIDLen))
	}
	if in.VesselIMO != "" && !crew.ValidIMO(in.VesselIMO) {
		add("vessel_imo", "must be a valid 7-digit IMO number (e.g. 9074729)")
	}
	return errs
}

// recurrenceZone loads a recurring programme's time zone ("" is the
// default). "Local" is refused: it would mean whatever the host says.
func recurrenceZone(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimeZone
	}
	if name == "Local" || len(name) > maxTimeZoneBytes || !utf8.ValidString(name) || hasControl(name) {
		return nil, errors.New("must be an IANA time zone name such as Asia/Shanghai")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("is not a known IANA time zone (e.g. Asia/Shanghai, Europe/Berlin, UTC)")
	}
	return loc, nil
}

// recurringMonth is the month containing t in loc: its name (YYYY-MM), its
// first instant and the first instant of the next month. Months start at
// local midnight, whatever daylight saving does to their length.
func recurringMonth(t time.Time, loc *time.Location) (name string, start, end time.Time) {
	l := t.In(loc)
	start = time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	return start.Format("2006-01"), start, start.AddDate(0, 1, 0)
}

// RecurringGrantID is the id of a recurring programme's grant to a
// seafarer for a month (YYYY-MM in the programme's zone): a function of the
// three, so a re-run, a restart or another replica can only name the same
// grant (and grant_once_per_programme_month refuses a second one anyway).
func RecurringGrantID(programmeID, month, seafarerID string) string {
	sum := sha256.Sum256([]byte("recurring\x00" + programmeID + "\x00" + month + "\x00" + seafarerID))
	return "gr_" + hex.EncodeToString(sum[:])[:20]
}

// RecurringCandidate is a seafarer eligible for a month's grant who has
// none yet, and the day they signed on (a civil date, at UTC midnight).
type RecurringCandidate struct {
	SeafarerID string
	SignOn     time.Time
}

// UnannouncedGrant is a recurring grant committed to the system of record
// whose hot copy and announcement are not yet confirmed.
type UnannouncedGrant struct {
	Grant  GrantInput
	Voided bool // voided since: nothing to add or announce
}

// RecurringStore is the monthly issue's system of record (PGProgrammes).
type RecurringStore interface {
	// ActiveRecurring lists the recurring programmes with starts_at ≤ at <
	// ends_at.
	ActiveRecurring(ctx context.Context, at time.Time) ([]*Programme, error)
	// RecurringCandidates lists, in id order after the id after, up to n
	// seafarers of p's audience eligible on day (YYYY-MM-DD in p's zone:
	// active, sign_on ≤ day, no sign_off or sign_off ≥ day) who have no
	// grant of p for month; none when the month's budget is used up.
	RecurringCandidates(ctx context.Context, p *Programme, month, day, after string, n int) ([]RecurringCandidate, error)
	// IssueRecurring inserts, in one transaction with the month's budget
	// row locked, as many of grants (in order) as the month's budget
	// allows, skipping any whose (programme, seafarer, month) already has
	// one, raises the month's counters by what was inserted and lists the
	// inserted grants as unannounced. It returns the grants inserted, as
	// stored (times cut to what PostgreSQL and Redis keep).
	IssueRecurring(ctx context.Context, programmeID, month string, budgetPacks int64, grants []GrantInput) ([]GrantInput, error)
	// UnannouncedGrants returns up to n recurring grants listed as
	// unannounced (the repair after a crash).
	UnannouncedGrants(ctx context.Context, n int) ([]UnannouncedGrant, error)
	// MarkAnnounced removes grants from the unannounced list.
	MarkAnnounced(ctx context.Context, grantIDs []string) error
}

// RecurringHot is the hot state as the monthly issue needs it (RedisStore).
type RecurringHot interface {
	HotGrants
	// GrantsRemaining returns each grant's remaining seconds now, 0 for a
	// grant the hot state does not hold. EUNAVAILABLE while the hot state
	// is missing.
	GrantsRemaining(ctx context.Context, refs []GrantRef) ([]int64, error)
}

// recurringBatch seafarers are decided per transaction.
const recurringBatch = 500

// RecurringEngine issues recurring programmes' monthly grants (CONTRACT
// §7.2). A sweep issues, for each recurring programme active now, the
// current month's grant (months of the programme's zone) to every
// eligible seafarer who has none: pack_seconds plus what was left, at
// issue time, of the seafarer's grant of the previous month, capped at
// rollover_max. The grant runs from max(the month's start, the sign-on
// day's start, the programme's start) to the month's end. Only the
// current month is issued: a month the service was down through entirely
// is not issued afterwards; a month it was down at the start of is caught
// up by the first sweep.
//
// Delivery guarantee, as the Issuer's: a grant is committed to the system
// of record first (IssueRecurring: grant row, the month's budget and the
// unannounced mark in one transaction; the unique
// (programme, seafarer, month) makes a second grant impossible, so
// concurrent sweeps on several replicas only lose the race), then added to
// the hot state (AddGrant, idempotent by id), then announced (Publisher:
// ledger entry stored, ledger and notification topics), and only then
// unmarked. A crash in between leaves the mark, and the next sweep on any
// replica repeats the hot step and the announcement, with the same ids.
//
// Rollover is read from the hot state when the grant is decided. A call of
// the previous month that arrives later (a late CDR, applied by call time
// to the expired grant) draws from the old grant after its remainder was
// carried over; the carried seconds are not taken back, so such late
// calls may be covered twice up to rollover_max. Two sweeps deciding one
// grant at once may read different remainders; the grant that commits
// first is the one, and the hot state is always given the stored amount.
type RecurringEngine struct {
	store RecurringStore
	hot   RecurringHot
	now   wuyou.Clock

	// Publisher, when set, records and announces every grant added (as
	// the Issuer's). Log receives sweep failures; nil is slog.Default().
	Publisher GrantPublisher
	Log       *slog.Logger

	nudge chan struct{}
}

// NewRecurringEngine returns an engine over store and hot with clock now.
func NewRecurringEngine(store RecurringStore, hot RecurringHot, now wuyou.Clock) *RecurringEngine {
	return &RecurringEngine{store: store, hot: hot, now: now, nudge: make(chan struct{}, 1)}
}

func (e *RecurringEngine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// SweepReport says what one sweep did.
type SweepReport struct {
	Programmes int // recurring programmes active now
	Issued     int // grants this sweep committed
	Announced  int // grants this sweep added to the hot state and announced
}

// Sweep issues the current month's grants of every active recurring
// programme and repairs grants committed but not yet in the hot state or
// announced. Safe to run again at any time and on several replicas at
// once. A programme that fails does not stop the others; the errors are
// joined.
func (e *RecurringEngine) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	n, err := e.repair(ctx)
	rep.Announced += n
	if err != nil {
		return rep, err
	}
	now := e.now()
	progs, err := e.store.ActiveRecurring(ctx, now)
	if err != nil {
		return rep, err
	}
	rep.Programmes = len(progs)
	var errs []error
	for _, p := range progs {
		issued, announced, err := e.issue(ctx, p, now)
		rep.Issued += issued
		rep.Announced += announced
		if err != nil {
			errs = append(errs, fmt.Errorf("quota: recurring programme %s: %w", p.ID, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return rep, errors.Join(errs...)
}

// issue gives p's grants of the month of now, a batch at a time, each batch
// announced before the next is decided.
func (e *RecurringEngine) issue(ctx context.Context, p *Programme, now time.Time) (issued, announced int, err error) {
	if p.Recurrence == nil {
		return 0, 0, nil
	}
	loc, err := recurrenceZone(p.Recurrence.TimeZone)
	if err != nil {
		return 0, 0, fmt.Errorf("time zone %q: %w", p.Recurrence.TimeZone, err)
	}
	month, start, end := recurringMonth(now, loc)
	prevMonth := start.AddDate(0, -1, 0).Format("2006-01")
	day := now.In(loc).Format(time.DateOnly)
	issuedAt := now.UTC().Truncate(time.Millisecond)
	for after := ""; ; {
		cands, err := e.store.RecurringCandidates(ctx, p, month, day, after, recurringBatch)
		if err != nil || len(cands) == 0 {
			return issued, announced, err
		}
		refs := make([]GrantRef, len(cands))
		for j, c := range cands {
			refs[j] = GrantRef{SeafarerID: c.SeafarerID, GrantID: RecurringGrantID(p.ID, prevMonth, c.SeafarerID)}
		}
		left, err := e.hot.GrantsRemaining(ctx, refs)
		if err != nil {
			return issued, announced, err
		}
		grants := make([]GrantInput, len(cands))
		for j, c := range cands {
			signOn := time.Date(c.SignOn.Year(), c.SignOn.Month(), c.SignOn.Day(), 0, 0, 0, 0, loc)
			effective := start
			for _, t := range []time.Time{signOn, p.StartsAt.Truncate(time.Second)} {
				if t.After(effective) {
					effective = t
				}
			}
			grants[j] = GrantInput{
				ID: RecurringGrantID(p.ID, month, c.SeafarerID), SeafarerID: c.SeafarerID, ProgrammeID: p.ID, Unit: p.Unit,
				Seconds: p.PackSeconds + min(max(left[j], 0), p.Recurrence.RolloverMax), Priority: p.Priority,
				EffectiveAt: effective.UTC(), ExpiresAt: end.UTC(), IssuedAt: issuedAt, NotifyAt: p.NotifyAt,
			}
		}
		inserted, err := e.store.IssueRecurring(ctx, p.ID, month, p.BudgetPacks, grants)
		issued += len(inserted)
		if err != nil {
			return issued, announced, err
		}
		if len(inserted) > 0 {
			pending := make([]UnannouncedGrant, len(inserted))
			for j, g := range inserted {
				pending[j] = UnannouncedGrant{Grant: g}
			}
			a, err := e.announce(ctx, pending)
			announced += a
			if err != nil {
				return issued, announced, err
			}
		}
		if len(cands) < recurringBatch {
			return issued, announced, nil
		}
		after = cands[len(cands)-1].SeafarerID
	}
}

// repair announces every grant still listed as unannounced: those a
// crash, an outage of Redis or of the broker cut short.
func (e *RecurringEngine) repair(ctx context.Context) (int, error) {
	total := 0
	for {
		pending, err := e.store.UnannouncedGrants(ctx, recurringBatch)
		if err != nil || len(pending) == 0 {
			return total, err
		}
		n, err := e.announce(ctx, pending)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// announce adds grants to the hot state (AddGrant is idempotent), records
// and publishes their ledger entries, then takes them off the unannounced
// list. It returns how many it announced (voided ones are only unlisted).
func (e *RecurringEngine) announce(ctx context.Context, pending []UnannouncedGrant) (int, error) {
	ids := make([]string, len(pending))
	var live []GrantInput
	for j, u := range pending {
		ids[j] = u.Grant.ID
		if !u.Voided {
			live = append(live, u.Grant)
		}
	}
	added := make([]IssuedGrant, len(live))
	err := fanout.Each(ctx, len(live), grantWorkers, func(ctx context.Context, j int) error {
		_, entry, err := e.hot.AddGrant(ctx, live[j])
		if err != nil {
			return fmt.Errorf("quota: recurring grant to %s: %w", live[j].SeafarerID, err)
		}
		added[j] = IssuedGrant{Grant: live[j], Entry: entry}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if e.Publisher != nil && len(added) > 0 {
		if err := e.Publisher.PublishGrants(ctx, added); err != nil {
			return 0, fmt.Errorf("quota: publish recurring grants: %w", err)
		}
	}
	if err := e.store.MarkAnnounced(ctx, ids); err != nil {
		return 0, err
	}
	return len(live), nil
}

// Nudge asks Run for a sweep now (after an enrolment or a sign-on): it
// never blocks, and nudges made while a sweep is pending are one.
func (e *RecurringEngine) Nudge() {
	select {
	case e.nudge <- struct{}{}:
	default:
	}
}

// Run sweeps at once (catching up a month start the service was down at),
// then every interval and whenever nudged, until ctx ends. A failed sweep
// is logged and tried again at the next tick.
func (e *RecurringEngine) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rep, err := e.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			e.log().Warn("recurring programmes: sweep failed; tried again at the next one", "err", err, "issued", rep.Issued)
		case rep.Issued > 0 || rep.Announced > 0:
			e.log().Info("recurring programmes: monthly grants issued", "programmes", rep.Programmes, "issued", rep.Issued, "announced", rep.Announced)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.nudge:
		}
	}
}
