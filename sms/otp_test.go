package sms

import (
	"strings"
	"testing"
	"time"

	"github.com/wuyou/wuyou"
)

// A sign-in code's SMS fits one message in both languages, starts with the
// code and says how long it lasts, whatever the lifetime.
func TestSignInCodeFitsOneSMSAndLeadsWithTheCode(t *testing.T) {
	for _, lang := range []string{wuyou.LangZH, wuyou.LangEN} {
		for _, ttl := range []time.Duration{30 * time.Second, 5 * time.Minute, 10 * time.Hour} {
			text := SignInCode(lang, "042917", ttl)
			if !Fits(lang, text) {
				t.Errorf("%s, %s: %d characters, over one SMS (%d): %q", lang, ttl, len([]rune(text)), Limit(lang), text)
			}
			if !strings.HasPrefix(text, "042917 ") {
				t.Errorf("%s: the code does not lead: %q", lang, text)
			}
		}
	}
	if en, zh := SignInCode(wuyou.LangEN, "1", 5*time.Minute), SignInCode(wuyou.LangZH, "1", 5*time.Minute); !strings.Contains(en, "5 min") || !strings.Contains(zh, "5分钟") {
		t.Errorf("lifetime not said: %q / %q", en, zh)
	}
	if got := SignInCode(wuyou.LangEN, "1", 20*time.Second); !strings.Contains(got, "1 min") {
		t.Errorf("a lifetime under a minute reads as 1 min: %q", got)
	}
}
