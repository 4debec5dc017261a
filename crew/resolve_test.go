package crew

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/redistest"
)

// TestBatchResolutionAgreesWithSingleResolution: resolving many MSISDNs at
// once gives exactly what SeafarerByMSISDN gives for each — a moved-from
// number, an unknown one and an invalid one resolve to nobody.
func TestBatchResolutionAgreesWithSingleResolution(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustClient(t)
	s := NewRedisStore(rdb, prefix, wuyou.SystemClock)
	co, err := s.CreateCompany(ctx, "Batch Lines", "REG-BATCH")
	require.NoError(t, err)
	a, _, err := s.Enrol(ctx, co.ID, Enrolment{BookNo: "A1", Name: "甲", MSISDN: "+8613700000001"})
	require.NoError(t, err)
	b, _, err := s.Enrol(ctx, co.ID, Enrolment{BookNo: "B1", Name: "乙", MSISDN: "+8613700000002"})
	require.NoError(t, err)
	moved := "+8613700000009"
	_, err = s.UpdateSeafarer(ctx, b.ID, SeafarerUpdate{MSISDN: &moved})
	require.NoError(t, err)

	asked := []string{"+8613700000001", "+8613700000002", moved, "+8613700000003", "not-a-number"}
	got, err := s.SeafarerIDsByMSISDN(ctx, asked)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"+8613700000001": a.ID, moved: b.ID}, got)
	for _, m := range asked {
		sf, err := s.SeafarerByMSISDN(ctx, m)
		if id, ok := got[m]; ok {
			require.NoError(t, err)
			require.Equal(t, id, sf.ID)
		} else {
			require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err), m)
		}
	}
}
