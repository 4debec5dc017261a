package wuyou

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// CheckText is the one rule for names and other free text people type
// (company, seafarer, vessel and programme names): valid UTF-8, at most max
// characters, no control characters (NUL, tabs and line breaks included:
// they break screens, reports and CSV exports, and PostgreSQL refuses NUL),
// and no U+FFFD, which is what bytes that were not UTF-8 become after a
// JSON decoder or a careless conversion. It returns "" when s passes, else
// the message to give for its field; an empty s passes unless required.
func CheckText(s string, required bool, max int) string {
	switch {
	case s == "":
		if required {
			return "is required"
		}
		return ""
	case !utf8.ValidString(s):
		return "is not valid UTF-8 text; save the file as UTF-8 (not GBK or another code page)"
	case utf8.RuneCountInString(s) > max:
		return "must be at most " + strconv.Itoa(max) + " characters"
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return "must not contain control characters (tabs, line breaks and the like)"
		case r == utf8.RuneError:
			return "contains U+FFFD, the mark of text that was not valid UTF-8"
		}
	}
	return ""
}
