package wuyou

import "testing"

func TestCheckTextIsOneRuleForEveryName(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		required bool
		refused  bool
		max      int // 100 when 0
	}{
		{"a plain name passes", "Worry-free at sea", true, false, 0},
		{"Chinese passes", "出海无忧", true, false, 0},
		{"empty is refused when required", "", true, true, 0},
		{"empty passes when optional", "", false, false, 0},
		{"NUL is refused", "a\x00b", true, true, 0},
		{"a tab is refused", "a\tb", true, true, 0},
		{"a line break is refused", "a\nb", true, true, 0},
		{"a carriage return is refused", "a\rb", true, true, 0},
		{"DEL is refused", "a\x7fb", true, true, 0},
		{"a C1 control is refused", "a\u0085b", true, true, 0},
		{"invalid UTF-8 is refused", "a\xffb", true, true, 0},
		{"U+FFFD is refused", "a\ufffdb", true, true, 0},
		{"longer than max is refused", "abcdef", true, true, 5},
		{"max counts characters, not bytes", "出海无忧", true, false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = 100
			}
			msg := CheckText(tc.in, tc.required, max)
			if (msg != "") != tc.refused {
				t.Fatalf("CheckText(%q) = %q, refused want %v", tc.in, msg, tc.refused)
			}
		})
	}
}
