package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// openSession reserves requested of unit for a call of sf abroad, as the
// carrier's session API does (CONTRACT §7.3).
func (s *stack) openSession(sf *crew.Seafarer, id, unit string, requested int64) {
	s.t.Helper()
	typ := map[string]string{billing.UnitSeconds: "carrier.usage.voice", billing.UnitBytes: "carrier.usage.data"}[unit]
	_, err := s.quota.OpenSession(context.Background(), quota.SessionOpen{
		SessionID: id, SeafarerID: sf.ID, Requested: requested,
		Call: quota.SessionCall{MSISDN: sf.MSISDN, Type: typ, Unit: unit, CallTime: time.Now().UTC(), VisitedCountry: "SG"},
	})
	must(s.t, err)
}

// TestBrowser_SeafarerInACallSeesWhatItHoldsBesideTheBalance: while the
// carrier holds 2 minutes for a call and 50 MB for a data session, the
// seafarer's page says so next to each balance, in English and Chinese;
// the balance itself still counts them (they are not used yet). A seafarer
// in no call sees no such line.
func TestBrowser_SeafarerInACallSeesWhatItHoldsBesideTheBalance(t *testing.T) {
	s := mustStack(t)
	effective := time.Now().UTC().Add(-8 * time.Minute)
	s.seedDemo(effective) // 300 minutes each
	sf, other := s.seafarers[0], s.seafarers[1]
	data := s.unitProgramme("Data at sea", billing.UnitBytes, 2<<30)
	s.issue(data, "data", quota.IssuanceTarget{SeafarerIDs: []string{sf.ID}, EffectiveAt: &effective})
	s.openSession(sf, "call-1", billing.UnitSeconds, 120)
	s.openSession(sf, "data-1", billing.UnitBytes, 50<<20)

	tb := mustTab(t, "en-GB", phone)
	tb.do(chromedp.Navigate(s.base + "/#token=" + s.token(token.RoleSeafarer, sf.ID, "")))
	tb.waitFor("the call's line", `!document.getElementById('in-call').hidden`)
	requireTexts(t, tb, "the minutes card", "#remaining, #in-call", "300", "In a call: 2 min reserved")
	requireTexts(t, tb, "the data card", "#other-units [data-unit]", "Data left 2 GB of 2 GB In use: 50 MB reserved")
	tb.screenshot("seafarer-in-call-en-phone")
	tb.checkClean()

	zh := mustTab(t, "zh-CN", phone)
	zh.do(chromedp.Navigate(s.base + "/#token=" + s.token(token.RoleSeafarer, sf.ID, "")))
	zh.waitFor("the call's line in Chinese", `document.getElementById('in-call').textContent.indexOf('通话中') === 0`)
	requireTexts(t, zh, "in Chinese the minutes card", "#in-call", "通话中：已预留 2 分钟")
	requireTexts(t, zh, "in Chinese the data card", "#other-units [data-unit]", "使用中：已预留 50 MB")
	zh.checkClean()

	idle := mustTab(t, "en-GB", phone)
	idle.do(chromedp.Navigate(s.base + "/#token=" + s.token(token.RoleSeafarer, other.ID, "")))
	idle.waitFor("the minutes", `document.getElementById('remaining').textContent === '300'`)
	if got := idle.eval(`String(document.getElementById('in-call').hidden)`); got != "true" {
		t.Errorf("a seafarer in no call sees the call's line (hidden = %s)", got)
	}
	idle.checkClean()
}
