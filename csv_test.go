package wuyou

import (
	"bytes"
	"encoding/csv"
	"testing"
)

func TestCSVCellNeutralisesWhatASpreadsheetWouldRunAsAFormula(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"an equals sign starts a formula: quoted", "=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"},
		{"an at sign starts a formula: quoted", "@SUM(A1)", "'@SUM(A1)"},
		{"a plus followed by more than a number: quoted", "+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"a minus followed by more than a number: quoted", "-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"a lone plus: quoted", "+", "'+"},
		{"a lone minus: quoted", "-", "'-"},
		{"a leading tab: quoted", "\t=1", "'\t=1"},
		{"a leading carriage return: quoted", "\r=1", "'\r=1"},
		{"an MSISDN stays as it is (digits only cannot be a formula)", "+8613800000001", "+8613800000001"},
		{"a negative amount stays as it is", "-150", "-150"},
		{"a negative decimal stays as it is", "-1.5", "-1.5"},
		{"a number with two points is not a number: quoted", "-1.5.2", "'-1.5.2"},
		{"a number ending in a point is not a plain number: quoted", "-1.", "'-1."},
		{"text is left alone", "Li Wei", "Li Wei"},
		{"an equals sign inside is left alone", "a=b", "a=b"},
		{"the empty cell is left alone", "", ""},
		{"NUL is dropped", "a\x00b", "ab"},
		{"NUL is dropped before the check", "\x00=1", "'=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CSVCell(tc.in); got != tc.want {
				t.Fatalf("CSVCell(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// Every record written through CSVWriter reads back cell for cell as
// CSVCell made it: line breaks inside a cell are quoted, not row breaks.
func TestCSVWriterQuotesLineBreaksAndNeutralisesEveryCell(t *testing.T) {
	var buf bytes.Buffer
	w := NewCSVWriter(&buf)
	records := [][]string{{"msisdn", "detail"}, {"+8613800000001", "=1+1"}, {"-150", "line one\nline two\r\n"}, {"a\x00", "@x"}}
	if err := w.WriteAll(records); err != nil {
		t.Fatal(err)
	}
	if bytes.IndexByte(buf.Bytes(), 0) >= 0 {
		t.Fatalf("the output holds a NUL: %q", buf.String())
	}
	got, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"msisdn", "detail"}, {"+8613800000001", "'=1+1"}, {"-150", "line one\nline two\n"}, {"a", "'@x"}}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Errorf("record %d cell %d = %q, want %q", i, j, got[i][j], want[i][j])
			}
		}
	}
}

// A cell CSVCell quoted reads back as it was; a leading ' that CSVCell
// would not have written is the cell's own text.
func TestCSVCellValueUndoesCSVCellOnly(t *testing.T) {
	for _, in := range []string{"=1+1", "+63 917 000 0002", "@x", "-", "\t1", "+8613800000001", "-150", "Li Wei", "'t Hart", "''=1", ""} {
		if got := CSVCellValue(CSVCell(in)); got != in {
			t.Errorf("CSVCellValue(CSVCell(%q)) = %q", in, got)
		}
	}
	for _, in := range []string{"'t Hart", "'8613800000001", "'-150", "'"} {
		if got := CSVCellValue(in); got != in {
			t.Errorf("CSVCellValue(%q) = %q, want it kept", in, got)
		}
	}
}
