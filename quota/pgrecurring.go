package quota

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wuyou/wuyou"
)

// PGProgrammes as the RecurringEngine's RecurringStore (tables
// recurring_months and recurring_unannounced, grants.recurring_month:
// internal/pgschema/migrations/00012_recurring.sql).

var _ RecurringStore = (*PGProgrammes)(nil)

// programmeColumns are read by scanProgramme, in its order.
const programmeColumns = `id, name, pack_seconds, valid_days, priority, budget_packs, starts_at, ends_at, created_at,
    packs_issued, recurrence_every, recurrence_while, rollover_max, time_zone, audience_company_id, audience_vessel_imo,
    audience_all, notify_at, final_action`

// scanProgramme reads a row of programmeColumns, with the counters of a
// programme that is not recurring filled (fillRecurring fills the others').
func scanProgramme(row pgx.Row) (*Programme, error) {
	p := &Programme{}
	var issued int64
	var every, while, zone, company, vessel, final *string
	var rollover *int64
	err := row.Scan(&p.ID, &p.Name, &p.PackSeconds, &p.ValidDays, &p.Priority, &p.BudgetPacks, &p.StartsAt, &p.EndsAt,
		&p.CreatedAt, &issued, &every, &while, &rollover, &zone, &company, &vessel, &p.All, &p.NotifyAt, &final)
	if err != nil {
		return nil, err
	}
	p.StartsAt, p.EndsAt, p.CreatedAt = p.StartsAt.UTC(), p.EndsAt.UTC(), p.CreatedAt.UTC()
	if every != nil {
		p.Recurrence = &Recurrence{Every: *every, While: deref(while), RolloverMax: derefInt(rollover), TimeZone: deref(zone)}
	}
	p.CompanyID, p.VesselIMO, p.FinalAction = deref(company), deref(vessel), deref(final)
	p.fillCounters(issued, 0)
	return p, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefInt(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

// recurrenceColumns are the values of recurrence_every … audience_all for p,
// NULLs for a programme that is not recurring.
func recurrenceColumns(p *Programme) []any {
	if p.Recurrence == nil {
		return []any{nil, nil, nil, nil, nil, nil, false}
	}
	r := p.Recurrence
	null := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return []any{r.Every, r.While, r.RolloverMax, r.TimeZone, null(p.CompanyID), null(p.VesselIMO), p.All}
}

// fillRecurring sets a recurring programme's counters: packs and seconds
// issued over every month, and the current month's figures, budget
// remaining included.
func (s *PGProgrammes) fillRecurring(ctx context.Context, q querier, p *Programme) error {
	loc, err := recurrenceZone(p.Recurrence.TimeZone)
	if err != nil {
		return fmt.Errorf("quota: programme %s: time zone %q: %w", p.ID, p.Recurrence.TimeZone, err)
	}
	month, _, _ := recurringMonth(s.now(), loc)
	var packs, seconds, monthPacks int64
	err = q.QueryRow(ctx, `
SELECT coalesce(sum(packs_issued), 0)::bigint, coalesce(sum(seconds_issued), 0)::bigint,
    coalesce(sum(packs_issued) FILTER (WHERE month = $2), 0)::bigint
FROM recurring_months WHERE programme_id = $1`, p.ID, month).Scan(&packs, &seconds, &monthPacks)
	if err != nil {
		return fmt.Errorf("quota: programme %s: monthly counters: %w", p.ID, err)
	}
	p.fillCounters(packs, p.SecondsUsed)
	p.SecondsGranted = seconds // rollovers make grants larger than a pack
	p.Month = &RecurringMonth{Period: month, PacksIssued: monthPacks}
	if p.BudgetPacks > 0 {
		rem := max(p.BudgetPacks-monthPacks, 0)
		p.BudgetRemainingPacks = &rem
	}
	return nil
}

// ActiveRecurring lists the recurring programmes with starts_at ≤ at <
// ends_at, oldest first (counters not filled).
func (s *PGProgrammes) ActiveRecurring(ctx context.Context, at time.Time) ([]*Programme, error) {
	rows, err := s.pool.Query(ctx, `SELECT unit, `+programmeColumns+` FROM programmes
WHERE recurrence_every IS NOT NULL AND starts_at <= $1 AND ends_at > $1 ORDER BY id`, at.UTC())
	if err != nil {
		return nil, fmt.Errorf("quota: recurring programmes: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Programme, error) { return scanProgrammeWithUnit(r) })
	if err != nil {
		return nil, fmt.Errorf("quota: recurring programmes: %w", err)
	}
	return ps, nil
}

// recurringCandidatesSQL: the audience's condition goes in at %s. $1 the
// programme, $2 the month, $3 the day, $4 the cursor, $5 the limit, $6 the
// audience's company id or IMO. NOT EXISTS reads
// grant_once_per_programme_month; a month whose budget is used up gives
// nobody.
const recurringCandidatesSQL = `
SELECT s.id, s.sign_on FROM seafarers s
WHERE %s AND s.status = 'active' AND s.sign_on <= $3::date AND (s.sign_off IS NULL OR s.sign_off >= $3::date)
    AND s.id > $4
    AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.programme_id = $1 AND g.seafarer_id = s.id AND g.recurring_month = $2
        OFFSET 0)
    AND NOT EXISTS (SELECT 1 FROM recurring_months m WHERE m.programme_id = $1 AND m.month = $2
        AND m.budget_packs > 0 AND m.packs_issued >= m.budget_packs)
ORDER BY s.id LIMIT $5`

// RecurringCandidates implements RecurringStore.
func (s *PGProgrammes) RecurringCandidates(ctx context.Context, p *Programme, month, day, after string, n int) ([]RecurringCandidate, error) {
	var audience string
	var arg string
	switch {
	case p.CompanyID != "":
		audience, arg = "s.company_id = $6", p.CompanyID
	case p.VesselIMO != "":
		audience, arg = "s.vessel_imo = $6", p.VesselIMO
	case p.All:
		audience = "$6::text = ''"
	default:
		return nil, fmt.Errorf("quota: recurring programme %s has no audience", p.ID)
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf(recurringCandidatesSQL, audience), p.ID, month, day, after, n, arg)
	if err != nil {
		return nil, fmt.Errorf("quota: recurring candidates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RecurringCandidate, error) {
		var c RecurringCandidate
		err := r.Scan(&c.SeafarerID, &c.SignOn)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("quota: recurring candidates: %w", err)
	}
	return out, nil
}

// IssueRecurring implements RecurringStore: one transaction, the month's
// row locked so sweeps take the month's budget in turns;
// recurring_month_within_budget refuses the transaction should it ever
// pass the budget, and grant_once_per_programme_month (ON CONFLICT DO
// NOTHING) skips a grant another sweep committed first.
func (s *PGProgrammes) IssueRecurring(ctx context.Context, programmeID, month string, budgetPacks int64, grants []GrantInput) ([]GrantInput, error) {
	if len(grants) == 0 {
		return nil, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("quota: issue recurring grants: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	_, err = tx.Exec(ctx, `INSERT INTO recurring_months (programme_id, month, budget_packs) VALUES ($1, $2, $3)
ON CONFLICT (programme_id, month) DO NOTHING`, programmeID, month, budgetPacks)
	if err != nil {
		return nil, pgProgrammeError("issue recurring grants", err)
	}
	var budget, issued int64
	err = tx.QueryRow(ctx, `SELECT budget_packs, packs_issued FROM recurring_months WHERE programme_id = $1 AND month = $2
FOR UPDATE`, programmeID, month).Scan(&budget, &issued)
	if err != nil {
		return nil, fmt.Errorf("quota: issue recurring grants: %w", err)
	}
	if budget > 0 {
		grants = grants[:min(int64(len(grants)), max(budget-issued, 0))]
	}
	if len(grants) == 0 {
		return nil, nil
	}
	ids := make([]string, len(grants))
	seafarers := make([]string, len(grants))
	seconds := make([]int64, len(grants))
	effective := make([]time.Time, len(grants))
	expires := make([]time.Time, len(grants))
	byID := make(map[string]GrantInput, len(grants))
	issuedAt := grants[0].IssuedAt.UTC().Truncate(time.Millisecond)
	for j, g := range grants {
		g.EffectiveAt, g.ExpiresAt = g.EffectiveAt.UTC().Truncate(time.Second), g.ExpiresAt.UTC().Truncate(time.Second)
		g.IssuedAt = issuedAt
		ids[j], seafarers[j], seconds[j], effective[j], expires[j] = g.ID, g.SeafarerID, g.Seconds, g.EffectiveAt, g.ExpiresAt
		byID[g.ID] = g
	}
	g0 := grants[0]
	rows, err := tx.Query(ctx, `
INSERT INTO grants (id, seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at, recurring_month, unit)
SELECT g.id, g.seafarer_id, $6, g.seconds, $7, g.effective_at, g.expires_at, $8, $9, $10
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[])
    AS g(id, seafarer_id, seconds, effective_at, expires_at)
ON CONFLICT DO NOTHING
RETURNING id, seconds`, ids, seafarers, seconds, effective, expires, programmeID, g0.Priority, issuedAt, month, unitOrSeconds(g0.Unit))
	if err != nil {
		return nil, pgProgrammeError("insert recurring grants", err)
	}
	var inserted []GrantInput
	var insertedIDs []string
	var sum int64
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("quota: insert recurring grants: %w", err)
		}
		inserted = append(inserted, byID[id])
		insertedIDs = append(insertedIDs, id)
		sum += n
	}
	if err := rows.Err(); err != nil {
		return nil, pgProgrammeError("insert recurring grants", err)
	}
	if len(inserted) == 0 {
		return nil, nil
	}
	_, err = tx.Exec(ctx, `UPDATE recurring_months SET packs_issued = packs_issued + $3, seconds_issued = seconds_issued + $4
WHERE programme_id = $1 AND month = $2`, programmeID, month, len(inserted), sum)
	if err != nil {
		return nil, pgProgrammeError("count recurring grants", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO recurring_unannounced (grant_id) SELECT unnest($1::text[])`, insertedIDs)
	if err != nil {
		return nil, fmt.Errorf("quota: mark recurring grants unannounced: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("quota: issue recurring grants: %w", err)
	}
	return inserted, nil
}

// UnannouncedGrants implements RecurringStore. The page is taken from the
// small unannounced list first, then its grants by primary key: a join the
// other way round would read every grant.
func (s *PGProgrammes) UnannouncedGrants(ctx context.Context, n int) ([]UnannouncedGrant, error) {
	rows, err := s.pool.Query(ctx, `
SELECT g.id, g.seafarer_id, g.programme_id, g.seconds, g.priority, g.effective_at, g.expires_at, g.issued_at,
    g.voided_at IS NOT NULL, g.unit, p.notify_at
FROM (SELECT grant_id FROM recurring_unannounced LIMIT $1) u JOIN grants g ON g.id = u.grant_id
    JOIN programmes p ON p.id = g.programme_id`, n)
	return collectRecurringGrants(rows, err)
}

func collectRecurringGrants(rows pgx.Rows, err error) ([]UnannouncedGrant, error) {
	if err != nil {
		return nil, fmt.Errorf("quota: recurring grants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UnannouncedGrant, error) {
		var u UnannouncedGrant
		g := &u.Grant
		err := r.Scan(&g.ID, &g.SeafarerID, &g.ProgrammeID, &g.Seconds, &g.Priority, &g.EffectiveAt, &g.ExpiresAt,
			&g.IssuedAt, &u.Voided, &g.Unit, &g.NotifyAt)
		g.EffectiveAt, g.ExpiresAt, g.IssuedAt = g.EffectiveAt.UTC(), g.ExpiresAt.UTC(), g.IssuedAt.UTC()
		g.Unit = storedUnit(g.Unit)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("quota: recurring grants: %w", err)
	}
	return out, nil
}

// MarkAnnounced implements RecurringStore.
func (s *PGProgrammes) MarkAnnounced(ctx context.Context, grantIDs []string) error {
	if len(grantIDs) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM recurring_unannounced WHERE grant_id = ANY($1::text[])`, grantIDs); err != nil {
		return fmt.Errorf("quota: mark recurring grants announced: %w", err)
	}
	return nil
}

// errRecurringIssuance refuses an issuance of a recurring programme: its
// grants are issued monthly by wuyoud.
func errRecurringIssuance(id string) error {
	return wuyou.Errorf(wuyou.ECONFLICT, "programme %s is recurring: its grants are issued every month to its audience, not by issuances", id)
}
