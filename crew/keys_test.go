package crew

import "testing"

func TestSeafarerTagIsThePrefixAndTheSeafarersHashTag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, prefix, id, want string }{
		{"a plain prefix", "wuyou", "sf_01J", "wuyou:{s:sf_01J}"},
		{"a prefix with a colon", "t:1", "sf_2", "t:1:{s:sf_2}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SeafarerTag(tc.prefix, tc.id); got != tc.want {
				t.Fatalf("SeafarerTag(%q, %q) = %q, want %q", tc.prefix, tc.id, got, tc.want)
			}
		})
	}
}
