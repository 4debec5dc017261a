package quota

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pgFreeCall is a call to a free number: it bills nothing and draws
// nothing, and lasted duration seconds.
func pgFreeCall(seafarerID, eventID string, at time.Time, duration int64) SeafarerEntry {
	se := pgDebit(seafarerID, eventID, at, 0, 45)
	se.Entry.DurationSeconds, se.Entry.CalledNumber, se.Entry.Free = duration, "+861239500", true
	return se
}

func TestStatementsCountFreeCallsAndTheirDurationApart(t *testing.T) {
	t.Parallel()
	f := MustPGStatementFixture(t, nov.Add(meterDay), "sf_1", "sf_2")
	mustAppend(t, f,
		pgDebit("sf_1", "cdr-paid", oct.Add(meterDay), 120, 45, Draw{GrantID: "gr_a", ProgrammeID: "pg_a", Seconds: 60}),
		pgFreeCall("sf_1", "cdr-hotline", oct.Add(2*meterDay), 305),
		pgFreeCall("sf_2", "cdr-sos", oct.Add(2*meterDay), 61),
	)

	company := mustPGStatement(t, f, "2026-10", "company:"+statementCompany)
	require.Len(t, company.Lines, 2)
	require.Equal(t, "sf_1", company.Lines[0].SeafarerID)
	require.Equal(t, int64(2), company.Lines[0].Calls, "a free call is still a call")
	require.Equal(t, int64(1), company.Lines[0].FreeCalls)
	require.Equal(t, int64(305), company.Lines[0].FreeSeconds)
	require.Equal(t, int64(120), company.Lines[0].BillableSeconds, "a free call bills nothing")
	require.Equal(t, int64(60), company.Lines[0].OverageSeconds, "a free call is never overage")
	require.Equal(t, "sf_2", company.Lines[1].SeafarerID, "a seafarer who only called free numbers has a line")
	require.Equal(t, int64(1), company.Lines[1].FreeCalls)
	require.Equal(t, int64(61), company.Lines[1].FreeSeconds)
	require.Zero(t, company.Lines[1].OverageAmount.Minor)
	require.Equal(t, int64(2), company.Totals.FreeCalls)
	require.Equal(t, int64(366), company.Totals.FreeSeconds)

	seafarer := mustPGStatement(t, f, "2026-10", "seafarer:sf_1")
	require.Len(t, seafarer.Lines, 2)
	require.Equal(t, "cdr-paid", seafarer.Lines[0].EventID)
	require.Zero(t, seafarer.Lines[0].FreeCalls)
	require.Zero(t, seafarer.Lines[0].FreeSeconds)
	require.Equal(t, "cdr-hotline", seafarer.Lines[1].EventID)
	require.Equal(t, int64(1), seafarer.Lines[1].FreeCalls)
	require.Equal(t, int64(305), seafarer.Lines[1].FreeSeconds)
	require.Equal(t, int64(1), seafarer.Totals.FreeCalls)
	require.Contains(t, mustPGStatementJSON(t, f, "2026-10", "seafarer:sf_1"), `"free_calls":1,"free_seconds":305`)

	programme := mustPGStatement(t, f, "2026-10", "programme:pg_a")
	require.Equal(t, int64(1), programme.Totals.Calls, "the welfare fund pays for no free call")
	require.Zero(t, programme.Totals.FreeCalls)

	var b bytes.Buffer
	require.NoError(t, company.WriteCSV(&b))
	recs, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	head := recs[0]
	require.Equal(t, []string{"free_calls", "free_seconds"}, head[len(head)-2:], "the new columns come last")
	require.Equal(t, []string{"1", "305"}, recs[1][len(head)-2:])
	require.Equal(t, []string{"1", "61"}, recs[2][len(head)-2:])
}
