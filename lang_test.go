package wuyou

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLangIsCaseInsensitiveAndKnowsOnlyZHAndEN(t *testing.T) {
	for in, want := range map[string]string{"zh-CN": LangZH, "zh-cn": LangZH, "EN": LangEN, "en": LangEN} {
		got, ok := Lang(in)
		require.True(t, ok, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{"", "zh", "en-US", "fr", "zh-TW"} {
		_, ok := Lang(in)
		require.False(t, ok, in)
	}
}
