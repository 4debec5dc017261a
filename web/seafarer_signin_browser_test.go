package web_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var codeOfSMS = regexp.MustCompile(`^(\d{6}) `)

// lastCode waits for the n-th sign-in SMS to msisdn and returns its code.
func (s *stack) lastCode(t *testing.T, msisdn string, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if texts := s.outbox.smsTo(t, msisdn); len(texts) >= n {
			m := codeOfSMS.FindStringSubmatch(texts[n-1])
			if m == nil {
				t.Fatalf("the SMS holds no code: %q", texts[n-1])
			}
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sign-in SMS %d to %s", n, msisdn)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBrowser_SeafarerSignsInWithACodeBySMS: a seafarer with nothing but a
// phone types their number as people write it (no country code, spaces),
// gets a code by SMS (read from what the service wrote for the SMS
// topic), types a wrong code and is told so, then the right one, and sees
// their minutes. In Chinese too, on a second phone.
func TestBrowser_SeafarerSignsInWithACodeBySMS(t *testing.T) {
	s, _ := seafarerScene(t)
	sf := s.seafarers[0] // +8613800000001, 345 minutes left (seafarerScene)

	tb := mustTab(t, "en-GB", phone)
	tb.do(chromedp.Navigate(s.base + "/"))
	tb.waitFor("the number step", `!document.getElementById('signin').hidden && !document.getElementById('otp-number-form').hidden`)
	tb.screenshot("seafarer-signin-number-en-phone")
	tb.do(chromedp.SendKeys(chromedp.ID("msisdn"), "138 0000 0001"), chromedp.Click(chromedp.CSS("#otp-number-form button")))
	tb.waitFor("the code step", `!document.getElementById('otp-code-form').hidden`)
	if got := tb.text("otp-sent"); !strings.Contains(got, "+8613800000001") || !strings.Contains(got, "5 minutes") {
		t.Errorf("the code step says %q", got)
	}
	code := s.lastCode(t, sf.MSISDN, 1)

	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	tb.do(chromedp.SendKeys(chromedp.ID("otp-code"), wrong), chromedp.Click(chromedp.CSS("#otp-code-form button[type=submit]")))
	tb.waitFor("the wrong-code message", `!document.getElementById('signin-error').hidden`)
	if got := tb.text("signin-error"); !strings.Contains(got, "wrong or has expired") {
		t.Errorf("wrong code message = %q", got)
	}
	tb.forgetProblems("otp:verify") // the 401 the browser logs for the wrong code
	tb.screenshot("seafarer-signin-code-en-phone")

	tb.eval(`document.getElementById('otp-code').value = ''; ''`)
	tb.do(chromedp.SendKeys(chromedp.ID("otp-code"), code),
		chromedp.Click(chromedp.CSS("#otp-code-form button[type=submit]")))
	tb.waitFor("the minutes", `document.getElementById('remaining').textContent === '345'`)
	if got := tb.eval(`String(!!sessionStorage.getItem('wuyou.token'))`); got != "true" {
		t.Errorf("the token is not kept for the tab")
	}
	if got := tb.eval(`localStorage.getItem('wuyou.msisdn') || ''`); got != "+8613800000001" {
		t.Errorf("the number is not remembered for next time: %q", got)
	}

	// The seafarer chooses the language of their texts: Chinese until now,
	// English from here on, and the next code comes in English.
	tb.waitFor("the texts' language", `!document.getElementById('sms-lang').disabled`)
	if got := tb.eval(`document.getElementById('sms-lang').value`); got != "zh-CN" {
		t.Errorf("texts' language shown = %q, want zh-CN", got)
	}
	tb.do(chromedp.SetValue(chromedp.ID("sms-lang"), "en"))
	tb.eval(`document.getElementById('sms-lang').dispatchEvent(new Event('change')); ''`)
	tb.waitFor("saved", `document.getElementById('sms-lang-status').textContent.indexOf('Saved') === 0`)
	if got, err := s.crew.Seafarer(context.Background(), sf.ID); err != nil || got.Lang != "en" {
		t.Fatalf("the seafarer's lang after the change: %+v, %v", got, err)
	}
	tb.screenshot("seafarer-sms-lang-en-phone")

	// A reload offers the number it remembered; signing out forgets it
	// (crews share phones).
	tb.do(chromedp.Reload())
	tb.waitFor("the minutes again", `document.getElementById('remaining').textContent === '345'`)
	if got := tb.eval(`document.getElementById('msisdn').value`); got != "+8613800000001" {
		t.Errorf("remembered number = %q", got)
	}
	tb.do(chromedp.Click(chromedp.ID("signout")))
	tb.waitFor("the number step again", `!document.getElementById('otp-number-form').hidden`)
	if got := tb.eval(`document.getElementById('msisdn').value + '|' + (localStorage.getItem('wuyou.msisdn') || '')`); got != "|" {
		t.Errorf("after sign-out the number is still there: %q", got)
	}

	// A Chinese phone: the same steps in Chinese; asking again at once is
	// refused with how long to wait.
	zh := mustTab(t, "zh-CN", phone)
	other := s.seafarers[1]
	zh.do(chromedp.Navigate(s.base + "/"))
	zh.waitFor("the number step", `!document.getElementById('otp-number-form').hidden`)
	if got := zh.text("signin"); !strings.Contains(got, "发送验证码") {
		t.Errorf("zh-CN sign-in = %q", got)
	}
	zh.do(chromedp.SendKeys(chromedp.ID("msisdn"), other.MSISDN), chromedp.Click(chromedp.CSS("#otp-number-form button")))
	zh.waitFor("the code step", `!document.getElementById('otp-code-form').hidden`)
	code = s.lastCode(t, other.MSISDN, 1)
	zh.do(chromedp.Click(chromedp.ID("otp-again")))
	zh.waitFor("the number step", `!document.getElementById('otp-number-form').hidden`)
	zh.do(chromedp.Click(chromedp.CSS("#otp-number-form button")))
	zh.waitFor("the limit's message beside the code step", `!document.getElementById('signin-error').hidden && !document.getElementById('otp-code-form').hidden`)
	if got := zh.text("signin-error"); !strings.Contains(got, "分钟后再试") {
		t.Errorf("zh-CN limit message = %q", got)
	}
	zh.forgetProblems("auth/otp") // the 429 the browser logs
	// The code already sent still works.
	zh.do(chromedp.SendKeys(chromedp.ID("otp-code"), code), chromedp.Click(chromedp.CSS("#otp-code-form button[type=submit]")))
	zh.waitFor("the minutes", `document.getElementById('left-title').textContent === '剩余免费分钟' && document.getElementById('remaining').textContent !== '–'`)
	zh.screenshot("seafarer-signed-in-zh-phone")
}
