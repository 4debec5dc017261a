package sms_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/sms"
)

// may1 is midnight at the start of 1 May in China: a month's grant expiring
// then reads "30 Apr".
var may1 = time.Date(2026, 5, 1, 0, 0, 0, 0, sms.Zone)

const gib = 1 << 30

// dec31 is the first instant of a year in China: a grant expiring then
// reads "31 Dec", the longest day to name, and one starting then "1 Jan".
var dec31 = time.Date(2027, 1, 1, 0, 0, 0, 0, sms.Zone)

// namesDay reports whether a text names a day, as an expiry or as when
// more comes.
func namesDay(text string) bool {
	for _, s := range []string{"日到期", "日起有新额度", ", expires ", "; more from "} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

func TestBalanceReadsEveryUnitAndTheEarliestExpiry(t *testing.T) {
	full := []sms.Holding{
		{Unit: billing.UnitSeconds, Remaining: 123*60 + 59, ExpiresAt: may1},
		{Unit: billing.UnitBytes, Remaining: gib + gib/2, ExpiresAt: may1.AddDate(0, 1, 0)},
		{Unit: billing.UnitSMS, Remaining: 20, ExpiresAt: may1},
	}
	for _, tc := range []struct {
		name, lang string
		hs         []sms.Holding
		want       string
	}{
		{"zh-CN: minutes, GB with one decimal, SMS and the date", wuyou.LangZH, full, "剩余 123 分钟 / 1.5 GB / 20 条短信，4月30日到期"},
		{"en: minutes, GB with one decimal, SMS and the date", wuyou.LangEN, full, "Left: 123 min / 1.5 GB / 20 SMS, expires 30 Apr"},
		{"units read in a fixed order whatever order they come in", wuyou.LangEN, []sms.Holding{full[2], full[0]}, "Left: 123 min / 20 SMS, expires 30 Apr"},
		{"data below 1 GB reads in whole MB", wuyou.LangEN, []sms.Holding{{Unit: billing.UnitBytes, Remaining: 512<<20 + 1000}}, "Left: 512 MB"},
		{"a unit of \"\" is seconds", wuyou.LangZH, []sms.Holding{{Unit: "", Remaining: 60}}, "剩余 1 分钟"},
		{"holding nothing reads as 0 minutes, no date", wuyou.LangZH, nil, "剩余 0 分钟"},
		{"holding nothing reads as 0 min in en", wuyou.LangEN, nil, "Left: 0 min"},
		{"a unit with nothing left gives no date", wuyou.LangEN, []sms.Holding{{Unit: billing.UnitSeconds, Remaining: 0, ExpiresAt: may1}}, "Left: 0 min"},
		{"an unknown language reads as the default", "fr", full[:1], "剩余 123 分钟，4月30日到期"},
		{"an expiry within a day reads as the day before midnight", wuyou.LangEN, []sms.Holding{{Unit: billing.UnitSeconds, Remaining: 600, ExpiresAt: time.Date(2026, 4, 30, 15, 0, 0, 0, time.UTC)}}, "Left: 10 min, expires 30 Apr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, sms.Balance(tc.lang, tc.hs))
		})
	}
}

func TestNoticeSpeaksOfOneUnit(t *testing.T) {
	for _, tc := range []struct {
		name, lang, kind, unit string
		amount                 int64
		expires                time.Time
		want                   string
	}{
		{"zh-CN low minutes with the date", wuyou.LangZH, sms.KindLow, billing.UnitSeconds, 20 * 60, may1, "出海无忧提醒：通话剩余 20 分钟，4月30日到期"},
		{"en low minutes with the date", wuyou.LangEN, sms.KindLow, billing.UnitSeconds, 20 * 60, may1, "Wuyou: 20 min of calls left, expires 30 Apr"},
		{"en low minutes without a date", wuyou.LangEN, sms.KindLow, "", 20 * 60, time.Time{}, "Wuyou: 20 min of calls left"},
		{"zh-CN exhausted minutes", wuyou.LangZH, sms.KindExhausted, billing.UnitSeconds, 0, time.Time{}, "出海无忧提醒：通话已用完"},
		{"en exhausted minutes", wuyou.LangEN, sms.KindExhausted, billing.UnitSeconds, 0, time.Time{}, "Wuyou: your call minutes are used up"},
		{"zh-CN exhausted minutes names the day more comes", wuyou.LangZH, sms.KindExhausted, billing.UnitSeconds, 0, may1, "出海无忧提醒：通话已用完，5月1日起有新额度"},
		{"en exhausted minutes names the day more comes", wuyou.LangEN, sms.KindExhausted, billing.UnitSeconds, 0, may1, "Wuyou: your call minutes are used up; more from 1 May"},
		{"the day more comes is the start's own day in China", wuyou.LangEN, sms.KindExhausted, billing.UnitBytes, 0, time.Date(2026, 4, 30, 16, 0, 0, 0, time.UTC), "Wuyou: your data is used up; more from 1 May"},
		{"zh-CN low data with the date", wuyou.LangZH, sms.KindLow, billing.UnitBytes, gib + gib/2, may1, "出海无忧提醒：流量剩余 1.5 GB，4月30日到期"},
		{"en low SMS with the date", wuyou.LangEN, sms.KindLow, billing.UnitSMS, 3, may1, "Wuyou: 3 SMS left, expires 30 Apr"},
		{"zh-CN low with nothing left but a date", wuyou.LangZH, sms.KindLow, billing.UnitSeconds, 59, may1, "出海无忧提醒：通话剩余 0 分钟，4月30日到期"},
		{"zh-CN low data", wuyou.LangZH, sms.KindLow, billing.UnitBytes, 300 << 20, time.Time{}, "出海无忧提醒：流量剩余 300 MB"},
		{"en exhausted data", wuyou.LangEN, sms.KindExhausted, billing.UnitBytes, 0, time.Time{}, "Wuyou: your data is used up"},
		{"zh-CN low SMS", wuyou.LangZH, sms.KindLow, billing.UnitSMS, 3, time.Time{}, "出海无忧提醒：短信剩余 3 条"},
		{"en low SMS", wuyou.LangEN, sms.KindLow, billing.UnitSMS, 3, time.Time{}, "Wuyou: 3 SMS left"},
		{"en exhausted SMS", wuyou.LangEN, sms.KindExhausted, billing.UnitSMS, 0, time.Time{}, "Wuyou: your SMS are used up"},
		{"zh-CN issued minutes", wuyou.LangZH, sms.KindIssued, billing.UnitSeconds, 300 * 60, may1, "出海无忧提醒：已发放通话 300 分钟，4月30日到期"},
		{"en issued data", wuyou.LangEN, sms.KindIssued, billing.UnitBytes, 2 * gib, may1, "Wuyou: 2.0 GB of data granted, expires 30 Apr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, sms.Notice(tc.lang, tc.kind, tc.unit, tc.amount, tc.expires))
		})
	}
}

func TestVolumeIs1024BasedAndRoundsDown(t *testing.T) {
	for _, tc := range []struct {
		bytes int64
		want  string
	}{
		{0, "0 MB"}, {-5, "0 MB"}, {1<<20 - 1, "0 MB"}, {1 << 20, "1 MB"}, {gib - 1, "1023 MB"},
		{gib, "1.0 GB"}, {gib + gib/10*9, "1.8 GB"}, {2*gib - 1, "1.9 GB"}, {999 * gib, "999.0 GB"},
	} {
		require.Equal(t, tc.want, sms.Volume(tc.bytes), "%d bytes", tc.bytes)
	}
}

// requireOneSMS checks a text fits one SMS as the network counts it: UCS-2
// code units for zh-CN (70), GSM 7-bit septets for en (160, every character
// from the basic set).
func requireOneSMS(t *testing.T, lang, text string) {
	t.Helper()
	require.True(t, utf8.ValidString(text))
	require.True(t, sms.Fits(lang, text), "%q is %d runes, more than %d", text, utf8.RuneCountInString(text), sms.Limit(lang))
	require.LessOrEqual(t, len(utf16.Encode([]rune(text))), sms.Limit(lang), "%q in UCS-2", text)
	if lang == wuyou.LangEN {
		for _, r := range text {
			require.True(t, strings.ContainsRune(gsmBasic, r), "%q: %q is not in the GSM basic set", text, r)
		}
	}
	require.NotContains(t, text, "  ")
	require.False(t, strings.HasSuffix(text, " ") || strings.HasSuffix(text, "/"), "%q ends mid-sentence", text)
}

// gsmBasic is the letters, digits and signs of the GSM 03.38 basic set these
// texts may use.
const gsmBasic = " !\"#%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func TestEveryTextFitsOneSMSForLargeAndZeroBalances(t *testing.T) {
	large := []sms.Holding{
		{Unit: billing.UnitSeconds, Remaining: 9_999_999 * 60, ExpiresAt: may1},
		{Unit: billing.UnitBytes, Remaining: 999 * gib, ExpiresAt: may1},
		{Unit: billing.UnitSMS, Remaining: 99_999, ExpiresAt: may1.AddDate(0, 7, 20)},
	}
	huge := []sms.Holding{
		{Unit: billing.UnitSeconds, Remaining: math.MaxInt64, ExpiresAt: may1},
		{Unit: billing.UnitBytes, Remaining: math.MaxInt64, ExpiresAt: may1},
		{Unit: billing.UnitSMS, Remaining: math.MaxInt64, ExpiresAt: may1},
	}
	zero := []sms.Holding{
		{Unit: billing.UnitSeconds, ExpiresAt: may1}, {Unit: billing.UnitBytes, ExpiresAt: may1}, {Unit: billing.UnitSMS, ExpiresAt: may1},
	}
	for _, lang := range wuyou.Langs {
		for name, hs := range map[string][]sms.Holding{"large": large, "int64 max": huge, "zero": zero, "none": nil} {
			t.Run(lang+" "+name, func(t *testing.T) {
				text := sms.Balance(lang, hs)
				requireOneSMS(t, lang, text)
				if name == "large" {
					// 9,999,999 min, 999 GB and 99,999 SMS fit with their date.
					require.Contains(t, text, "9999999")
					require.Contains(t, text, "999.0 GB")
					require.Contains(t, text, "99999")
					require.True(t, strings.HasSuffix(text, "4月30日到期") || strings.HasSuffix(text, "30 Apr"), text)
				}
				// Every notice names its date, whatever the amount: the
				// longest day (31 Dec) with the largest amount still fits.
				for _, unit := range billing.Units {
					for _, kind := range []string{sms.KindLow, sms.KindExhausted, sms.KindExpiring, sms.KindIssued} {
						for _, n := range []int64{0, 9_999_999 * 60, 999 * gib, 99_999, math.MaxInt64} {
							for _, date := range []time.Time{may1, dec31} {
								text := sms.Notice(lang, kind, unit, n, date)
								requireOneSMS(t, lang, text)
								require.True(t, namesDay(text), "%q names no day", text)
							}
							requireOneSMS(t, lang, sms.Notice(lang, kind, unit, n, time.Time{}))
						}
					}
				}
			})
		}
	}
}

func TestBalanceShortensWholeWordsOnly(t *testing.T) {
	huge := []sms.Holding{
		{Unit: billing.UnitSeconds, Remaining: math.MaxInt64, ExpiresAt: may1},
		{Unit: billing.UnitBytes, Remaining: math.MaxInt64, ExpiresAt: may1},
		{Unit: billing.UnitSMS, Remaining: math.MaxInt64, ExpiresAt: may1},
	}
	text := sms.Balance(wuyou.LangZH, huge)
	// Too long for 70 with the date: the date goes, every amount stays whole.
	require.Equal(t, "剩余 153722867280912930 分钟 / 8589934591.9 GB / 9223372036854775807 条短信", text)

	// Units with nothing left go first, then the date, then units from the
	// last (two holdings of one unit, which quota never gives, to make it
	// too long).
	mixed := []sms.Holding{
		{Unit: billing.UnitSeconds, Remaining: math.MaxInt64, ExpiresAt: may1},
		{Unit: billing.UnitBytes, Remaining: 0, ExpiresAt: may1},
		{Unit: billing.UnitSMS, Remaining: math.MaxInt64, ExpiresAt: may1},
		{Unit: billing.UnitSMS, Remaining: math.MaxInt64, ExpiresAt: may1},
	}
	require.Equal(t, "剩余 153722867280912930 分钟 / 9223372036854775807 条短信", sms.Balance(wuyou.LangZH, mixed))
}

// TestBalanceOfRandomHoldingsFitsOneSMS is the property: whatever a seafarer
// holds, the answer fits one SMS, starts with the minutes (or the first unit
// held) and names only whole amounts.
func TestBalanceOfRandomHoldingsFitsOneSMS(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 74))
	amount := func() int64 {
		switch rng.IntN(5) {
		case 0:
			return 0
		case 1:
			return rng.Int64N(1000)
		case 2:
			return rng.Int64N(1 << 40)
		case 3:
			return math.MaxInt64 - rng.Int64N(1000)
		}
		return rng.Int64()
	}
	for i := 0; i < 20000; i++ {
		var hs []sms.Holding
		for _, u := range billing.Units {
			if rng.IntN(3) > 0 {
				exp := time.Time{}
				if rng.IntN(4) > 0 {
					exp = time.Unix(rng.Int64N(4_000_000_000), 0)
				}
				hs = append(hs, sms.Holding{Unit: u, Remaining: amount(), ExpiresAt: exp})
			}
		}
		for _, lang := range wuyou.Langs {
			text := sms.Balance(lang, hs)
			requireOneSMS(t, lang, text)
			prefix := map[string]string{wuyou.LangZH: "剩余 ", wuyou.LangEN: "Left: "}[lang]
			require.True(t, strings.HasPrefix(text, prefix), text)
			for _, h := range hs {
				for _, kind := range []string{sms.KindLow, sms.KindExhausted} {
					text := sms.Notice(lang, kind, h.Unit, h.Remaining, h.ExpiresAt)
					requireOneSMS(t, lang, text)
					require.Equal(t, !h.ExpiresAt.IsZero(), namesDay(text), "%q: a notice names its date, always", text)
				}
			}
		}
	}
}

// FuzzBalance feeds arbitrary amounts and dates to the balance text.
func FuzzBalance(f *testing.F) {
	f.Add(int64(7380), int64(gib+gib/2), int64(20), int64(1777564800), true)
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(0), false)
	f.Fuzz(func(t *testing.T, secs, bytes, count, expiry int64, en bool) {
		lang := wuyou.LangZH
		if en {
			lang = wuyou.LangEN
		}
		exp := time.Unix(expiry%(1<<35), 0)
		hs := []sms.Holding{{Unit: billing.UnitSeconds, Remaining: secs, ExpiresAt: exp}, {Unit: billing.UnitBytes, Remaining: bytes, ExpiresAt: exp}, {Unit: billing.UnitSMS, Remaining: count, ExpiresAt: exp}}
		requireOneSMS(t, lang, sms.Balance(lang, hs))
	})
}
