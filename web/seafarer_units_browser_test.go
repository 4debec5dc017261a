package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// unitProgramme creates a programme whose packs hold amount of unit.
func (s *stack) unitProgramme(name, unit string, amount int64) *quota.Programme {
	s.t.Helper()
	now := time.Now().UTC()
	p, err := s.programmes.CreateProgramme(context.Background(), quota.ProgrammeInput{
		Name: name, Unit: unit, PackAmount: amount, ValidDays: 30, Priority: 10,
		BudgetPacks: 100, StartsAt: now.AddDate(0, -1, 0), EndsAt: now.AddDate(1, 0, 0),
	})
	must(s.t, err)
	return p
}

// use meters one data session (bytes > 0) or one SMS (bytes == 0) of sf
// abroad, rated as the built-in tariff does.
func (s *stack) use(sf *crew.Seafarer, id string, at time.Time, bytes int64) {
	s.t.Helper()
	ctx := context.Background()
	u := quota.Usage{
		SeafarerID: sf.ID, MSISDN: sf.MSISDN, Source: "urn:carrier:web-test", EventID: id,
		CallTime: at.UTC().Truncate(time.Second), VisitedCountry: "SG",
		OveragePrice: billing.Money{Minor: 0, Currency: "CNY"}, Increment: 1,
	}
	if bytes > 0 {
		u.Type, u.Unit, u.VolumeBytes, u.Billable = "carrier.usage.data", billing.UnitBytes, bytes, (bytes+1023)/1024*1024
	} else {
		u.Type, u.Unit, u.Billable = "carrier.usage.sms", billing.UnitSMS, 1
	}
	res, err := s.quota.Debit(ctx, u)
	must(s.t, err)
	entries := []quota.SeafarerEntry{{SeafarerID: sf.ID, Entry: res.Entry}}
	must(s.t, s.ledger.Append(ctx, entries))
	must(s.t, s.quota.Recorded(ctx, entries))
}

// requireTexts fails t for each of want that the texts of the elements
// matching css (their whitespace folded, one a line) lack.
func requireTexts(t *testing.T, tb *tab, what, css string, want ...string) {
	t.Helper()
	got := tb.eval(`[...document.querySelectorAll(` + quote(css) + `)].map(e => e.innerText.replace(/\s+/g, ' ')).join('\n')`)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// TestBrowser_SeafarerSeesDataAndSMSLeftBesideMinutes: a seafarer holding a
// 2 GB data pack and a 20-SMS pack besides the minutes sees, after a
// 300 MB session and two texts, 1.7 GB and 18 SMS left in their own card
// and each pack in its unit; the minutes card counts minutes only. A
// seafarer with minutes alone sees no data card. In Chinese the units read
// as a Chinese phone shows them.
func TestBrowser_SeafarerSeesDataAndSMSLeftBesideMinutes(t *testing.T) {
	s := mustStack(t)
	now := time.Now().UTC()
	effective := now.Add(-8 * time.Minute)
	s.seedDemo(effective) // 300 minutes each
	sf, other := s.seafarers[0], s.seafarers[1]
	data := s.unitProgramme("Data at sea", billing.UnitBytes, 2<<30)
	texts := s.unitProgramme("Texts home", billing.UnitSMS, 20)
	s.issue(data, "data", quota.IssuanceTarget{SeafarerIDs: []string{sf.ID}, EffectiveAt: &effective})
	s.issue(texts, "texts", quota.IssuanceTarget{SeafarerIDs: []string{sf.ID}, EffectiveAt: &effective})
	s.use(sf, "data-1", now.Add(-5*time.Minute), 300<<20)
	s.use(sf, "sms-1", now.Add(-4*time.Minute), 0)
	s.use(sf, "sms-2", now.Add(-3*time.Minute), 0)

	tb := mustTab(t, "en-GB", phone)
	tb.do(chromedp.Navigate(s.base + "/#token=" + s.token(token.RoleSeafarer, sf.ID, "")))
	tb.waitFor("the data card", `!document.getElementById('other-units-card').hidden`)
	if got := tb.text("remaining"); got != "300" {
		t.Errorf("minutes left = %q, want 300: data and SMS are not minutes", got)
	}
	requireTexts(t, tb, "the data and SMS card", "#other-units [data-unit]", "Data left 1.7 GB of 2 GB", "SMS left 18 SMS of 20 SMS")
	requireTexts(t, tb, "the packs", "#packs li",
		"Data pack of 2 GB", "1.7 GB / 2 GB", "Pack of 20 SMS", "18 SMS / 20 SMS", "Pack of 300 min", "300 of 300 min left")
	tb.screenshot("seafarer-units-en-phone")

	tb.checkClean()

	zh := mustTab(t, "zh-CN", phone)
	zh.do(chromedp.Navigate(s.base + "/#token=" + s.token(token.RoleSeafarer, sf.ID, "")))
	zh.waitFor("the data card in Chinese", `!document.getElementById('other-units-card').hidden && document.getElementById('other-units-title').textContent === '流量和短信'`)
	requireTexts(t, zh, "in Chinese the card", "#other-units [data-unit]", "剩余流量 1.7 GB 共 2 GB", "剩余短信 18 条 共 20 条")
	zh.screenshot("seafarer-units-zh-phone")
	zh.checkClean()

	tb2 := mustTab(t, "en-GB", phone)
	tb2.do(chromedp.Navigate(s.base + "/#token=" + s.token(token.RoleSeafarer, other.ID, "")))
	tb2.waitFor("the minutes", `document.getElementById('remaining').textContent === '300'`)
	if got := tb2.eval(`String(document.getElementById('other-units-card').hidden)`); got != "true" {
		t.Errorf("a seafarer with minutes only sees the data and SMS card (hidden = %s)", got)
	}
	tb2.checkClean()
}
