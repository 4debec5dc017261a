package crew

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
)

func requireInvalidField(t *testing.T, err error, field string) {
	t.Helper()
	var de *wuyou.Error
	require.True(t, errors.As(err, &de), "%v", err)
	require.Equal(t, wuyou.EINVALID, de.Code)
	require.Len(t, de.Fields, 1, "%v", de.Fields)
	require.Equal(t, field, de.Fields[0].Field)
}

func TestPGASeafarerReadsZHCNUntilEnrolmentOrAnUpdateSaysOtherwise(t *testing.T) {
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "REG-LANG")

	zh := MustEnrol(t, s, co.ID, enrolment("LANG-1", "+8613800001001"))
	require.Equal(t, wuyou.LangZH, zh.Lang, "the default")

	e := enrolment("LANG-2", "+8613800001002")
	e.Lang = " EN "
	en := MustEnrol(t, s, co.ID, e)
	require.Equal(t, wuyou.LangEN, en.Lang, "trimmed, spelled canonically")
	got, err := s.Seafarer(ctx, en.ID)
	require.NoError(t, err)
	require.Equal(t, wuyou.LangEN, got.Lang)

	t.Run("re-enrolment without lang keeps the seafarer's", func(t *testing.T) {
		again, created, err := s.Enrol(ctx, co.ID, enrolment("LANG-2", "+8613800001002"))
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, wuyou.LangEN, again.Lang)
	})

	t.Run("an update sets it", func(t *testing.T) {
		lang := "zh-cn"
		up, err := s.UpdateSeafarer(ctx, en.ID, SeafarerUpdate{Lang: &lang})
		require.NoError(t, err)
		require.Equal(t, wuyou.LangZH, up.Lang)
	})

	t.Run("anything but zh-CN or en is a 400 naming lang", func(t *testing.T) {
		for _, bad := range []string{"fr", "zh", "en-US", "中文"} {
			e := enrolment("LANG-3", "+8613800001003")
			e.Lang = bad
			_, _, err := s.Enrol(ctx, co.ID, e)
			requireInvalidField(t, err, "lang")
			_, err = s.UpdateSeafarer(ctx, zh.ID, SeafarerUpdate{Lang: &bad})
			requireInvalidField(t, err, "lang")
		}
		empty := ""
		_, err := s.UpdateSeafarer(ctx, zh.ID, SeafarerUpdate{Lang: &empty})
		requireInvalidField(t, err, "lang")
	})

	t.Run("Langs reads the langs of many seafarers in one query", func(t *testing.T) {
		langs, err := s.Langs(ctx, []string{zh.ID, en.ID, "sf_unknown", ""})
		require.NoError(t, err)
		require.Equal(t, map[string]string{zh.ID: wuyou.LangZH, en.ID: wuyou.LangZH}, langs, "en was set back to zh-CN above")
	})
}

func TestBulkRowsTakeAnOptionalLangColumn(t *testing.T) {
	rows := MustReadCSV(t, "seafarer_book_no,name,msisdn,lang\nB-1,Li,+8613800002001,en\nB-2,Wang,+8613800002002,\nB-3,Zhao,+8613800002003,de\n")
	require.Len(t, rows, 3)
	require.Equal(t, wuyou.LangEN, rows[0].Enrolment.Lang)
	require.Empty(t, rows[0].Errors)
	require.Equal(t, "", rows[1].Enrolment.Lang, "empty: the default")
	require.Empty(t, rows[1].Errors)
	require.Len(t, rows[2].Errors, 1)
	require.Equal(t, "lang", rows[2].Errors[0].Field)

	rows = MustReadCSV(t, "seafarer_book_no,name,msisdn\nB-1,Li,+8613800002001\n")
	require.Empty(t, rows[0].Errors, "the column is optional")
}
