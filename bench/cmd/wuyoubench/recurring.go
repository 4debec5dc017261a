package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/fanout"
	"github.com/wuyou/wuyou/quota"
)

// recurringBatch is how many seafarers quota.RecurringEngine decides per
// transaction (quota's unexported recurringBatch); the baseline writes its
// grants in batches of the same size.
const recurringBatch = 500

// countingPublisher stands in for the grant publisher wuyoud wires
// (carrier.GrantPublisher: ledger entry stored, ledger and notification
// topics): it only counts the grants announced, so the sweep can be checked
// to have announced every one, and the figure is of the engine, PostgreSQL
// and Redis, not of Kafka.
type countingPublisher struct{ grants atomic.Int64 }

func (p *countingPublisher) PublishGrants(_ context.Context, gs []quota.IssuedGrant) error {
	p.grants.Add(int64(len(gs)))
	return nil
}

// recurringConfig is what one recurring measurement does.
type recurringConfig struct {
	Seafarers int
	Rounds    int
	Idle      int
}

func runRecurring(ctx context.Context, args []string, env environment, out *results, progress func(string, ...any)) error {
	var c recurringConfig
	fs := flag.NewFlagSet("recurring", flag.ContinueOnError)
	fs.IntVar(&c.Seafarers, "seafarers", 100_000, "eligible seafarers (the programme's audience: everyone enrolled)")
	fs.IntVar(&c.Rounds, "rounds", 1, "months issued, each by the baseline then by a sweep; the medians are reported")
	fs.IntVar(&c.Idle, "idle", 3, "idle sweeps after each month is issued; the median is reported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Seafarers < 1 || c.Rounds < 1 || c.Idle < 1 {
		return fmt.Errorf("recurring: -seafarers, -rounds and -idle must be at least 1")
	}
	out.info("recurring.command", "%s", command("wuyoubench", fs))
	l, db, done, err := openLabAndDatabase(ctx, env, env, "recurring", out)
	if err != nil {
		return err
	}
	defer done()
	pool := db.pool

	// Round r runs in the month r months after this one (months of the
	// programmes' zone), so each round has a whole month to issue; the clock
	// moves with real time inside it.
	zone, err := time.LoadLocation(quota.DefaultTimeZone)
	if err != nil {
		return err
	}
	started := time.Now()
	var round atomic.Int64
	clock := func() time.Time {
		t := started.In(zone)
		mid := time.Date(t.Year(), t.Month()+time.Month(round.Load()), 15, 12, 0, 0, 0, zone)
		return mid.Add(time.Since(started)).UTC()
	}

	// Wired as cmd/wuyoud wires them (the hot-state guard on, its mark set as
	// for a new deployment), but for the publisher.
	store := quota.NewRedisStore(l.rdb, l.prefix, clock, quota.Options{HotStateGuard: true})
	if err := store.MarkHotState(ctx, quota.HotMark{RebuiltAt: clock(), By: "empty"}); err != nil {
		return err
	}
	programmes := quota.NewPGProgrammes(pool, clock, nil) // seconds used are not read while issuing
	registry := crew.NewPGStore(pool, clock)

	progress("recurring: enrolling %d seafarers (COPY)", c.Seafarers)
	setupStarted := time.Now()
	company, err := registry.CreateCompany(ctx, "Bench Shipping", fmt.Sprintf("BENCH-%d", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	ids, err := copySeafarers(ctx, pool, company.ID, c.Seafarers)
	if err != nil {
		return err
	}
	out.info("recurring.enrol_setup", "%s seafarers of one company, active, signed on 2020-01-01 and not off, COPYed into seafarers (crew.PGStore has no bulk path; Enrol is one transaction a seafarer) and ANALYZEd, in %.1f s", thousands(float64(c.Seafarers)), time.Since(setupStarted).Seconds())

	// The programme swept, and one that is never active (it starts in 2090)
	// to which the baseline writes the same grants: same table, same
	// columns, same month, other ids.
	in := quota.ProgrammeInput{
		Name: "每月一小时 (bench)", PackSeconds: 3600, Priority: 5,
		StartsAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), EndsAt: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
		Recurrence: &quota.Recurrence{Every: quota.EveryMonth, While: quota.WhileSignedOn}, All: true,
	}
	swept, err := programmes.CreateProgramme(ctx, in)
	if err != nil {
		return err
	}
	in.Name = "bare grant writes (never active)"
	in.StartsAt, in.EndsAt = time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2091, 1, 1, 0, 0, 0, 0, time.UTC)
	bare, err := programmes.CreateProgramme(ctx, in)
	if err != nil {
		return err
	}

	pub := &countingPublisher{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var rates, baselines, seconds, baseSeconds, idles []float64
	var last cost
	for r := range c.Rounds {
		round.Store(int64(r))
		month, start, end := monthOf(clock(), zone)

		progress("recurring round %d (%s): baseline, %d grant rows in batches of %d, each grant added to Redis, %d at once", r+1, month, c.Seafarers, recurringBatch, grantWorkers)
		before := l.sample(ctx)
		if err := writeBareGrants(ctx, pool, store, bare, ids, month, start, end, clock()); err != nil {
			return err
		}
		took := l.sample(ctx).since(before).Wall.Seconds()
		baselines, baseSeconds = append(baselines, float64(c.Seafarers)/took), append(baseSeconds, took)

		progress("recurring round %d (%s): sweeping, %d eligible seafarers", r+1, month, c.Seafarers)
		engine := quota.NewRecurringEngine(programmes, store, clock)
		engine.Publisher, engine.Log = pub, quiet
		announcedBefore := pub.grants.Load()
		before = l.sample(ctx)
		rep, err := engine.Sweep(ctx)
		if err != nil {
			return err
		}
		last = l.sample(ctx).since(before)
		if err := checkSweep(ctx, pool, swept.ID, month, rep, pub.grants.Load()-announcedBefore, c.Seafarers); err != nil {
			return err
		}
		rates, seconds = append(rates, float64(c.Seafarers)/last.Wall.Seconds()), append(seconds, last.Wall.Seconds())

		for i := range c.Idle {
			progress("recurring round %d (%s): idle sweep %d of %d", r+1, month, i+1, c.Idle)
			at := time.Now()
			rep, err := quota.NewRecurringEngine(programmes, store, clock).Sweep(ctx)
			if err != nil {
				return err
			}
			if rep.Issued != 0 || rep.Announced != 0 {
				return fmt.Errorf("idle sweep of %s issued %d and announced %d grants, want none", month, rep.Issued, rep.Announced)
			}
			idles = append(idles, time.Since(at).Seconds())
		}
	}
	rate, base := median(rates), median(baselines)
	out.figure("recurring.seafarers", float64(c.Seafarers), "seafarers")
	out.figure("recurring.rate", rate, "grants/s")
	out.figure("recurring.seconds", median(seconds), "s")
	out.figure("recurring.baseline", base, "grants/s")
	out.figure("recurring.baseline_seconds", median(baseSeconds), "s")
	out.figure("recurring.ratio", rate/base, "x")
	out.figure("recurring.idle_seconds", median(idles), "s")
	perGrant := float64(last.RoundTrips) / float64(c.Seafarers)
	out.figure("recurring.round_trips_per_grant", perGrant, "round-trips")
	out.info("recurring.setup", "a fresh database and Redis prefix; %s eligible seafarers in the registry; a recurring programme (every month, while signed on, 3,600 s a month, no rollover, no budget, audience: everyone enrolled, zone %s); quota.RecurringEngine.Sweep by a new engine over quota.PGProgrammes and quota.RedisStore (hot-state guard on) with a clock in the middle of the month issued, its grant publisher a counter (wuyoud's stores each grant's ledger entry and publishes to Kafka: not in the figure); checked afterwards: the sweep issued and announced every seafarer's grant, PostgreSQL holds one grant a seafarer for the month and none is left unannounced. Baseline, in the same round before the sweep: bare grant writes of the same grants (same seafarers, amounts, times and month, under a second programme that is never active, so other ids): per batch of %d seafarers in id order, one INSERT … SELECT FROM unnest of the %d grant rows (autocommit; no conflict check, no RETURNING, no budget row, no unannounced list), then RedisStore.AddGrant for each, %d at once as the engine does; batches one after another as the engine's. Idle sweep: a sweep by a new engine right after, with every seafarer holding the month's grant (median of %d). Medians of %d round(s), each in its own month",
		thousands(float64(c.Seafarers)), quota.DefaultTimeZone, recurringBatch, recurringBatch, grantWorkers, c.Idle*c.Rounds, c.Rounds)
	out.note("recurring", "%s Per batch of %d the sweep does what the baseline does (the grant rows, %d AddGrant calls %d at a time) and, around it: the candidates query (the audience in id order, each seafarer's grant of the month probed by index), last month's remainders read from Redis (one pipeline), a transaction instead of one statement (the month's budget row inserted and locked, the insert's conflict check and RETURNING, the counters raised, the unannounced list written), the publisher, and the list emptied again; %.2f Redis round trips per grant, measured. The idle sweep is the candidates query alone, a page of %d at a time over the whole audience.",
		last.bound("the engine"), recurringBatch, recurringBatch, grantWorkers, perGrant, recurringBatch)
	return nil
}

// monthOf is the month of t in zone: its name (YYYY-MM), first instant and
// the first instant of the next, as quota.RecurringEngine counts months.
func monthOf(t time.Time, zone *time.Location) (string, time.Time, time.Time) {
	l := t.In(zone)
	start := time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, zone)
	return start.Format("2006-01"), start, start.AddDate(0, 1, 0)
}

// copySeafarers COPYs n active seafarers of company, signed on 2020-01-01,
// into the registry and ANALYZEs it; it returns their ids in id order.
func copySeafarers(ctx context.Context, pool *pgxpool.Pool, company string, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("sf_rec_%07d", i)
	}
	signOn := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Now().UTC()
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"seafarers"},
		[]string{"id", "company_id", "seafarer_book_no", "name", "nationality", "sign_on", "status", "created_at", "updated_at"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			return []any{ids[i], company, fmt.Sprintf("BKR%07d", i), fmt.Sprintf("Seafarer %d", i), "CN", signOn, "active", now, now}, nil
		}))
	if err != nil {
		return nil, fmt.Errorf("enrol seafarers: %w", err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE seafarers, grants"); err != nil {
		return nil, err
	}
	return ids, nil
}

// writeBareGrants is the baseline: the grants a sweep would give ids for
// month, under programme p, written directly. Per batch of recurringBatch
// in id order, one INSERT of the rows, then AddGrant for each, grantWorkers
// at once.
func writeBareGrants(ctx context.Context, pool *pgxpool.Pool, store *quota.RedisStore, p *quota.Programme, ids []string, month string, start, end, now time.Time) error {
	issuedAt := now.UTC().Truncate(time.Millisecond)
	unit := p.Unit
	if unit == "" {
		unit = "seconds"
	}
	for i := 0; i < len(ids); i += recurringBatch {
		batch := ids[i:min(i+recurringBatch, len(ids))]
		grants := make([]quota.GrantInput, len(batch))
		grantIDs := make([]string, len(batch))
		amounts := make([]int64, len(batch))
		effective := make([]time.Time, len(batch))
		expires := make([]time.Time, len(batch))
		for j, sf := range batch {
			grants[j] = quota.GrantInput{
				ID: quota.RecurringGrantID(p.ID, month, sf), SeafarerID: sf, ProgrammeID: p.ID, Unit: p.Unit, Seconds: p.PackSeconds,
				Priority: p.Priority, EffectiveAt: start.UTC(), ExpiresAt: end.UTC(), IssuedAt: issuedAt,
			}
			grantIDs[j], amounts[j], effective[j], expires[j] = grants[j].ID, grants[j].Seconds, grants[j].EffectiveAt, grants[j].ExpiresAt
		}
		_, err := pool.Exec(ctx, `
INSERT INTO grants (id, seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at, recurring_month, unit)
SELECT g.id, g.seafarer_id, $6, g.seconds, $7, g.effective_at, g.expires_at, $8, $9, $10
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[])
    AS g(id, seafarer_id, seconds, effective_at, expires_at)`,
			grantIDs, batch, amounts, effective, expires, p.ID, p.Priority, issuedAt, month, unit)
		if err != nil {
			return fmt.Errorf("bare grant rows: %w", err)
		}
		err = fanout.Each(ctx, len(grants), grantWorkers, func(ctx context.Context, j int) error {
			_, _, err := store.AddGrant(ctx, grants[j])
			return err
		})
		if err != nil {
			return fmt.Errorf("bare AddGrant: %w", err)
		}
	}
	return nil
}

// checkSweep fails unless the sweep issued and announced a grant to every
// one of n seafarers for month and left none unannounced.
func checkSweep(ctx context.Context, pool *pgxpool.Pool, programmeID, month string, rep quota.SweepReport, published int64, n int) error {
	var stored, unannounced int
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM grants WHERE programme_id = $1 AND recurring_month = $2),
    (SELECT count(*) FROM recurring_unannounced)`, programmeID, month).Scan(&stored, &unannounced)
	if err != nil {
		return err
	}
	if rep.Issued != n || rep.Announced != n || published != int64(n) || stored != n || unannounced != 0 {
		return fmt.Errorf("sweep of %s: issued %d, announced %d, published %d, stored %d, unannounced %d; want %d, %d, %d, %d, 0",
			month, rep.Issued, rep.Announced, published, stored, unannounced, n, n, n, n)
	}
	return nil
}
