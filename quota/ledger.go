package quota

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wuyou/wuyou/billing"
)

// A ledger record is the compact text form of a ledger entry that Redis
// keeps while the entry is pending (pending.go): the debit script writes a
// debit's, the void script a void's, and decodeRecord reads them back when
// a repeat must carry the first application's entry. The ledger itself is
// in PostgreSQL (PGLedger).
//
// Records are space-separated fields; text fields are escaped (escapeField)
// so they hold no space, newline or percent sign, and ids are plain (see
// plainID), so neither needs escaping. Times are offsets, in seconds, from
// the start of the record's week (ledgerBucket: unix seconds / 604800, of a
// debit's call time or a void's write time), and "at" an offset from the
// entry's time in ms:
//
//	d <t> <identity> <at> <event id> <type> <msisdn> <duration> <called> <country>
//	  <billable> <covered> <overage minor> <currency> <welfare minor>
//	  <statement period> <adjusts period> [<grant>:<amount> ...]
//	a … (as d)
//	v <t> <at> <grant> <amount>
//
// <type> is one letter for the carrier's own types (encodeType), with a
// leading "!" when the call was free (Usage.Free: to one of the tariff's
// free_numbers). Records written before free calls never start their type
// with "!", so they read back as not free.
//
// "a" is an adjust (sessions.go): the carrier's record of a call a session
// charged, settling the difference; its amounts, prices and draws are
// signed, and its id is "a_<identity>".
//
// Amounts are in the entry's unit. <billable> is "<n>" for seconds, else
// "<n>:<unit>" and, for bytes, "<n>:bytes:<volume bytes>"; a void's amount is
// "<n>" or "<n>:<unit>". Records written before units are seconds.
//
// A debit's identity is the event's (DebitEntryID without "d_"); its source
// is not kept (the usage carries it), nor the programme of each draw (the
// script's reply names it). Overage seconds are billable − covered. The
// debit script writes the tail from "<covered>" on.
const ledgerWeek = 7 * 24 * 3600

func ledgerBucket(t time.Time) int64 {
	u := t.Unix()
	if u < 0 {
		return (u - ledgerWeek + 1) / ledgerWeek
	}
	return u / ledgerWeek
}

var fieldEscaper = strings.NewReplacer("%", "%25", " ", "%20", "\n", "%0A", "\r", "%0D")

// escapeField makes s safe as one record field.
func escapeField(s string) string {
	if !strings.ContainsAny(s, "% \n\r") {
		return s
	}
	return fieldEscaper.Replace(s)
}

func unescapeField(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Usage types are stored as one letter when they are the carrier's own.
var (
	typeCodes = map[string]string{billing.TypeVoice: "v", billing.TypeSMS: "s", billing.TypeData: "d"}
	codeTypes = map[string]string{"v": billing.TypeVoice, "s": billing.TypeSMS, "d": billing.TypeData, "-": ""}
)

func encodeType(t string) string {
	if c, ok := typeCodes[t]; ok {
		return c
	}
	if t == "" {
		return "-"
	}
	return "=" + escapeField(t)
}

func decodeType(c string) string {
	if t, ok := codeTypes[c]; ok {
		return t
	}
	return unescapeField(strings.TrimPrefix(c, "="))
}

// freeMark leads a free call's <type> in its record.
const freeMark = "!"

// encodeUsageType is a debit record's <type>: the usage's type, marked
// when the call is free.
func encodeUsageType(u Usage) string {
	if u.Free {
		return freeMark + encodeType(u.Type)
	}
	return encodeType(u.Type)
}

// decodeUsageType reads what encodeUsageType writes.
func decodeUsageType(c string) (typ string, free bool) {
	c, free = strings.CutPrefix(c, freeMark)
	return decodeType(c), free
}

// debitRecordHead is a debit's record up to the billable amount, with a
// trailing space; the script appends the amount, billableSuffix and the
// rest.
func debitRecordHead(u Usage, identity string, at time.Time) string {
	call := u.CallTime.Unix()
	start := ledgerBucket(u.CallTime) * ledgerWeek
	var b strings.Builder
	b.Grow(128)
	b.WriteString("d ")
	b.WriteString(strconv.FormatInt(call-start, 10))
	b.WriteByte(' ')
	b.WriteString(identity)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(at.UnixMilli()-call*1000, 10))
	for _, f := range []string{escapeField(u.EventID), encodeUsageType(u), escapeField(u.MSISDN),
		strconv.FormatInt(u.DurationSeconds, 10), escapeField(u.CalledNumber), escapeField(u.VisitedCountry)} {
		b.WriteByte(' ')
		b.WriteString(f)
	}
	b.WriteByte(' ')
	return b.String()
}

// billableSuffix follows the amount in a debit record's <billable>: the
// unit (and a data session's volume) unless it is seconds.
func billableSuffix(u Usage) string {
	switch unit := u.unit(); unit {
	case billing.UnitSeconds:
		return ""
	case billing.UnitBytes:
		return ":" + unit + ":" + strconv.FormatInt(u.VolumeBytes, 10)
	default:
		return ":" + unit
	}
}

// amountField reads "<n>[:<unit>[:<volume>]]": the amount, the unit and the
// volume; ok is false when it is malformed.
func amountField(s string) (n int64, unit string, volume int64, ok bool) {
	f := strings.Split(s, ":")
	if len(f) > 3 {
		return 0, "", 0, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, "", 0, false
	}
	if len(f) > 1 {
		if unit = f[1]; unit == billing.UnitSeconds || !billing.ValidUnit(unit) {
			return 0, "", 0, false
		}
	}
	if len(f) == 3 {
		if volume, err = strconv.ParseInt(f[2], 10, 64); err != nil {
			return 0, "", 0, false
		}
	}
	return n, unit, volume, true
}

// voidRecordHead is a void's record without the amount removed.
func voidRecordHead(at time.Time, grantID string) string {
	sec, ms := entryOffsets(at)
	return "v " + sec + " " + ms + " " + grantID + " "
}

func entryOffsets(at time.Time) (sec, ms string) {
	start := ledgerBucket(at) * ledgerWeek
	return strconv.FormatInt(at.Unix()-start, 10), strconv.FormatInt(at.UnixMilli()-at.Unix()*1000, 10)
}

// decodeRecord reads one record of week b (ledgerBucket).
func decodeRecord(b int64, rec string) (*LedgerEntry, error) {
	f := strings.Split(rec, " ")
	bad := func() (*LedgerEntry, error) { return nil, fmt.Errorf("quota: malformed ledger record %q", rec) }
	malformed := false // a number field did not parse
	num := func(i int) int64 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		malformed = malformed || err != nil
		return n
	}
	if len(f) < 2 {
		return bad()
	}
	t := time.Unix(b*ledgerWeek+num(1), 0).UTC()
	var e *LedgerEntry
	switch f[0] {
	case "d", "a":
		if len(f) < 17 {
			return bad()
		}
		call := t
		e = &LedgerEntry{
			ID: f[0] + "_" + f[2], Kind: KindDebit, At: call.Add(time.Duration(num(3)) * time.Millisecond),
			EventID: unescapeField(f[4]), MSISDN: unescapeField(f[6]), CallTime: &call,
			DurationSeconds: num(7), CalledNumber: unescapeField(f[8]), VisitedCountry: unescapeField(f[9]),
			CoveredSeconds:  num(11),
			OverageAmount:   billing.Money{Minor: num(12), Currency: unescapeField(f[13])},
			WelfareCost:     &billing.Money{Minor: num(14), Currency: unescapeField(f[13])},
			StatementPeriod: f[15], AdjustsPeriod: f[16], Draws: make([]Draw, 0, len(f)-17),
		}
		e.Type, e.Free = decodeUsageType(f[5])
		var ok bool
		if e.BillableSeconds, e.Unit, e.VolumeBytes, ok = amountField(f[10]); !ok {
			return bad()
		}
		e.OverageSeconds = e.BillableSeconds - e.CoveredSeconds
		if f[0] == "a" {
			e.Kind = KindAdjust
		}
		for _, d := range f[17:] {
			grant, sec, ok := strings.Cut(d, ":")
			n, err := strconv.ParseInt(sec, 10, 64)
			if !ok || err != nil {
				return bad()
			}
			e.Draws = append(e.Draws, Draw{GrantID: grant, Seconds: n})
		}
	case "v":
		if len(f) != 5 {
			return bad()
		}
		n, unit, _, ok := amountField(f[4])
		if !ok {
			return bad()
		}
		e = &LedgerEntry{ID: "v_" + f[3], Kind: KindVoid, Unit: unit, At: t.Add(time.Duration(num(2)) * time.Millisecond),
			GrantID: f[3], Seconds: n, Draws: []Draw{}}
	default:
		return bad()
	}
	if malformed {
		return bad()
	}
	return e, nil
}

// nameProgrammes fills in the programme of each of e's draws.
func nameProgrammes(e *LedgerEntry, programmes map[string]string) {
	for i := range e.Draws {
		e.Draws[i].ProgrammeID = programmes[e.Draws[i].GrantID]
	}
}

// ledgerTime is the time an entry is filed under: a debit's call time, else
// when it was written.
func ledgerTime(e *LedgerEntry) time.Time {
	if e.Kind == KindDebit && e.CallTime != nil {
		return *e.CallTime
	}
	return e.At
}

// LedgerFilter selects ledger entries by time (inclusive from, exclusive to;
// zero = open), newest first.
type LedgerFilter struct {
	From, To time.Time
	Limit    int
	Cursor   string // opaque: the time and offset of the last entry returned
	// WithoutFree leaves out entries of calls to the tariff's free numbers
	// (LedgerEntry.Free), as a company reads its crew's usage; a page is
	// still Limit entries when there are that many others.
	WithoutFree bool
}
