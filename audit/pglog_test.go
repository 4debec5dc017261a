package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/pgtest"
)

func TestTheTrailIsReadNewestFirstByActorResourceCompanyAndTime(t *testing.T) {
	ctx := context.Background()
	log := NewPGLog(pgtest.MustPool(t))
	union := wuyou.Actor{Sub: "officer-1", Role: "union"}
	companyA := wuyou.Actor{Sub: "manager-a", Role: "company", CompanyID: "co_A"}
	companyB := wuyou.Actor{Sub: "manager-b", Role: "company", CompanyID: "co_B"}
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	var ids []string
	for i, a := range []wuyou.Actor{union, companyA, companyB, companyA, union} {
		r, err := log.Append(ctx, Record{At: t0.Add(time.Duration(i) * time.Hour), Actor: a, Action: ActionSeafarerUpdate,
			Resource: fmt.Sprintf("seafarers/sf_%d", i%2), RequestID: fmt.Sprintf("req-%d", i), Summary: "changed status"})
		require.NoError(t, err)
		require.True(t, wuyou.IsULIDWithPrefix(r.ID, IDPrefix), r.ID)
		ids = append(ids, r.ID)
	}
	idsOf := func(rs []Record) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []string
	}{
		{"everything, newest first", Filter{}, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"by actor", Filter{Actor: "manager-a"}, []string{ids[3], ids[1]}},
		{"by resource", Filter{Resource: "seafarers/sf_1"}, []string{ids[3], ids[1]}},
		{"a company sees only what its tokens did", Filter{CompanyID: "co_B"}, []string{ids[2]}},
		{"a company asking for another's actor sees nothing", Filter{CompanyID: "co_B", Actor: "manager-a"}, []string{}},
		{"from is inclusive, to exclusive", Filter{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, []string{ids[2], ids[1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := log.Records(ctx, tc.f)
			require.NoError(t, err)
			require.Empty(t, next)
			require.Equal(t, tc.want, idsOf(got))
		})
	}

	t.Run("pages follow the cursor to the end", func(t *testing.T) {
		var seen []string
		cursor := ""
		for range 10 {
			page, next, err := log.Records(ctx, Filter{Limit: 2, Cursor: cursor})
			require.NoError(t, err)
			seen = append(seen, idsOf(page)...)
			if next == "" {
				break
			}
			cursor = next
		}
		require.Equal(t, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, seen)
	})

	t.Run("a record reads back as it was written", func(t *testing.T) {
		got, _, err := log.Records(ctx, Filter{Resource: "seafarers/sf_0", Actor: "manager-b"})
		require.NoError(t, err)
		require.Equal(t, []Record{{ID: ids[2], At: t0.Add(2 * time.Hour), Actor: companyB, Action: ActionSeafarerUpdate,
			Resource: "seafarers/sf_0", RequestID: "req-2", Summary: "changed status"}}, got)
	})

	t.Run("records are never changed or deleted, even by SQL", func(t *testing.T) {
		_, err := log.pool.Exec(ctx, "UPDATE audit_records SET summary = 'nothing happened'")
		require.ErrorContains(t, err, "never changed or deleted")
		_, err = log.pool.Exec(ctx, "DELETE FROM audit_records")
		require.ErrorContains(t, err, "never changed or deleted")
		all, _, err := log.Records(ctx, Filter{})
		require.NoError(t, err)
		require.Len(t, all, 5)
	})
}

func TestBadFiltersAreRefusedNamingTheField(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		f     Filter
		field string
	}{
		{"a cursor this list did not hand out", Filter{Cursor: "sf_01JABCDEF"}, "cursor"},
		{"a cursor that is text to compare", Filter{Cursor: "zzz"}, "cursor"},
		{"from after to", Filter{From: t0.Add(time.Hour), To: t0}, "from"},
		{"an actor with a control character", Filter{Actor: "a\x00b"}, "actor"},
		{"a resource with a control character", Filter{Resource: "a\nb"}, "resource"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.Check()
			require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))
			var we *wuyou.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, tc.field, we.Fields[0].Field)
		})
	}
}

func TestAppendKeepsRecordsWhateverTheRequestHeld(t *testing.T) {
	ctx := context.Background()
	log := NewPGLog(pgtest.MustPool(t))
	r, err := log.Append(ctx, Record{Actor: wuyou.Actor{Sub: "officer\x00-1", Role: "union"}, Action: ActionProgrammeCreate,
		Resource: "programmes/pr_1", RequestID: "req\xff", Summary: "created \"a\x00b\nc\""})
	require.NoError(t, err)
	require.Equal(t, "officer-1", r.Actor.Sub)
	require.Equal(t, "req\uFFFD", r.RequestID)
	require.Equal(t, `created "ab c"`, r.Summary)
}
