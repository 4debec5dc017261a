package web_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou/token"
)

// The console's audit trail (console-audit.js): union staff see who did
// what, a company only what its own people did; a summary holding markup is
// shown as text.
func TestBrowser_TheAuditTrailShowsWhoDidWhatAndACompanyOnlyItsOwn(t *testing.T) {
	s := mustStack(t)
	s.seedDemo(time.Now().Add(-time.Hour))
	post := func(tok, path, body string) {
		t.Helper()
		req, err := http.NewRequest("POST", s.base+path, bytes.NewBufferString(body))
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		must(t, err)
		_ = res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("POST %s: %d", path, res.StatusCode)
		}
	}
	union := s.token(token.RoleUnion, "union-staff-1", "")
	manager := s.token(token.RoleCompany, "crew-manager-1", s.company.ID)
	post(union, "/v1/companies", `{"name":"<img src=x onerror=alert(1)> Lines","registration_no":"REG-AUDIT"}`)
	post(manager, "/v1/companies/"+s.company.ID+"/seafarers", `{"seafarer_book_no":"A0000001","name":"Liu Yang","msisdn":"+8613800000077"}`)

	tb := s.openConsoleAsUnion(t, desktop)
	tb.do(chromedp.Click(chromedp.ID("tab-audit")))
	tb.waitFor("two audit records", `document.querySelectorAll('#au-rows tr[data-audit]').length === 2`)
	rows := tb.eval(`document.getElementById('au-rows').innerText`)
	for _, want := range []string{"union-staff-1", "company.create", "crew-manager-1 · company · " + s.company.ID, "seafarer.enrol", "<img src=x onerror=alert(1)> Lines"} {
		if !strings.Contains(rows, want) {
			t.Errorf("the audit table lacks %q:\n%s", want, rows)
		}
	}
	if got := tb.eval(`String(document.querySelectorAll('#au-rows img').length)`); got != "0" {
		t.Errorf("a summary's markup became %s elements", got)
	}

	tb.do(chromedp.SendKeys(chromedp.ID("au-actor"), "crew-manager-1"), chromedp.Click(chromedp.CSS("#audit-form button[type=submit]")))
	tb.waitFor("the manager's record only", `document.querySelectorAll('#au-rows tr[data-audit]').length === 1`)
	tb.screenshot("console-audit-desktop")

	company := mustTab(t, "en-US", desktop)
	company.do(chromedp.Navigate(s.base + "/console#token=" + manager))
	company.waitFor("the console", `!document.getElementById('view').hidden`)
	company.do(chromedp.Click(chromedp.ID("tab-audit")))
	company.waitFor("the company's own record", `document.querySelectorAll('#au-rows tr[data-audit]').length === 1`)
	if got := company.text("au-rows"); strings.Contains(got, "union-staff-1") {
		t.Errorf("a company sees union staff's records:\n%s", got)
	}
}
