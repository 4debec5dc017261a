// Package sms owns what Wuyou says to a seafarer's phone in words: the
// balance the carrier's USSD and IVR read out (CONTRACT §7.4) and the text
// of every notification, in the seafarer's language, each one SMS long.
//
// One SMS is 70 characters in Chinese and 160 in English: a zh-CN text
// travels as UCS-2, 70 16-bit code units, an en text in the GSM 7-bit
// alphabet, 160 septets. Limit counts runes; every rune these texts use is
// in the Basic Multilingual Plane (digits, Latin letters, CJK, the
// full-width comma and colon; never an emoji), so runes equal UCS-2 code
// units, and an en text uses only characters of the GSM basic set, one
// septet each. Tests pin both.
package sms

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// Limit is how many characters (runes) one SMS holds in lang (a language
// of wuyou.Langs; any other reads as the default, zh-CN).
func Limit(lang string) int {
	if lang == wuyou.LangEN {
		return 160
	}
	return 70
}

// Fits reports whether text fits one SMS in lang.
func Fits(lang, text string) bool { return utf8.RuneCountInString(text) <= Limit(lang) }

// Holding is how much of one unit a seafarer holds now: Remaining in the
// unit's own measure (seconds, bytes, SMS), ExpiresAt the earliest expiry
// among its grants (zero when unknown).
type Holding struct {
	Unit      string
	Remaining int64
	ExpiresAt time.Time
}

// Zone is where expiry dates are read: China Standard Time, the seafarers'
// home network's, which has no daylight saving, so a fixed offset is exact.
var Zone = time.FixedZone("CST", 8*3600)

// Balance is the text answer to "what do I have left?" for every unit in
// hs (in billing.Units order; none at all reads as 0 minutes) and the
// earliest expiry among them, e.g. "剩余 123 分钟 / 1.5 GB / 20 条短信，4月30日到期"
// or "Left: 123 min / 1.5 GB / 20 SMS, expires 30 Apr". It always fits one
// SMS: when it would not, it leaves out, in turn, units with nothing left,
// the date, then units from the last, whole words only; minutes stay.
func Balance(lang string, hs []Holding) string {
	w := wordsFor(lang)
	var parts []part
	var expires time.Time
	for _, u := range billing.Units {
		for _, h := range hs {
			if unitName(h.Unit) != u {
				continue
			}
			parts = append(parts, part{text: w.amount(u, h.Remaining), zero: h.Remaining <= 0})
			if !h.ExpiresAt.IsZero() && h.Remaining > 0 && (expires.IsZero() || h.ExpiresAt.Before(expires)) {
				expires = h.ExpiresAt
			}
		}
	}
	if len(parts) == 0 {
		parts = []part{{text: w.amount(billing.UnitSeconds, 0), zero: true}}
	}
	compose := func(ps []part, withDate bool) string {
		texts := make([]string, len(ps))
		for i, p := range ps {
			texts[i] = p.text
		}
		s := w.left + strings.Join(texts, " / ")
		if withDate && !expires.IsZero() {
			s += w.expires(expires)
		}
		return s
	}
	withDate := true
	s := compose(parts, withDate)
	if Fits(lang, s) {
		return s
	}
	if kept := nonZero(parts); len(kept) > 0 && len(kept) < len(parts) {
		parts = kept
		if s = compose(parts, withDate); Fits(lang, s) {
			return s
		}
	}
	withDate = false
	for s = compose(parts, withDate); !Fits(lang, s) && len(parts) > 1; s = compose(parts, withDate) {
		parts = parts[:len(parts)-1]
	}
	return s
}

// Kinds of notice, as quota notes name them.
const (
	KindLow       = "low"
	KindExhausted = "exhausted"
	KindExpiring  = "expiring"
	KindIssued    = "issued"
)

// Notice is a notification's text about one unit: kind is one of the Kind
// constants, amount what is left (low, expiring) or was granted (issued) in
// the unit's measure, date the day to name (zero: none): when what is left
// expires (low, expiring, issued), or, for exhausted, when more comes (the
// start of the next grant), e.g. "出海无忧提醒：通话剩余 20 分钟，4月30日到期",
// "Wuyou: 20 min of calls left, expires 30 Apr" or "出海无忧提醒：通话已用完，
// 5月1日起有新额度". It always fits one SMS (the date goes first when not).
func Notice(lang, kind, unit string, amount int64, date time.Time) string {
	w := wordsFor(lang)
	unit = unitName(unit)
	s := w.notice(kind, unit, amount)
	if !date.IsZero() {
		d := s + w.expires(date)
		if kind == KindExhausted {
			d = s + w.next(date)
		}
		if Fits(lang, d) {
			return d
		}
	}
	return s
}

// ---- words ----

type part struct {
	text string
	zero bool
}

func nonZero(ps []part) []part {
	var out []part
	for _, p := range ps {
		if !p.zero {
			out = append(out, p)
		}
	}
	return out
}

// unitName spells a unit out ("" is seconds, as quota's Go values have it).
func unitName(u string) string {
	if u == "" {
		return billing.UnitSeconds
	}
	return u
}

// words are one language's phrasing.
type words struct {
	left    string
	amount  func(unit string, n int64) string
	expires func(t time.Time) string
	// next names the day more comes (t, the start of a grant, is that day
	// itself, not the day before as an expiry is).
	next   func(t time.Time) string
	notice func(kind, unit string, n int64) string
}

func wordsFor(lang string) words {
	if lang == wuyou.LangEN {
		return english
	}
	return chinese
}

var chinese = words{
	left: "剩余 ",
	amount: func(unit string, n int64) string {
		switch unit {
		case billing.UnitBytes:
			return Volume(n)
		case billing.UnitSMS:
			return strconv.FormatInt(max(n, 0), 10) + " 条短信"
		}
		return strconv.FormatInt(Minutes(n), 10) + " 分钟"
	},
	expires: func(t time.Time) string {
		d := lastDay(t)
		return "，" + strconv.Itoa(int(d.Month())) + "月" + strconv.Itoa(d.Day()) + "日到期"
	},
	next: func(t time.Time) string {
		d := t.In(Zone)
		return "，" + strconv.Itoa(int(d.Month())) + "月" + strconv.Itoa(d.Day()) + "日起有新额度"
	},
	notice: func(kind, unit string, n int64) string {
		const brand = "出海无忧提醒："
		what, amount := "通话", strconv.FormatInt(Minutes(n), 10)+" 分钟"
		switch unit {
		case billing.UnitBytes:
			what, amount = "流量", Volume(n)
		case billing.UnitSMS:
			what, amount = "短信", strconv.FormatInt(max(n, 0), 10)+" 条"
		}
		switch kind {
		case KindExhausted:
			return brand + what + "已用完"
		case KindIssued:
			return brand + "已发放" + what + " " + amount
		}
		return brand + what + "剩余 " + amount
	},
}

var english = words{
	left: "Left: ",
	amount: func(unit string, n int64) string {
		switch unit {
		case billing.UnitBytes:
			return Volume(n)
		case billing.UnitSMS:
			return strconv.FormatInt(max(n, 0), 10) + " SMS"
		}
		return strconv.FormatInt(Minutes(n), 10) + " min"
	},
	expires: func(t time.Time) string {
		d := lastDay(t)
		return ", expires " + strconv.Itoa(d.Day()) + " " + d.Month().String()[:3]
	},
	next: func(t time.Time) string {
		d := t.In(Zone)
		return "; more from " + strconv.Itoa(d.Day()) + " " + d.Month().String()[:3]
	},
	notice: func(kind, unit string, n int64) string {
		const brand = "Wuyou: "
		what, amount := "calls", strconv.FormatInt(Minutes(n), 10)+" min"
		used := "call minutes are"
		switch unit {
		case billing.UnitBytes:
			what, amount, used = "data", Volume(n), "data is"
		case billing.UnitSMS:
			what, amount, used = "SMS", strconv.FormatInt(max(n, 0), 10), "SMS are"
		}
		switch kind {
		case KindExhausted:
			return brand + "your " + used + " used up"
		case KindIssued:
			if unit == billing.UnitSMS {
				return brand + amount + " SMS granted"
			}
			return brand + amount + " of " + what + " granted"
		}
		if unit == billing.UnitSMS {
			return brand + amount + " SMS left"
		}
		return brand + amount + " of " + what + " left"
	},
}

// Minutes is seconds in whole minutes, rounded down: what is left is never
// overstated.
func Minutes(seconds int64) int64 { return max(seconds, 0) / 60 }

// Volume is an amount of bytes as a phone shows it, 1024-based and rounded
// down: whole MB below 1 GB, else GB with one decimal ("512 MB", "1.5 GB").
func Volume(bytes int64) string {
	const mib, gib = 1 << 20, 1 << 30
	bytes = max(bytes, 0)
	if bytes < gib {
		return strconv.FormatInt(bytes/mib, 10) + " MB"
	}
	tenths := bytes % gib * 10 / gib
	return strconv.FormatInt(bytes/gib, 10) + "." + strconv.FormatInt(tenths, 10) + " GB"
}

// lastDay is the last day t still counts, in Zone: a grant that expires at
// midnight is used up to the day before (a month's grant expiring at
// 1 May 00:00 reads "30 Apr").
func lastDay(t time.Time) time.Time { return t.Add(-time.Second).In(Zone) }
