package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/token"
)

// A crew manager signs one seafarer off from the crew list, then the whole
// vessel's crew off (in English) and on again (in Chinese); another
// company's crew on the same vessel is never touched.
func TestBrowser_CompanySignsASeafarerAndAWholeVesselOffAndOn(t *testing.T) {
	s := mustStack(t)
	s.seedDemo(time.Now().Add(-time.Hour)) // three seafarers on vessel 9074729, signed on in September and October
	ctx := context.Background()
	other, err := s.crew.CreateCompany(ctx, "Other Lines", "REG-OTHER")
	must(t, err)
	stranger, _, err := s.crew.Enrol(ctx, other.ID, crew.Enrolment{BookNo: "O0000001", Name: "Other Hand", MSISDN: "+8613900000099", VesselIMO: "9074729"})
	must(t, err)
	manager := s.token(token.RoleCompany, "crew-manager-1", s.company.ID)
	stored := func(id string) *crew.Seafarer {
		t.Helper()
		sf, err := s.crew.Seafarer(ctx, id)
		must(t, err)
		return sf
	}

	en := mustTab(t, "en-US", desktop)
	en.do(chromedp.Navigate(s.base + "/console#token=" + manager))
	en.waitFor("the crew list", `document.querySelectorAll('#crew-rows tr').length === 3`)
	if got := en.eval(`String(document.querySelectorAll('#crew-rows button[data-sign="off"]').length)`); got != "3" {
		t.Fatalf("%s sign-off buttons for three active seafarers, want 3", got)
	}
	if en.eval(`String(document.getElementById('crew-vessel-actions').hidden)`) != "true" {
		t.Error("the whole-vessel actions show without a vessel chosen")
	}

	// One seafarer, on the date typed.
	first := s.seafarers[0]
	en.eval(`document.getElementById('crew-sign-date').value = '2026-11-20', ''`)
	en.do(chromedp.Click(chromedp.CSS(`#crew-rows button[data-seafarer="` + first.ID + `"]`)))
	en.waitFor("the seafarer signed off", `!!document.querySelector('#crew-rows button[data-seafarer="`+first.ID+`"][data-sign="on"]')`)
	if got := en.text("message"); got != "张伟 signed off (2026-11-20)." {
		t.Errorf("message %q", got)
	}
	if sf := stored(first.ID); sf.Status != crew.StatusSignedOff || sf.SignOff != "2026-11-20" {
		t.Errorf("stored after the row's sign-off: %+v", sf)
	}
	if row := en.eval(`document.querySelector('#crew-rows button[data-seafarer="` + first.ID + `"]').closest('tr').innerText`); !strings.Contains(row, "2026-11-20") || !strings.Contains(row, "Signed off") {
		t.Errorf("the row does not show the sign-off: %q", row)
	}

	// The whole vessel: the list is filtered by it first.
	en.do(chromedp.SendKeys(chromedp.ID("crew-vessel"), "9074729"), chromedp.Click(chromedp.CSS("#crew-form button[type=submit]")))
	en.waitFor("the vessel's actions", `!document.getElementById('crew-vessel-actions').hidden`)
	if help := en.text("crew-vessel-help"); !strings.Contains(help, "9074729") {
		t.Errorf("vessel help %q", help)
	}
	en.do(chromedp.Click(chromedp.ID("crew-vessel-off")))
	en.waitFor("the vessel signed off", `document.getElementById('message').textContent.indexOf('Vessel 9074729 signed off') === 0`)
	if got := en.text("message"); got != "Vessel 9074729 signed off (2026-11-20): 2 changed, 1 unchanged." {
		t.Errorf("message %q", got)
	}
	en.waitFor("every row offers sign-on", `document.querySelectorAll('#crew-rows button[data-sign="on"]').length === 3`)
	for _, sf := range s.seafarers {
		if got := stored(sf.ID); got.Status != crew.StatusSignedOff || got.SignOff != "2026-11-20" {
			t.Errorf("after the vessel's sign-off: %+v", got)
		}
	}
	if got := stored(stranger.ID); *got != *stranger {
		t.Errorf("another company's seafarer on the vessel changed: %+v", got)
	}

	// In Chinese, without a date: today.
	zh := mustTab(t, "zh-CN", desktop)
	zh.do(chromedp.Navigate(s.base + "/console#token=" + manager))
	zh.waitFor("the crew list", `document.querySelectorAll('#crew-rows tr').length === 3`)
	zh.do(chromedp.SendKeys(chromedp.ID("crew-vessel"), "9074729"), chromedp.Click(chromedp.CSS("#crew-form button[type=submit]")))
	zh.waitFor("the vessel's actions", `!document.getElementById('crew-vessel-actions').hidden`)
	if got := zh.text("crew-vessel-on"); got != "整船船员上船" {
		t.Errorf("the sign-on button reads %q in Chinese", got)
	}
	if got := zh.eval(`document.querySelector('#crew-rows button[data-sign]').textContent`); got != "上船" {
		t.Errorf("a row's button reads %q in Chinese", got)
	}
	zh.do(chromedp.Click(chromedp.ID("crew-vessel-on")))
	today := time.Now().UTC().Format(time.DateOnly)
	zh.waitFor("the vessel signed on", `document.getElementById('message').textContent.indexOf('船舶 9074729 已整船上船') === 0`)
	if got := zh.text("message"); got != "船舶 9074729 已整船上船（"+today+"）：3 人变更，0 人未变。" {
		t.Errorf("message %q", got)
	}
	for _, sf := range s.seafarers {
		if got := stored(sf.ID); got.Status != crew.StatusActive || got.SignOn != today || got.SignOff != "" {
			t.Errorf("after the vessel's sign-on: %+v", got)
		}
	}
	if got := stored(stranger.ID); *got != *stranger {
		t.Errorf("another company's seafarer on the vessel changed: %+v", got)
	}
}
