package web_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
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

func TestBrowser_UnionFindsASeafarerByCompanyAndNameOrNumberAndVoidsOnlyTheirGrant(t *testing.T) {
	s := mustStack(t)
	p := s.seedDemo(time.Now().Add(-time.Hour)) // 张伟, 李娜 and Wang Fang of the demo company, 300 minutes each
	// A fleet whose roster is longer than one page of the list: the seafarer
	// sought is the last one enrolled, on the second page.
	fleet := s.enrolFleet("Big Fleet Lines", 500)
	wang, _, err := s.crew.Enrol(context.Background(), fleet.ID, crew.Enrolment{BookNo: "W0000501", Name: "Wang Hai", Nationality: "CN", MSISDN: "+8613900000777"})
	must(t, err)
	s.issue(p, "wang-hai", quota.IssuanceTarget{SeafarerIDs: []string{wang.ID}})
	tb := s.openConsoleAsUnion(t, desktop)

	pickCompany := func(name, id string) {
		t.Helper()
		tb.eval(`document.getElementById('ops-company').value = ''`)
		tb.do(chromedp.SendKeys(chromedp.ID("ops-company"), name))
		tb.waitFor("the company suggested", `document.querySelector('#find-seafarer .pick[data-id="`+id+`"]') !== null`)
		tb.do(chromedp.Click(chromedp.CSS(`#find-seafarer .pick[data-id="` + id + `"]`)))
	}
	// offered types q and waits until exactly the seafarers want are offered.
	offered := func(q string, want ...string) {
		t.Helper()
		tb.eval(`document.getElementById('ops-find').value = ''`)
		tb.do(chromedp.SendKeys(chromedp.ID("ops-find"), q))
		tb.waitFor(fmt.Sprintf("%q to offer exactly %q", q, want),
			`[...document.querySelectorAll('#ops-found .pick')].map(b => b.dataset.seafarer).join(' ') === `+quote(strings.Join(want, " ")))
	}

	tb.do(chromedp.Click(chromedp.ID("tab-ops")))
	pickCompany("big fleet", fleet.ID)
	// "wang" is also in the demo company (Wang Fang): only the picked
	// company's crew is searched, in any case.
	offered("WANG", wang.ID)
	if got := tb.eval(`document.querySelector('#ops-found .pick').innerText`); !strings.Contains(got, "Wang Hai") || !strings.Contains(got, "+8613900000777") {
		t.Errorf("the choice reads %q, want the name and the MSISDN", got)
	}
	tb.do(chromedp.Click(chromedp.CSS(`#ops-found .pick[data-seafarer="` + wang.ID + `"]`)))
	tb.waitFor("Wang Hai's grants", `document.querySelector('#ops-grants-table button.void') !== null`)
	if got := tb.eval(`document.getElementById('ops-seafarer').value`); got != wang.ID {
		t.Errorf("choosing the seafarer put %q in the ID field, want %s", got, wang.ID)
	}
	if got := tb.text("ops-grants-of"); got != "Grants of Wang Hai (+8613900000777)" {
		t.Errorf("the grants are headed %q", got)
	}
	grant := tb.eval(`document.querySelector('#ops-grants-table tbody tr').dataset.grant`)
	tb.do(chromedp.Click(chromedp.CSS("#ops-grants-table button.void")))
	tb.do(chromedp.Click(chromedp.CSS("#ops-grants-table button.void")))
	tb.waitFor("the grant voided", `document.querySelector('#ops-grants-table tr[data-grant="`+grant+`"] .badge.voided') !== null`)
	if msg := tb.text("message"); !strings.Contains(msg, "Voided grant "+grant+": 300 minutes were left") {
		t.Errorf("message = %q", msg)
	}

	// The demo company's seafarer is found by part of her MSISDN; her grant,
	// and every other seafarer's, is as it was.
	pickCompany("cosco demo", s.company.ID)
	offered("+86 1380000 0002", s.seafarers[1].ID)
	tb.do(chromedp.Click(chromedp.CSS(`#ops-found .pick[data-seafarer="` + s.seafarers[1].ID + `"]`)))
	tb.waitFor("李娜's grants", `document.getElementById('ops-grants-of') !== null && document.getElementById('ops-grants-of').textContent.includes('李娜')`)
	if got := tb.eval(`[...document.querySelectorAll('#ops-grants-table .badge')].map(b => b.textContent).join(' ')`); got != "active" {
		t.Errorf("李娜's grants are %q, want one active", got)
	}
	ctx := context.Background()
	for _, sf := range s.seafarers {
		a, err := s.quota.Allowance(ctx, sf.ID)
		must(t, err)
		if len(a.Grants) != 1 || a.Grants[0].Status != "active" || a.RemainingSeconds != 300*60 {
			t.Errorf("%s (%s): %d grants, remaining %d s, want one active grant of 300 minutes untouched", sf.Name, sf.ID, len(a.Grants), a.RemainingSeconds)
		}
	}
	a, err := s.quota.Allowance(ctx, wang.ID)
	must(t, err)
	if len(a.Grants) != 1 || a.Grants[0].ID != grant || a.Grants[0].Status != "voided" || a.RemainingSeconds != 0 {
		t.Errorf("Wang Hai's grants after the void: %+v, remaining %d s", a.Grants, a.RemainingSeconds)
	}
	tb.screenshot("console-union-find-seafarer-desktop")

	tb.do(chromedp.Click(chromedp.ID("lang")))
	tb.waitFor("Chinese", `document.querySelector('#find-seafarer label span').textContent === '公司'`)
	if got := tb.text("ops-grants-of"); got != "李娜（+8613800000002）的套餐" {
		t.Errorf("in Chinese the grants are headed %q", got)
	}
	if got := tb.eval(`String(document.querySelectorAll('#ops-found .pick').length)`); got != "0" {
		t.Errorf("after the language switch %s seafarers are offered again, want the choice made to stay made", got)
	}
	tb.screenshot("console-union-find-seafarer-zh-desktop")
	tb.checkClean()
}
