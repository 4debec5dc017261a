package quota

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// Helpers of the statement tests (pgstatements_test.go).

// statementRegistry is billing.Registry over fixed companies; every
// programme and seafarer exists.
type statementRegistry struct{ crews map[string][]string }

func (statementRegistry) ProgrammeExists(context.Context, string) error { return nil }
func (statementRegistry) SeafarerExists(context.Context, string) error  { return nil }
func (r statementRegistry) CompanyCrew(_ context.Context, companyID string, fn func(string) error) error {
	crew, ok := r.crews[companyID]
	if !ok {
		return wuyou.Errorf(wuyou.ENOTFOUND, "company %s not found", companyID)
	}
	ids := append([]string(nil), crew...)
	sort.Strings(ids)
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

var (
	oct = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	nov = oct.AddDate(0, 1, 0)
	dec = oct.AddDate(0, 2, 0)
)

const statementCompany = "co_alpha"

func msisdnOf(seafarerID string) string {
	n := 0
	for _, c := range seafarerID {
		n = n*31 + int(c)
	}
	return fmt.Sprintf("+86138%08d", n%100_000_000)
}

func startedIncrements(seconds int64) int64 { return (seconds + 59) / 60 }

func figuresOf(e *LedgerEntry) billing.Figures {
	return billing.Figures{Calls: 1, BillableSeconds: e.BillableSeconds, CoveredSeconds: e.CoveredSeconds,
		OverageSeconds: e.OverageSeconds, OverageAmount: e.OverageAmount, WelfareCost: *e.WelfareCost}
}

// periodsUntil lists the periods from October 2026 to the one of now.
func periodsUntil(now time.Time) []string {
	var out []string
	for p := oct; !p.After(now); p = p.AddDate(0, 1, 0) {
		out = append(out, billing.PeriodOf(p))
	}
	return out
}

func statementPayers(seafarers, programmes []string) []string {
	out := []string{"company:" + statementCompany}
	for _, sf := range seafarers {
		out = append(out, "seafarer:"+sf)
	}
	for _, g := range programmes {
		out = append(out, "programme:"+g)
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
