package crew

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wuyou/wuyou"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var epoch = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func MustCompany(tb testing.TB, s *PGStore, regNo string) *Company {
	tb.Helper()
	c, err := s.CreateCompany(context.Background(), "COSCO Shipping "+regNo, regNo)
	if err != nil {
		tb.Fatalf("create company %s: %v", regNo, err)
	}
	return c
}

func MustEnrol(tb testing.TB, s *PGStore, companyID string, e Enrolment) *Seafarer {
	tb.Helper()
	sf, created, err := s.Enrol(context.Background(), companyID, e)
	if err != nil {
		tb.Fatalf("enrol %s: %v", e.BookNo, err)
	}
	if !created {
		tb.Fatalf("enrol %s: updated an existing seafarer, want a new one", e.BookNo)
	}
	return sf
}

// enrolment returns a valid enrolment.
func enrolment(bookNo, msisdn string) Enrolment {
	return Enrolment{BookNo: bookNo, Name: "张伟", Nationality: "CN", MSISDN: msisdn,
		VesselIMO: "9074729", VesselName: "COSCO Harmony", SignOn: "2026-10-01"}
}

// imo returns a valid IMO number: six digits and their check digit.
func imo(six string) string {
	sum := 0
	for i := 0; i < 6; i++ {
		sum += int(six[i]-'0') * (7 - i)
	}
	return six + strconv.Itoa(sum%10)
}

func msisdn(n int) string { return fmt.Sprintf("+86138%08d", n) }

func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := wuyou.ErrorCode(err); got != code {
		tb.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

// wantField asserts err names field among its field errors.
func wantField(tb testing.TB, err error, field string) {
	tb.Helper()
	var e *wuyou.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error %v is not a *wuyou.Error", err)
	}
	for _, f := range e.Fields {
		if f.Field == field {
			return
		}
	}
	tb.Fatalf("error %v does not name field %q", err, field)
}

func TestCreateCompanyStoresTheCompany(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()

	c, err := s.CreateCompany(ctx, "  中远海运集装箱运输有限公司 ", " 91310000132212082X ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.ID, "co_") || c.Name != "中远海运集装箱运输有限公司" || c.RegistrationNo != "91310000132212082X" || !c.CreatedAt.Equal(epoch) {
		t.Fatalf("created %+v", c)
	}
	got, err := s.Company(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *c {
		t.Fatalf("Company = %+v, want %+v", got, c)
	}
}

func TestUnknownCompanyIsNotFound(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	for _, id := range []string{"co_01JDOESNOTEXIST0000000000", "", "co_{x}"} {
		_, err := s.Company(context.Background(), id)
		wantCode(t, err, wuyou.ENOTFOUND)
	}
}

func TestCreateCompanyRejectsMissingOrOverlongFields(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	for _, tc := range []struct {
		name, companyName, regNo, field string
	}{
		{"name missing", " ", "R1", "name"},
		{"name over 200 characters", strings.Repeat("船", 201), "R1", "name"},
		{"registration_no missing", "Acme", "", "registration_no"},
		{"registration_no over 64 characters", "Acme", strings.Repeat("9", 65), "registration_no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateCompany(context.Background(), tc.companyName, tc.regNo)
			wantCode(t, err, wuyou.EINVALID)
			wantField(t, err, tc.field)
		})
	}
	if _, err := s.CreateCompany(context.Background(), strings.Repeat("船", 200), strings.Repeat("9", 64)); err != nil {
		t.Fatalf("a 200-character name and a 64-character registration number are allowed: %v", err)
	}
}

func TestCreateCompanyWithATakenRegistrationNoConflicts(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	MustCompany(t, s, "REG-1")
	_, err := s.CreateCompany(context.Background(), "Another name", "REG-1")
	wantCode(t, err, wuyou.ECONFLICT)
	wantField(t, err, "registration_no")
}

func TestConcurrentCompaniesWithOneRegistrationNoHaveExactlyOneWinner(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = s.CreateCompany(context.Background(), fmt.Sprintf("Company %d", i), "REG-RACE")
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			wantCode(t, err, wuyou.ECONFLICT)
		}
	}
	if won != 1 {
		t.Fatalf("%d companies created with one registration number, want 1", won)
	}
}

func TestEnrolCreatesAnActiveSeafarerResolvableByMSISDN(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")

	e := enrolment(" E1234567 ", " +8613800000001 ")
	e.Nationality, e.VesselIMO = "cn", "IMO 9074729"
	sf, created, err := s.Enrol(ctx, co.ID, e)
	if err != nil {
		t.Fatal(err)
	}
	want := Seafarer{ID: sf.ID, CompanyID: co.ID, BookNo: "E1234567", Name: "张伟", Nationality: "CN",
		MSISDN: "+8613800000001", VesselIMO: "9074729", VesselName: "COSCO Harmony", SignOn: "2026-10-01",
		Lang: wuyou.LangZH, Status: StatusActive, CreatedAt: epoch, UpdatedAt: epoch}
	if !created || !strings.HasPrefix(sf.ID, "sf_") || *sf != want {
		t.Fatalf("Enrol = %+v, created %v; want %+v, created", sf, created, want)
	}
	got, err := s.Seafarer(ctx, sf.ID)
	if err != nil || *got != want {
		t.Fatalf("Seafarer = %+v, %v; want %+v", got, err, want)
	}
	got, err = s.SeafarerByMSISDN(ctx, "+8613800000001")
	if err != nil || got.ID != sf.ID {
		t.Fatalf("SeafarerByMSISDN = %+v, %v; want %s", got, err, sf.ID)
	}
	history, err := s.MSISDNHistory(ctx, sf.ID)
	if err != nil || len(history) != 1 || history[0] != (MSISDNPeriod{MSISDN: "+8613800000001", From: epoch}) {
		t.Fatalf("MSISDNHistory = %+v, %v", history, err)
	}
}

func TestUnknownSeafarerAndMSISDNAreNotFound(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	_, err := s.Seafarer(ctx, "sf_01JDOESNOTEXIST0000000000")
	wantCode(t, err, wuyou.ENOTFOUND)
	_, err = s.MSISDNHistory(ctx, "sf_01JDOESNOTEXIST0000000000")
	wantCode(t, err, wuyou.ENOTFOUND)
	_, err = s.SeafarerByMSISDN(ctx, "+8613800000001")
	wantCode(t, err, wuyou.ENOTFOUND)
	_, err = s.SeafarerByMSISDN(ctx, "not a number")
	wantCode(t, err, wuyou.ENOTFOUND)
}

func TestEnrolInAnUnknownCompanyIsNotFound(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	_, _, err := s.Enrol(context.Background(), "co_01JDOESNOTEXIST0000000000", enrolment("E1", msisdn(1)))
	wantCode(t, err, wuyou.ENOTFOUND)
}

func TestEnrolRejectsAnInvalidEnrolmentNamingEveryBadField(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	co := MustCompany(t, s, "R1")
	_, _, err := s.Enrol(context.Background(), co.ID, Enrolment{Name: "张伟", MSISDN: "13800000001", VesselIMO: "9074720"})
	wantCode(t, err, wuyou.EINVALID)
	for _, field := range []string{"seafarer_book_no", "msisdn", "vessel_imo"} {
		wantField(t, err, field)
	}
}

func TestReEnrollingABookNoInTheSameCompanyUpdatesThatSeafarer(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	first := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))

	clock.Advance(time.Hour)
	e := enrolment("E1", msisdn(2))
	e.Name, e.VesselIMO, e.VesselName = "张伟伟", imo("931234"), "COSCO Pride"
	again, created, err := s.Enrol(ctx, co.ID, e)
	if err != nil {
		t.Fatal(err)
	}
	if created || again.ID != first.ID {
		t.Fatalf("re-enrolment created %v id %s, want an update of %s", created, again.ID, first.ID)
	}
	if again.Name != "张伟伟" || again.MSISDN != msisdn(2) || again.VesselIMO != imo("931234") ||
		!again.CreatedAt.Equal(epoch) || !again.UpdatedAt.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("re-enrolment stored %+v", again)
	}
	if got, err := s.SeafarerByMSISDN(ctx, msisdn(2)); err != nil || got.ID != first.ID {
		t.Fatalf("new MSISDN resolves to %+v, %v", got, err)
	}
	_, err = s.SeafarerByMSISDN(ctx, msisdn(1))
	wantCode(t, err, wuyou.ENOTFOUND)

	// Enrolling the same record again changes nothing but updated_at.
	if _, created, err := s.Enrol(ctx, co.ID, e); err != nil || created {
		t.Fatalf("repeated re-enrolment: created %v, %v", created, err)
	}
}

func TestReEnrollingASignedOffSeafarerMakesThemActiveButASuspendedOneStaysSuspended(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	for _, tc := range []struct{ status, want string }{
		{StatusSignedOff, StatusActive},
		{StatusSuspended, StatusSuspended},
	} {
		sf := MustEnrol(t, s, co.ID, enrolment("E-"+tc.status[:4], msisdn(len(tc.status))))
		if _, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{Status: &tc.status}); err != nil {
			t.Fatal(err)
		}
		again, _, err := s.Enrol(ctx, co.ID, enrolment(sf.BookNo, sf.MSISDN))
		if err != nil || again.Status != tc.want {
			t.Fatalf("re-enrolled %s seafarer: status %q, %v; want %q", tc.status, again.Status, err, tc.want)
		}
	}
}

func TestEnrollingABookNoOfAnotherCompanyConflicts(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	mine, theirs := MustCompany(t, s, "R1"), MustCompany(t, s, "R2")
	sf := MustEnrol(t, s, theirs.ID, enrolment("E1", msisdn(1)))

	_, _, err := s.Enrol(ctx, mine.ID, enrolment("E1", msisdn(2)))
	wantCode(t, err, wuyou.ECONFLICT)
	wantField(t, err, "seafarer_book_no")
	if got, _ := s.Seafarer(ctx, sf.ID); got.CompanyID != theirs.ID || got.MSISDN != msisdn(1) {
		t.Fatalf("the other company's seafarer changed: %+v", got)
	}
	_, err = s.SeafarerByMSISDN(ctx, msisdn(2))
	wantCode(t, err, wuyou.ENOTFOUND)
}

func TestEnrollingAnMSISDNOfAnotherSeafarerConflicts(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	owner := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))

	_, _, err := s.Enrol(ctx, co.ID, enrolment("E2", msisdn(1)))
	wantCode(t, err, wuyou.ECONFLICT)
	wantField(t, err, "msisdn")
	if got, err := s.SeafarerByMSISDN(ctx, msisdn(1)); err != nil || got.ID != owner.ID {
		t.Fatalf("MSISDN resolves to %+v, %v; want %s", got, err, owner.ID)
	}
	// The refused enrolment gave its book number back.
	MustEnrol(t, s, co.ID, enrolment("E2", msisdn(2)))
}

func TestConcurrentEnrolmentsOfOneMSISDNHaveExactlyOneWinner(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")

	const n = 20
	enrolled := make([]*Seafarer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			enrolled[i], _, errs[i] = s.Enrol(ctx, co.ID, enrolment(fmt.Sprintf("E%02d", i), msisdn(1)))
		})
	}
	wg.Wait()

	var winner *Seafarer
	for i, err := range errs {
		if err == nil {
			if winner != nil {
				t.Fatalf("both %s and %s won MSISDN %s", winner.BookNo, enrolled[i].BookNo, msisdn(1))
			}
			winner = enrolled[i]
			continue
		}
		wantCode(t, err, wuyou.ECONFLICT)
	}
	if winner == nil {
		t.Fatal("no enrolment won")
	}
	if got, err := s.SeafarerByMSISDN(ctx, msisdn(1)); err != nil || got.ID != winner.ID {
		t.Fatalf("MSISDN resolves to %+v, %v; want the winner %s", got, err, winner.ID)
	}
	crew, _, err := s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID})
	if err != nil || len(crew) != 1 || crew[0].ID != winner.ID {
		t.Fatalf("crew = %v, %v; want only the winner", crew, err)
	}
}

func TestConcurrentEnrolmentsOfOneBookNoCreateOneSeafarer(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")

	const n = 10
	ids := make([]string, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sf, c, err := s.Enrol(ctx, co.ID, enrolment("E1", msisdn(1)))
			if err != nil {
				t.Errorf("enrolment %d: %v", i, err)
				return
			}
			ids[i], created[i] = sf.ID, c
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got := len(slices.Compact(slices.Sorted(slices.Values(ids)))); got != 1 {
		t.Fatalf("%d seafarers for one book number: %v", got, ids)
	}
	if got := len(slices.DeleteFunc(created, func(c bool) bool { return !c })); got != 1 {
		t.Fatalf("%d enrolments report created, want 1", got)
	}
}

func TestChangingTheMSISDNMovesTheNumberAndKeepsItsHistory(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	sf := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))

	clock.Advance(24 * time.Hour)
	changedAt := clock.Now()
	next := msisdn(2)
	got, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{MSISDN: &next})
	if err != nil || got.MSISDN != next {
		t.Fatalf("UpdateSeafarer = %+v, %v", got, err)
	}
	if got, err := s.SeafarerByMSISDN(ctx, next); err != nil || got.ID != sf.ID {
		t.Fatalf("new MSISDN resolves to %+v, %v", got, err)
	}
	_, err = s.SeafarerByMSISDN(ctx, msisdn(1))
	wantCode(t, err, wuyou.ENOTFOUND)

	history, err := s.MSISDNHistory(ctx, sf.ID)
	want := []MSISDNPeriod{{MSISDN: msisdn(1), From: epoch, To: changedAt}, {MSISDN: next, From: changedAt}}
	if err != nil || !slices.Equal(history, want) {
		t.Fatalf("MSISDNHistory = %+v, %v; want %+v", history, err, want)
	}

	// The old number is free for another seafarer.
	other := MustEnrol(t, s, co.ID, enrolment("E2", msisdn(1)))
	if got, err := s.SeafarerByMSISDN(ctx, msisdn(1)); err != nil || got.ID != other.ID {
		t.Fatalf("old MSISDN resolves to %+v, %v; want %s", got, err, other.ID)
	}
}

func TestUpdateSignsOffAndChangesStatusAndVessel(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	sf := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))

	clock.Advance(time.Minute)
	signedOff, date := StatusSignedOff, "2026-12-20"
	got, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{Status: &signedOff, SignOff: &date})
	if err != nil || got.Status != StatusSignedOff || got.SignOff != date || !got.UpdatedAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("sign-off = %+v, %v", got, err)
	}
	suspended := StatusSuspended
	if got, err = s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{Status: &suspended}); err != nil || got.Status != StatusSuspended || got.SignOff != date {
		t.Fatalf("suspend = %+v, %v", got, err)
	}
	vessel, name, none := "IMO "+imo("931234"), "COSCO Pride", ""
	if got, err = s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{VesselIMO: &vessel, VesselName: &name, SignOff: &none}); err != nil ||
		got.VesselIMO != imo("931234") || got.VesselName != name || got.SignOff != "" {
		t.Fatalf("vessel change = %+v, %v", got, err)
	}
	if stored, _ := s.Seafarer(ctx, sf.ID); *stored != *got {
		t.Fatalf("stored %+v, returned %+v", stored, got)
	}
	if got, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{}); err != nil || got.UpdatedAt != epoch.Add(time.Minute) {
		t.Fatalf("empty update = %+v, %v; want the seafarer unchanged", got, err)
	}
}

func TestUpdateRejectsAnInvalidFieldNamingIt(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	co := MustCompany(t, s, "R1")
	sf := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))
	str := func(v string) *string { return &v }
	for _, tc := range []struct {
		name  string
		u     SeafarerUpdate
		field string
	}{
		{"msisdn not E.164", SeafarerUpdate{MSISDN: str("013800000001")}, "msisdn"},
		{"msisdn empty", SeafarerUpdate{MSISDN: str("")}, "msisdn"},
		{"status unknown", SeafarerUpdate{Status: str("retired")}, "status"},
		{"vessel_imo bad check digit", SeafarerUpdate{VesselIMO: str("9074720")}, "vessel_imo"},
		{"sign_off not a date", SeafarerUpdate{SignOff: str("20/12/2026")}, "sign_off"},
		{"sign_off before sign_on", SeafarerUpdate{SignOff: str("2026-09-30")}, "sign_off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.UpdateSeafarer(context.Background(), sf.ID, tc.u)
			wantCode(t, err, wuyou.EINVALID)
			wantField(t, err, tc.field)
		})
	}
	if got, _ := s.Seafarer(context.Background(), sf.ID); *got != *sf {
		t.Fatalf("refused updates changed the seafarer: %+v", got)
	}
}

func TestUpdateOfAnUnknownSeafarerIsNotFound(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	active := StatusActive
	_, err := s.UpdateSeafarer(context.Background(), "sf_01JDOESNOTEXIST0000000000", SeafarerUpdate{Status: &active})
	wantCode(t, err, wuyou.ENOTFOUND)
}

func TestUpdateToAnMSISDNOfAnotherSeafarerConflicts(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	a := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))
	MustEnrol(t, s, co.ID, enrolment("E2", msisdn(2)))

	taken := msisdn(2)
	_, err := s.UpdateSeafarer(ctx, a.ID, SeafarerUpdate{MSISDN: &taken})
	wantCode(t, err, wuyou.ECONFLICT)
	wantField(t, err, "msisdn")
	if got, err := s.SeafarerByMSISDN(ctx, msisdn(1)); err != nil || got.ID != a.ID {
		t.Fatalf("the seafarer's own MSISDN resolves to %+v, %v", got, err)
	}
}

func TestSeafarersPagesThroughTheWholeCrewOnceInIDOrder(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co, other := MustCompany(t, s, "R1"), MustCompany(t, s, "R2")
	var want []string
	for i := range 120 {
		want = append(want, MustEnrol(t, s, co.ID, enrolment(fmt.Sprintf("E%03d", i), msisdn(i))).ID)
	}
	MustEnrol(t, s, other.ID, enrolment("OTHER", msisdn(999)))
	if !slices.IsSorted(want) {
		t.Fatal("ids made one after another do not sort in that order")
	}

	var got []string
	var pages []int
	f := SeafarerFilter{CompanyID: co.ID, Limit: 50}
	for {
		page, next, err := s.Seafarers(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, len(page))
		for _, sf := range page {
			got = append(got, sf.ID)
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if !slices.Equal(got, want) || !slices.Equal(pages, []int{50, 50, 20}) {
		t.Fatalf("pages of %v, %d ids; want 50, 50, 20 and all 120 in order", pages, len(got))
	}

	for _, tc := range []struct{ limit, want int }{{0, DefaultListLimit}, {-1, DefaultListLimit}, {1000, 120}} {
		page, next, err := s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID, Limit: tc.limit})
		if err != nil || len(page) != tc.want || (tc.want == 120) != (next == "") {
			t.Errorf("limit %d: %d items, next %q, %v; want %d", tc.limit, len(page), next, err, tc.want)
		}
	}
	// A page that ends exactly at the end of the list has no next page.
	if page, next, err := s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID, Limit: 120}); err != nil || len(page) != 120 || next != "" {
		t.Fatalf("limit 120 of 120: %d items, next %q, %v", len(page), next, err)
	}
}

func TestSeafarersFiltersByVesselAndStatus(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co := MustCompany(t, s, "R1")
	harmony, pride := "9074729", imo("931234")
	var onPride []string
	for i := range 9 {
		e := enrolment(fmt.Sprintf("E%d", i), msisdn(i))
		if i%3 == 0 {
			e.VesselIMO = pride
		}
		sf := MustEnrol(t, s, co.ID, e)
		if i%3 == 0 {
			onPride = append(onPride, sf.ID)
		}
	}
	signedOff := StatusSignedOff
	first, _ := s.SeafarerByMSISDN(ctx, msisdn(0))
	if _, err := s.UpdateSeafarer(ctx, first.ID, SeafarerUpdate{Status: &signedOff}); err != nil {
		t.Fatal(err)
	}
	// One seafarer moves from Harmony to Pride.
	mover, _ := s.SeafarerByMSISDN(ctx, msisdn(1))
	if _, err := s.UpdateSeafarer(ctx, mover.ID, SeafarerUpdate{VesselIMO: &pride}); err != nil {
		t.Fatal(err)
	}
	onPride = append(onPride, mover.ID)
	slices.Sort(onPride)

	ids := func(f SeafarerFilter) []string {
		t.Helper()
		f.CompanyID, f.Limit = co.ID, 2
		var out []string
		if err := s.EachSeafarer(ctx, f, func(sf *Seafarer) error {
			out = append(out, sf.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := ids(SeafarerFilter{VesselIMO: pride}); !slices.Equal(got, onPride) {
		t.Errorf("on %s: %v, want %v", pride, got, onPride)
	}
	if got := ids(SeafarerFilter{VesselIMO: "IMO" + harmony}); len(got) != 5 || slices.Contains(got, mover.ID) {
		t.Errorf("on %s: %v, want the 5 left aboard", harmony, got)
	}
	activeOnPride := slices.DeleteFunc(slices.Clone(onPride), func(id string) bool { return id == first.ID })
	if got := ids(SeafarerFilter{VesselIMO: pride, Status: StatusActive}); len(got) != 3 || !slices.Equal(got, activeOnPride) {
		t.Errorf("active on %s: %v, want %v", pride, got, activeOnPride)
	}
	if got := ids(SeafarerFilter{Status: StatusSignedOff}); !slices.Equal(got, []string{first.ID}) {
		t.Errorf("signed off: %v, want [%s]", got, first.ID)
	}

	_, _, err := s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID, Status: "retired"})
	wantCode(t, err, wuyou.EINVALID)
	_, _, err = s.Seafarers(ctx, SeafarerFilter{CompanyID: "co_01JDOESNOTEXIST0000000000"})
	wantCode(t, err, wuyou.ENOTFOUND)
}

func TestEachSeafarerStopsAtTheFirstError(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	co := MustCompany(t, s, "R1")
	for i := range 5 {
		MustEnrol(t, s, co.ID, enrolment(fmt.Sprintf("E%d", i), msisdn(i)))
	}
	stop := errors.New("stop")
	calls := 0
	err := s.EachSeafarer(context.Background(), SeafarerFilter{CompanyID: co.ID, Limit: 2}, func(*Seafarer) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("EachSeafarer = %v after %d calls, want stop after 3", err, calls)
	}
}

func TestVesselSeafarersSpansCompanies(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	a, b := MustCompany(t, s, "R1"), MustCompany(t, s, "R2")
	pride := imo("931234")
	var want []string
	for i, co := range []*Company{a, b, a, b} {
		e := enrolment(fmt.Sprintf("E%d", i), msisdn(i))
		e.VesselIMO = pride
		want = append(want, MustEnrol(t, s, co.ID, e).ID)
	}
	MustEnrol(t, s, a.ID, enrolment("ELSEWHERE", msisdn(9)))
	suspended := StatusSuspended
	if _, err := s.UpdateSeafarer(ctx, want[3], SeafarerUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}

	collect := func(status string) []string {
		var out []string
		if err := s.VesselSeafarers(ctx, "IMO "+pride, status, func(sf *Seafarer) error {
			out = append(out, sf.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := collect(""); !slices.Equal(got, want) {
		t.Errorf("crew of %s = %v, want %v", pride, got, want)
	}
	if got := collect(StatusActive); !slices.Equal(got, want[:3]) {
		t.Errorf("active crew of %s = %v, want %v", pride, got, want[:3])
	}
	wantCode(t, s.VesselSeafarers(ctx, "1234560", "", func(*Seafarer) error { return nil }), wuyou.EINVALID)
}

func TestOnMSISDNAssignedIsCalledWhenANumberStartsToResolve(t *testing.T) {
	t.Parallel()
	s, clock := MustPGStore(t)
	ctx := context.Background()
	type call struct {
		id, msisdn string
		at         time.Time
	}
	var calls []call
	s.OnMSISDNAssigned = func(_ context.Context, id, msisdn string, at time.Time) {
		calls = append(calls, call{id, msisdn, at})
	}
	co := MustCompany(t, s, "R1")
	sf := MustEnrol(t, s, co.ID, enrolment("E1", msisdn(1)))
	clock.Advance(time.Hour)
	if _, _, err := s.Enrol(ctx, co.ID, enrolment("E1", msisdn(1))); err != nil { // same number: no call
		t.Fatal(err)
	}
	active, next := StatusActive, msisdn(2)
	if _, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{Status: &active}); err != nil { // no call
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := s.UpdateSeafarer(ctx, sf.ID, SeafarerUpdate{MSISDN: &next}); err != nil {
		t.Fatal(err)
	}
	_, _, _ = s.Enrol(ctx, co.ID, enrolment("E2", msisdn(2))) // refused: no call

	want := []call{{sf.ID, msisdn(1), epoch}, {sf.ID, msisdn(2), epoch.Add(2 * time.Hour)}}
	if !slices.Equal(calls, want) {
		t.Fatalf("calls = %+v, want %+v", calls, want)
	}
}

// Staff find a seafarer by what they know: part of the name in any case,
// or the number as they would type it. A name query never matches digits
// in an MSISDN, LIKE's wildcards in a query stand for themselves, another
// company's crew is never found, and a query that is not text is refused
// naming q.
func TestSeafarersFindsByPartOfTheNameOrTheMSISDN(t *testing.T) {
	t.Parallel()
	s, _ := MustPGStore(t)
	ctx := context.Background()
	co, other := MustCompany(t, s, "Q1"), MustCompany(t, s, "Q2")
	named := func(book, name string, n int) *Seafarer {
		e := enrolment(book, msisdn(n))
		e.Name = name
		return MustEnrol(t, s, co.ID, e)
	}
	wangHai := named("Q-1", "Wang Hai", 1)
	wangFang := named("Q-2", "WANG Fang", 2)
	liNa := named("Q-3", "李娜", 3)
	percent := named("Q-4", "100% Li", 4)
	e := enrolment("Q-5", msisdn(5))
	e.Name = "Wang Elsewhere"
	MustEnrol(t, s, other.ID, e)

	find := func(q string) []string {
		t.Helper()
		list, _, err := s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID, Query: q})
		if err != nil {
			t.Fatalf("q %q: %v", q, err)
		}
		var ids []string
		for _, sf := range list {
			ids = append(ids, sf.ID)
		}
		return ids
	}
	cases := []struct {
		q    string
		want []string
	}{
		{"wang", []string{wangHai.ID, wangFang.ID}},                  // any case, this company only
		{"  Hai ", []string{wangHai.ID}},                             // trimmed
		{"李", []string{liNa.ID}},                                     // any script
		{"+86 1380000 0003", []string{liNa.ID}},                      // a number as typed: its digits
		{"0000-0004", []string{percent.ID}},                          // dashes too
		{"%", []string{percent.ID}},                                  // a wildcard is a character
		{"_", nil},                                                   // likewise: no name has one
		{"138x", nil},                                                // not a number: a name query
		{"", []string{wangHai.ID, wangFang.ID, liNa.ID, percent.ID}}, // everyone
	}
	for _, c := range cases {
		got, want := find(c.q), slices.Clone(c.want)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("q %q: %v, want %v", c.q, got, want)
		}
	}
	_, _, err := s.Seafarers(ctx, SeafarerFilter{CompanyID: co.ID, Query: "a\x00b"})
	var werr *wuyou.Error
	if !errors.As(err, &werr) || werr.Code != wuyou.EINVALID || len(werr.Fields) != 1 || werr.Fields[0].Field != "q" {
		t.Fatalf("a query with NUL: %v, want EINVALID naming q", err)
	}
}
