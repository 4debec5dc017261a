package crew

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/wuyou/wuyou"
)

// Limits of one bulk request. The row readers enforce both while they read,
// so a body over a limit is refused without being read to its end.
const (
	// MaxBulkRows is the most data rows one body may hold (a CSV header is
	// not a row). Reading row MaxBulkRows+1 returns an ETOOLARGE
	// *wuyou.Error "more than 10000 rows …" instead of the row; the rows
	// before it have been returned already and the caller decides what to
	// do with them (apply them and report the error, or refuse the body).
	MaxBulkRows = 10000
	// MaxBulkBytes is the most bytes one body may hold: about 1 KiB for each
	// of MaxBulkRows rows at the longest field values, with room to spare.
	// Reading past it returns an ETOOLARGE *wuyou.Error. An HTTP server in
	// front must accept bodies this large on the bulk route.
	MaxBulkBytes = 16 << 20
)

// rowField is the field name of an error about the whole row rather than one
// of its fields: it could not be read as a record, or has the wrong shape.
const rowField = "row"

// Row is one data row of a bulk enrolment, already normalized and validated.
type Row struct {
	// N is the 1-based number of the data row: for CSV the header is not
	// counted (blank lines are skipped and not counted either); for JSON it is
	// the array index + 1.
	N int
	// Enrolment is the row's values after Normalize. It is the zero value when
	// the row could not be read as a record (see Errors).
	Enrolment Enrolment
	// Errors lists every error of the row; empty means the row is valid. A
	// row-level error (not valid CSV, wrong number of fields, not a JSON
	// object) has Field "row" and is then the only error.
	Errors []wuyou.FieldError
}

// RowReader reads the rows of one bulk enrolment body, one at a time, so a
// body is never held in memory as a whole or as a list of rows.
type RowReader interface {
	// Next returns the next row, or io.EOF after the last. Any other error is
	// fatal for the whole body and is returned again by every later call:
	// EINVALID for a body whose structure is broken (no or bad CSV header,
	// JSON that is not an array or is malformed), ETOOLARGE for a body over
	// MaxBulkRows or MaxBulkBytes, or the reader's own I/O error.
	Next() (Row, error)
}

// limits of a row reader; tests shrink them.
type limits struct {
	rows  int
	bytes int64
}

var bulkLimits = limits{rows: MaxBulkRows, bytes: MaxBulkBytes}

func tooManyRows(l limits) error {
	return wuyou.Errorf(wuyou.ETOOLARGE, "more than %d rows in one request; split the file", l.rows)
}

// enrolmentFields are the contract's field names of an enrolment, in
// contract order, as CSV column names and JSON keys.
var enrolmentFields = []struct {
	name     string
	required bool
	value    func(*Enrolment) *string
}{
	{"seafarer_book_no", true, func(e *Enrolment) *string { return &e.BookNo }},
	{"name", true, func(e *Enrolment) *string { return &e.Name }},
	{"nationality", false, func(e *Enrolment) *string { return &e.Nationality }},
	{"msisdn", true, func(e *Enrolment) *string { return &e.MSISDN }},
	{"vessel_imo", false, func(e *Enrolment) *string { return &e.VesselIMO }},
	{"vessel_name", false, func(e *Enrolment) *string { return &e.VesselName }},
	{"sign_on", false, func(e *Enrolment) *string { return &e.SignOn }},
	{"sign_off", false, func(e *Enrolment) *string { return &e.SignOff }},
	{"union_member_no", false, func(e *Enrolment) *string { return &e.UnionMemberNo }},
	{"lang", false, func(e *Enrolment) *string { return &e.Lang }},
}

// enrolmentField returns the index in enrolmentFields of a column name or
// JSON key, matched case-insensitively after trimming, or -1.
func enrolmentField(name string) int {
	name = strings.TrimSpace(name)
	for i, f := range enrolmentFields {
		if strings.EqualFold(name, f.name) {
			return i
		}
	}
	return -1
}

// validated normalizes e and returns it with its field errors.
func validated(n int, e Enrolment) Row {
	e.Normalize()
	return Row{N: n, Enrolment: e, Errors: e.fieldErrors()}
}

func rowError(n int, format string, args ...any) Row {
	return Row{N: n, Errors: []wuyou.FieldError{{Field: rowField, Message: fmt.Sprintf(format, args...)}}}
}

// body wraps a request body: it refuses to read past its byte limit and
// drops a leading UTF-8 byte order mark (Excel writes one).
func body(r io.Reader, l limits) *bufio.Reader {
	br := bufio.NewReaderSize(&limitedBody{r: r, left: l.bytes, limit: l.bytes}, 64<<10)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	return br
}

// limitedBody is io.LimitReader that tells "the body ended" from "the body
// is too large": the read that would pass the limit fails with ETOOLARGE.
type limitedBody struct {
	r     io.Reader
	left  int64
	limit int64
	err   error
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // one byte more than allowed, to see whether there is more
	}
	n, err := l.r.Read(p)
	if int64(n) <= l.left {
		l.left -= int64(n)
		l.err = err
		return n, err
	}
	n = int(l.left)
	l.left = 0
	l.err = wuyou.Errorf(wuyou.ETOOLARGE, "body larger than %s", byteSize(l.limit))
	return n, l.err
}

func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readError turns a failure of the underlying reader into the fatal error of
// a row reader: domain errors (ETOOLARGE) as they are, others wrapped.
func readError(what string, err error) error {
	var e *wuyou.Error
	if errors.As(err, &e) {
		return e
	}
	return fmt.Errorf("crew: reading %s body: %w", what, err)
}

// NewCSVRowReader reads a CSV bulk enrolment: UTF-8 with or without a byte
// order mark, comma-separated, LF or CRLF line ends, fields quoted as RFC
// 4180 (commas, quotes and line breaks inside quotes).
//
// The first record is a header naming the columns by their contract field
// names (case-insensitive, surrounding spaces ignored); the columns may come
// in any order and columns with other names are ignored. A body without a
// header, a header lacking seafarer_book_no, name or msisdn, or a header
// naming a column twice is refused with an EINVALID error naming the
// columns, before any row is read.
//
// A row whose number of fields differs from the header's, or that is not
// valid CSV within its line (a stray quote), fails alone with a row-level
// error, and reading goes on with the next line. A CSV error inside a record
// that spans several lines (an unbalanced quote swallows the lines after it)
// is fatal, with its line numbers: where the later rows start can no longer
// be told.
func NewCSVRowReader(r io.Reader) (RowReader, error) {
	return newCSVRowReader(r, bulkLimits)
}

func newCSVRowReader(r io.Reader, l limits) (RowReader, error) {
	br := body(r, l)
	if lead, err := br.Peek(2); err == nil && (string(lead) == "\xff\xfe" || string(lead) == "\xfe\xff") {
		return nil, wuyou.Errorf(wuyou.EINVALID, "CSV body is UTF-16; save it as CSV UTF-8")
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1    // field counts are checked per row, so one bad row fails alone
	cr.ReuseRecord = true      // each record's strings are fresh; only the slice is reused
	cr.TrimLeadingSpace = true // `E1, "Cruz, Juan"` is common by hand; values are trimmed anyway

	header, err := cr.Read()
	var pe *csv.ParseError
	switch {
	case err == io.EOF:
		return nil, wuyou.Errorf(wuyou.EINVALID, "empty body: the first line must be a header naming the columns (%s)", columnList())
	case errors.As(err, &pe):
		return nil, wuyou.Errorf(wuyou.EINVALID, "CSV header is not valid CSV: %v at line %d, column %d", pe.Err, pe.Line, pe.Column)
	case err != nil:
		return nil, readError("CSV", err)
	}

	c := &csvRows{csv: cr, width: len(header), limits: l, columns: make([]int, len(enrolmentFields))}
	for i := range c.columns {
		c.columns[i] = -1
	}
	known := 0
	for col, name := range header {
		f := enrolmentField(name)
		if f < 0 {
			continue
		}
		if c.columns[f] >= 0 {
			return nil, wuyou.Errorf(wuyou.EINVALID, "CSV header names column %s twice (columns %d and %d)",
				enrolmentFields[f].name, c.columns[f]+1, col+1)
		}
		c.columns[f] = col
		known++
	}
	if known == 0 {
		return nil, wuyou.Errorf(wuyou.EINVALID, "the first line must be a header naming the columns (%s); none of them was found", columnList())
	}
	var missing []wuyou.FieldError
	var names []string
	for f, col := range c.columns {
		if col < 0 && enrolmentFields[f].required {
			names = append(names, enrolmentFields[f].name)
			missing = append(missing, wuyou.FieldError{Field: enrolmentFields[f].name, Message: "required column is missing from the CSV header"})
		}
	}
	if len(missing) > 0 {
		return nil, &wuyou.Error{
			Code:    wuyou.EINVALID,
			Message: "CSV header lacks required columns: " + strings.Join(names, ", "),
			Fields:  missing,
		}
	}
	return c, nil
}

func columnList() string {
	names := make([]string, len(enrolmentFields))
	for i, f := range enrolmentFields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

type csvRows struct {
	csv     *csv.Reader
	width   int   // fields in the header
	columns []int // for each of enrolmentFields, its column, or -1
	limits  limits
	n       int   // rows returned
	err     error // sticky: io.EOF or the fatal error
}

func (c *csvRows) Next() (Row, error) {
	if c.err != nil {
		return Row{}, c.err
	}
	record, err := c.csv.Read()
	var pe *csv.ParseError
	switch {
	case err == io.EOF:
		c.err = io.EOF
		return Row{}, c.err
	case err != nil && !errors.As(err, &pe):
		c.err = readError("CSV", err)
		return Row{}, c.err
	case c.n == c.limits.rows:
		c.err = tooManyRows(c.limits)
		return Row{}, c.err
	case pe != nil && pe.StartLine != pe.Line:
		c.err = wuyou.Errorf(wuyou.EINVALID,
			"not valid CSV: %v at line %d, column %d, in a record that starts at line %d; look for an unbalanced quote there",
			pe.Err, pe.Line, pe.Column, pe.StartLine)
		return Row{}, c.err
	}
	c.n++
	switch {
	case pe != nil:
		return rowError(c.n, "line %d is not valid CSV: %v at column %d", pe.Line, pe.Err, pe.Column), nil
	case len(record) != c.width:
		return rowError(c.n, "has %d fields but the header has %d", len(record), c.width), nil
	}
	var e Enrolment
	for f, col := range c.columns {
		if col >= 0 {
			// A failed-rows file sent back carries the quotes CSVCell
			// put on cells a spreadsheet would run as formulas.
			*enrolmentFields[f].value(&e) = wuyou.CSVCellValue(record[col])
		}
	}
	return validated(c.n, e), nil
}

// NewJSONRowReader reads a JSON bulk enrolment: an array of enrolment
// objects with the contract's keys (matched case-insensitively, as
// encoding/json does; unknown keys are ignored, null is an empty value).
// The array is decoded one element at a time.
//
// An element that is not an object, or has a field that is not a string,
// fails alone and reading goes on. A body that is not an array, JSON that is
// malformed (after which no decoder can find the next element), or data after
// the closing bracket is fatal EINVALID.
func NewJSONRowReader(r io.Reader) (RowReader, error) {
	return newJSONRowReader(r, bulkLimits)
}

func newJSONRowReader(r io.Reader, l limits) (RowReader, error) {
	dec := json.NewDecoder(body(r, l))
	// Numbers stay text: a number out of float64's range (1e999) is then a
	// wrong kind of body or row, not a decoder failure.
	dec.UseNumber()
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return nil, wuyou.Errorf(wuyou.EINVALID, "empty body: expected a JSON array of enrolments")
	case err != nil:
		return nil, jsonError(dec, err)
	case tok != json.Delim('['):
		return nil, wuyou.Errorf(wuyou.EINVALID, "body must be a JSON array of enrolments, not %s", jsonKind(tok))
	}
	return &jsonRows{dec: dec, limits: l}, nil
}

type jsonRows struct {
	dec    *json.Decoder
	limits limits
	n      int   // rows returned
	err    error // sticky: io.EOF or the fatal error
}

func (j *jsonRows) Next() (Row, error) {
	if j.err != nil {
		return Row{}, j.err
	}
	if !j.dec.More() {
		j.err = j.end()
		return Row{}, j.err
	}
	if j.n == j.limits.rows {
		j.err = tooManyRows(j.limits)
		return Row{}, j.err
	}
	// Decoding into RawMessage reads exactly one element, whatever its type;
	// only a syntax error stops the array.
	var raw json.RawMessage
	if err := j.dec.Decode(&raw); err != nil {
		j.err = jsonError(j.dec, err)
		return Row{}, j.err
	}
	j.n++
	return decodeRow(j.n, raw), nil
}

// end consumes the closing bracket and makes sure nothing follows it.
func (j *jsonRows) end() error {
	if _, err := j.dec.Token(); err != nil {
		return jsonError(j.dec, err)
	}
	switch tok, err := j.dec.Token(); {
	case err == io.EOF:
		return io.EOF
	case err == nil:
		return wuyou.Errorf(wuyou.EINVALID, "unexpected %s after the JSON array at byte %d", jsonKind(tok), j.dec.InputOffset())
	default:
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return wuyou.Errorf(wuyou.EINVALID, "unexpected data after the JSON array at byte %d", syn.Offset)
		}
		return jsonError(j.dec, err)
	}
}

// jsonError turns a decoder error into the fatal error of the body.
func jsonError(dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return wuyou.Errorf(wuyou.EINVALID, "malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF), err == io.EOF:
		return wuyou.Errorf(wuyou.EINVALID, "malformed JSON: the body ends inside the array (at byte %d)", dec.InputOffset())
	}
	return readError("JSON", err)
}

// jsonKind names a JSON token's kind for a message.
func jsonKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{', '}':
			return "an object"
		default:
			return "an array"
		}
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// decodeRow reads one array element, which is syntactically valid JSON.
func decodeRow(n int, raw json.RawMessage) Row {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return rowError(n, "is not valid JSON")
	}
	if tok != json.Delim('{') {
		return rowError(n, "must be a JSON object with the enrolment fields, not %s", jsonKind(tok))
	}
	var e Enrolment
	typeErrs := make(map[int]string)
	for dec.More() {
		key, err := dec.Token()
		var value json.RawMessage
		if err == nil {
			err = dec.Decode(&value)
		}
		name, ok := key.(string)
		if err != nil || !ok {
			return rowError(n, "is not a valid JSON object")
		}
		f := enrolmentField(name)
		if f < 0 {
			continue // unknown keys are ignored, as encoding/json does
		}
		// A later duplicate key wins, as with encoding/json.
		delete(typeErrs, f)
		*enrolmentFields[f].value(&e) = ""
		value = bytes.TrimLeft(value, " \t\r\n")
		switch {
		case len(value) > 0 && value[0] == '"':
			if json.Unmarshal(value, enrolmentFields[f].value(&e)) != nil {
				typeErrs[f] = "is not a valid JSON string"
			}
		case string(value) == "null":
		default:
			var t json.Token
			if len(value) > 0 {
				t, _ = json.NewDecoder(bytes.NewReader(value)).Token()
			}
			typeErrs[f] = "must be a string, not " + jsonKind(t)
		}
	}
	row := validated(n, e)
	if len(typeErrs) == 0 {
		return row
	}
	// A wrong type replaces what validation says about the (then empty) field.
	var errs []wuyou.FieldError
	for f, spec := range enrolmentFields {
		if msg, bad := typeErrs[f]; bad {
			errs = append(errs, wuyou.FieldError{Field: spec.name, Message: msg})
		}
	}
	for _, fe := range row.Errors {
		if _, bad := typeErrs[enrolmentField(fe.Field)]; !bad {
			errs = append(errs, fe)
		}
	}
	row.Errors = errs
	return row
}

// Dedupe wraps a RowReader so that a row repeating the seafarer_book_no or
// the msisdn of an earlier row of the same body gets an error on that field,
// "duplicate of row N", N being the first row with that value. Both values
// are compared after Normalize, and only values that are valid themselves
// count (an invalid one has its own error already). Earlier rows are not
// changed: the first occurrence stands. Dedupe keeps the two keys of each
// row and its number, nothing else.
func Dedupe(rr RowReader) RowReader {
	return &dedupe{rows: rr, books: make(map[string]int), msisdns: make(map[string]int)}
}

type dedupe struct {
	rows    RowReader
	books   map[string]int // seafarer_book_no → first row
	msisdns map[string]int // msisdn → first row
}

func (d *dedupe) Next() (Row, error) {
	row, err := d.rows.Next()
	if err != nil {
		return row, err
	}
	check := func(field, key string, valid bool, seen map[string]int) {
		if !valid {
			return
		}
		if first, ok := seen[key]; ok {
			row.Errors = append(row.Errors, wuyou.FieldError{Field: field, Message: fmt.Sprintf("duplicate of row %d", first)})
			return
		}
		seen[key] = row.N
	}
	check("seafarer_book_no", row.Enrolment.BookNo, checkBookNo(row.Enrolment.BookNo) == "", d.books)
	check("msisdn", row.Enrolment.MSISDN, ValidMSISDN(row.Enrolment.MSISDN), d.msisdns)
	return row, nil
}
