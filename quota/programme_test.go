package quota

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
)

// programmeTestNow is the fixed clock of the programme and issuance tests.
var programmeTestNow = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// programmeEnv is the programmes' system of record on a fresh PostgreSQL
// database and the hot state on the test Redis under a fresh prefix, both
// with a fixed clock.
type programmeEnv struct {
	*PGProgrammes
	hot    *RedisStore
	grants *PGGrants
	ledger *PGLedger
	pool   *pgxpool.Pool
}

// MustProgrammeStore returns a fresh programmeEnv.
func MustProgrammeStore(tb testing.TB) *programmeEnv {
	tb.Helper()
	rdb, prefix := redistest.MustClient(tb)
	pool := pgtest.MustPool(tb)
	now := func() time.Time { return programmeTestNow }
	hot := NewRedisStore(rdb, prefix, now, Options{})
	return &programmeEnv{PGProgrammes: NewPGProgrammes(pool, now, NewPGStatements(pool, now)), hot: hot,
		grants: NewPGGrants(pool), ledger: NewPGLedger(pool), pool: pool}
}

// issuer returns an issuer over the environment's stores.
func (e *programmeEnv) issuer(roster Roster) *Issuer {
	return NewIssuer(e.PGProgrammes, e.hot, roster, e.now)
}

// validProgrammeInput is a programme every rule accepts.
func validProgrammeInput() ProgrammeInput {
	return ProgrammeInput{
		Name: "出海无忧 2026 Q4", PackSeconds: 3600, ValidDays: 90, Priority: 10, BudgetPacks: 1000,
		StartsAt: programmeTestNow.AddDate(0, -1, 0), EndsAt: programmeTestNow.AddDate(1, 0, 0),
	}
}

// MustProgramme creates a programme with the given budget (0 = unlimited).
func MustProgramme(tb testing.TB, s *programmeEnv, budgetPacks int64) *Programme {
	tb.Helper()
	in := validProgrammeInput()
	in.BudgetPacks = budgetPacks
	p, err := s.CreateProgramme(context.Background(), in)
	if err != nil {
		tb.Fatalf("create programme: %v", err)
	}
	return p
}

func fieldsOf(tb testing.TB, err error) []string {
	tb.Helper()
	var e *wuyou.Error
	if !errors.As(err, &e) || e.Code != wuyou.EINVALID {
		tb.Fatalf("want an EINVALID error, got %v", err)
	}
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	return fields
}

func TestProgrammeValidationNamesEachBadField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*ProgrammeInput)
		field string
	}{
		{"empty name", func(in *ProgrammeInput) { in.Name = "  " }, "name"},
		{"name over 200 characters", func(in *ProgrammeInput) { in.Name = strings.Repeat("海", 201) }, "name"},
		{"name with a NUL", func(in *ProgrammeInput) { in.Name = "Spring\x00Festival" }, "name"},
		{"name with a line break", func(in *ProgrammeInput) { in.Name = "Spring\nFestival" }, "name"},
		{"name with a C1 control", func(in *ProgrammeInput) { in.Name = "Spring\u0085Festival" }, "name"},
		{"name that is not UTF-8", func(in *ProgrammeInput) { in.Name = "Spring\xffFestival" }, "name"},
		{"pack under a minute", func(in *ProgrammeInput) { in.PackSeconds = 59 }, "pack_seconds"},
		{"pack over 10,000,000 seconds", func(in *ProgrammeInput) { in.PackSeconds = 10_000_001 }, "pack_seconds"},
		{"no valid days", func(in *ProgrammeInput) { in.ValidDays = 0 }, "valid_days"},
		{"valid over 3660 days", func(in *ProgrammeInput) { in.ValidDays = 3661 }, "valid_days"},
		{"negative priority", func(in *ProgrammeInput) { in.Priority = -1 }, "priority"},
		{"priority over 1000", func(in *ProgrammeInput) { in.Priority = 1001 }, "priority"},
		{"negative budget", func(in *ProgrammeInput) { in.BudgetPacks = -1 }, "budget_packs"},
		{"no start", func(in *ProgrammeInput) { in.StartsAt = time.Time{} }, "starts_at"},
		{"no end", func(in *ProgrammeInput) { in.EndsAt = time.Time{} }, "ends_at"},
		{"end not after start", func(in *ProgrammeInput) { in.EndsAt = in.StartsAt }, "ends_at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := validProgrammeInput()
			tc.edit(&in)
			got := fieldsOf(t, in.Validate())
			if len(got) != 1 || got[0] != tc.field {
				t.Fatalf("fields = %v, want [%s]", got, tc.field)
			}
		})
	}
	t.Run("every bad field at once", func(t *testing.T) {
		got := fieldsOf(t, ProgrammeInput{Priority: -1, BudgetPacks: -1}.Validate())
		want := []string{"name", "pack_seconds", "valid_days", "priority", "budget_packs", "starts_at", "ends_at"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("fields = %v, want %v", got, want)
		}
	})
}

func TestProgrammeValidationAcceptsTheLimits(t *testing.T) {
	for _, in := range []ProgrammeInput{
		{Name: strings.Repeat("海", 200), PackSeconds: 60, ValidDays: 1, Priority: 0, BudgetPacks: 0},
		{Name: "x", PackSeconds: 10_000_000, ValidDays: 3660, Priority: 1000, BudgetPacks: 1},
	} {
		in.StartsAt, in.EndsAt = programmeTestNow, programmeTestNow.Add(time.Second)
		if err := in.Validate(); err != nil {
			t.Errorf("%+v: %v", in, err)
		}
	}
}

func TestCreatedProgrammeReadsBackWithNothingIssued(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	ctx := context.Background()
	in := validProgrammeInput()
	in.Name = "  Spring Festival at sea  "
	created, err := s.CreateProgramme(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.ID, "pg_") || created.Name != "Spring Festival at sea" {
		t.Fatalf("created %+v", created)
	}
	got, err := s.Programme(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PackSeconds != 3600 || got.ValidDays != 90 || got.Priority != 10 || got.BudgetPacks != 1000 ||
		!got.StartsAt.Equal(in.StartsAt) || !got.EndsAt.Equal(in.EndsAt) || !got.CreatedAt.Equal(programmeTestNow) {
		t.Fatalf("read back %+v", got)
	}
	if got.PacksIssued != 0 || got.BudgetRemainingPacks == nil || *got.BudgetRemainingPacks != 1000 ||
		got.SecondsGranted != 0 || got.SecondsUsed != 0 {
		t.Fatalf("counters %+v", got)
	}
	if *created.BudgetRemainingPacks != 1000 {
		t.Fatalf("created budget remaining %d", *created.BudgetRemainingPacks)
	}
}

func TestUnlimitedProgrammeShowsNullBudgetRemaining(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	p := MustProgramme(t, s, 0)
	got, err := s.Programme(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(got)
	if !strings.Contains(string(js), `"budget_remaining_packs":null`) || !strings.Contains(string(js), `"packs_issued":0`) {
		t.Fatalf("json %s", js)
	}
}

func TestUnknownProgrammeIsNotFound(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	ctx := context.Background()
	for _, id := range []string{"", "pg_01JDOESNOTEXIST", "pg_\x00", "pg_\xff"} {
		if _, err := s.Programme(ctx, id); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
			t.Errorf("Programme(%q) = %v, want ENOTFOUND", id, err)
		}
		if err := s.ProgrammeExists(ctx, id); wuyou.ErrorCode(err) != wuyou.ENOTFOUND {
			t.Errorf("ProgrammeExists(%q) = %v, want ENOTFOUND", id, err)
		}
	}
}

// TestProgrammeSecondsUsedAreTheSecondsItsGrantsCoveredInTheLedger:
// seconds_used is SQL over the ledger in PostgreSQL, so it equals the
// covered seconds of the programme's draws recorded there, each debit
// counted once however often its batch is recorded, and a call drawing from
// two programmes counts in each only what that programme's grant covered.
func TestProgrammeSecondsUsedAreTheSecondsItsGrantsCoveredInTheLedger(t *testing.T) {
	t.Parallel()
	s := MustProgrammeStore(t)
	ctx := context.Background()
	p := MustProgramme(t, s, 10)
	q := MustProgramme(t, s, 10)
	now := programmeTestNow
	grant := func(id, sf, programmeID string, priority int) {
		if _, _, err := s.hot.AddGrant(ctx, GrantInput{ID: id, SeafarerID: sf, ProgrammeID: programmeID, Seconds: 600,
			EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), Priority: priority}); err != nil {
			t.Fatal(err)
		}
	}
	grant("gr_a_p", "sf_a", p.ID, 1)
	grant("gr_a_q", "sf_a", q.ID, 2) // drawn once sf_a's pack of p is gone
	grant("gr_b_p", "sf_b", p.ID, 1)
	settle := func(us ...Usage) {
		rs, err := s.hot.Settle(ctx, us)
		if err != nil {
			t.Fatal(err)
		}
		var entries []SeafarerEntry
		for _, r := range rs {
			if r.Err != nil || r.Entry == nil {
				t.Fatalf("debit: %+v", r)
			}
			entries = append(entries, SeafarerEntry{SeafarerID: r.SeafarerID, Entry: r.Entry})
		}
		for range 2 { // the batch recorded again, as after a crash before its offsets were committed
			if err := s.ledger.Append(ctx, entries); err != nil {
				t.Fatal(err)
			}
		}
	}
	settle(voiceCall("sf_a", "e1", now.Add(-30*time.Minute), 120), voiceCall("sf_b", "e2", now.Add(-20*time.Minute), 60))
	settle(voiceCall("sf_a", "e3", now.Add(-10*time.Minute), 700)) // 480 from p, 220 from q

	covered := map[string]int64{}
	for _, sf := range []string{"sf_a", "sf_b"} {
		entries, _, err := s.ledger.Ledger(ctx, sf, LedgerFilter{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			for _, d := range e.Draws {
				covered[d.ProgrammeID] += d.Seconds
			}
		}
	}
	if covered[p.ID] != 660 || covered[q.ID] != 220 {
		t.Fatalf("the ledger's draws cover %v, want %s 660 and %s 220", covered, p.ID, q.ID)
	}
	for _, prog := range []*Programme{p, q} {
		got, err := s.Programme(ctx, prog.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.SecondsUsed != covered[prog.ID] {
			t.Fatalf("programme %s: seconds_used = %d, the ledger's draws cover %d", prog.ID, got.SecondsUsed, covered[prog.ID])
		}
	}
	unused := MustProgramme(t, s, 10)
	if got, err := s.Programme(ctx, unused.ID); err != nil || got.SecondsUsed != 0 {
		t.Fatalf("a programme nothing drew from: %+v, %v", got, err)
	}
}

// TestProgrammeFiguresComeFromTheSystemOfRecordAndUsageFromItsSource: packs
// issued, budget remaining and seconds granted are PostgreSQL's; seconds
// used is whatever the ProgrammeUsage says, and its failure is the read's.
func TestProgrammeFiguresComeFromTheSystemOfRecordAndUsageFromItsSource(t *testing.T) {
	t.Parallel()
	pool := pgtest.MustPool(t)
	usage := &fixedUsage{seconds: map[string]int64{}}
	s := NewPGProgrammes(pool, func() time.Time { return programmeTestNow }, usage)
	ctx := context.Background()
	p, err := s.CreateProgramme(ctx, validProgrammeInput())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE programmes SET packs_issued = 7 WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	usage.seconds[p.ID] = 4242
	got, err := s.Programme(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PacksIssued != 7 || *got.BudgetRemainingPacks != 993 || got.SecondsGranted != 7*3600 || got.SecondsUsed != 4242 {
		t.Fatalf("programme %+v", got)
	}
	usage.err = errors.New("redis down")
	if _, err := s.Programme(ctx, p.ID); !errors.Is(err, usage.err) {
		t.Fatalf("with usage failing: %v", err)
	}
	// The budget is a constraint: no writer can count past it.
	if _, err := pool.Exec(ctx, `UPDATE programmes SET packs_issued = 1001 WHERE id = $1`, p.ID); err == nil {
		t.Fatal("packs_issued over the budget was accepted")
	}
}

type fixedUsage struct {
	seconds map[string]int64
	err     error
}

func (u *fixedUsage) SecondsUsed(_ context.Context, id string) (int64, error) {
	return u.seconds[id], u.err
}
