package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// monthlyCrew enrols a company with two seafarers signed on 40 days ago
// and one who signed on 90 days ago and off 20 days ago.
func (s *stack) monthlyCrew(name string) (c *crew.Company, signedOn []*crew.Seafarer, signedOff *crew.Seafarer) {
	s.t.Helper()
	ctx := context.Background()
	day := func(daysAgo int) string { return time.Now().AddDate(0, 0, -daysAgo).UTC().Format(time.DateOnly) }
	c, err := s.crew.CreateCompany(ctx, name, "REG-MONTHLY-1")
	must(s.t, err)
	for i, e := range []crew.Enrolment{
		{BookNo: "M0000001", Name: "Ann Reyes", Nationality: "PH", MSISDN: "+639170000101", VesselIMO: "9074729", SignOn: day(40)},
		{BookNo: "M0000002", Name: "陈刚", Nationality: "CN", MSISDN: "+8613800000102", VesselIMO: "9074729", SignOn: day(40)},
		{BookNo: "M0000003", Name: "Cai Lun", Nationality: "CN", MSISDN: "+8613800000103", VesselIMO: "9074729", SignOn: day(90)},
	} {
		sf, _, err := s.crew.Enrol(ctx, c.ID, e)
		must(s.t, err)
		if i < 2 {
			signedOn = append(signedOn, sf)
			continue
		}
		off, status := day(20), crew.StatusSignedOff
		signedOff, err = s.crew.UpdateSeafarer(ctx, sf.ID, crew.SeafarerUpdate{SignOff: &off, Status: &status})
		must(s.t, err)
	}
	return c, signedOn, signedOff
}

// grantsOf is sf's grants of programme p in the hot metering state.
func (s *stack) grantsOf(sf *crew.Seafarer, p string) []*quota.Grant {
	s.t.Helper()
	all, err := s.quota.Grants(context.Background(), sf.ID)
	must(s.t, err)
	var of []*quota.Grant
	for _, g := range all {
		if g.ProgrammeID == p {
			of = append(of, g)
		}
	}
	return of
}

// chooseMonthly turns the new-programme form to a monthly programme.
func chooseMonthly(tb *tab) {
	tb.t.Helper()
	tb.do(
		chromedp.Click(chromedp.ID("tab-programmes")),
		chromedp.Click(chromedp.CSS(`input[name="prog-kind"][value="monthly"]`)),
	)
	tb.waitFor("the monthly fields", `!document.getElementById('prog-audience').hidden && document.getElementById('prog-days-field').hidden`)
}

// Union staff pick "monthly, while signed on" (valid days give way to the
// audience, rollover and time zone), pick the company by name and create
// the programme; it shows as recurring with its audience, time zone and
// rollover. The sweep gives this month's grant (120 min, to the month's
// end) to the company's two signed-on seafarers and none to the one who
// signed off, and the programme, looked up again and in the overview's
// list, counts this month's 2 packs against its budget of 10 a month. In
// Chinese too.
func TestBrowser_UnionCreatesAMonthlyProgrammeAndOnlySignedOnCrewGetTheMonthsGrant(t *testing.T) {
	s := mustStack(t)
	company, signedOn, signedOff := s.monthlyCrew("Pacific Monthly Lines 太平洋")
	tb := mustTab(t, "en-US", desktop)
	tb.do(chromedp.Navigate(s.base + "/console#token=" + s.token(token.RoleUnion, "union-staff-1", "")))
	tb.waitFor("the console", `!document.getElementById('view').hidden`)

	chooseMonthly(tb)
	if got := tb.eval(`document.getElementById('prog-tz').value`); got != quota.DefaultTimeZone {
		t.Errorf("time zone defaults to %q, want %s", got, quota.DefaultTimeZone)
	}
	if got := tb.text("prog-budget-label"); got != "Budget in packs a month (0 = unlimited)" {
		t.Errorf("the budget reads %q for a monthly programme", got)
	}
	if tb.eval(`String(document.getElementById('prog-days').disabled)`) != "true" {
		t.Error("valid days is hidden but would still be sent")
	}
	// The audience's company is found by name with the console's company picker.
	tb.do(
		chromedp.SetValue(chromedp.ID("prog-name"), "Monthly hour at sea"),
		chromedp.SetValue(chromedp.ID("prog-minutes"), "120"),
		chromedp.SetValue(chromedp.ID("prog-budget"), "10"),
		chromedp.SetValue(chromedp.ID("prog-rollover"), "30"),
		chromedp.SendKeys(chromedp.ID("prog-company"), "Pacific"),
	)
	tb.waitFor("the company to pick", `!!document.querySelector('#prog-company-field .pick[data-id="`+company.ID+`"]')`)
	tb.do(chromedp.Click(chromedp.CSS(`#prog-company-field .pick[data-id="` + company.ID + `"]`)))
	if got := tb.eval(`document.getElementById('prog-company').value`); got != company.ID {
		t.Fatalf("picking the company put %q in the field, want %s", got, company.ID)
	}
	tb.do(chromedp.Click(chromedp.CSS("#programme-form button[type=submit]")))
	tb.waitFor("the new monthly programme", `!!document.getElementById('prog-recurring')`)
	programmeID := tb.eval(`document.getElementById('programme-id').value`)

	stored, err := s.programmes.Programme(context.Background(), programmeID)
	must(t, err)
	want := quota.Recurrence{Every: quota.EveryMonth, While: quota.WhileSignedOn, RolloverMax: 30 * 60, TimeZone: quota.DefaultTimeZone}
	if stored.Recurrence == nil || *stored.Recurrence != want || stored.CompanyID != company.ID || stored.VesselIMO != "" || stored.All ||
		stored.PackSeconds != 7200 || stored.BudgetPacks != 10 || stored.ValidDays != 0 {
		t.Fatalf("stored programme: %+v, recurrence %+v", stored, stored.Recurrence)
	}
	if got := tb.text("prog-recurring"); got != "Monthly, while signed on" {
		t.Errorf("recurring badge %q", got)
	}
	if got := tb.text("prog-audience-text"); got != "Crew of Pacific Monthly Lines 太平洋 ("+company.ID+")" {
		t.Errorf("audience %q", got)
	}
	if got := tb.text("prog-recurrence"); !strings.Contains(got, "Asia/Shanghai") || !strings.Contains(got, "up to 30 unused minutes") {
		t.Errorf("recurrence %q", got)
	}
	if got := tb.eval(`document.querySelector('#prog-month b').textContent`); got != "0 / 10" {
		t.Errorf("this month's packs before the sweep = %q, want 0 / 10", got)
	}

	// The monthly issue, as wuyoud runs it.
	if rep := s.sweep(); rep.Programmes != 1 || rep.Issued != 2 || rep.Announced != 2 {
		t.Errorf("sweep: %+v, want 1 programme and 2 grants issued and announced", rep)
	}
	loc, err := time.LoadLocation(quota.DefaultTimeZone)
	must(t, err)
	now := time.Now().In(loc)
	monthEnd := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, loc)
	period := now.Format("2006-01")
	for _, sf := range signedOn {
		gs := s.grantsOf(sf, programmeID)
		if len(gs) != 1 || gs[0].GrantedSeconds != 7200 || gs[0].RemainingSeconds != 7200 || !gs[0].ExpiresAt.Equal(monthEnd) || !gs[0].ActiveAt(time.Now()) {
			t.Errorf("%s (signed on) holds %s, want one active 7200 s grant to %s", sf.Name, describe(gs), monthEnd)
		}
	}
	if gs := s.grantsOf(signedOff, programmeID); len(gs) != 0 {
		t.Errorf("%s signed off and still got %s", signedOff.Name, describe(gs))
	}
	if rep := s.sweep(); rep.Issued != 0 {
		t.Errorf("a second sweep issued %d grants more", rep.Issued)
	}

	tb.do(chromedp.Click(chromedp.CSS("#programme-lookup button[type=submit]")))
	tb.waitFor("this month's packs", `document.querySelector('#prog-month b').textContent === '2 / 10'`)
	if got := tb.eval(`document.querySelector('#prog-month span').textContent`); got != "Packs issued in "+period {
		t.Errorf("this month's figure is labelled %q", got)
	}
	tb.screenshot("console-union-monthly-programme-desktop")

	tb.do(chromedp.Click(chromedp.ID("tab-overview")), chromedp.Click(chromedp.ID("ov-refresh")))
	row := `document.querySelector('#ov-programmes-table tr[data-programme="` + programmeID + `"]')`
	tb.waitFor("the programme in the overview", `!!`+row+` && `+row+`.dataset.recurring === 'month'`)
	if got := tb.eval(row + `.innerText.replace(/\s+/g, ' ')`); !strings.Contains(got, "Monthly, while signed on Crew of Pacific Monthly Lines 太平洋") ||
		!strings.Contains(got, "10 a month") || !strings.Contains(got, "2 in "+period+", 2 in all") {
		t.Errorf("overview row: %q", got)
	}

	tb.do(chromedp.Click(chromedp.ID("lang")), chromedp.Click(chromedp.ID("tab-programmes")))
	tb.waitFor("Chinese", `document.getElementById('prog-recurring').textContent === '在船期间每月发放'`)
	if got := tb.text("prog-audience-text"); got != "Pacific Monthly Lines 太平洋 ("+company.ID+") 的船员" {
		t.Errorf("zh-CN audience %q", got)
	}
	if got := tb.text("prog-budget-label"); got != "每月预算套餐数（0 为不限）" {
		t.Errorf("zh-CN monthly budget label %q", got)
	}
	tb.screenshot("console-union-monthly-programme-zh-desktop")
	tb.resize(phone)
	tb.screenshot("console-union-monthly-programme-zh-phone")
}

// A negative rollover is stopped by the form itself; what only the API
// can judge (a time zone that does not exist, an IMO number whose check
// digit is wrong) comes back as a 400 whose field errors show next to
// their fields and in the form's message, and nothing is created. Put
// right, the programme is created and the marks go.
func TestBrowser_AMonthlyProgrammeTheAPIRefusesShowsItsFieldErrorsNextToTheFields(t *testing.T) {
	s := mustStack(t)
	tb := mustTab(t, "en-US", desktop)
	tb.do(chromedp.Navigate(s.base + "/console#token=" + s.token(token.RoleUnion, "union-staff-1", "")))
	tb.waitFor("the console", `!document.getElementById('view').hidden`)
	// The browser logs the refused request as an error: the one this test
	// makes on purpose is not a problem of the page.
	t.Cleanup(func() { tb.forgetProblems("status of 400 (Bad Request) " + s.base + "/v1/programmes") })
	chooseMonthly(tb)
	tb.do(
		chromedp.Click(chromedp.CSS(`input[name="prog-audience"][value="vessel"]`)),
		chromedp.SetValue(chromedp.ID("prog-name"), "Vessel monthly"),
		chromedp.SetValue(chromedp.ID("prog-rollover"), "-5"),
	)
	tb.waitFor("the vessel field", `!document.getElementById('prog-vessel-field').hidden && document.getElementById('prog-company-field').hidden`)
	tb.do(chromedp.SetValue(chromedp.ID("prog-vessel"), "9074728"))
	if got := tb.eval(`String(!document.getElementById('programme-form').checkValidity() && document.getElementById('prog-rollover').validity.rangeUnderflow)`); got != "true" {
		t.Errorf("the form lets a negative rollover through: %s", got)
	}

	tb.do(
		chromedp.SetValue(chromedp.ID("prog-rollover"), "30"),
		chromedp.SetValue(chromedp.ID("prog-tz"), "Mars/Olympus_Mons"),
		chromedp.Click(chromedp.CSS("#programme-form button[type=submit]")),
	)
	tb.waitFor("the API's field errors", `document.querySelectorAll('#programme-form .field-error').length === 2`)
	for field, input := range map[string]string{"recurrence.time_zone": "prog-tz", "vessel_imo": "prog-vessel"} {
		note := tb.eval(`(document.querySelector('#programme-form .field-error[data-field="` + field + `"]') || {}).textContent || ''`)
		if note == "" {
			t.Errorf("no error next to %s", input)
			continue
		}
		if got := tb.eval(`document.getElementById('` + input + `').closest('label').textContent`); !strings.Contains(got, note) {
			t.Errorf("the %s error %q is not beside its field: %q", field, note, got)
		}
		if got := tb.eval(`document.getElementById('` + input + `').getAttribute('aria-invalid') || ''`); got != "true" {
			t.Errorf("%s is not marked invalid", input)
		}
		if got := tb.text("message"); !strings.Contains(got, field+": "+note) {
			t.Errorf("the form's message lacks %s: %q", field, got)
		}
	}
	if got := tb.eval(`document.querySelector('#prog-vessel-field .field-error').textContent`); !strings.Contains(got, "IMO") {
		t.Errorf("vessel error %q", got)
	}
	if ps, _, err := s.programmes.Programmes(context.Background(), wuyou.NameFilter{Limit: 10}); err != nil || len(ps) != 0 {
		t.Errorf("a refused programme was stored: %v %v", ps, err)
	}
	tb.screenshot("console-union-monthly-programme-errors-desktop")

	tb.do(
		chromedp.SetValue(chromedp.ID("prog-tz"), "Asia/Manila"),
		chromedp.SetValue(chromedp.ID("prog-vessel"), "9074729"),
		chromedp.Click(chromedp.CSS("#programme-form button[type=submit]")),
	)
	tb.waitFor("the programme", `!!document.getElementById('prog-recurring')`)
	if got := tb.eval(`String(document.querySelectorAll('#programme-form .field-error, #programme-form [aria-invalid]').length)`); got != "0" {
		t.Errorf("%s error marks stay after the programme was created", got)
	}
	if got := tb.text("prog-audience-text"); got != "Crew of vessel IMO 9074729" {
		t.Errorf("audience %q", got)
	}
	if got := tb.text("prog-recurrence"); !strings.Contains(got, "Asia/Manila") {
		t.Errorf("recurrence %q", got)
	}
}

func describe(gs []*quota.Grant) string {
	var b strings.Builder
	b.WriteString("[")
	for _, g := range gs {
		b.WriteString(" " + g.ID + " " + g.Status + " " + g.ExpiresAt.Format(time.RFC3339))
	}
	return b.String() + " ]"
}
