package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// choose picks value in the select id as a person does: the page hears
// the change.
func choose(tb *tab, id, value string) {
	tb.t.Helper()
	tb.eval(`(function () { var s = document.getElementById(` + quote(id) + `); s.value = ` + quote(value) +
		`; s.dispatchEvent(new Event('change', { bubbles: true })); return s.value; })()`)
	if got := tb.eval(`document.getElementById(` + quote(id) + `).value`); got != value {
		tb.t.Fatalf("%s holds %q, want %q", id, got, value)
	}
}

// Union staff choose what a programme's packs hold (CONTRACT §7.2). A
// monthly data programme typed as 2 GB a pack, 1 GB of rollover and an
// alert at 200 MB left is stored in bytes (1 GB = 1024³ bytes, as the
// phone page counts) with that one threshold instead of the 20% rule,
// and the programme view shows it in GB and MB, in Chinese too. A
// one-off programme of 20 SMS is stored in SMS with the default
// threshold, sent as nothing.
func TestBrowser_UnionCreatesDataAndSMSProgrammesInTheirUnits(t *testing.T) {
	s := mustStack(t)
	tb := mustTab(t, "en-US", desktop)
	tb.do(chromedp.Navigate(s.base + "/console#token=" + s.token(token.RoleUnion, "union-staff-1", "")))
	tb.waitFor("the console", `!document.getElementById('view').hidden`)

	chooseMonthly(tb)
	tb.do(chromedp.Click(chromedp.CSS(`input[name="prog-audience"][value="all"]`)))
	choose(tb, "prog-unit", "bytes")
	tb.waitFor("the data fields", `!document.getElementById('prog-pack-scale').hidden && !document.getElementById('prog-rollover-scale').hidden && !document.getElementById('prog-low-scale').hidden`)
	for id, want := range map[string]string{"prog-pack-label": "Data per pack", "prog-rollover-label": "Most data carried over to the next month"} {
		if got := tb.text(id); got != want {
			t.Errorf("%s reads %q for data, want %q", id, got, want)
		}
	}
	tb.do(
		chromedp.SetValue(chromedp.ID("prog-name"), "Monthly data at sea"),
		chromedp.SetValue(chromedp.ID("prog-minutes"), "2"),
		chromedp.SetValue(chromedp.ID("prog-rollover"), "1"),
		chromedp.SetValue(chromedp.ID("prog-low-remaining"), "200"),
	)
	choose(tb, "prog-pack-scale", "GB")
	choose(tb, "prog-rollover-scale", "GB")
	choose(tb, "prog-low-scale", "MB")
	tb.do(chromedp.Click(chromedp.CSS("#programme-form button[type=submit]")))
	tb.waitFor("the new data programme", `!!document.getElementById('prog-unit-badge')`)
	dataID := tb.eval(`document.getElementById('programme-id').value`)

	stored, err := s.programmes.Programme(context.Background(), dataID)
	must(t, err)
	// PackSeconds holds the pack's amount in the programme's unit.
	if stored.Unit != "bytes" || stored.PackSeconds != 2147483648 || stored.Recurrence == nil || stored.Recurrence.RolloverMax != 1073741824 ||
		len(stored.NotifyAt) != 1 || stored.NotifyAt[0] != (quota.Threshold{Remaining: 209715200}) {
		t.Fatalf("stored data programme: %+v, recurrence %+v", stored, stored.Recurrence)
	}
	if got := tb.text("prog-unit-badge"); got != "Data" {
		t.Errorf("unit badge %q", got)
	}
	if got := tb.text("prog-pack"); !strings.Contains(got, "2 GB") {
		t.Errorf("pack %q does not show 2 GB", got)
	}
	if got := tb.text("prog-recurrence"); !strings.Contains(got, "up to 1 GB unused") {
		t.Errorf("recurrence %q", got)
	}
	if got := tb.text("prog-notify"); got != "Low-balance alerts: at 200 MB left" {
		t.Errorf("thresholds %q", got)
	}
	tb.screenshot("console-union-data-programme-desktop")

	tb.do(chromedp.Click(chromedp.ID("lang")))
	tb.waitFor("Chinese", `document.getElementById('prog-unit-badge').textContent === '流量'`)
	if got := tb.text("prog-notify"); got != "余量提醒：剩余 200 MB 时" {
		t.Errorf("zh-CN thresholds %q", got)
	}
	if got := tb.text("prog-pack-label"); got != "每个套餐流量" {
		t.Errorf("zh-CN pack label %q", got)
	}
	tb.do(chromedp.Click(chromedp.ID("lang")))
	tb.waitFor("English", `document.getElementById('prog-unit-badge').textContent === 'Data'`)

	// A one-off programme of 20 SMS, thresholds left empty.
	tb.do(chromedp.Click(chromedp.CSS(`input[name="prog-kind"][value="once"]`)))
	tb.waitFor("the one-off fields", `!document.getElementById('prog-days-field').hidden`)
	choose(tb, "prog-unit", "sms")
	tb.waitFor("the SMS fields", `document.getElementById('prog-pack-scale').hidden && document.getElementById('prog-pack-label').textContent === 'SMS per pack'`)
	tb.do(
		chromedp.SetValue(chromedp.ID("prog-name"), "SMS home"),
		chromedp.SetValue(chromedp.ID("prog-minutes"), "20"),
		chromedp.SetValue(chromedp.ID("prog-low-remaining"), ""),
		chromedp.Click(chromedp.CSS("#programme-form button[type=submit]")),
	)
	tb.waitFor("the new SMS programme", `document.getElementById('programme-id').value !== `+quote(dataID)+` && document.getElementById('prog-unit-badge').dataset.unit === 'sms'`)
	smsID := tb.eval(`document.getElementById('programme-id').value`)
	stored, err = s.programmes.Programme(context.Background(), smsID)
	must(t, err)
	if stored.Unit != "sms" || stored.PackSeconds != 20 || stored.Recurrence != nil || stored.ValidDays != 90 ||
		len(stored.NotifyAt) != 1 || stored.NotifyAt[0] != (quota.Threshold{Percent: quota.DefaultLowPercent}) {
		t.Fatalf("stored SMS programme: %+v", stored)
	}
	if got := tb.text("prog-pack"); !strings.HasPrefix(got, "20 SMS per pack, valid 90 days") {
		t.Errorf("pack %q", got)
	}
	if got := tb.text("prog-notify"); got != "Low-balance alerts: at 20% left" {
		t.Errorf("thresholds %q", got)
	}
}

// A threshold only the API can judge (the form's own bound taken away, as
// an older page would send it) comes back as a 400 naming
// notify_at[0].percent, shown beside the percent field; put right, the
// programme is created with both thresholds, the SMS one in SMS.
func TestBrowser_AThresholdTheAPIRefusesShowsBesideItsField(t *testing.T) {
	s := mustStack(t)
	tb := mustTab(t, "en-US", desktop)
	tb.do(chromedp.Navigate(s.base + "/console#token=" + s.token(token.RoleUnion, "union-staff-1", "")))
	tb.waitFor("the console", `!document.getElementById('view').hidden`)
	t.Cleanup(func() { tb.forgetProblems("status of 400 (Bad Request) " + s.base + "/v1/programmes") })
	tb.do(chromedp.Click(chromedp.ID("tab-programmes")))
	choose(tb, "prog-unit", "sms")
	tb.eval(`document.getElementById('prog-low-percent').removeAttribute('max'); ''`)
	tb.do(
		chromedp.SetValue(chromedp.ID("prog-name"), "SMS with alerts"),
		chromedp.SetValue(chromedp.ID("prog-minutes"), "50"),
		chromedp.SetValue(chromedp.ID("prog-low-percent"), "150"),
		chromedp.SetValue(chromedp.ID("prog-low-remaining"), "5"),
		chromedp.Click(chromedp.CSS("#programme-form button[type=submit]")),
	)
	tb.waitFor("the API's field error", `!!document.querySelector('#programme-form .field-error[data-field="notify_at[0].percent"]')`)
	note := tb.eval(`document.querySelector('#programme-form .field-error[data-field="notify_at[0].percent"]').textContent`)
	if got := tb.eval(`document.getElementById('prog-low-percent').closest('label').textContent`); !strings.Contains(got, note) {
		t.Errorf("the threshold error %q is not beside the percent field: %q", note, got)
	}
	if got := tb.eval(`document.getElementById('prog-low-percent').getAttribute('aria-invalid') || ''`); got != "true" {
		t.Error("the percent field is not marked invalid")
	}
	tb.do(
		chromedp.SetValue(chromedp.ID("prog-low-percent"), "10"),
		chromedp.Click(chromedp.CSS("#programme-form button[type=submit]")),
	)
	tb.waitFor("the programme", `!!document.getElementById('prog-unit-badge')`)
	stored, err := s.programmes.Programme(context.Background(), tb.eval(`document.getElementById('programme-id').value`))
	must(t, err)
	if stored.Unit != "sms" || stored.PackSeconds != 50 || len(stored.NotifyAt) != 2 ||
		stored.NotifyAt[0] != (quota.Threshold{Percent: 10}) || stored.NotifyAt[1] != (quota.Threshold{Remaining: 5}) {
		t.Fatalf("stored programme: %+v", stored)
	}
	if got := tb.text("prog-notify"); got != "Low-balance alerts: at 10% left, at 5 SMS left" {
		t.Errorf("thresholds %q", got)
	}
}
