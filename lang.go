package wuyou

import "strings"

// Languages a seafarer reads texts and notifications in (CONTRACT §7.4):
// a seafarer's lang, the carrier's ?lang=. DefaultLang is a seafarer's who
// never chose one. Package sms holds the words.
const (
	LangZH      = "zh-CN"
	LangEN      = "en"
	DefaultLang = LangZH
)

// Langs lists every language, the default first.
var Langs = []string{LangZH, LangEN}

// Lang returns the language tag s names in its canonical spelling (tags are
// case-insensitive: "zh-cn" is zh-CN), and whether s names one.
func Lang(s string) (string, bool) {
	for _, l := range Langs {
		if strings.EqualFold(s, l) {
			return l, true
		}
	}
	return "", false
}
