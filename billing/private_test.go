package billing

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// freeCallsStatement is company co_1's statement of three seafarers: sf_1
// made a paid call and a free one, sf_2 only a free one (the union's
// hotline), sf_3 a paid one; sf_2 also has an adjusted period with a free
// call only, and sf_3 one with a paid call.
func freeCallsStatement(t *testing.T) *Statement {
	t.Helper()
	withFree := func(f Figures, calls, seconds int64) Figures {
		f.Calls += calls
		f.FreeCalls, f.FreeSeconds = calls, seconds
		return f
	}
	store := &fakeStatementStore{seafarers: map[string]SeafarerUsage{
		"sf_1": {Period: withFree(figures(1, 120, 60, 45), 1, 305)},
		"sf_2": {Period: withFree(Figures{}, 1, 61), Adjustments: []Adjustment{{Period: "2026-10", Figures: withFree(Figures{}, 1, 30)}}},
		"sf_3": {Period: figures(2, 240, 240, 90), Adjustments: []Adjustment{{Period: "2026-10", Figures: figures(1, 60, 60, 45)}}},
	}}
	s := &Statements{Store: store, Registry: fakeRegistry{crew: []string{"sf_1", "sf_2", "sf_3"}}, Currency: "CNY"}
	st, err := s.Statement(context.Background(), "2026-11", Payer{PayerCompany, "co_1"})
	require.NoError(t, err)
	require.EqualValues(t, 3, st.FreeCalls, "the statement itself counts the free calls")
	return st
}

// What a company reads of its statement never tells that one of its crew
// called a free number: no free_calls or free_seconds (not even zeros),
// calls without the free ones, no line that only free calls made; the
// seconds and money are the statement's.
func TestACompanyStatementWithoutFreeCallsTellsNothingOfThem(t *testing.T) {
	st := freeCallsStatement(t)
	before, err := json.Marshal(st)
	require.NoError(t, err)
	cs := st.WithoutFreeCalls()

	after, err := json.Marshal(st)
	require.NoError(t, err)
	require.JSONEq(t, string(before), string(after), "the statement itself is unchanged")

	b, err := json.Marshal(cs)
	require.NoError(t, err)
	require.NotContains(t, string(b), "free")
	var got struct {
		Period, Payer string
		Calls         int64
		Totals        map[string]any
		Lines         []map[string]any
	}
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, "2026-11", got.Period)
	require.Equal(t, "company:co_1", got.Payer)
	require.EqualValues(t, 1+2+1, got.Calls, "sf_1's paid call, sf_3's two and its adjusted one")
	require.EqualValues(t, 4, got.Totals["calls"])
	require.EqualValues(t, 120+240+60, got.Totals["billable_seconds"])
	require.Equal(t, map[string]any{"minor": float64(45 + 90 + 45), "currency": "CNY"}, got.Totals["welfare_cost"])
	var lines []string
	for _, l := range got.Lines {
		adjusts, _ := l["adjusts_period"].(string)
		lines = append(lines, l["seafarer_id"].(string)+" "+adjusts)
	}
	require.Equal(t, []string{"sf_1 ", "sf_3 ", "sf_3 2026-10"}, lines, "sf_2 called only free numbers: no line")

	// Every other field of a statement is there as the union reads it.
	var union, company map[string]any
	require.NoError(t, json.Unmarshal(before, &union))
	require.NoError(t, json.Unmarshal(b, &company))
	for k := range union {
		if k != "free_calls" && k != "free_seconds" {
			require.Contains(t, company, k)
		}
	}
	require.Len(t, company, len(union)-2)
}

func TestACompanyStatementCSVHasNoFreeCallColumns(t *testing.T) {
	st := freeCallsStatement(t)
	var union, company bytes.Buffer
	require.NoError(t, st.WriteCSV(&union))
	require.NoError(t, st.WithoutFreeCalls().WriteCSV(&company))
	u, err := csv.NewReader(&union).ReadAll()
	require.NoError(t, err)
	c, err := csv.NewReader(&company).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"free_calls", "free_seconds"}, u[0][len(u[0])-2:])
	require.Equal(t, u[0][:len(u[0])-2], c[0], "the same columns, without the free calls'")
	require.Len(t, u, 1+5)
	require.Len(t, c, 1+3)
	require.Equal(t, []string{"sf_1", "", "", "", "", "1", "120"}, c[1][:7], "sf_1: the paid call only")
	require.NotContains(t, strings.Join(c[0], ","), "free")
	for _, row := range c[1:] {
		require.NotEqual(t, "sf_2", row[0])
		require.Len(t, row, len(c[0]))
	}
}
