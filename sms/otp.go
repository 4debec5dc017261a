package sms

import (
	"strconv"
	"time"

	"github.com/wuyou/wuyou"
)

// SignInCode is the text of the SMS that carries a one-time sign-in code
// (CONTRACT §7.4, topic wuyou.sms.v1): the code first, so a phone's
// code autofill finds it, then how long it lasts and a warning not to
// pass it on. ttl is shown in whole minutes (at least one).
func SignInCode(lang, code string, ttl time.Duration) string {
	minutes := strconv.FormatInt(max(int64(ttl/time.Minute), 1), 10)
	if lang == wuyou.LangEN {
		return code + " is your Wuyou sign-in code. It expires in " + minutes + " min. Never give it to anyone, not even Wuyou staff."
	}
	return code + " 是您的无忧登录验证码，" + minutes + "分钟内有效。请勿告诉任何人，包括无忧工作人员。"
}
