package quota

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// MonthOverview is what union staff look at first for one statement
// period: its calls by day and the companies whose crews ran up the most
// overage. Figures are the period's statement's (the debits counted in it,
// moved by the adjusts counted in it), so they agree with GET /v1/statements.
type MonthOverview struct {
	Period string `json:"period"`
	Status string `json:"status"` // billing.PeriodOpen or billing.PeriodClosed
	// Days has one entry per day of the month (UTC), zeros included: the
	// calls made that day and counted in this period.
	Days []DayFigures `json:"days"`
	// Adjustments are the calls of earlier, closed periods counted in this
	// one (metered after their own period closed); they belong to no day
	// of this month.
	Adjustments DayFigures `json:"adjustments"`
	// TopOverage are the companies whose crews' calls counted in this
	// period had the most overage, most first (ties by id), adjustments
	// included.
	TopOverage []CompanyOverage `json:"top_overage"`
}

// DayFigures are the calls of one day.
type DayFigures struct {
	Date           string `json:"date,omitempty"` // YYYY-MM-DD
	Calls          int64  `json:"calls"`
	CoveredSeconds int64  `json:"covered_seconds"`
	OverageSeconds int64  `json:"overage_seconds"`
}

// CompanyOverage is one company's overage in a period.
type CompanyOverage struct {
	CompanyID      string        `json:"company_id"`
	Name           string        `json:"name"`
	Calls          int64         `json:"calls"`
	OverageSeconds int64         `json:"overage_seconds"`
	OverageAmount  billing.Money `json:"overage_amount"`
}

// MaxTopOverage bounds how many companies an overview ranks.
const MaxTopOverage = 50

// overviewDaysSQL: the debits counted in period $1 (rows before its end
// $2; ledger_debits_by_statement) by the UTC day of the call, the
// adjustments (calls of other periods) on one line with an empty date.
// Adjust entries counted in the period (filed from $3, adjustsFrom;
// ledger_adjusts_by_statement) add their signed seconds to their call's
// day but no call. Calls only (unit seconds): data sessions' and SMS's
// amounts are not seconds.
const overviewDaysSQL = `
SELECT CASE WHEN adjusts_period IS NULL THEN to_char(call_time AT TIME ZONE 'UTC', 'YYYY-MM-DD') ELSE '' END,
    count(*) FILTER (WHERE kind = 'debit'), sum(covered_seconds)::int8, sum(overage_seconds)::int8
FROM (
    SELECT kind, adjusts_period, call_time, covered_seconds, overage_seconds
    FROM ledger_entries
    WHERE kind = 'debit' AND statement_period = $1 AND filed_at < $2 AND call_time IS NOT NULL AND unit = 'seconds'
    UNION ALL
    SELECT kind, adjusts_period, call_time, covered_seconds, overage_seconds
    FROM ledger_entries
    WHERE kind = 'adjust' AND statement_period = $1 AND filed_at >= $3 AND call_time IS NOT NULL AND unit = 'seconds'
) e
GROUP BY 1`

// overviewTopSQL: the $3 companies with the most overage seconds among
// the calls (unit seconds) counted in period $1 (rows before its end $2),
// the adjusts counted in it (filed from $4) adding their signed overage
// but no call; a company left without overage is not ranked. A seafarer
// belongs to one company for good, so the crew's current company is the
// company of every call.
const overviewTopSQL = `
SELECT s.company_id, c.name, count(*) FILTER (WHERE e.kind = 'debit'), sum(e.overage_seconds)::int8,
    sum(e.overage_amount_minor)::int8, coalesce(min(e.currency), '')
FROM (
    SELECT seafarer_id, kind, overage_seconds, overage_amount_minor, currency
    FROM ledger_entries
    WHERE kind = 'debit' AND statement_period = $1 AND filed_at < $2 AND overage_seconds > 0 AND unit = 'seconds'
    UNION ALL
    SELECT seafarer_id, kind, overage_seconds, overage_amount_minor, currency
    FROM ledger_entries
    WHERE kind = 'adjust' AND statement_period = $1 AND filed_at >= $4 AND unit = 'seconds'
        AND (overage_seconds <> 0 OR overage_amount_minor <> 0)
) e
JOIN seafarers s ON s.id = e.seafarer_id
JOIN companies c ON c.id = s.company_id
GROUP BY s.company_id, c.name
HAVING sum(e.overage_seconds) > 0
ORDER BY 4 DESC, 1
LIMIT $3`

// MonthOverview returns period's overview with the top companies by
// overage (at most MaxTopOverage). Every query is bounded by the
// statement index of the period, as statements are. EINVALID for a
// malformed period or top.
func (s *PGStatements) MonthOverview(ctx context.Context, period string, top int) (*MonthOverview, error) {
	start, end, err := billing.PeriodBounds(period)
	if err != nil {
		return nil, err
	}
	if top < 0 || top > MaxTopOverage {
		return nil, wuyou.Invalid([]wuyou.FieldError{{Field: "top", Message: fmt.Sprintf("must be from 0 to %d", MaxTopOverage)}})
	}
	state, err := s.PeriodState(ctx, period)
	if err != nil {
		return nil, err
	}
	o := &MonthOverview{Period: period, Status: state.Status, TopOverage: []CompanyOverage{}}
	byDate := map[string]int{}
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		date := d.Format(time.DateOnly)
		byDate[date] = len(o.Days)
		o.Days = append(o.Days, DayFigures{Date: date})
	}

	b := &pgx.Batch{}
	b.Queue(overviewDaysSQL, period, end, adjustsFrom(start))
	b.Queue(overviewTopSQL, period, end, top, adjustsFrom(start))
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("quota: overview by day: %w", err)
	}
	var f DayFigures
	_, err = pgx.ForEachRow(rows, []any{&f.Date, &f.Calls, &f.CoveredSeconds, &f.OverageSeconds}, func() error {
		if i, ok := byDate[f.Date]; ok {
			o.Days[i] = f
			return nil
		}
		// Adjustments, and calls of this month counted in it although their
		// day is outside it (none: a call is counted in its own period or
		// a later one).
		o.Adjustments.Calls += f.Calls
		o.Adjustments.CoveredSeconds += f.CoveredSeconds
		o.Adjustments.OverageSeconds += f.OverageSeconds
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: overview by day: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return nil, fmt.Errorf("quota: overview of overage: %w", err)
	}
	var c CompanyOverage
	_, err = pgx.ForEachRow(rows, []any{&c.CompanyID, &c.Name, &c.Calls, &c.OverageSeconds, &c.OverageAmount.Minor, &c.OverageAmount.Currency}, func() error {
		o.TopOverage = append(o.TopOverage, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: overview of overage: %w", err)
	}
	return o, br.Close()
}
