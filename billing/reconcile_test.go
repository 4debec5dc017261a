package billing

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
)

func reconcileWith(t *testing.T, ours []SettlementRow, settlement string) *Reconciliation {
	t.Helper()
	s := &Statements{Store: &fakeStatementStore{byMSISDN: ours}, Registry: fakeRegistry{}}
	rep, err := s.Reconcile(context.Background(), "2026-11", strings.NewReader(settlement))
	require.NoError(t, err)
	return rep
}

func TestReconciliationComparesEachMSISDNsFigures(t *testing.T) {
	ours := []SettlementRow{
		{MSISDN: "+8613800000001", Calls: 3, BillableSeconds: 300, CoveredSeconds: 240},
		{MSISDN: "+8613800000002", Calls: 1, BillableSeconds: 60, CoveredSeconds: 60},
		{MSISDN: "+8613800000003", Calls: 2, BillableSeconds: 120},
		// One MSISDN used by two seafarers in the month: its figures add up.
		{MSISDN: "+8613800000004", Calls: 1, BillableSeconds: 60},
		{MSISDN: "+8613800000004", Calls: 1, BillableSeconds: 120, CoveredSeconds: 60},
	}
	rep := reconcileWith(t, ours, "msisdn,calls,billable_seconds,covered_seconds\n"+
		"+8613800000001,3,300,180\n"+ // covered differs
		"8613800000002,1,60,60\n"+ // no "+": the same MSISDN
		"+8613800000004,2,180,60\n"+
		"+8613800000009,1,60,0\n") // unknown to Wuyou
	require.EqualValues(t, 2, rep.Matched)
	require.Equal(t, []Difference{{MSISDN: "+8613800000001", Field: "covered_seconds", Wuyou: 240, Carrier: 180}}, rep.Differences)
	require.Equal(t, []SettlementRow{{MSISDN: "+8613800000009", Calls: 1, BillableSeconds: 60}}, rep.MissingInWuyou)
	require.Equal(t, []SettlementRow{{MSISDN: "+8613800000003", Calls: 2, BillableSeconds: 120}}, rep.MissingInCarrier)
	require.Equal(t, SettlementTotals{MSISDNs: 4, Calls: 8, BillableSeconds: 660, CoveredSeconds: 360}, rep.Totals.Wuyou)
	require.Equal(t, SettlementTotals{MSISDNs: 4, Calls: 7, BillableSeconds: 600, CoveredSeconds: 300}, rep.Totals.Carrier)
}

func TestSettlementRowsThatCannotBeReadAreReportedAndCountOnNeitherSide(t *testing.T) {
	rep := reconcileWith(t, nil, "msisdn,calls,billable_seconds,covered_seconds\n"+
		"+8613800000001,1,60,60\n"+
		"\n"+ // blank lines are skipped, not counted
		"+8613800000001,1,60,60\n"+
		"+86138,1,60,0\n"+
		"+8613800000002,-1,60,0\n"+
		"+8613800000003,1,60,120\n"+
		"+8613800000004,1\n"+
		"+8613800000005,2,120,60\n")
	require.EqualValues(t, 5, rep.InvalidRowCount)
	var got []string
	for _, e := range rep.InvalidRows {
		got = append(got, fmt.Sprintf("%d %s", e.Row, e.Message))
	}
	require.Equal(t, []string{
		"2 msisdn repeats an earlier row",
		"3 msisdn must be " + crew.MSISDNRule,
		"4 calls must be a whole number >= 0",
		"5 covered_seconds must not exceed billable_seconds",
		"6 has 2 fields, the header 4",
	}, got)
	require.Equal(t, SettlementTotals{MSISDNs: 2, Calls: 3, BillableSeconds: 180, CoveredSeconds: 120}, rep.Totals.Carrier)
	require.Len(t, rep.MissingInWuyou, 2)
}

func TestSettlementWithoutItsHeaderIsInvalid(t *testing.T) {
	s := &Statements{Store: &fakeStatementStore{}, Registry: fakeRegistry{}}
	for name, body := range map[string]string{
		"empty":           "",
		"missing columns": "msisdn,calls\n+8613800000001,1\n",
		"no header":       "+8613800000001,1,60,60\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Reconcile(context.Background(), "2026-11", strings.NewReader(body))
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))
		})
	}
}

func TestSettlementIsReadAsAStream(t *testing.T) {
	// 200,000 rows generated on the fly: never held as a whole.
	const rows = 200_000
	pr, pw := io.Pipe()
	go func() {
		w := csv.NewWriter(pw)
		_ = w.Write(SettlementColumns)
		for i := range rows {
			_ = w.Write([]string{fmt.Sprintf("+86139%08d", i), "1", "60", "60"})
		}
		w.Flush()
		pw.Close()
	}()
	s := &Statements{Store: &fakeStatementStore{}, Registry: fakeRegistry{}}
	rep, err := s.Reconcile(context.Background(), "2026-11", pr)
	require.NoError(t, err)
	require.EqualValues(t, rows, rep.Totals.Carrier.MSISDNs)
	require.Len(t, rep.MissingInWuyou, rows)
}

func TestReconciliationCSVHasOneRowPerFindingAndFigureThenTheTotals(t *testing.T) {
	rep := reconcileWith(t, []SettlementRow{
		{MSISDN: "+8613800000001", Calls: 3, BillableSeconds: 300, CoveredSeconds: 240},
		{MSISDN: "+8613800000003", Calls: 1, BillableSeconds: 60},
	}, "msisdn,calls,billable_seconds,covered_seconds\n+8613800000001,4,300,240\n+8613800000009,1,60,0\nbad,1,1,1\n")
	var b bytes.Buffer
	require.NoError(t, rep.WriteCSV(&b))
	require.Equal(t, `msisdn,finding,field,wuyou,carrier,detail
+8613800000001,difference,calls,3,4,
+8613800000009,missing_in_wuyou,calls,,1,
+8613800000009,missing_in_wuyou,billable_seconds,,60,
+8613800000009,missing_in_wuyou,covered_seconds,,0,
+8613800000003,missing_in_carrier,calls,1,,
+8613800000003,missing_in_carrier,billable_seconds,60,,
+8613800000003,missing_in_carrier,covered_seconds,0,,
bad,invalid_row,,,,"row 3: msisdn must be an E.164 number: '+' then 8 to 15 digits, not starting with 0, no spaces (e.g. +8613800000001)"
,total,msisdns,2,2,
,total,calls,4,5,
,total,billable_seconds,360,360,
,total,covered_seconds,240,240,
`, b.String())
}
