package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

const (
	statementSeafarers = 100_000
	statementProgramme = "pg_bench"
	statementPeriod    = "2026-11"
)

// BenchmarkProgrammeStatement100k builds the statement of one programme
// whose packs covered calls of 100,000 seafarers in the period (one line
// each), as GET /v1/statements does: the figures read from Redis, the lines
// sorted and totalled, the whole encoded as JSON. It reports seconds per
// statement and, with the allocations, bytes per statement.
//
// The seafarers' grants and calls are metered through the real debit path
// (DebitBatch, then IndexStatements, as the consumer does) before the
// timer starts; every tenth seafarer also has an adjustment line for a late
// call of the closed period before. The keys live under a fresh prefix that
// is deleted at the end.
//
//	go test -run x -bench ProgrammeStatement100k -benchtime 3x ./bench/
func BenchmarkProgrammeStatement100k(b *testing.B) {
	rdb, prefix := mustBenchClient(b)

	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	store := quota.NewRedisStore(rdb, prefix, func() time.Time { return now }, quota.Options{})
	ctx := context.Background()
	seedStatement(b, ctx, store, now)
	statements := &billing.Statements{Store: store, Registry: everyoneExists{}, Currency: "CNY"}
	payer := billing.Payer{Kind: billing.PayerProgramme, ID: statementProgramme}

	var bytes int
	b.ReportAllocs()
	started := time.Now()
	for b.Loop() {
		st, err := statements.Statement(ctx, statementPeriod, payer)
		if err != nil {
			b.Fatal(err)
		}
		js, err := json.Marshal(st)
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Lines) != statementSeafarers+statementSeafarers/10 || st.Calls != statementSeafarers+statementSeafarers/10 {
			b.Fatalf("statement has %d lines and %d calls", len(st.Lines), st.Calls)
		}
		bytes = len(js)
	}
	b.ReportMetric(time.Since(started).Seconds()/float64(b.N), "s/statement")
	b.ReportMetric(float64(bytes)/(1<<20), "MiB-json")
}

// seedStatement gives each seafarer a pack of the programme and one call in
// the period; every tenth one also a call of October metered after October
// closed.
func seedStatement(b *testing.B, ctx context.Context, store *quota.RedisStore, now time.Time) {
	b.Helper()
	id := func(i int) string { return fmt.Sprintf("sf_bench%06d", i) }
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < statementSeafarers; i += 16 {
				_, _, err := store.AddGrant(ctx, quota.GrantInput{
					ID: "gr_" + id(i), SeafarerID: id(i), ProgrammeID: statementProgramme, Seconds: 3600, Priority: 1,
					EffectiveAt: now.AddDate(0, -2, 0), ExpiresAt: now.AddDate(0, 2, 0),
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	call := func(i int, eventID string, at time.Time, billable int64) quota.Usage {
		return quota.Usage{
			SeafarerID: id(i), MSISDN: fmt.Sprintf("+86139%08d", i), Source: "urn:carrier:bench", EventID: eventID,
			Type: "carrier.usage.voice", CallTime: at, DurationSeconds: billable, BillableSeconds: billable,
			VisitedCountry: "SG", Increment: 60,
			OveragePrice: billing.Money{Minor: 99, Currency: "CNY"}, WholesalePrice: billing.Money{Minor: 45, Currency: "CNY"},
		}
	}
	meter := func(us []quota.Usage) {
		rs, err := store.DebitBatch(ctx, us)
		if err != nil {
			b.Fatal(err)
		}
		ds := make([]quota.StatementDebit, len(rs))
		for i, r := range rs {
			ds[i] = quota.StatementDebit{SeafarerID: us[i].SeafarerID, Entry: r.Entry}
		}
		if err := store.IndexStatements(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	var batch []quota.Usage
	for i := range statementSeafarers {
		batch = append(batch, call(i, fmt.Sprintf("cdr-%d", i), now.Add(-time.Duration(i%(19*24))*time.Hour), int64(60*(1+i%5))))
		if len(batch) == 500 {
			meter(batch)
			batch = batch[:0]
		}
	}
	meter(batch)
	if _, err := store.ClosePeriod(ctx, "2026-10"); err != nil {
		b.Fatal(err)
	}
	batch = batch[:0]
	for i := 0; i < statementSeafarers; i += 10 {
		batch = append(batch, call(i, fmt.Sprintf("cdr-late-%d", i), time.Date(2026, 10, 31, 20, 0, 0, 0, time.UTC), 60))
		if len(batch) == 500 {
			meter(batch)
			batch = batch[:0]
		}
	}
	meter(batch)
}

// everyoneExists is a billing.Registry for which every payer exists.
type everyoneExists struct{}

func (everyoneExists) ProgrammeExists(context.Context, string) error { return nil }
func (everyoneExists) SeafarerExists(context.Context, string) error  { return nil }
func (everyoneExists) CompanyCrew(context.Context, string, func(string) error) error {
	return nil
}
