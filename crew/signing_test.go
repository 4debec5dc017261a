package crew

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wuyou/wuyou"
)

// today is epoch's date, the day the test clock starts on.
const today = "2026-11-28"

func TestSigningRules(t *testing.T) {
	t.Parallel()
	onBoard := Seafarer{ID: "sf_1", Status: StatusActive, SignOn: "2026-10-01"}
	plannedOff := Seafarer{ID: "sf_1", Status: StatusActive, SignOn: "2026-10-01", SignOff: "2027-03-31"}
	leftEarlier := Seafarer{ID: "sf_1", Status: StatusActive, SignOn: "2026-10-01", SignOff: "2026-11-20"}
	ashore := Seafarer{ID: "sf_1", Status: StatusSignedOff, SignOn: "2026-05-01", SignOff: "2026-09-30"}
	suspended := Seafarer{ID: "sf_1", Status: StatusSuspended, SignOn: "2026-10-01", SignOff: "2026-12-31"}
	notYetOn := Seafarer{ID: "sf_1", Status: StatusActive, SignOn: "2026-12-15"}
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name            string
		cur             Seafarer
		u               SeafarerUpdate
		status, on, off string
		field           string // the field refused; "" when accepted
	}{
		{"signing off with a date records it", onBoard, SeafarerUpdate{Status: s(StatusSignedOff), SignOff: s("2026-11-25")},
			StatusSignedOff, "2026-10-01", "2026-11-25", ""},
		{"signing off without a date records today", onBoard, SeafarerUpdate{Status: s(StatusSignedOff)},
			StatusSignedOff, "2026-10-01", today, ""},
		{"signing off without a date replaces a planned sign_off later than today by today", plannedOff, SeafarerUpdate{Status: s(StatusSignedOff)},
			StatusSignedOff, "2026-10-01", today, ""},
		{"signing off without a date keeps a recorded sign_off already past", leftEarlier, SeafarerUpdate{Status: s(StatusSignedOff)},
			StatusSignedOff, "2026-10-01", "2026-11-20", ""},
		{"signing off again changes nothing", ashore, SeafarerUpdate{Status: s(StatusSignedOff)},
			StatusSignedOff, "2026-05-01", "2026-09-30", ""},
		{"signing off before sign_on is refused naming sign_off", onBoard, SeafarerUpdate{Status: s(StatusSignedOff), SignOff: s("2026-09-30")},
			"", "", "", "sign_off"},
		{"signing off today before a future sign_on is refused naming sign_off", notYetOn, SeafarerUpdate{Status: s(StatusSignedOff)},
			"", "", "", "sign_off"},
		{"signing on again with a date starts a voyage and clears the old sign_off", ashore, SeafarerUpdate{Status: s(StatusActive), SignOn: s("2026-11-26")},
			StatusActive, "2026-11-26", "", ""},
		{"signing on again without a date starts the voyage today", ashore, SeafarerUpdate{Status: s(StatusActive)},
			StatusActive, today, "", ""},
		{"signing on again may give the planned sign_off", ashore, SeafarerUpdate{Status: s(StatusActive), SignOn: s("2026-11-26"), SignOff: s("2027-05-26")},
			StatusActive, "2026-11-26", "2027-05-26", ""},
		{"signing on again with a planned sign_off before the new sign_on is refused naming sign_off", ashore,
			SeafarerUpdate{Status: s(StatusActive), SignOn: s("2026-11-26"), SignOff: s("2026-11-01")}, "", "", "", "sign_off"},
		{"a new sign_on after the old sign_off of an active seafarer clears that sign_off", leftEarlier, SeafarerUpdate{SignOn: s("2026-11-27")},
			StatusActive, "2026-11-27", "", ""},
		{"a new sign_on after the sign_off of a signed-off seafarer without status active is refused naming sign_on", ashore,
			SeafarerUpdate{SignOn: s("2026-11-01")}, "", "", "", "sign_on"},
		{"a new sign_on before the planned sign_off keeps it", plannedOff, SeafarerUpdate{SignOn: s("2026-10-05")},
			StatusActive, "2026-10-05", "2027-03-31", ""},
		{"a sign_off before the recorded sign_on is refused naming sign_off", onBoard, SeafarerUpdate{SignOff: s("2026-09-01")},
			"", "", "", "sign_off"},
		{"sign_off equal to sign_on is a one-day voyage", onBoard, SeafarerUpdate{SignOff: s("2026-10-01")},
			StatusActive, "2026-10-01", "2026-10-01", ""},
		{"clearing the sign_off of a signed-off seafarer is refused naming sign_off", ashore, SeafarerUpdate{SignOff: s("")},
			"", "", "", "sign_off"},
		{"clearing the sign_on keeps the sign_off", plannedOff, SeafarerUpdate{SignOn: s("")},
			StatusActive, "", "2027-03-31", ""},
		{"suspending keeps the dates", plannedOff, SeafarerUpdate{Status: s(StatusSuspended)},
			StatusSuspended, "2026-10-01", "2027-03-31", ""},
		{"lifting a suspension keeps the dates", suspended, SeafarerUpdate{Status: s(StatusActive)},
			StatusActive, "2026-10-01", "2026-12-31", ""},
		{"a suspended seafarer signs off on the date given", suspended, SeafarerUpdate{Status: s(StatusSignedOff), SignOff: s("2026-11-02")},
			StatusSignedOff, "2026-10-01", "2026-11-02", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := updated(tc.cur, tc.u, today)
			if tc.field != "" {
				wantCode(t, err, wuyou.EINVALID)
				wantField(t, err, tc.field)
				return
			}
			if err != nil || got.Status != tc.status || got.SignOn != tc.on || got.SignOff != tc.off {
				t.Fatalf("= status %q sign_on %q sign_off %q, %v; want %q %q %q", got.Status, got.SignOn, got.SignOff, err, tc.status, tc.on, tc.off)
			}
		})
	}
}

func TestAJSONNullSignOnOrSignOffClearsTheDateAndAnAbsentOneLeavesIt(t *testing.T) {
	t.Parallel()
	for body, want := range map[string][2]*string{
		`{"sign_off":null}`:                        {nil, ptr("")},
		`{"sign_on":null,"sign_off":"2026-12-01"}`: {ptr(""), ptr("2026-12-01")},
		`{"status":"active"}`:                      {nil, nil},
		`{"sign_on":"2026-10-01"}`:                 {ptr("2026-10-01"), nil},
	} {
		var u SeafarerUpdate
		if err := json.Unmarshal([]byte(body), &u); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		for i, got := range [2]*string{u.SignOn, u.SignOff} {
			if (got == nil) != (want[i] == nil) || got != nil && *got != *want[i] {
				t.Errorf("%s: field %d = %v, want %v", body, i, got, want[i])
			}
		}
	}
	var u SeafarerUpdate
	if err := json.Unmarshal([]byte(`{"sign_off":5}`), &u); err == nil {
		t.Fatal(`{"sign_off":5} decoded; want a type error`)
	}
}

func TestUpdateSignsOnAndOffAndClearsDatesInTheDatabase(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "S1")
	sf := MustEnrol(t, s, co.ID, enrolment("S1-1", msisdn(1))) // signed on 2026-10-01
	signedOff, active := StatusSignedOff, StatusActive

	got, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{Status: &signedOff})
	if err != nil || got.Status != StatusSignedOff || got.SignOff != today {
		t.Fatalf("sign off without a date = %+v, %v; want signed off today", got, err)
	}
	on := "2026-11-28"
	if got, err = s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{Status: &active, SignOn: &on}); err != nil ||
		got.Status != StatusActive || got.SignOn != on || got.SignOff != "" {
		t.Fatalf("sign on again = %+v, %v; want active from %s without a sign_off", got, err, on)
	}
	var u SeafarerUpdate
	if err := json.Unmarshal([]byte(`{"sign_off":"2027-01-31"}`), &u); err != nil {
		t.Fatal(err)
	}
	if got, err = s.UpdateSeafarer(ctx, sf.ID, u); err != nil || got.SignOff != "2027-01-31" {
		t.Fatalf("planned sign_off = %+v, %v", got, err)
	}
	u = SeafarerUpdate{}
	if err := json.Unmarshal([]byte(`{"sign_off":null}`), &u); err != nil {
		t.Fatal(err)
	}
	if got, err = s.UpdateSeafarer(ctx, sf.ID, u); err != nil || got.SignOff != "" {
		t.Fatalf("sign_off null = %+v, %v; want it cleared", got, err)
	}
	if stored, _ := s.Seafarer(ctx, sf.ID); *stored != *got {
		t.Fatalf("stored %+v, returned %+v", stored, got)
	}

	// Refused before the database's CHECK would be reached, naming the field.
	for _, tc := range []struct {
		name  string
		u     SeafarerUpdate
		field string
	}{
		{"sign_on after the recorded sign_off of a signed-off seafarer", SeafarerUpdate{Status: &signedOff, SignOff: ptr("2026-12-31"), SignOn: ptr("2027-01-05")}, "sign_off"},
		{"sign_on not a date", SeafarerUpdate{SignOn: ptr("1/10/2026")}, "sign_on"},
		{"sign_on not a real date", SeafarerUpdate{SignOn: ptr("2026-02-30")}, "sign_on"},
		{"sign_on in the year zero", SeafarerUpdate{SignOn: ptr("0000-01-01")}, "sign_on"},
		{"sign_off before sign_on", SeafarerUpdate{SignOff: ptr("2026-11-01")}, "sign_off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.UpdateSeafarer(ctx, sf.ID, tc.u)
			wantCode(t, err, wuyou.EINVALID)
			wantField(t, err, tc.field)
		})
	}
	if stored, _ := s.Seafarer(ctx, sf.ID); *stored != *got {
		t.Fatalf("a refused update changed the record: %+v, was %+v", stored, got)
	}
}

// vesselCrew enrols, in company co, n seafarers on vessel with the given
// statuses (cycled) and returns them.
func vesselCrew(tb testing.TB, s *PGStore, co *Company, book string, vessel string, first int, statuses ...string) []*Seafarer {
	tb.Helper()
	ctx := context.Background()
	var out []*Seafarer
	for i, status := range statuses {
		e := enrolment(fmt.Sprintf("%s-%d", book, i), msisdn(first+i))
		e.VesselIMO = vessel
		sf := MustEnrol(tb, s, co.ID, e)
		if status != StatusActive {
			sf2, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{Status: &status, SignOff: ptr("2026-11-01")})
			if err != nil {
				tb.Fatal(err)
			}
			sf = sf2
		}
		out = append(out, sf)
	}
	return out
}

func TestSignVesselOffChangesExactlyTheCompanysActiveCrewOnThatVesselAndARepeatChangesNothing(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
	ctx := context.Background()
	a, b := MustCompany(t, s, "VA"), MustCompany(t, s, "VB")
	other := imo("931234")
	aCrew := vesselCrew(t, s, a, "A", "9074729", 1, StatusActive, StatusActive, StatusSuspended, StatusSignedOff)
	aElsewhere := vesselCrew(t, s, a, "AX", other, 10, StatusActive)[0]
	bCrew := vesselCrew(t, s, b, "B", "9074729", 20, StatusActive, StatusActive)
	before := map[string]Seafarer{}
	for _, sf := range append(append([]*Seafarer{aElsewhere}, aCrew...), bCrew...) {
		before[sf.ID] = *sf
	}

	clock.Advance(time.Hour)
	got, err := s.SignVessel(ctx, VesselSigning{CompanyID: a.ID, VesselIMO: "IMO 9074729", Direction: SignOff, Date: "2026-11-27"})
	if err != nil {
		t.Fatal(err)
	}
	want := &VesselSigned{VesselIMO: "9074729", Direction: SignOff, Date: "2026-11-27", Changed: 2, Unchanged: 2,
		SeafarerIDs: []string{aCrew[0].ID, aCrew[1].ID}}
	if !equalSigned(got, want) {
		t.Fatalf("SignVessel = %+v, want %+v", got, want)
	}
	for _, sf := range aCrew[:2] {
		now, _ := s.Seafarer(ctx, sf.ID)
		if now.Status != StatusSignedOff || now.SignOff != "2026-11-27" || now.SignOn != sf.SignOn || !now.UpdatedAt.Equal(epoch.Add(time.Hour)) {
			t.Errorf("active seafarer after the vessel signed off: %+v", now)
		}
	}
	// The suspended, the already signed off, A's crew elsewhere and B's
	// crew on the same vessel are untouched.
	for _, sf := range []*Seafarer{aCrew[2], aCrew[3], aElsewhere, bCrew[0], bCrew[1]} {
		if now, _ := s.Seafarer(ctx, sf.ID); *now != before[sf.ID] {
			t.Errorf("seafarer %s changed: %+v, was %+v", sf.ID, now, before[sf.ID])
		}
	}

	again, err := s.SignVessel(ctx, VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: SignOff, Date: "2026-11-27"})
	if want := (&VesselSigned{VesselIMO: "9074729", Direction: SignOff, Date: "2026-11-27", Unchanged: 4, SeafarerIDs: []string{}}); err != nil || !equalSigned(again, want) {
		t.Fatalf("repeat = %+v, %v; want %+v", again, err, want)
	}
}

func TestSignVesselOnSignsTheSignedOffCrewOnAgainFromTheDateAndClearsTheirSignOff(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	a := MustCompany(t, s, "VA")
	crew := vesselCrew(t, s, a, "A", "9074729", 1, StatusSignedOff, StatusSignedOff, StatusActive, StatusSuspended)

	got, err := s.SignVessel(ctx, VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: SignOn})
	want := &VesselSigned{VesselIMO: "9074729", Direction: SignOn, Date: today, Changed: 2, Unchanged: 2,
		SeafarerIDs: []string{crew[0].ID, crew[1].ID}}
	if err != nil || !equalSigned(got, want) {
		t.Fatalf("SignVessel = %+v, %v; want %+v (no date is today)", got, err, want)
	}
	for _, sf := range crew[:2] {
		if now, _ := s.Seafarer(ctx, sf.ID); now.Status != StatusActive || now.SignOn != today || now.SignOff != "" {
			t.Errorf("signed on again: %+v", now)
		}
	}
	if now, _ := s.Seafarer(ctx, crew[3].ID); now.Status != StatusSuspended {
		t.Errorf("a suspended seafarer was signed on: %+v", now)
	}
	again, err := s.SignVessel(ctx, VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: SignOn})
	if err != nil || again.Changed != 0 || again.Unchanged != 4 {
		t.Fatalf("repeat = %+v, %v; want nothing changed", again, err)
	}
}

func TestSignVesselRefusesBadInputAndUnknownVesselsAndChangesNothing(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	a, b := MustCompany(t, s, "VA"), MustCompany(t, s, "VB")
	crew := vesselCrew(t, s, a, "A", "9074729", 1, StatusActive)
	vesselCrew(t, s, b, "B", imo("931234"), 20, StatusActive)
	for _, tc := range []struct {
		name  string
		in    VesselSigning
		code  string
		field string
	}{
		{"an IMO number with a wrong check digit is refused naming vessel_imo",
			VesselSigning{CompanyID: a.ID, VesselIMO: "9074720", Direction: SignOff}, wuyou.EINVALID, "vessel_imo"},
		{"an IMO number that is not 7 digits is refused naming vessel_imo",
			VesselSigning{CompanyID: a.ID, VesselIMO: "90747", Direction: SignOff}, wuyou.EINVALID, "vessel_imo"},
		{"a date not written YYYY-MM-DD is refused naming date",
			VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: SignOff, Date: "27.11.2026"}, wuyou.EINVALID, "date"},
		{"a date that does not exist is refused naming date",
			VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: SignOff, Date: "2026-02-29"}, wuyou.EINVALID, "date"},
		{"a sign-off date before a seafarer's sign_on is refused naming date",
			VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: SignOff, Date: "2026-09-30"}, wuyou.EINVALID, "date"},
		{"an unknown direction is refused naming direction",
			VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: "sign-away"}, wuyou.EINVALID, "direction"},
		{"a vessel the company has no crew on is not found, even when another company has",
			VesselSigning{CompanyID: a.ID, VesselIMO: imo("931234"), Direction: SignOff}, wuyou.ENOTFOUND, ""},
		{"an unknown company is not found",
			VesselSigning{CompanyID: "co_nosuchcompany", VesselIMO: "9074729", Direction: SignOff}, wuyou.ENOTFOUND, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.SignVessel(ctx, tc.in)
			wantCode(t, err, tc.code)
			if tc.field != "" {
				wantField(t, err, tc.field)
			}
		})
	}
	if now, _ := s.Seafarer(ctx, crew[0].ID); *now != *crew[0] {
		t.Fatalf("a refused signing changed %+v to %+v", crew[0], now)
	}
}

// A PATCH and a vessel's sign-off of the same seafarers at the same time:
// each PATCH's change and the sign-off both survive, whichever came first.
func TestPGConcurrentPatchesAndAVesselSignOffLoseNeitherChange(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	a := MustCompany(t, s, "VA")
	const n = 12
	statuses := make([]string, n)
	for i := range statuses {
		statuses[i] = StatusActive
	}
	crew := vesselCrew(t, s, a, "A", "9074729", 1, statuses...)

	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, n+2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.SignVessel(ctx, VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: SignOff, Date: "2026-11-27"}); err != nil {
				errs <- err
			}
		}()
		for i, sf := range crew {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name, number := fmt.Sprintf("MV Round %d", round), msisdn(1000*(round+1)+i)
				if _, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{VesselName: &name, MSISDN: &number}); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i, sf := range crew {
			now, _ := s.Seafarer(ctx, sf.ID)
			if now.Status != StatusSignedOff || now.SignOff != "2026-11-27" {
				t.Errorf("round %d: %s lost the sign-off: %+v", round, sf.ID, now)
			}
			if now.VesselName != fmt.Sprintf("MV Round %d", round) || now.MSISDN != msisdn(1000*(round+1)+i) {
				t.Errorf("round %d: %s lost the PATCH: %+v", round, sf.ID, now)
			}
		}
		// Sign them on again for the next round.
		if _, err := s.SignVessel(ctx, VesselSigning{CompanyID: a.ID, VesselIMO: "9074729", Direction: SignOn, Date: "2026-11-27"}); err != nil {
			t.Fatal(err)
		}
	}
}

func equalSigned(a, b *VesselSigned) bool {
	return a != nil && b != nil && a.VesselIMO == b.VesselIMO && a.Direction == b.Direction && a.Date == b.Date &&
		a.Changed == b.Changed && a.Unchanged == b.Unchanged && slices.Equal(a.SeafarerIDs, b.SeafarerIDs)
}
