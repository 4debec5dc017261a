package crew

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
)

// validEnrolment is a complete, valid enrolment; tests change one field.
func validEnrolment() Enrolment {
	return Enrolment{
		BookNo:        "E1234567",
		Name:          "张伟",
		Nationality:   "CN",
		MSISDN:        "+8613800000001",
		VesselIMO:     "9074729",
		VesselName:    "中远之星",
		SignOn:        "2026-03-01",
		SignOff:       "2026-11-30",
		UnionMemberNo: "U-000123",
	}
}

// fieldErrors returns the field errors of an EINVALID error, and fails the
// test when err is another kind of error.
func fieldErrors(tb testing.TB, err error) []wuyou.FieldError {
	tb.Helper()
	if err == nil {
		return nil
	}
	var e *wuyou.Error
	require.True(tb, errors.As(err, &e), "error %v is not a *wuyou.Error", err)
	require.Equal(tb, wuyou.EINVALID, e.Code)
	require.NotEmpty(tb, e.Fields)
	return e.Fields
}

// badFields lists the field names of the errors.
func badFields(errs []wuyou.FieldError) []string {
	var names []string
	for _, fe := range errs {
		names = append(names, fe.Field)
	}
	return names
}

func TestCompleteEnrolmentIsValid(t *testing.T) {
	require.NoError(t, validEnrolment().Validate())
}

func TestOnlyBookNumberNameAndMSISDNAreRequired(t *testing.T) {
	require.NoError(t, Enrolment{BookNo: "E1", Name: "李娜", MSISDN: "+8613800000001"}.Validate())

	errs := fieldErrors(t, Enrolment{}.Validate())
	require.Equal(t, []string{"seafarer_book_no", "name", "msisdn"}, badFields(errs))
	for _, fe := range errs {
		require.Equal(t, "is required", fe.Message)
	}
}

func TestValidateNamesEveryBadFieldAtOnce(t *testing.T) {
	e := Enrolment{
		BookNo:        "E 1",
		Name:          "a\tb",
		Nationality:   "ZZ",
		MSISDN:        "8613800000001",
		VesselIMO:     "9074728",
		VesselName:    strings.Repeat("船", 101),
		SignOn:        "2026-02-30",
		SignOff:       "30/11/2026",
		UnionMemberNo: strings.Repeat("9", 33),
	}
	err := e.Validate()
	require.Equal(t,
		[]string{"seafarer_book_no", "name", "nationality", "msisdn", "vessel_imo", "vessel_name", "sign_on", "sign_off", "union_member_no"},
		badFields(fieldErrors(t, err)))
	require.Contains(t, wuyou.ErrorMessage(err), "seafarer_book_no")
	require.Contains(t, wuyou.ErrorMessage(err), "and 8 more")
}

func TestSeafarerBookNumberRules(t *testing.T) {
	tests := []struct {
		name, bookNo string
		ok           bool
	}{
		{"letters and digits", "E1234567", true},
		{"lower case letters", "e1234567", true},
		{"hyphens", "SB-2024-0001", true},
		{"one character", "7", true},
		{"32 characters", strings.Repeat("A", 32), true},
		{"empty", "", false},
		{"33 characters", strings.Repeat("A", 33), false},
		{"inner space", "E123 4567", false},
		{"slash", "E123/4567", false},
		{"Chinese characters", "船员证123", false},
		{"full-width digits", "E１２３", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEnrolment()
			e.BookNo = tt.bookNo
			assertFieldValid(t, e, "seafarer_book_no", tt.ok)
		})
	}
}

func TestNameRules(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"Chinese name", "张伟", true},
		{"Chinese name with a middle dot", "阿卜杜·热合曼", true},
		{"Latin name with accents and an apostrophe", "José O'Brien-García", true},
		{"Filipino name", "Juan dela Cruz", true},
		{"100 characters of Chinese", strings.Repeat("伟", 100), true},
		{"empty", "", false},
		{"101 characters", strings.Repeat("伟", 101), false},
		{"invalid UTF-8 (GBK bytes of 张伟)", "\xd5\xc5\xce\xb0", false},
		{"replacement character", "张\uFFFD", false},
		{"tab", "张\t伟", false},
		{"line break", "张\n伟", false},
		{"NUL", "张\x00伟", false},
		{"DEL", "张\x7f伟", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEnrolment()
			e.Name = tt.value
			assertFieldValid(t, e, "name", tt.ok)
		})
	}
}

func TestNameOfOnlySpacesIsMissing(t *testing.T) {
	e := validEnrolment()
	e.Name = " \u3000 " // ideographic space, as typed with a Chinese keyboard
	e.Normalize()
	require.Equal(t, []wuyou.FieldError{{Field: "name", Message: "is required"}}, fieldErrors(t, e.Validate()))
}

func TestMSISDNIsE164(t *testing.T) {
	tests := []struct {
		name, msisdn string
		ok           bool
	}{
		{"China mobile", "+8613800000001", true},
		{"Philippines mobile", "+639171234567", true},
		{"8 digits", "+12345678", true},
		{"15 digits", "+123456789012345", true},
		{"7 digits", "+1234567", false},
		{"16 digits", "+1234567890123456", false},
		{"no plus", "8613800000001", false},
		{"00 prefix", "008613800000001", false},
		{"leading zero after plus", "+0613800000001", false},
		{"spaces", "+86 138 0000 0001", false},
		{"dashes", "+86-138-0000-0001", false},
		{"letters", "+86138000000O1", false},
		{"full-width digits", "+８６１３８０００００００１", false},
		{"Arabic-Indic digits", "+٨٦١٣٨٠٠٠٠٠٠٠١", false},
		{"plus only", "+", false},
		{"empty", "", false},
		{"+0 alone", "+0", false},
		{"8 digits starting with 0", "+01234567", false},
		{"15 digits starting with 0", "+012345678901234", false},
		{"all zeros", "+000000000", false},
		{"leading space", " +8613800000001", false},
		{"trailing space", "+8613800000001 ", false},
		{"trailing newline", "+8613800000001\n", false},
		{"tab inside", "+86\t13800000001", false},
		{"two plus signs", "++8613800000001", false},
		{"plus at the end", "8613800000001+", false},
		{"NUL inside", "+861380000\x000001", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.ok, ValidMSISDN(tt.msisdn))
			e := validEnrolment()
			e.MSISDN = tt.msisdn
			assertFieldValid(t, e, "msisdn", tt.ok)
		})
	}
}

// The message every package gives for a refused MSISDN is crew's, so the
// rule reads the same in the API, the dead letters and the reconciliation.
func TestRefusedMSISDNMessageStatesTheOneRule(t *testing.T) {
	e := validEnrolment()
	e.MSISDN = "+0123456789"
	require.Equal(t, []wuyou.FieldError{{Field: "msisdn", Message: "must be " + MSISDNRule}}, fieldErrors(t, e.Validate()))
	require.Contains(t, MSISDNRule, "8 to 15 digits")
	require.Contains(t, MSISDNRule, "not starting with 0")
}

func TestNationalityIsAnAssignedISOCountryCode(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"China", "CN", true},
		{"Philippines", "PH", true},
		{"Hong Kong", "HK", true},
		{"lower case is upper-cased", "cn", true},
		{"surrounding spaces are trimmed", " PH ", true},
		{"absent", "", true},
		{"unassigned", "ZZ", false},
		{"user-assigned Kosovo", "XK", false},
		{"reserved UK", "UK", false},
		{"alpha-3", "CHN", false},
		{"one letter", "C", false},
		{"name", "China", false},
		{"digits", "86", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEnrolment()
			e.Nationality = tt.value
			e.Normalize()
			assertFieldValid(t, e, "nationality", tt.ok)
		})
	}
}

func TestCountryListHoldsThe249AssignedCodesInUpperCase(t *testing.T) {
	require.Len(t, countries, 249)
	for code := range countries {
		require.True(t, ValidCountry(code))
	}
	require.False(t, ValidCountry("cn"), "ValidCountry takes upper case; Normalize upper-cases")
	require.False(t, ValidCountry("N "))
	require.False(t, ValidCountry(""))
}

func TestIMONumberCheckDigit(t *testing.T) {
	tests := []struct {
		imo string
		ok  bool
	}{
		{"9074729", true}, // 9·7+0·6+7·5+4·4+7·3+2·2 = 139 → 9
		{"9321483", true},
		{"9811000", true},
		{"9398400", true},
		{"8814275", true},
		{"9776171", true},
		{"7700180", true},
		{"1000019", true},
		{"9074728", false}, // check digit off by one
		{"9074720", false},
		{"9704729", false}, // two digits swapped
		{"9321484", false},
		{"9811001", false},
		{"907472", false},   // 6 digits
		{"90747290", false}, // 8 digits
		{"907472a", false},
		{"IMO9074729", false}, // ValidIMO takes bare digits; NormalizeIMO strips the prefix
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.imo, func(t *testing.T) {
			require.Equal(t, tt.ok, ValidIMO(tt.imo))
		})
	}
}

func TestVesselIMOAcceptsAnIMOPrefix(t *testing.T) {
	for _, in := range []string{"IMO 9074729", "IMO9074729", "imo 9074729", " 9074729 "} {
		e := validEnrolment()
		e.VesselIMO = in
		e.Normalize()
		require.Equal(t, "9074729", e.VesselIMO, in)
		require.NoError(t, e.Validate(), in)
	}
}

func TestVesselIMOMessagesTellFormatFromCheckDigit(t *testing.T) {
	e := validEnrolment()
	e.VesselIMO = "907472"
	require.Contains(t, fieldErrors(t, e.Validate())[0].Message, "7-digit")
	e.VesselIMO = "9074728"
	require.Contains(t, fieldErrors(t, e.Validate())[0].Message, "check digit")
}

func TestSignOnAndSignOffAreRealDates(t *testing.T) {
	tests := []struct {
		name, date string
		ok         bool
	}{
		{"ordinary date", "2026-03-01", true},
		{"leap day", "2024-02-29", true},
		{"absent", "", true},
		{"29 February of a common year", "2026-02-29", false},
		{"31 April", "2026-04-31", false},
		{"month 13", "2026-13-01", false},
		{"day 0", "2026-03-00", false},
		{"single-digit month", "2026-3-01", false},
		{"no dashes", "20260301", false},
		{"slashes", "2026/03/01", false},
		{"day first", "01-03-2026", false},
		{"with a time", "2026-03-01T00:00:00Z", false},
		{"signs in the digits", "+026-03-01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEnrolment()
			e.SignOn, e.SignOff = tt.date, ""
			assertFieldValid(t, e, "sign_on", tt.ok)
			e.SignOn, e.SignOff = "", tt.date
			assertFieldValid(t, e, "sign_off", tt.ok)
		})
	}
}

func TestSignOffMayNotBeBeforeSignOn(t *testing.T) {
	e := validEnrolment()
	e.SignOn, e.SignOff = "2026-03-01", "2026-02-28"
	require.Equal(t, []string{"sign_off"}, badFields(fieldErrors(t, e.Validate())))

	e.SignOff = "2026-03-01" // signing off on the day of signing on is possible
	require.NoError(t, e.Validate())
}

func TestVesselNameAndUnionNumberLengthsCountCharactersNotBytes(t *testing.T) {
	e := validEnrolment()
	e.VesselName = strings.Repeat("船", 100) // 300 bytes
	e.UnionMemberNo = strings.Repeat("号", 32)
	require.NoError(t, e.Validate())

	e.VesselName += "船"
	e.UnionMemberNo += "号"
	require.Equal(t, []string{"vessel_name", "union_member_no"}, badFields(fieldErrors(t, e.Validate())))
}

func TestNormalizeTrimsButRepairsNothingElse(t *testing.T) {
	e := Enrolment{
		BookNo:      "  E1234567\t",
		Name:        "\u3000张伟 ",
		Nationality: " cn",
		MSISDN:      " +86 138 0000 0001 ",
		VesselIMO:   " IMO 9074729",
		SignOn:      " 2026-03-01 ",
	}
	e.Normalize()
	require.Equal(t, Enrolment{
		BookNo:      "E1234567",
		Name:        "张伟",
		Nationality: "CN",
		MSISDN:      "+86 138 0000 0001",
		VesselIMO:   "9074729",
		SignOn:      "2026-03-01",
	}, e)
	require.Equal(t, []string{"msisdn"}, badFields(fieldErrors(t, e.Validate())))
}

func TestValidateUpdateChecksOnlyFieldsPresent(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		name string
		u    SeafarerUpdate
		bad  []string
	}{
		{"nothing", SeafarerUpdate{}, nil},
		{"new MSISDN", SeafarerUpdate{MSISDN: s("+639171234567")}, nil},
		{"bad MSISDN", SeafarerUpdate{MSISDN: s("0917 123 4567")}, []string{"msisdn"}},
		{"empty MSISDN", SeafarerUpdate{MSISDN: s("")}, []string{"msisdn"}},
		{"new vessel", SeafarerUpdate{VesselIMO: s("9321483"), VesselName: s("EMMA MAERSK")}, nil},
		{"vessel cleared", SeafarerUpdate{VesselIMO: s(""), VesselName: s("")}, nil},
		{"bad IMO check digit", SeafarerUpdate{VesselIMO: s("9321484")}, []string{"vessel_imo"}},
		{"sign-off date", SeafarerUpdate{SignOff: s("2026-11-30")}, nil},
		{"sign-off cleared", SeafarerUpdate{SignOff: s("")}, nil},
		{"impossible sign-off date", SeafarerUpdate{SignOff: s("2026-11-31")}, []string{"sign_off"}},
		{"each status", SeafarerUpdate{Status: s(StatusSignedOff)}, nil},
		{"unknown status", SeafarerUpdate{Status: s("retired")}, []string{"status"}},
		{"status is case-sensitive", SeafarerUpdate{Status: s("Active")}, []string{"status"}},
		{"every field bad", SeafarerUpdate{
			MSISDN: s("x"), VesselIMO: s("1"), VesselName: s("\x00"), SignOff: s("x"), Status: s(""),
		}, []string{"msisdn", "vessel_imo", "vessel_name", "sign_off", "status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.bad, badFields(fieldErrors(t, ValidateUpdate(tt.u))))
		})
	}
	for _, status := range []string{StatusActive, StatusSignedOff, StatusSuspended} {
		require.NoError(t, ValidateUpdate(SeafarerUpdate{Status: &status}))
	}
}

func TestNormalizeUpdateLeavesTheCallersStringsAlone(t *testing.T) {
	msisdn, imo := " +8613800000001 ", "IMO 9074729"
	u := SeafarerUpdate{MSISDN: &msisdn, VesselIMO: &imo}
	u.Normalize()
	require.Equal(t, "+8613800000001", *u.MSISDN)
	require.Equal(t, "9074729", *u.VesselIMO)
	require.Nil(t, u.Status)
	require.Equal(t, " +8613800000001 ", msisdn)
	require.NoError(t, ValidateUpdate(u))
}

// assertFieldValid checks that e is valid when ok, and otherwise that its
// only error is on field, with a message.
func assertFieldValid(tb testing.TB, e Enrolment, field string, ok bool) {
	tb.Helper()
	errs := fieldErrors(tb, e.Validate())
	if ok {
		require.Empty(tb, errs)
		return
	}
	require.Equal(tb, []string{field}, badFields(errs))
	require.NotEmpty(tb, errs[0].Message)
}
