package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/quota"
)

// grantWorkers is how many AddGrant calls quota.Issuer and
// quota.RecurringEngine make at once within a batch (quota's grantWorkers);
// the baselines make their calls with the same concurrency.
const grantWorkers = 16

// everyoneActive is a roster in memory in which every seafarer is active, so
// the figure is of the issuer and Redis, not of a registry.
type everyoneActive struct{}

func (everyoneActive) SeafarerStatus(context.Context, string) (string, error) { return "active", nil }

func (everyoneActive) SeafarerStatuses(_ context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for i := range out {
		out[i] = "active"
	}
	return out, nil
}

func (everyoneActive) CompanyCrew(context.Context, string, func(string) error) error {
	return wuyou.Errorf(wuyou.ENOTFOUND, "no companies in the bench roster")
}

func (everyoneActive) VesselCrew(context.Context, string, func(string) error) error { return nil }

func runIssuance(ctx context.Context, args []string, env environment, out *results, progress func(string, ...any)) error {
	fs := flag.NewFlagSet("issuance", flag.ContinueOnError)
	seafarers := fs.Int("seafarers", 10_000, "seafarers per issuance")
	rounds := fs.Int("rounds", 3, "issuances (and baseline runs), alternating; the medians are reported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out.info("issuance.command", "%s", command("wuyoubench", fs))
	l, db, done, err := openLabAndDatabase(ctx, env, env, "issuance", out)
	if err != nil {
		return err
	}
	defer done()
	pool := db.pool
	store := quota.NewRedisStore(l.rdb, l.prefix, wuyou.SystemClock, quota.Options{})
	programmes := quota.NewPGProgrammes(pool, wuyou.SystemClock, nil) // seconds used are not read while issuing
	issuer := quota.NewIssuer(programmes, store, everyoneActive{}, wuyou.SystemClock)
	issuer.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	defer issuer.Close(context.Background())
	now := wuyou.SystemClock()
	prog, err := programmes.CreateProgramme(ctx, quota.ProgrammeInput{
		Name: "bench pack", PackSeconds: 1800, ValidDays: 30, Priority: 1,
		StartsAt: now.Add(-time.Hour), EndsAt: now.AddDate(0, 0, 90),
	})
	if err != nil {
		return err
	}

	var issued, baseline []float64
	var last cost
	for r := range *rounds {
		ids := make([]string, *seafarers)
		for i := range ids {
			ids[i] = fmt.Sprintf("sf-b%d-%06d", r, i)
		}
		progress("issuance round %d: baseline, %d AddGrant calls (%d at once)", r+1, len(ids), grantWorkers)
		before := l.sample(ctx)
		if err := grantEach(ctx, store, ids, prog.ID, 1800, now, grantWorkers); err != nil {
			return err
		}
		baseline = append(baseline, float64(len(ids))/l.sample(ctx).since(before).Wall.Seconds())

		for i := range ids {
			ids[i] = fmt.Sprintf("sf-i%d-%06d", r, i)
		}
		progress("issuance round %d: issuing to %d seafarers", r+1, len(ids))
		before = l.sample(ctx)
		iss, _, err := issuer.StartAndRun(ctx, prog.ID, fmt.Sprintf("bench-%d", r), quota.IssuanceTarget{SeafarerIDs: ids}, len(ids))
		if err != nil {
			return err
		}
		last = l.sample(ctx).since(before)
		if iss.Status != quota.IssuanceDone || iss.Issued != int64(len(ids)) {
			return fmt.Errorf("issuance %s: status %s, %d of %d issued", iss.ID, iss.Status, iss.Issued, len(ids))
		}
		issued = append(issued, float64(len(ids))/last.Wall.Seconds())
	}
	rate, base := median(issued), median(baseline)
	out.figure("issuance.rate", rate, "packs/s")
	out.figure("issuance.baseline", base, "grants/s")
	out.figure("issuance.ratio", rate/base, "x")
	out.info("issuance.setup", "quota.Issuer.StartAndRun to %d seafarer ids (roster in memory, all active; no grant publisher; issuances and grants in PostgreSQL, a fresh database), run synchronously; baseline: RedisStore.AddGrant to %d other seafarers, %d at once as the issuer does; medians of %d alternating rounds", *seafarers, *seafarers, grantWorkers, *rounds)
	out.figure("issuance.round_trips_per_pack", float64(last.RoundTrips)/float64(*seafarers), "round-trips")
	out.note("issuance", "%s Per batch of 500 targets: the targets read from PostgreSQL, one PostgreSQL transaction that decides the batch (issuance and programme rows locked, grants inserted, budget counted), then the 500 AddGrant calls %d at a time; %.2f Redis round trips per pack, measured.", last.bound("the issuer"), grantWorkers, float64(last.RoundTrips)/float64(*seafarers))
	return nil
}
