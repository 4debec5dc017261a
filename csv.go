package wuyou

import (
	"encoding/csv"
	"io"
	"strings"
)

// CSVWriter writes every CSV that Wuyou hands out (statements,
// reconciliation reports, bulk enrolment's failed-rows files): an
// encoding/csv writer, which quotes any cell holding a comma, a quote or a
// line break, whose every cell first goes through CSVCell. Write and
// WriteAll are the only ways to add records, so no cell bypasses it.
type CSVWriter struct {
	*csv.Writer
}

// NewCSVWriter returns a CSVWriter writing to w.
func NewCSVWriter(w io.Writer) *CSVWriter {
	return &CSVWriter{Writer: csv.NewWriter(w)}
}

// Write writes one record, each cell made safe by CSVCell.
func (w *CSVWriter) Write(record []string) error {
	safe := make([]string, len(record))
	for i, cell := range record {
		safe[i] = CSVCell(cell)
	}
	return w.Writer.Write(safe)
}

// WriteAll writes records, each as Write does, and flushes.
func (w *CSVWriter) WriteAll(records [][]string) error {
	for _, r := range records {
		if err := w.Write(r); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// CSVCell makes one cell safe to open in a spreadsheet (CSV or formula
// injection, OWASP): a cell that begins with =, +, -, @, a tab or a
// carriage return would be read as a formula, so it gets a single quote in
// front, which makes the spreadsheet take it as text. NUL bytes are dropped:
// no export ever carries one.
//
// One deliberate exception to OWASP's rule: a cell that is a plain number
// after its sign (digits with at most one decimal point) is left as it is,
// so an MSISDN (+8613800000001) and a negative figure (-150) stay what a
// program reading the file expects. Such a cell cannot hold a formula: a
// spreadsheet reads it as a number, and a formula needs something beyond
// digits (an operator, a name, a parenthesis), which makes the cell quoted.
func CSVCell(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '@', '\t', '\r':
		return "'" + s
	case '+', '-':
		if plainNumber(s[1:]) {
			return s
		}
		return "'" + s
	}
	return s
}

// plainNumber reports whether s is digits with at most one decimal point
// between digits.
func plainNumber(s string) bool {
	digits, point := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == '.' && !point && digits > 0 && i+1 < len(s):
			point = true
		default:
			return false
		}
	}
	return digits > 0
}

// CSVCellValue undoes CSVCell's quote: a cell of a file Wuyou wrote and a
// person sent back (a failed-rows file, fixed) reads as what it held, so
// "'+63 917 000 0002" corrected to "'+639170000002" enrols +639170000002.
// A leading ' followed by anything CSVCell would not have quoted is the
// person's own text and is kept.
func CSVCellValue(s string) string {
	if len(s) < 2 || s[0] != '\'' || CSVCell(s[1:]) == s[1:] {
		return s
	}
	return s[1:]
}
