package billing

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
)

// fakeStatementStore serves fixed figures.
type fakeStatementStore struct {
	state      PeriodState
	programme  []SeafarerUsage
	seafarers  map[string]SeafarerUsage
	calls      []CallLine
	byMSISDN   []SettlementRow
	closed     []string
	usageCalls int // how many SeafarersUsage calls
}

func (f *fakeStatementStore) PeriodState(_ context.Context, period string) (*PeriodState, error) {
	st := f.state
	st.Period = period
	if st.Status == "" {
		st.Status = PeriodOpen
	}
	return &st, nil
}

func (f *fakeStatementStore) ClosePeriod(_ context.Context, period string) (*PeriodState, error) {
	f.closed = append(f.closed, period)
	return &PeriodState{Period: period, Status: PeriodClosed}, nil
}

func (f *fakeStatementStore) ProgrammeUsage(_ context.Context, _, _ string, fn func(SeafarerUsage) error) error {
	for _, u := range f.programme {
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeStatementStore) SeafarersUsage(_ context.Context, _ string, ids []string) ([]SeafarerUsage, error) {
	f.usageCalls++
	out := make([]SeafarerUsage, len(ids))
	for i, id := range ids {
		out[i] = f.seafarers[id]
		out[i].SeafarerID = id
	}
	return out, nil
}

func (f *fakeStatementStore) SeafarerCalls(context.Context, string, string) ([]CallLine, error) {
	return f.calls, nil
}

func (f *fakeStatementStore) UsageByMSISDN(_ context.Context, _ string, fn func(SettlementRow) error) error {
	for _, r := range f.byMSISDN {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

type fakeRegistry struct{ crew []string }

func (fakeRegistry) ProgrammeExists(_ context.Context, id string) error {
	if id == "pg_unknown" {
		return wuyou.Errorf(wuyou.ENOTFOUND, "programme %s not found", id)
	}
	return nil
}
func (fakeRegistry) SeafarerExists(context.Context, string) error { return nil }
func (r fakeRegistry) CompanyCrew(_ context.Context, _ string, fn func(string) error) error {
	for _, id := range r.crew {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

func cny(minor int64) Money { return Money{Minor: minor, Currency: "CNY"} }

func figures(calls, billable, covered int64, welfare int64) Figures {
	return Figures{Calls: calls, BillableSeconds: billable, CoveredSeconds: covered, OverageSeconds: billable - covered,
		OverageAmount: cny((billable - covered) / 60 * 99), WelfareCost: cny(welfare)}
}

func TestParsePayerAcceptsProgrammeCompanyAndSeafarerOnly(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Payer
		ok   bool
	}{
		{"programme:pg_1", Payer{PayerProgramme, "pg_1"}, true},
		{"company:co_1", Payer{PayerCompany, "co_1"}, true},
		{"seafarer:sf_1", Payer{PayerSeafarer, "sf_1"}, true},
		{"vessel:9074729", Payer{}, false},
		{"company:", Payer{}, false},
		{"company", Payer{}, false},
		{"company:co:1", Payer{}, false},
		{"", Payer{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePayer(tc.in)
			if !tc.ok {
				require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.in, got.String())
		})
	}
}

func TestPeriodsAreCalendarMonthsInUTC(t *testing.T) {
	start, end, err := PeriodBounds("2026-12")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), start)
	require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), end)
	require.Equal(t, "2027-01", NextPeriod("2026-12"))
	// 1 December 07:00 in Shanghai is still November in UTC.
	require.Equal(t, "2026-11", PeriodOf(time.Date(2026, 12, 1, 7, 0, 0, 0, time.FixedZone("CST", 8*3600))))
	for _, bad := range []string{"2026-13", "2026-1", "202612", "26-12", "", "2026-12-01"} {
		_, _, err := PeriodBounds(bad)
		require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), bad)
	}
}

func TestAPeriodRunsFromTheFirstInstantOfItsMonthToTheFirstOfTheNextInUTC(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	newYork := time.FixedZone("EST", -5*3600)
	for _, tc := range []struct {
		name       string
		at         time.Time
		period     string
		start, end time.Time
		next       string
	}{
		{"December is followed by January of the next year", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), "2026-12",
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "2027-01"},
		{"the first instant of a month is in that month", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "2027-01",
			time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), "2027-02"},
		{"February of a leap year ends on the 29th", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC), "2028-02",
			time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), "2028-03"},
		{"a time east of UTC early on the 1st is still the previous month", time.Date(2027, 1, 1, 7, 0, 0, 0, shanghai), "2026-12",
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "2027-01"},
		{"a time west of UTC late on the 31st is already the next month", time.Date(2026, 12, 31, 20, 0, 0, 0, newYork), "2027-01",
			time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), "2027-02"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.period, PeriodOf(tc.at))
			start, end, err := PeriodBounds(tc.period)
			require.NoError(t, err)
			require.Equal(t, tc.start, start)
			require.Equal(t, tc.end, end)
			require.Equal(t, time.UTC, start.Location())
			start, end = PeriodBoundsOf(tc.at)
			require.Equal(t, tc.start, start)
			require.Equal(t, tc.end, end)
			require.Equal(t, time.UTC, start.Location())
			require.Equal(t, tc.next, NextPeriod(tc.period))
		})
	}
}

func TestAMalformedPeriodIsInvalidAndHasNoNext(t *testing.T) {
	for _, bad := range []string{"2026-00", "2026-13", "1999-12", "2026-1", "2026/12", " 2026-12", "2026-12 "} {
		t.Run(bad, func(t *testing.T) {
			_, _, err := PeriodBounds(bad)
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))
			require.Panics(t, func() { NextPeriod(bad) })
		})
	}
}

func TestFiguresInTwoCurrenciesAreNotAdded(t *testing.T) {
	f := figures(1, 60, 0, 0)
	err := f.Add(Figures{Calls: 1, OverageAmount: Money{Minor: 5, Currency: "USD"}})
	require.Equal(t, wuyou.EUNPROCESSABLE, wuyou.ErrorCode(err))
	require.NoError(t, f.Add(Figures{Calls: 1})) // no amount: no currency to disagree with
	require.EqualValues(t, 2, f.Calls)
}

func TestAPeriodCanBeClosedOnlyAfterItHasEnded(t *testing.T) {
	store := &fakeStatementStore{}
	now := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	s := &Statements{Store: store, Registry: fakeRegistry{}, Now: func() time.Time { return now }}
	_, err := s.ClosePeriod(context.Background(), "2026-11")
	require.Equal(t, wuyou.EUNPROCESSABLE, wuyou.ErrorCode(err))
	require.Contains(t, err.Error(), "2026-12-01T00:00:00Z")
	now = now.Add(time.Second)
	st, err := s.ClosePeriod(context.Background(), "2026-11")
	require.NoError(t, err)
	require.Equal(t, PeriodClosed, st.Status)
	require.Equal(t, []string{"2026-11"}, store.closed)
	_, err = s.ClosePeriod(context.Background(), "November")
	require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))
}

func TestProgrammeStatementHasALinePerSeafarerAndAdjustedPeriodAndTotalsThatSumThem(t *testing.T) {
	store := &fakeStatementStore{programme: []SeafarerUsage{
		{SeafarerID: "sf_b", Period: figures(2, 120, 120, 90)},
		{SeafarerID: "sf_a", Period: figures(1, 60, 60, 45), Adjustments: []Adjustment{{Period: "2026-10", Figures: figures(1, 180, 180, 135)}}},
		{SeafarerID: "sf_c", Adjustments: []Adjustment{{Period: "2026-09", Figures: figures(1, 60, 60, 45)}}},
		{SeafarerID: "sf_d"}, // nothing: no line
	}}
	s := &Statements{Store: store, Registry: fakeRegistry{}, Currency: "CNY"}
	st, err := s.Statement(context.Background(), "2026-11", Payer{PayerProgramme, "pg_1"})
	require.NoError(t, err)
	var got []string
	for _, l := range st.Lines {
		got = append(got, l.SeafarerID+"/"+l.AdjustsPeriod)
	}
	require.Equal(t, []string{"sf_a/", "sf_a/2026-10", "sf_b/", "sf_c/2026-09"}, got)
	require.Equal(t, figures(5, 420, 420, 315), st.Figures)
	require.Equal(t, st.Figures, st.Totals)
	require.Equal(t, "programme:pg_1", st.Payer)
	require.Equal(t, PeriodOpen, st.Status)

	_, err = s.Statement(context.Background(), "2026-11", Payer{PayerProgramme, "pg_unknown"})
	require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err))
}

func TestCompanyStatementReadsItsCrewInBatchesAndListsOnlySeafarersWithCalls(t *testing.T) {
	var crew []string
	store := &fakeStatementStore{seafarers: map[string]SeafarerUsage{}}
	for i := range 2500 {
		id := fmt.Sprintf("sf_%04d", i)
		crew = append(crew, id)
		if i%100 == 0 {
			store.seafarers[id] = SeafarerUsage{Period: figures(1, 120, 60, 45)}
		}
	}
	s := &Statements{Store: store, Registry: fakeRegistry{crew: crew}, Currency: "CNY"}
	st, err := s.Statement(context.Background(), "2026-11", Payer{PayerCompany, "co_1"})
	require.NoError(t, err)
	require.Len(t, st.Lines, 25)
	require.Equal(t, 3, store.usageCalls, "2500 seafarers read 1000 at a time")
	require.Equal(t, figures(25, 25*120, 25*60, 25*45), st.Figures)
}

func TestStatementWithoutAmountsShowsTheTariffCurrency(t *testing.T) {
	s := &Statements{Store: &fakeStatementStore{}, Registry: fakeRegistry{}, Currency: "CNY"}
	st, err := s.Statement(context.Background(), "2026-11", Payer{PayerCompany, "co_empty"})
	require.NoError(t, err)
	require.Equal(t, []Line{}, st.Lines)
	require.Equal(t, Figures{OverageAmount: cny(0), WelfareCost: cny(0)}, st.Figures)
}

func TestStatementCSVHasAHeaderRowAndOneRowPerLine(t *testing.T) {
	at := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		st     Statement
		header string
		row    string
	}{
		{
			name: "seafarer lines for programme and company payers",
			st: Statement{Payer: "company:co_1", Lines: []Line{
				{SeafarerID: "sf_a", Figures: figures(2, 180, 120, 90)},
				{SeafarerID: "sf_a", AdjustsPeriod: "2026-10", Figures: figures(1, 60, 60, 45)},
			}},
			header: "seafarer_id,seafarer_name,company_id,company_name,adjusts_period,calls,billable_seconds,covered_seconds,overage_seconds,overage_amount_minor,welfare_cost_minor,currency,data_sessions,billable_bytes,covered_bytes,overage_bytes,sms_messages,billable_sms,covered_sms,overage_sms,free_calls,free_seconds",
			row:    "sf_a,,,,,2,180,120,60,99,90,CNY,0,0,0,0,0,0,0,0,0,0",
		},
		{
			name: "a seafarer line with data and SMS ends with their figures in their units",
			st: Statement{Payer: "programme:pg_1", Lines: []Line{
				{SeafarerID: "sf_a", Figures: func() Figures {
					f := figures(2, 180, 120, 90)
					f.Units = []UnitFigures{
						{Unit: UnitBytes, Events: 3, Billable: 3 << 20, Covered: 2 << 20, Overage: 1 << 20},
						{Unit: UnitSMS, Events: 4, Billable: 4, Covered: 4},
					}
					return f
				}()},
				{SeafarerID: "sf_b", AdjustsPeriod: "2026-10", Figures: figures(1, 60, 60, 45)},
			}},
			header: "seafarer_id,seafarer_name,company_id,company_name,adjusts_period,calls,billable_seconds,covered_seconds,overage_seconds,overage_amount_minor,welfare_cost_minor,currency,data_sessions,billable_bytes,covered_bytes,overage_bytes,sms_messages,billable_sms,covered_sms,overage_sms,free_calls,free_seconds",
			row:    "sf_a,,,,,2,180,120,60,99,90,CNY,3,3145728,2097152,1048576,4,4,4,0,0,0",
		},
		{
			name: "call lines for a seafarer payer",
			st: Statement{Payer: "seafarer:sf_a", Lines: []Line{
				{EntryID: "d_1", EventID: "cdr-1", CallTime: &at, MSISDN: "+8613800000001", VisitedCountry: "SG", Figures: figures(1, 120, 60, 45)},
				{EntryID: "d_2", EventID: "cdr-2", CallTime: &at, MSISDN: "+8613800000001", VisitedCountry: "SG", AdjustsPeriod: "2026-10", Figures: figures(1, 60, 60, 45)},
			}},
			header: "entry_id,event_id,call_time,msisdn,visited_country,adjusts_period,calls,billable_seconds,covered_seconds,overage_seconds,overage_amount_minor,welfare_cost_minor,currency,data_sessions,billable_bytes,covered_bytes,overage_bytes,sms_messages,billable_sms,covered_sms,overage_sms,free_calls,free_seconds",
			row:    "d_1,cdr-1,2026-11-03T08:00:00Z,+8613800000001,SG,,1,120,60,60,99,45,CNY,0,0,0,0,0,0,0,0,0,0",
		},
		{
			name: "a call to a free number ends its line with one free call and its duration",
			st: Statement{Payer: "seafarer:sf_a", Lines: []Line{
				{EntryID: "d_1", EventID: "cdr-1", CallTime: &at, MSISDN: "+8613800000001", VisitedCountry: "SG", Figures: Figures{Calls: 1, FreeCalls: 1, FreeSeconds: 305}},
				{EntryID: "d_2", EventID: "cdr-2", CallTime: &at, MSISDN: "+8613800000001", VisitedCountry: "SG", AdjustsPeriod: "2026-10", Figures: figures(1, 60, 60, 45)},
			}},
			header: "entry_id,event_id,call_time,msisdn,visited_country,adjusts_period,calls,billable_seconds,covered_seconds,overage_seconds,overage_amount_minor,welfare_cost_minor,currency,data_sessions,billable_bytes,covered_bytes,overage_bytes,sms_messages,billable_sms,covered_sms,overage_sms,free_calls,free_seconds",
			row:    "d_1,cdr-1,2026-11-03T08:00:00Z,+8613800000001,SG,,1,0,0,0,0,0,,0,0,0,0,0,0,0,0,1,305",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, tc.st.WriteCSV(&b))
			recs, err := csv.NewReader(&b).ReadAll()
			require.NoError(t, err)
			require.Len(t, recs, 3)
			require.Equal(t, tc.header, strings.Join(recs[0], ","))
			require.Equal(t, tc.row, strings.Join(recs[1], ","))
			require.Equal(t, "2026-10", recs[2][strings.Count(tc.header[:strings.Index(tc.header, "adjusts_period")], ",")])
		})
	}
}
