package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/token"
)

// Union staff's part of the console (console-union.js): the overview it
// opens on, companies found by name, operations.

// unionScene is the demo data with one call covered by a pack today and
// one call of another company's seafarer, who holds no pack: overage.
func unionScene(t *testing.T) (*stack, *crew.Company) {
	t.Helper()
	s := mustStack(t)
	s.seedDemo(time.Now().Add(-time.Hour))
	s.call(s.seafarers[0], "cdr-covered", time.Now(), 125, "SG") // 3 minutes covered
	ctx := context.Background()
	other, err := s.crew.CreateCompany(ctx, "Overage Lines 超额航运", "REG-OVERAGE")
	must(t, err)
	sf, _, err := s.crew.Enrol(ctx, other.ID, crew.Enrolment{BookNo: "O0000001", Name: "Zhao Lei", Nationality: "CN", MSISDN: "+8613900000099"})
	must(t, err)
	s.call(sf, "cdr-overage", time.Now(), 100, "JP") // 2 minutes of overage
	return s, other
}

func (s *stack) openConsoleAsUnion(t *testing.T, vp viewport) *tab {
	t.Helper()
	tb := mustTab(t, "en-US", vp)
	tb.do(chromedp.Navigate(s.base + "/console#token=" + s.token(token.RoleUnion, "union-staff-1", "")))
	tb.waitFor("the console", `!document.getElementById('view').hidden`)
	return tb
}

func TestBrowser_UnionOpensOnAnOverviewOfProgrammesTheMonthByDayAndTheCompaniesWithMostOverage(t *testing.T) {
	s, other := unionScene(t)
	tb := s.openConsoleAsUnion(t, desktop)

	tb.waitFor("the overview's figures", `document.querySelector('#ov-covered b') !== null && document.getElementById('ov-svg') !== null`)
	if tb.eval(`document.getElementById('tab-overview').getAttribute('aria-selected')`) != "true" || tb.eval(`String(document.getElementById('panel-overview').hidden)`) != "false" {
		t.Fatal("the console did not open on the overview")
	}
	for id, want := range map[string]string{"ov-covered": "3", "ov-overage": "2", "ov-calls": "2"} {
		if got := tb.eval(`document.querySelector('#` + id + ` b').textContent`); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if got := tb.eval(`(() => { const g = document.querySelector('#ov-svg g.day[data-date="` + today + `"]'); return g ? g.dataset.covered + '/' + g.dataset.overage : 'none'; })()`); got != "3/2" {
		t.Errorf("today's bar (covered/overage minutes) = %s, want 3/2", got)
	}
	days := tb.eval(`String(document.querySelectorAll('#ov-svg g.day').length)`)
	if want := time.Date(time.Now().UTC().Year(), time.Now().UTC().Month()+1, 0, 0, 0, 0, 0, time.UTC).Day(); days != strconv.Itoa(want) {
		t.Errorf("the chart has %s days, want %d", days, want)
	}
	if got := tb.eval(`document.querySelector('#ov-top-table tbody tr').dataset.company`); got != other.ID {
		t.Errorf("the company with most overage = %s, want %s", got, other.ID)
	}
	if got := tb.text("ov-top"); !strings.Contains(got, "Overage Lines 超额航运") {
		t.Errorf("the overage table does not name the company: %.200s", got)
	}
	row := tb.eval(`document.querySelector('#ov-programmes-table tbody tr').innerText`)
	for _, want := range []string{"出海无忧 2026 Q4 welfare pack", "1,000", "3", "900"} {
		if !strings.Contains(row, want) {
			t.Errorf("the programme's row %q lacks %q (name, budget, packs issued, minutes granted)", row, want)
		}
	}
	if got := tb.eval(`document.querySelector('#ov-programmes-table tbody tr td.used').textContent`); got != "3" {
		t.Errorf("minutes used = %q, want 3", got)
	}
	tb.screenshot("console-union-overview-desktop")
	tb.resize(phone)
	tb.screenshot("console-union-overview-phone")
	tb.do(chromedp.Click(chromedp.ID("lang")))
	tb.waitFor("Chinese", `document.getElementById('tab-overview').textContent === '概览'`)
	tb.screenshot("console-union-overview-zh-phone")
	tb.checkClean()
}

func TestBrowser_UnionCreatesACompanySeesItInTheListAndPicksItByName(t *testing.T) {
	s := mustStack(t)
	s.seedDemo(time.Now().Add(-time.Hour))
	tb := s.openConsoleAsUnion(t, desktop)

	tb.do(
		chromedp.Click(chromedp.ID("tab-companies")),
		chromedp.SetValue(chromedp.ID("co-name"), "Gamma Lines 伽马航运"),
		chromedp.SetValue(chromedp.ID("co-reg"), "91310000GAMMA0001"),
		chromedp.Click(chromedp.CSS("#company-form button[type=submit]")),
	)
	tb.waitFor("the new company in the list", `[...document.querySelectorAll('#co-rows tr')].some(r => r.innerText.includes('Gamma Lines 伽马航运'))`)
	id := tb.eval(`[...document.querySelectorAll('#co-rows tr')].find(r => r.innerText.includes('Gamma Lines')).dataset.company`)
	if !strings.HasPrefix(id, "co_") {
		t.Fatalf("the new company's row has id %q", id)
	}
	if msg := tb.text("message"); !strings.Contains(msg, "Created company Gamma Lines 伽马航运 ("+id+")") {
		t.Errorf("message = %q", msg)
	}
	tb.screenshot("console-union-companies-desktop")

	// The crew tab's company is picked by typing part of its name.
	tb.do(
		chromedp.Click(chromedp.ID("tab-crew")),
		chromedp.SendKeys(chromedp.ID("crew-company"), "gamma"),
	)
	tb.waitFor("a suggestion", `document.querySelector('.picks .pick[data-id="`+id+`"]') !== null`)
	tb.do(chromedp.Click(chromedp.CSS(`.picks .pick[data-id="` + id + `"]`)))
	if got := tb.eval(`document.getElementById('crew-company').value`); got != id {
		t.Fatalf("picking the company put %q in the field, want %s", got, id)
	}
	tb.do(chromedp.Click(chromedp.CSS("#crew-form button[type=submit]")))
	tb.waitFor("its (empty) crew", `!document.getElementById('crew-result').hidden && document.getElementById('crew-rows').innerText.includes('No seafarers match.')`)
	tb.checkClean()
}

func TestBrowser_UnionVoidsAGrantAndClosesLastMonthEachAfterConfirming(t *testing.T) {
	s := mustStack(t)
	s.seedDemo(time.Now().Add(-time.Hour))
	tb := s.openConsoleAsUnion(t, desktop)

	tb.do(
		chromedp.Click(chromedp.ID("tab-ops")),
		chromedp.SetValue(chromedp.ID("ops-seafarer"), s.seafarers[1].ID),
		chromedp.Click(chromedp.CSS("#grants-form button[type=submit]")),
	)
	tb.waitFor("the seafarer's grants", `document.querySelector('#ops-grants-table button.void') !== null`)
	tb.do(chromedp.Click(chromedp.CSS("#ops-grants-table button.void")))
	if got := tb.eval(`document.querySelector('#ops-grants-table button.void').textContent`); got != "Confirm void" {
		t.Fatalf("the first click should ask to confirm, the button says %q", got)
	}
	tb.do(chromedp.Click(chromedp.CSS("#ops-grants-table button.void")))
	tb.waitFor("the grant voided", `document.querySelector('#ops-grants-table .badge.voided') !== null`)
	if msg := tb.text("message"); !strings.Contains(msg, "300 minutes were left") {
		t.Errorf("message = %q", msg)
	}

	// Last month has ended: it is closed after a second, confirming click.
	now := time.Now().UTC()
	last := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	tb.do(
		chromedp.SetValue(chromedp.ID("ops-period"), last),
		chromedp.Click(chromedp.CSS("#close-form button[type=submit]")),
	)
	if got := tb.eval(`document.querySelector('#close-form button[type=submit]').textContent`); got != "Confirm: close "+last {
		t.Fatalf("the first click should ask to confirm, the button says %q", got)
	}
	tb.do(chromedp.Click(chromedp.CSS("#close-form button[type=submit]")))
	tb.waitFor("the period closed", `document.getElementById('ops-closed') !== null`)
	if got := tb.text("ops-closed"); got != "Period "+last+" is Closed." {
		t.Errorf("close result = %q", got)
	}
	tb.screenshot("console-union-operations-desktop")
}

func TestBrowser_UnionPicksAProgrammeByNameAndItsStatementNamesTheSeafarersAndCompanies(t *testing.T) {
	s, _ := unionScene(t)
	tb := s.openConsoleAsUnion(t, desktop)

	tb.do(
		chromedp.Click(chromedp.ID("tab-statements")),
		chromedp.SetValue(chromedp.ID("st-kind"), "programme"),
		chromedp.SendKeys(chromedp.ID("st-id"), "q4 WELFARE"),
	)
	tb.waitFor("the programme suggested", `document.querySelector('#panel-statements .picks .pick') !== null`)
	tb.do(chromedp.Click(chromedp.CSS("#panel-statements .picks .pick")))
	if got := tb.eval(`document.getElementById('st-id').value`); !strings.HasPrefix(got, "pg_") {
		t.Fatalf("picking the programme put %q in the payer field", got)
	}
	tb.do(chromedp.Click(chromedp.CSS("#statement-form button[type=submit]")))
	tb.waitFor("the statement", `document.getElementById('st-lines') !== null`)
	if got := tb.text("st-heading"); !strings.HasPrefix(got, "出海无忧 2026 Q4 welfare pack · programme:pg_") {
		t.Errorf("statement heading = %q, want the programme's name first", got)
	}
	lines := tb.text("st-lines")
	for _, want := range []string{s.seafarers[0].ID, "张伟", "COSCO Demo Shipping 中远示范航运"} {
		if !strings.Contains(lines, want) {
			t.Errorf("the statement's lines lack %q: %.300s", want, lines)
		}
	}
	tb.screenshot("console-union-statement-names-desktop")
	tb.checkClean()
}
