package billing

// Reconciliation: each month the carrier sends its settlement, one row per
// MSISDN with the calls it metered in the period, their billable seconds and
// the seconds it considers covered by welfare packs. Wuyou compares it with
// its own figures of the same calls: by the period of each call's own time
// (whatever statement counted it) and by the MSISDN the call was made from.

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
)

// SettlementColumns is the header of the carrier's settlement CSV (any
// order; other columns are ignored).
var SettlementColumns = []string{"msisdn", "calls", "billable_seconds", "covered_seconds"}

// SettlementRow is one MSISDN's figures for a period, on either side.
type SettlementRow struct {
	MSISDN          string `json:"msisdn"`
	Calls           int64  `json:"calls"`
	BillableSeconds int64  `json:"billable_seconds"`
	CoveredSeconds  int64  `json:"covered_seconds"`
}

func (r *SettlementRow) add(o SettlementRow) {
	r.Calls += o.Calls
	r.BillableSeconds += o.BillableSeconds
	r.CoveredSeconds += o.CoveredSeconds
}

// fields are the compared figures, in report order.
func (r SettlementRow) fields() [3]int64 {
	return [3]int64{r.Calls, r.BillableSeconds, r.CoveredSeconds}
}

var comparedFields = [3]string{"calls", "billable_seconds", "covered_seconds"}

// SettlementTotals sums one side.
type SettlementTotals struct {
	MSISDNs         int64 `json:"msisdns"`
	Calls           int64 `json:"calls"`
	BillableSeconds int64 `json:"billable_seconds"`
	CoveredSeconds  int64 `json:"covered_seconds"`
}

func (t *SettlementTotals) add(r SettlementRow) {
	t.MSISDNs++
	t.Calls += r.Calls
	t.BillableSeconds += r.BillableSeconds
	t.CoveredSeconds += r.CoveredSeconds
}

// Difference is one figure on which the two sides disagree for an MSISDN.
type Difference struct {
	MSISDN  string `json:"msisdn"`
	Field   string `json:"field"`
	Wuyou   int64  `json:"wuyou"`
	Carrier int64  `json:"carrier"`
}

// RowError is a settlement row that could not be read; it counts on neither side.
type RowError struct {
	Row     int    `json:"row"` // 1-based data row; the header is not counted
	MSISDN  string `json:"msisdn,omitempty"`
	Message string `json:"message"`
}

// maxRowErrors bounds the row errors listed (all are counted).
const maxRowErrors = 1000

// Reconciliation is the outcome of comparing a settlement with Wuyou's figures.
type Reconciliation struct {
	Period string `json:"period"`
	// Matched counts MSISDNs present on both sides with the same figures.
	Matched int64 `json:"matched"`
	// MissingInWuyou are the carrier's rows of MSISDNs Wuyou metered no call for.
	MissingInWuyou []SettlementRow `json:"missing_in_wuyou"`
	// MissingInCarrier are Wuyou's figures of MSISDNs the settlement lacks.
	MissingInCarrier []SettlementRow `json:"missing_in_carrier"`
	Differences      []Difference    `json:"differences"`
	InvalidRows      []RowError      `json:"invalid_rows"`
	InvalidRowCount  int64           `json:"invalid_row_count"`
	Totals           struct {
		Wuyou   SettlementTotals `json:"wuyou"`
		Carrier SettlementTotals `json:"carrier"`
	} `json:"totals"`
}

// Reconcile compares the carrier's settlement for period, read from
// settlement as CSV one row at a time, with Wuyou's figures. A bad row is
// reported and skipped; it does not stop the rest. MSISDNs are compared in
// E.164 form ("+" added when the carrier omits it). EINVALID for a bad period
// or a settlement without the required header.
func (s *Statements) Reconcile(ctx context.Context, period string, settlement io.Reader) (*Reconciliation, error) {
	if _, _, err := PeriodBounds(period); err != nil {
		return nil, err
	}
	type wuyouSide struct {
		SettlementRow
		seen bool
	}
	ours := map[string]*wuyouSide{}
	err := s.Store.UsageByMSISDN(ctx, period, func(r SettlementRow) error {
		if r.MSISDN == "" {
			return nil
		}
		w := ours[r.MSISDN]
		if w == nil {
			w = &wuyouSide{SettlementRow: SettlementRow{MSISDN: r.MSISDN}}
			ours[r.MSISDN] = w
		}
		w.add(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep := &Reconciliation{Period: period, MissingInWuyou: []SettlementRow{}, MissingInCarrier: []SettlementRow{},
		Differences: []Difference{}, InvalidRows: []RowError{}}
	for _, w := range ours {
		rep.Totals.Wuyou.add(w.SettlementRow)
	}

	rows, err := newSettlementReader(settlement)
	if err != nil {
		return nil, err
	}
	missing := map[string]bool{} // MSISDNs only the carrier has, to spot repeats
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		row, n, rowErr, err := rows.next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if rowErr == "" {
			if w := ours[row.MSISDN]; (w != nil && w.seen) || missing[row.MSISDN] {
				rowErr = "msisdn repeats an earlier row"
			}
		}
		if rowErr != "" {
			rep.InvalidRowCount++
			if len(rep.InvalidRows) < maxRowErrors {
				rep.InvalidRows = append(rep.InvalidRows, RowError{Row: n, MSISDN: row.MSISDN, Message: rowErr})
			}
			continue
		}
		rep.Totals.Carrier.add(row)
		w := ours[row.MSISDN]
		if w == nil {
			missing[row.MSISDN] = true
			rep.MissingInWuyou = append(rep.MissingInWuyou, row)
			continue
		}
		w.seen = true
		same := true
		wf, cf := w.fields(), row.fields()
		for i, name := range comparedFields {
			if wf[i] != cf[i] {
				same = false
				rep.Differences = append(rep.Differences, Difference{MSISDN: row.MSISDN, Field: name, Wuyou: wf[i], Carrier: cf[i]})
			}
		}
		if same {
			rep.Matched++
		}
	}
	for _, w := range ours {
		if !w.seen {
			rep.MissingInCarrier = append(rep.MissingInCarrier, w.SettlementRow)
		}
	}
	byMSISDN := func(rs []SettlementRow) {
		sort.Slice(rs, func(i, j int) bool { return rs[i].MSISDN < rs[j].MSISDN })
	}
	byMSISDN(rep.MissingInWuyou)
	byMSISDN(rep.MissingInCarrier)
	order := map[string]int{comparedFields[0]: 0, comparedFields[1]: 1, comparedFields[2]: 2}
	sort.SliceStable(rep.Differences, func(i, j int) bool {
		a, b := rep.Differences[i], rep.Differences[j]
		if a.MSISDN != b.MSISDN {
			return a.MSISDN < b.MSISDN
		}
		return order[a.Field] < order[b.Field]
	})
	return rep, nil
}

// settlementReader reads settlement rows one at a time.
type settlementReader struct {
	csv *csv.Reader
	col [4]int // index of each of SettlementColumns
	n   int
}

func newSettlementReader(r io.Reader) (*settlementReader, error) {
	c := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	c.FieldsPerRecord = -1
	c.ReuseRecord = true
	c.TrimLeadingSpace = true
	header, err := c.Read()
	if errors.Is(err, io.EOF) {
		return nil, wuyou.Invalid([]wuyou.FieldError{{Field: "settlement", Message: "is empty: want a CSV header " + strings.Join(SettlementColumns, ",")}})
	} else if err != nil {
		return nil, wuyou.Invalid([]wuyou.FieldError{{Field: "settlement", Message: "header row: " + err.Error()}})
	}
	sr := &settlementReader{csv: c, col: [4]int{-1, -1, -1, -1}}
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		for j, want := range SettlementColumns {
			if name == want && sr.col[j] < 0 {
				sr.col[j] = i
			}
		}
	}
	var errs []wuyou.FieldError
	for j, want := range SettlementColumns {
		if sr.col[j] < 0 {
			errs = append(errs, wuyou.FieldError{Field: want, Message: "column missing from the settlement header"})
		}
	}
	if err := wuyou.Invalid(errs); err != nil {
		return nil, err
	}
	return sr, nil
}

// next returns the next row and its number; rowErr says why a row is
// invalid. err is io.EOF at the end, or a read failure.
func (sr *settlementReader) next() (row SettlementRow, n int, rowErr string, err error) {
	for {
		rec, err := sr.csv.Read()
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe):
			sr.n++
			return SettlementRow{}, sr.n, "malformed CSV: " + pe.Err.Error(), nil
		case err != nil:
			return SettlementRow{}, 0, "", err
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		sr.n++
		return sr.parse(rec)
	}
}

func (sr *settlementReader) parse(rec []string) (SettlementRow, int, string, error) {
	for _, i := range sr.col {
		if i >= len(rec) {
			return SettlementRow{}, sr.n, fmt.Sprintf("has %d fields, the header %d", len(rec), len(sr.col)), nil
		}
	}
	row := SettlementRow{MSISDN: normalizeMSISDN(rec[sr.col[0]])}
	if !crew.ValidMSISDN(row.MSISDN) { // the one MSISDN rule: +0… is refused here as at enrolment
		row.MSISDN = strings.TrimSpace(rec[sr.col[0]]) // reported as sent
		return row, sr.n, "msisdn must be " + crew.MSISDNRule, nil
	}
	for j, dst := range []*int64{&row.Calls, &row.BillableSeconds, &row.CoveredSeconds} {
		v, err := strconv.ParseInt(strings.TrimSpace(rec[sr.col[j+1]]), 10, 64)
		if err != nil || v < 0 {
			return row, sr.n, SettlementColumns[j+1] + " must be a whole number >= 0", nil
		}
		*dst = v
	}
	if row.CoveredSeconds > row.BillableSeconds {
		return row, sr.n, "covered_seconds must not exceed billable_seconds", nil
	}
	return row, sr.n, "", nil
}

func normalizeMSISDN(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && s[0] != '+' {
		s = "+" + s
	}
	return s
}

// ReconciliationCSVHeader is the header of a reconciliation report as CSV.
var ReconciliationCSVHeader = []string{"msisdn", "finding", "field", "wuyou", "carrier", "detail"}

// WriteCSV writes the report as CSV, one row per finding and figure:
// findings difference, missing_in_wuyou, missing_in_carrier, invalid_row
// and, last, total (one row per summed figure).
func (r *Reconciliation) WriteCSV(w io.Writer) error {
	cw := wuyou.NewCSVWriter(w) // every cell made safe for spreadsheets
	num := strconv.FormatInt
	write := func(rec ...string) { _ = cw.Write(rec) }
	write(ReconciliationCSVHeader...)
	for _, d := range r.Differences {
		write(d.MSISDN, "difference", d.Field, num(d.Wuyou, 10), num(d.Carrier, 10), "")
	}
	for _, m := range r.MissingInWuyou {
		for i, v := range m.fields() {
			write(m.MSISDN, "missing_in_wuyou", comparedFields[i], "", num(v, 10), "")
		}
	}
	for _, m := range r.MissingInCarrier {
		for i, v := range m.fields() {
			write(m.MSISDN, "missing_in_carrier", comparedFields[i], num(v, 10), "", "")
		}
	}
	for _, e := range r.InvalidRows {
		write(e.MSISDN, "invalid_row", "", "", "", fmt.Sprintf("row %d: %s", e.Row, e.Message))
	}
	wt, ct := r.Totals.Wuyou, r.Totals.Carrier
	for _, t := range []struct {
		field string
		w, c  int64
	}{
		{"msisdns", wt.MSISDNs, ct.MSISDNs}, {"calls", wt.Calls, ct.Calls},
		{"billable_seconds", wt.BillableSeconds, ct.BillableSeconds}, {"covered_seconds", wt.CoveredSeconds, ct.CoveredSeconds},
	} {
		write("", "total", t.field, num(t.w, 10), num(t.c, 10), "")
	}
	cw.Flush()
	return cw.Error()
}
