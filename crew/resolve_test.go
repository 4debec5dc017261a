package crew

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
)

// TestBatchResolutionAgreesWithSingleResolution: resolving many MSISDNs at
// once gives exactly what SeafarerByMSISDN gives for each — a moved-from
// number, an unknown one and an invalid one resolve to nobody.
func TestBatchResolutionAgreesWithSingleResolution(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
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

// TestVesselCrewSpansCompaniesAndCompanyCrewOnlyItsOwn: what issuances to a
// vessel or a company are given — a vessel's crew across every company, a
// company's crew and nobody else's; an unknown company is not found.
func TestVesselCrewSpansCompaniesAndCompanyCrewOnlyItsOwn(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co1, err := s.CreateCompany(ctx, "One Lines", "REG-V1")
	require.NoError(t, err)
	co2, err := s.CreateCompany(ctx, "Two Lines", "REG-V2")
	require.NoError(t, err)
	a, _, err := s.Enrol(ctx, co1.ID, Enrolment{BookNo: "V1", Name: "甲", MSISDN: "+8613710000001", VesselIMO: "9074729"})
	require.NoError(t, err)
	b, _, err := s.Enrol(ctx, co2.ID, Enrolment{BookNo: "V2", Name: "乙", MSISDN: "+8613710000002", VesselIMO: "9074729"})
	require.NoError(t, err)
	c, _, err := s.Enrol(ctx, co2.ID, Enrolment{BookNo: "V3", Name: "丙", MSISDN: "+8613710000003"})
	require.NoError(t, err)

	collect := func(each func(context.Context, string, func(string) error) error, key string) []string {
		var ids []string
		require.NoError(t, each(ctx, key, func(id string) error { ids = append(ids, id); return nil }))
		return ids
	}
	require.ElementsMatch(t, []string{a.ID, b.ID}, collect(s.VesselCrew, "9074729"))
	require.ElementsMatch(t, []string{b.ID, c.ID}, collect(s.CompanyCrew, co2.ID))
	err = s.CompanyCrew(ctx, "co_unknown", func(string) error { return nil })
	require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err))
	status, err := s.SeafarerStatus(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, StatusActive, status)
	msisdn, err := s.MSISDNOf(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, "+8613710000003", msisdn)
}
