package crew

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
)

const csvHeader = "seafarer_book_no,name,nationality,msisdn,vessel_imo,vessel_name,sign_on,sign_off,union_member_no\n"

// MustReadAll reads rows until the end or a fatal error; it returns the
// fatal error, or nil at io.EOF. It fails the test if the reader does not
// stop within limit calls.
func MustReadAll(tb testing.TB, rr RowReader, limit int) ([]Row, error) {
	tb.Helper()
	var rows []Row
	for range limit {
		row, err := rr.Next()
		if err == io.EOF {
			return rows, nil
		} else if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	tb.Fatalf("reader did not stop after %d calls", limit)
	return nil, nil
}

// MustReadCSV reads a whole CSV body through Dedupe and requires it to have
// no fatal error.
func MustReadCSV(tb testing.TB, body string) []Row {
	tb.Helper()
	rr, err := NewCSVRowReader(strings.NewReader(body))
	require.NoError(tb, err)
	rows, err := MustReadAll(tb, Dedupe(rr), MaxBulkRows+2)
	require.NoError(tb, err)
	return rows
}

// MustReadJSON is MustReadCSV for a JSON body.
func MustReadJSON(tb testing.TB, body string) []Row {
	tb.Helper()
	rr, err := NewJSONRowReader(strings.NewReader(body))
	require.NoError(tb, err)
	rows, err := MustReadAll(tb, Dedupe(rr), MaxBulkRows+2)
	require.NoError(tb, err)
	return rows
}

// requireCode requires err to be a *wuyou.Error with the code and a message
// containing each of parts.
func requireCode(tb testing.TB, err error, code string, parts ...string) {
	tb.Helper()
	var e *wuyou.Error
	require.True(tb, errors.As(err, &e), "want a *wuyou.Error %s, got %v", code, err)
	require.Equal(tb, code, e.Code, e.Message)
	for _, p := range parts {
		require.Contains(tb, e.Message, p)
	}
}

// requireValid requires every row to be valid and numbered from 1.
func requireValid(tb testing.TB, rows []Row) {
	tb.Helper()
	for i, row := range rows {
		require.Equal(tb, i+1, row.N)
		require.Empty(tb, row.Errors, "row %d", row.N)
	}
}

// --- CSV ---

func TestCSVRowsAreNumberedFromOneWithoutTheHeader(t *testing.T) {
	rows := MustReadCSV(t, csvHeader+
		"E1,张伟,CN,+8613800000001,9074729,中远之星,2026-03-01,2026-11-30,U-1\n"+
		"E2,李娜,,+8613800000002,,,,,\n")
	requireValid(t, rows)
	require.Len(t, rows, 2)
	require.Equal(t, Enrolment{
		BookNo: "E1", Name: "张伟", Nationality: "CN", MSISDN: "+8613800000001", VesselIMO: "9074729",
		VesselName: "中远之星", SignOn: "2026-03-01", SignOff: "2026-11-30", UnionMemberNo: "U-1",
	}, rows[0].Enrolment)
	require.Equal(t, "李娜", rows[1].Enrolment.Name)
}

func TestCSVWithByteOrderMarkIsRead(t *testing.T) {
	// Excel's "CSV UTF-8" starts the file with a BOM; it must not become
	// part of the first column's name.
	rows := MustReadCSV(t, "\uFEFF"+"seafarer_book_no,name,msisdn\nE1,张伟,+8613800000001\n")
	requireValid(t, rows)
	require.Equal(t, "E1", rows[0].Enrolment.BookNo)
}

func TestCSVWithCRLFLineEndsIsRead(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn,union_member_no\r\nE1,张伟,+8613800000001,U-1\r\nE2,李娜,+8613800000002,U-2\r\n")
	requireValid(t, rows)
	require.Len(t, rows, 2)
	require.Equal(t, "U-1", rows[0].Enrolment.UnionMemberNo, "no \\r left at the end of a line")
}

func TestCSVQuotedCommaStaysInItsField(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn,vessel_name\n"+
		`E1,"Cruz, Juan dela",+639171234567,"COSCO SHIPPING ""ARIES"", HK"`+"\n")
	requireValid(t, rows)
	require.Equal(t, "Cruz, Juan dela", rows[0].Enrolment.Name)
	require.Equal(t, `COSCO SHIPPING "ARIES", HK`, rows[0].Enrolment.VesselName)
}

func TestCSVSpacesAfterCommasAreAllowedBeforeAQuotedField(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no, name, msisdn\nE1, \"Cruz, Juan\", +639171234567\n")
	requireValid(t, rows)
	require.Equal(t, Enrolment{BookNo: "E1", Name: "Cruz, Juan", MSISDN: "+639171234567"}, rows[0].Enrolment)
}

func TestCSVQuotedNewlineKeepsTheRowTogether(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn,remarks\n"+
		"E1,张伟,+8613800000001,\"first line\r\nsecond line\"\n"+
		"E2,\"李\n娜\",+8613800000002,\n"+
		"E3,王芳,+8613800000003,\n")
	require.Len(t, rows, 3)
	require.Empty(t, rows[0].Errors, "a line break inside an ignored column is harmless")
	require.Equal(t, []string{"name"}, badFields(rows[1].Errors), "a line break in a name is a control character")
	require.Empty(t, rows[2].Errors)
	require.Equal(t, 3, rows[2].N)
}

func TestCSVEmptyBodyIsRefusedForLackOfAHeader(t *testing.T) {
	for _, body := range []string{"", "\uFEFF", "\n\r\n\n"} {
		_, err := NewCSVRowReader(strings.NewReader(body))
		requireCode(t, err, wuyou.EINVALID, "header", "seafarer_book_no")
	}
}

func TestCSVWithoutAHeaderRowIsRefused(t *testing.T) {
	_, err := NewCSVRowReader(strings.NewReader("E1,张伟,CN,+8613800000001\nE2,李娜,CN,+8613800000002\n"))
	requireCode(t, err, wuyou.EINVALID, "header")
}

func TestCSVHeaderMissingARequiredColumnIsRefusedNamingIt(t *testing.T) {
	_, err := NewCSVRowReader(strings.NewReader("seafarer_book_no,name,nationality\nE1,张伟,CN\n"))
	requireCode(t, err, wuyou.EINVALID, "msisdn")
	require.Equal(t, []wuyou.FieldError{{Field: "msisdn", Message: "required column is missing from the CSV header"}}, fieldErrors(t, err))

	_, err = NewCSVRowReader(strings.NewReader("msisdn,vessel_imo\n+8613800000001,9074729\n"))
	require.Equal(t, []string{"seafarer_book_no", "name"}, badFields(fieldErrors(t, err)))
}

func TestCSVHeaderNamingAColumnTwiceIsRefused(t *testing.T) {
	_, err := NewCSVRowReader(strings.NewReader("seafarer_book_no,name,msisdn,MSISDN\n"))
	requireCode(t, err, wuyou.EINVALID, "msisdn", "twice")
}

func TestCSVHeaderIsCaseInsensitiveAndColumnsMayComeInAnyOrder(t *testing.T) {
	rows := MustReadCSV(t, " MSISDN ,Name,Seafarer_Book_No\n+8613800000001,张伟,E1\n")
	requireValid(t, rows)
	require.Equal(t, Enrolment{BookNo: "E1", Name: "张伟", MSISDN: "+8613800000001"}, rows[0].Enrolment)
}

func TestCSVExtraColumnsAreIgnored(t *testing.T) {
	rows := MustReadCSV(t, "id,seafarer_book_no,name,rank,msisdn,status,\n"+
		"42,E1,张伟,Chief Officer,+8613800000001,signed_off,x\n")
	requireValid(t, rows)
	require.Equal(t, Enrolment{BookNo: "E1", Name: "张伟", MSISDN: "+8613800000001"}, rows[0].Enrolment)
}

func TestCSVChineseNamesAreAccepted(t *testing.T) {
	names := []string{"张伟", "李娜", "王秀英", "欧阳娜娜", "司马相如", "阿卜杜·热合曼"}
	var b strings.Builder
	b.WriteString("seafarer_book_no,name,msisdn,vessel_name\n")
	for i, name := range names {
		fmt.Fprintf(&b, "E%d,%s,+86138000000%02d,远洋%d号\n", i, name, i, i)
	}
	rows := MustReadCSV(t, b.String())
	requireValid(t, rows)
	for i, row := range rows {
		require.Equal(t, names[i], row.Enrolment.Name)
	}
}

func TestCSVRowWithTooManyOrTooFewFieldsFailsAlone(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn\n"+
		"E1,张伟,+8613800000001\n"+
		"E2,Cruz, Juan,+639171234567\n"+ // unquoted comma in the name
		"E3,李娜\n"+
		"E4,王芳,+8613800000004\n")
	require.Len(t, rows, 4)
	require.Empty(t, rows[0].Errors)
	require.Equal(t, []wuyou.FieldError{{Field: "row", Message: "has 4 fields but the header has 3"}}, rows[1].Errors)
	require.Equal(t, []wuyou.FieldError{{Field: "row", Message: "has 2 fields but the header has 3"}}, rows[2].Errors)
	require.Equal(t, Enrolment{}, rows[2].Enrolment)
	require.Empty(t, rows[3].Errors)
	require.Equal(t, 4, rows[3].N)
}

func TestCSVRowWithAStrayQuoteFailsAlone(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn\n"+
		"E1,张\"伟,+8613800000001\n"+ // bare quote in an unquoted field
		"E2,\"李娜\"x,+8613800000002\n"+ // text after a closing quote
		"E3,王芳,+8613800000003\n")
	require.Len(t, rows, 3)
	require.Equal(t, "row", rows[0].Errors[0].Field)
	require.Contains(t, rows[0].Errors[0].Message, "line 2")
	require.Equal(t, "row", rows[1].Errors[0].Field)
	require.Contains(t, rows[1].Errors[0].Message, "line 3")
	require.Empty(t, rows[2].Errors)
}

func TestCSVUnbalancedQuoteAcrossLinesIsFatalWithItsLineNumbers(t *testing.T) {
	// The opening quote on line 3 swallows line 4 up to the next quote; where
	// the following rows begin can no longer be known.
	rr, err := NewCSVRowReader(strings.NewReader("seafarer_book_no,name,msisdn,vessel_name\n" +
		"E1,张伟,+8613800000001,\n" +
		"E2,\"李娜,+8613800000002,\n" +
		"E3,王芳,+8613800000003,\"远洋1号\"\n" +
		"E4,刘洋,+8613800000004,\n"))
	require.NoError(t, err)
	rows, err := MustReadAll(t, rr, 10)
	require.Len(t, rows, 1)
	requireCode(t, err, wuyou.EINVALID, "line 4", "starts at line 3")

	_, again := rr.Next()
	require.Equal(t, err, again, "a fatal error is returned again")
}

func TestCSVQuoteNeverClosedIsFatal(t *testing.T) {
	rr, err := NewCSVRowReader(strings.NewReader("seafarer_book_no,name,msisdn\nE1,\"张伟,+8613800000001\nE2,李娜,+8613800000002\n"))
	require.NoError(t, err)
	rows, err := MustReadAll(t, rr, 10)
	require.Empty(t, rows)
	requireCode(t, err, wuyou.EINVALID, "starts at line 2")
}

func TestCSVInUTF16IsRefused(t *testing.T) {
	_, err := NewCSVRowReader(strings.NewReader("\xff\xfes\x00e\x00"))
	requireCode(t, err, wuyou.EINVALID, "UTF-16")
}

func TestCSVSavedAsGBKFailsOnTheNameWithAHint(t *testing.T) {
	// 张伟 in GBK, as Excel on a Chinese Windows saves "CSV (逗号分隔)".
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn\nE1,\xd5\xc5\xce\xb0,+8613800000001\n")
	require.Equal(t, []string{"name"}, badFields(rows[0].Errors))
	require.Contains(t, rows[0].Errors[0].Message, "UTF-8")
}

func TestCSVRowReportsEveryBadFieldOfTheRow(t *testing.T) {
	rows := MustReadCSV(t, csvHeader+"E 1,,ZZ,12345,9074728,,2026-02-30,,\n")
	require.Equal(t, []string{"seafarer_book_no", "name", "nationality", "msisdn", "vessel_imo", "sign_on"}, badFields(rows[0].Errors))
}

func TestCSVValuesAreNormalized(t *testing.T) {
	rows := MustReadCSV(t, csvHeader+" E1 , 张伟 ,cn, +8613800000001 ,IMO 9074729,,,,\n")
	requireValid(t, rows)
	require.Equal(t, Enrolment{BookNo: "E1", Name: "张伟", Nationality: "CN", MSISDN: "+8613800000001", VesselIMO: "9074729"}, rows[0].Enrolment)
}

// --- duplicates ---

func TestDuplicatesWithinOneFileNameTheFirstRow(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn\n"+
		"E1,张伟,+8613800000001\n"+
		"E2,李娜,+8613800000002\n"+
		"E1,张伟,+8613800000003\n"+ // same book number as row 1
		"E4,王芳,+8613800000002\n"+ // same MSISDN as row 2
		"E1,张伟,+8613800000001\n"+ // both as row 1
		" E2 ,李娜, +8613800000009\n") // same book number once trimmed
	require.Empty(t, rows[0].Errors)
	require.Empty(t, rows[1].Errors)
	require.Equal(t, []wuyou.FieldError{{Field: "seafarer_book_no", Message: "duplicate of row 1"}}, rows[2].Errors)
	require.Equal(t, []wuyou.FieldError{{Field: "msisdn", Message: "duplicate of row 2"}}, rows[3].Errors)
	require.Equal(t, []wuyou.FieldError{
		{Field: "seafarer_book_no", Message: "duplicate of row 1"},
		{Field: "msisdn", Message: "duplicate of row 1"},
	}, rows[4].Errors)
	require.Equal(t, []wuyou.FieldError{{Field: "seafarer_book_no", Message: "duplicate of row 2"}}, rows[5].Errors)
}

func TestDuplicateOfAnInvalidRowIsStillADuplicate(t *testing.T) {
	// Row 1 fails on its IMO number; the corrected copy in row 2 still
	// repeats its book number, and the file has to say which row counts.
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn,vessel_imo\n"+
		"E1,张伟,+8613800000001,9074728\n"+
		"E1,张伟,+8613800000001,9074729\n")
	require.Equal(t, []string{"vessel_imo"}, badFields(rows[0].Errors))
	require.Equal(t, []string{"seafarer_book_no", "msisdn"}, badFields(rows[1].Errors))
}

func TestMissingOrInvalidValuesAreNotDuplicatesOfEachOther(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn\n"+
		",张伟,\n"+
		",李娜,\n"+
		"E 3,王芳,12345\n"+
		"E 3,刘洋,12345\n")
	for _, row := range rows {
		for _, fe := range row.Errors {
			require.NotContains(t, fe.Message, "duplicate", "row %d", row.N)
		}
	}
}

// --- JSON ---

func TestJSONArrayOfEnrolmentsIsRead(t *testing.T) {
	rows := MustReadJSON(t, `[
		{"seafarer_book_no":"E1","name":"张伟","nationality":"cn","msisdn":"+8613800000001","vessel_imo":"IMO 9074729",
		 "vessel_name":"中远之星","sign_on":"2026-03-01","sign_off":null,"union_member_no":"U-1"},
		{"seafarer_book_no":"E2","name":"\u674e\u5a1c","msisdn":"+8613800000002"}
	]`)
	requireValid(t, rows)
	require.Equal(t, Enrolment{
		BookNo: "E1", Name: "张伟", Nationality: "CN", MSISDN: "+8613800000001", VesselIMO: "9074729",
		VesselName: "中远之星", SignOn: "2026-03-01", UnionMemberNo: "U-1",
	}, rows[0].Enrolment)
	require.Equal(t, "李娜", rows[1].Enrolment.Name)
}

func TestJSONEmptyArrayHasNoRows(t *testing.T) {
	require.Empty(t, MustReadJSON(t, " [ ] \n"))
}

func TestJSONElementThatIsNotAnObjectFailsAlone(t *testing.T) {
	rows := MustReadJSON(t, `[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"},
		"E2,李娜,+8613800000002", 42, null, [1,2], true,
		{"seafarer_book_no":"E7","name":"王芳","msisdn":"+8613800000007"}]`)
	require.Len(t, rows, 7)
	require.Empty(t, rows[0].Errors)
	for i, kind := range []string{"a string", "a number", "null", "an array", "a boolean"} {
		require.Equal(t, []wuyou.FieldError{{Field: "row", Message: "must be a JSON object with the enrolment fields, not " + kind}}, rows[i+1].Errors)
	}
	require.Empty(t, rows[6].Errors)
	require.Equal(t, 7, rows[6].N)
}

func TestJSONFieldOfTheWrongTypeFailsItsRowNamingTheField(t *testing.T) {
	rows := MustReadJSON(t, `[{"seafarer_book_no":"E1","name":"张伟","msisdn":8613800000001,"vessel_imo":9074729,
		"nationality":"ZZ","vessel_name":{"en":"STAR"}},
		{"seafarer_book_no":"E2","name":"李娜","msisdn":"+8613800000002"}]`)
	require.Equal(t, []wuyou.FieldError{
		{Field: "msisdn", Message: "must be a string, not a number"},
		{Field: "vessel_imo", Message: "must be a string, not a number"},
		{Field: "vessel_name", Message: "must be a string, not an object"},
		{Field: "nationality", Message: "must be an ISO 3166-1 alpha-2 country code such as CN or PH"},
	}, rows[0].Errors)
	require.Empty(t, rows[1].Errors)
}

func TestJSONUnknownKeysAreIgnoredAndKeysMatchCaseInsensitively(t *testing.T) {
	rows := MustReadJSON(t, `[{"id":"x","rank":3,"Seafarer_Book_No":"E1","NAME":"张伟","msisdn":"+8613800000001","extra":{"a":[1]}}]`)
	requireValid(t, rows)
	require.Equal(t, Enrolment{BookNo: "E1", Name: "张伟", MSISDN: "+8613800000001"}, rows[0].Enrolment)
}

func TestJSONLaterDuplicateKeyWins(t *testing.T) {
	rows := MustReadJSON(t, `[{"seafarer_book_no":"E1","name":"张伟","msisdn":1,"MSISDN":"+8613800000001"}]`)
	requireValid(t, rows)
	require.Equal(t, "+8613800000001", rows[0].Enrolment.MSISDN)
}

func TestJSONWithByteOrderMarkIsRead(t *testing.T) {
	requireValid(t, MustReadJSON(t, "\uFEFF"+`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"}]`))
}

func TestJSONThatIsNotAnArrayIsFatal(t *testing.T) {
	for body, want := range map[string]string{
		``:                 "empty body",
		`  `:               "empty body",
		`{"name":"张伟"}`:    "not an object",
		`"E1"`:             "not a string",
		`null`:             "not null",
		`1e999`:            "not a number",
		`]`:                "malformed JSON",
		`seafarer_book_no`: "malformed JSON",
	} {
		_, err := NewJSONRowReader(strings.NewReader(body))
		requireCode(t, err, wuyou.EINVALID, want)
	}
}

func TestJSONMalformedInsideTheArrayIsFatalAfterTheRowsBeforeIt(t *testing.T) {
	for body, want := range map[string]string{
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"}, {"name":}]`:  "malformed JSON at byte",
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"} {"name":""}]`: "malformed JSON at byte",
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"},`:             "ends inside the array",
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"}`:              "ends inside the array",
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"}}`:             "malformed JSON",
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"}] [`:           "after the JSON array",
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"}] x`:           "after the JSON array",
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"}] 1e999`:       "after the JSON array",
	} {
		rr, err := NewJSONRowReader(strings.NewReader(body))
		require.NoError(t, err, body)
		rows, err := MustReadAll(t, rr, 10)
		require.Len(t, rows, 1, body)
		requireValid(t, rows)
		requireCode(t, err, wuyou.EINVALID, want)

		_, again := rr.Next()
		require.Equal(t, err, again, "a fatal error is returned again")
	}
}

// --- limits ---

func TestMoreThanMaxBulkRowsIsTooLarge(t *testing.T) {
	t.Parallel()
	csvBody := func(n int) string {
		var b strings.Builder
		b.WriteString("seafarer_book_no,name,msisdn\n")
		for i := range n {
			fmt.Fprintf(&b, "B%d,张伟,+86139%08d\n", i, i)
		}
		return b.String()
	}
	jsonBody := func(n int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"seafarer_book_no":"B%d","name":"张伟","msisdn":"+86139%08d"}`, i, i)
		}
		b.WriteString("]")
		return b.String()
	}
	for name, open := range map[string]func(n int) (RowReader, error){
		"CSV":  func(n int) (RowReader, error) { return NewCSVRowReader(strings.NewReader(csvBody(n))) },
		"JSON": func(n int) (RowReader, error) { return NewJSONRowReader(strings.NewReader(jsonBody(n))) },
	} {
		t.Run(name, func(t *testing.T) {
			rr, err := open(MaxBulkRows)
			require.NoError(t, err)
			rows, err := MustReadAll(t, Dedupe(rr), MaxBulkRows+2)
			require.NoError(t, err, "exactly MaxBulkRows rows are fine")
			require.Len(t, rows, MaxBulkRows)
			requireValid(t, rows)

			rr, err = open(MaxBulkRows + 1)
			require.NoError(t, err)
			rows, err = MustReadAll(t, Dedupe(rr), MaxBulkRows+2)
			require.Len(t, rows, MaxBulkRows, "the rows before the limit are returned")
			requireCode(t, err, wuyou.ETOOLARGE, "more than 10000 rows")
		})
	}
}

// endless is a body that never ends: a prefix, then the filler byte forever.
type endless struct {
	prefix string
	filler byte
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.prefix)
	e.prefix = e.prefix[n:]
	for i := n; i < len(p); i++ {
		p[i] = e.filler
	}
	return len(p), nil
}

func TestBodyOverMaxBulkBytesIsTooLarge(t *testing.T) {
	t.Parallel()
	// One endless field: no row limit would ever stop it.
	rr, err := NewCSVRowReader(&endless{prefix: "seafarer_book_no,name,msisdn,remarks\nE1,张伟,+8613800000001,", filler: 'x'})
	require.NoError(t, err)
	_, err = MustReadAll(t, rr, 2)
	requireCode(t, err, wuyou.ETOOLARGE, "body larger than 16 MiB")

	rr, err = NewJSONRowReader(&endless{prefix: `[{"seafarer_book_no":"E1","name":"`, filler: 'x'})
	require.NoError(t, err)
	_, err = MustReadAll(t, rr, 2)
	requireCode(t, err, wuyou.ETOOLARGE, "body larger than 16 MiB")

	_, err = NewJSONRowReader(&endless{filler: ' '})
	requireCode(t, err, wuyou.ETOOLARGE, "body larger than 16 MiB")
}

func TestBodyOfExactlyTheByteLimitIsRead(t *testing.T) {
	body := "seafarer_book_no,name,msisdn\nE1,张伟,+8613800000001\n"
	l := limits{rows: 10, bytes: int64(len(body))}
	rr, err := newCSVRowReader(strings.NewReader(body), l)
	require.NoError(t, err)
	rows, err := MustReadAll(t, rr, 3)
	require.NoError(t, err)
	requireValid(t, rows)

	l.bytes--
	rr, err = newCSVRowReader(strings.NewReader(body), l)
	require.NoError(t, err)
	_, err = MustReadAll(t, rr, 3)
	requireCode(t, err, wuyou.ETOOLARGE)
}

func TestRowsAreReadAsTheyArriveNotAfterTheWholeBody(t *testing.T) {
	for name, start := range map[string]struct {
		open  func(io.Reader) (RowReader, error)
		first string
	}{
		"CSV":  {NewCSVRowReader, "seafarer_book_no,name,msisdn\nE1,张伟,+8613800000001\n"},
		"JSON": {NewJSONRowReader, `[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"},`},
	} {
		t.Run(name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() { _, _ = pw.Write([]byte(start.first)) }() // the rest of the body never comes
			got := make(chan Row, 1)
			go func() {
				rr, err := start.open(pr)
				if err != nil {
					return
				}
				if row, err := rr.Next(); err == nil {
					got <- row
				}
			}()
			select {
			case row := <-got:
				require.Equal(t, "E1", row.Enrolment.BookNo)
			case <-time.After(5 * time.Second):
				t.Fatal("the first row was not returned before the body ended")
			}
		})
	}
}

// --- a full-size file ---

// badness is one way to spoil a CSV line, and the field its error names.
type badness struct {
	field string
	spoil func(fields []string) string // gets the 10 valid fields, returns the CSV line
}

var badnesses = []badness{
	{"msisdn", func(f []string) string { f[3] = strings.TrimPrefix(f[3], "+"); return join(f) }},
	{"msisdn", func(f []string) string { f[3] = "+86 " + f[3][3:]; return join(f) }},
	{"name", func(f []string) string { f[1] = ""; return join(f) }},
	{"name", func(f []string) string { f[1] = strings.Repeat("伟", 101); return join(f) }},
	{"name", func(f []string) string { f[1] = "\xd5\xc5\xce\xb0"; return join(f) }}, // GBK
	{"seafarer_book_no", func(f []string) string { f[0] = "B 1"; return join(f) }},
	{"seafarer_book_no", func(f []string) string { f[0] = "B1000001"; return join(f) }}, // row 1's
	{"msisdn", func(f []string) string { f[3] = "+8613900000000"; return join(f) }},     // row 1's
	{"nationality", func(f []string) string { f[2] = "XX"; return join(f) }},
	{"vessel_imo", func(f []string) string { f[4] = "9074728"; return join(f) }},
	{"vessel_imo", func(f []string) string { f[4] = "907472"; return join(f) }},
	{"sign_on", func(f []string) string { f[6] = "2026-02-30"; return join(f) }},
	{"sign_off", func(f []string) string { f[6], f[7] = "2026-05-01", "2026-04-30"; return join(f) }},
	{"union_member_no", func(f []string) string { f[8] = strings.Repeat("U", 33); return join(f) }},
	{"vessel_name", func(f []string) string { f[5] = "\"A\x01B\""; return join(f) }},
	{"row", func(f []string) string { return join(f) + ",extra" }}, // 11 fields
	{"row", func(f []string) string { return join(f[:5]) }},
	{"row", func(f []string) string { f[5] = `THE "STAR"`; return join(f) }}, // bare quotes
	{"row", func(f []string) string { f[1] = "Cruz, Juan"; return join(f) }}, // unquoted comma: 11 fields
}

func join(fields []string) string { return strings.Join(fields, ",") }

func TestTenThousandRowsWith37BadRowsFailExactlyThose37(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(2026, 11))
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高")
	given := []string{"伟", "娜", "秀英", "敏", "静", "强", "磊", "洋", "海涛", "志远", "建国", "晓明"}
	nations := []string{"CN", "CN", "CN", "PH", "ID", "VN", "MM", "UA", ""}
	vessels := []struct{ imo, name string }{
		{"9074729", "中远之星"}, {"9321483", `"EMMA MAERSK, DK"`}, {"9811000", "EVER GIVEN"},
		{"9398400", "长航1号"}, {"IMO 8814275", "OCEAN STAR"}, {"", ""},
	}

	// 37 distinct bad rows anywhere but row 1, which the duplicates copy.
	bad := make(map[int]badness)
	for len(bad) < 37 {
		n := 2 + rnd.IntN(MaxBulkRows-1)
		if _, taken := bad[n]; !taken {
			bad[n] = badnesses[len(bad)%len(badnesses)]
		}
	}

	var b bytes.Buffer
	b.WriteString("\uFEFF" + strings.ReplaceAll(csvHeader, "\n", ",remarks\r\n"))
	for n := 1; n <= MaxBulkRows; n++ {
		v := vessels[rnd.IntN(len(vessels))]
		day := 1 + rnd.IntN(28)
		fields := []string{
			fmt.Sprintf("B%07d", 1000000+n),
			string(surnames[rnd.IntN(len(surnames))]) + given[rnd.IntN(len(given))],
			nations[rnd.IntN(len(nations))],
			fmt.Sprintf("+86139%08d", n-1),
			v.imo,
			v.name,
			fmt.Sprintf("2026-03-%02d", day),
			fmt.Sprintf("2026-11-%02d", day),
			fmt.Sprintf("U%d", n),
			`"on board, second contract"`,
		}
		line := join(fields)
		if spoil, ok := bad[n]; ok {
			line = spoil.spoil(fields)
		}
		b.WriteString(line + "\r\n")
	}

	rr, err := NewCSVRowReader(&b)
	require.NoError(t, err)
	rows, err := MustReadAll(t, Dedupe(rr), MaxBulkRows+2)
	require.NoError(t, err)
	require.Len(t, rows, MaxBulkRows)

	var failed []int
	for i, row := range rows {
		require.Equal(t, i+1, row.N)
		if len(row.Errors) == 0 {
			continue
		}
		failed = append(failed, row.N)
		want, ok := bad[row.N]
		require.True(t, ok, "row %d fails but is not one of the bad rows: %v", row.N, row.Errors)
		require.Equal(t, []string{want.field}, badFields(row.Errors), "row %d", row.N)
		require.NotEmpty(t, row.Errors[0].Message)
	}
	var want []int
	for n := range bad {
		want = append(want, n)
	}
	slices.Sort(want)
	require.Equal(t, want, failed)
}

// --- fuzzing ---

// fuzzLimits are small so that the fuzzer reaches the limits too.
var fuzzLimits = limits{rows: 20, bytes: 2048}

func FuzzCSVRows(f *testing.F) {
	for _, seed := range []string{
		"",
		"\uFEFF",
		"\xff\xfe",
		csvHeader,
		csvHeader + "E1,张伟,CN,+8613800000001,9074729,中远之星,2026-03-01,2026-11-30,U-1\n",
		"seafarer_book_no,name,msisdn\r\nE1,\"Cruz, Juan\",+639171234567\r\n",
		"seafarer_book_no,name,msisdn\nE1,\"李\n娜\",+8613800000002\n",
		"seafarer_book_no,name,msisdn\nE1,张\"伟,+8613800000001\nE2,李娜,+8613800000002\n",
		"seafarer_book_no,name,msisdn\nE1,\"张伟,+8613800000001\nE2,李娜,\"+8613800000002\"\n",
		"seafarer_book_no,name,msisdn\nE1,a,b,c\nE2\n",
		"seafarer_book_no,name,msisdn,MSISDN\n",
		"name,msisdn\n",
		"seafarer_book_no,name,msisdn\nE1,张伟,+8613800000001\nE1,李娜,+8613800000001\n",
		"seafarer_book_no,name,msisdn,vessel_imo,sign_on,sign_off\nE1,\xd5\xc5,+86,IMO 9074728,2026-02-30,2026-01-01\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rr, err := newCSVRowReader(bytes.NewReader(data), fuzzLimits)
		checkRows(t, rr, err, len(data))
	})
}

func FuzzJSONRows(f *testing.F) {
	for _, seed := range []string{
		"",
		"[]",
		"\uFEFF[]",
		`{"name":"张伟"}`,
		`[{"seafarer_book_no":"E1","name":"张伟","nationality":"cn","msisdn":"+8613800000001","vessel_imo":"IMO 9074729","sign_on":"2026-03-01","sign_off":"2026-11-30"}]`,
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":8613800000001},1,null,"x",[],{}]`,
		`[{"seafarer_book_no":"E1","name":"\ud800","msisdn":"+8613800000001"},{"SEAFARER_BOOK_NO":"E1","msisdn":null}]`,
		`[{"seafarer_book_no":"E1","name":"张伟","msisdn":"+8613800000001"}] x`,
		`[{"seafarer_book_no":"E1",`,
		`[1 2]`,
		`[{"a":{"b":[{"c":"d"}]}}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rr, err := newJSONRowReader(bytes.NewReader(data), fuzzLimits)
		checkRows(t, rr, err, len(data))
	})
}

// checkRows holds the promises of a row reader over any body: it stops
// within one call per byte, with io.EOF or a domain error it keeps returning;
// rows are numbered 1, 2, …; each row is either valid through and through or
// has errors that say what is wrong.
func checkRows(t *testing.T, rr RowReader, err error, size int) {
	if err != nil {
		requireFatal(t, err)
		return
	}
	rr = Dedupe(rr)
	for n := 1; ; n++ {
		require.LessOrEqual(t, n, size+2, "reader did not stop")
		row, err := rr.Next()
		if err != nil {
			if err != io.EOF {
				requireFatal(t, err)
			}
			_, again := rr.Next()
			require.Equal(t, err, again, "the end is returned again")
			return
		}
		require.Equal(t, n, row.N)
		require.LessOrEqual(t, row.N, fuzzLimits.rows)
		if len(row.Errors) == 0 {
			require.NoError(t, row.Enrolment.Validate(), "a row without errors is valid")
			again := row.Enrolment
			again.Normalize()
			require.Equal(t, row.Enrolment, again, "a returned row is normalized")
			continue
		}
		for _, fe := range row.Errors {
			require.NotEmpty(t, fe.Message, "error on %q has no reason", fe.Field)
			require.True(t, fe.Field == "row" || enrolmentField(fe.Field) >= 0, "unknown field %q", fe.Field)
			if fe.Field == "row" {
				require.Len(t, row.Errors, 1, "a row-level error is the only error")
			}
		}
	}
}

// requireFatal requires err to be a domain error for a bad body: fuzzed
// bodies come from memory, so there are no I/O errors.
func requireFatal(t *testing.T, err error) {
	var e *wuyou.Error
	require.True(t, errors.As(err, &e), "fatal error %v is not a *wuyou.Error", err)
	require.Contains(t, []string{wuyou.EINVALID, wuyou.ETOOLARGE}, e.Code)
	require.NotEmpty(t, e.Message)
}
