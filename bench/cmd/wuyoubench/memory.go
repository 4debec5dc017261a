package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/fanout"
	"github.com/wuyou/wuyou/quota"
)

// The sizing the issue asks about: 1.9 million seafarers making 3 calls a
// day, identities remembered for the default dedupe window and ledger
// entries kept for the default ledger horizon.
const (
	fleetSeafarers = 1_900_000
	callsPerDay    = 3
	dedupeWindow   = 720 * time.Hour
	ledgerHorizon  = 2160 * time.Hour
)

// Memory targets of the issue, in bytes.
const (
	targetPerSeafarer = 1536
	targetPerEntry    = 200
	targetPerIdentity = 100
)

// memoryConfig sizes the memory measurement.
type memoryConfig struct {
	Seafarers      int
	DebitsEach     int // debits per seafarer after the first
	DepthSeafarers int // seafarers carried to the steady state of a full window
	Samples        int // keys of each kind read with MEMORY USAGE
	Workers, Batch int
}

// runMemory measures what Wuyou keeps in Redis per seafarer, per ledger entry
// and per remembered event identity, on a redis-server of its own so that
// INFO memory counts nothing else, and projects it to the fleet.
func runMemory(ctx context.Context, args []string, _ environment, out *results, progress func(string, ...any)) error {
	var c memoryConfig
	fs := flag.NewFlagSet("memory", flag.ContinueOnError)
	fs.IntVar(&c.Seafarers, "seafarers", 100_000, "seafarers enrolled, each with two grants")
	fs.IntVar(&c.DebitsEach, "debits", 2, "debits per seafarer after the first (the first creates the per-period keys)")
	fs.IntVar(&c.DepthSeafarers, "depth-seafarers", 200, "seafarers carried to a full window: 3 calls a day over the ledger horizon")
	fs.IntVar(&c.Samples, "samples", 200, "keys of each kind measured with MEMORY USAGE")
	fs.IntVar(&c.Workers, "workers", 32, "concurrent enrolments and grants")
	fs.IntVar(&c.Batch, "batch", 500, "debits per DebitBatch pipeline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out.info("memory.command", "%s", command("wuyoubench", fs))
	srv, err := startRedis(ctx)
	if err != nil {
		return err
	}
	defer srv.stop()
	newClient := func() *redis.Client {
		return redis.NewClient(&redis.Options{Addr: srv.addr, PoolSize: c.Workers + 4, ReadTimeout: 30 * time.Second})
	}
	// INFO is read on a connection of its own; each phase closes its pool
	// before the reading, so no client buffer is counted as data.
	meter := redis.NewClient(&redis.Options{Addr: srv.addr, PoolSize: 1})
	defer meter.Close()
	if server, err := redisInfo(ctx, meter, "server"); err == nil {
		out.info("memory.redis_version", "%s", server["redis_version"])
	}
	used := func() (int64, error) {
		m, err := redisInfo(ctx, meter, "memory")
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(m["used_memory"], 10, 64)
	}
	const prefix = "wuyou" // the service's default WUYOU_REDIS_PREFIX: key lengths as in production
	now := wuyou.SystemClock()
	f := &fleet{prefix: prefix, now: now}

	base, err := used()
	if err != nil {
		return err
	}
	// 1. Enrolment: profile, MSISDN history, MSISDN and book claims, company and vessel lists.
	started := time.Now()
	progress("memory: enrolling %d seafarers (%d at once)", c.Seafarers, c.Workers)
	rdb := newClient()
	if err := f.enrol(ctx, rdb, c.Seafarers, c.Workers); err != nil {
		return err
	}
	_ = rdb.Close()
	enrolled, err := used()
	if err != nil {
		return err
	}
	out.info("memory.enrol_setup", "%d seafarers enrolled through crew.RedisStore.Enrol, %d at once, in %.1f s", c.Seafarers, c.Workers, time.Since(started).Seconds())

	// 2. Two grants each through quota.RedisStore.AddGrant (grant, its ledger entry, the expiry index).
	progress("memory: two grants to each")
	rdb = newClient()
	if err := f.grant(ctx, rdb, f.ids, c.Workers, 24*time.Hour, 1800); err != nil {
		return err
	}
	_ = rdb.Close()
	granted, err := used()
	if err != nil {
		return err
	}
	rdb = newClient()
	grantLedger, err := meanUsage(ctx, rdb, f.ids, c.Samples, f.ledgerKeys)
	if err != nil {
		return err
	}
	_ = rdb.Close()

	// 3. The first call of each seafarer creates its identity set, usage
	// counters and statement keys; the calls after it add an entry and an identity each.
	progress("memory: first debit of each seafarer")
	rdb = newClient()
	store := quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{DedupeWindow: dedupeWindow, LedgerHorizon: ledgerHorizon})
	if err := f.debit(ctx, store, f.calls(1, 40*time.Minute), c.Batch); err != nil {
		return err
	}
	before := map[string]float64{}
	for kind, keys := range f.debitKeyKinds() {
		if before[kind], err = meanUsage(ctx, rdb, f.ids, c.Samples, keys); err != nil {
			return err
		}
	}
	_ = rdb.Close()
	firstDebit, err := used()
	if err != nil {
		return err
	}
	progress("memory: %d more debits of each seafarer", c.DebitsEach)
	rdb = newClient()
	store = quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{DedupeWindow: dedupeWindow, LedgerHorizon: ledgerHorizon})
	started = time.Now()
	if err := f.debit(ctx, store, f.calls(c.DebitsEach, 30*time.Minute), c.Batch); err != nil {
		return err
	}
	debitTime := time.Since(started)
	after := map[string]float64{}
	for kind, keys := range f.debitKeyKinds() {
		if after[kind], err = meanUsage(ctx, rdb, f.ids, c.Samples, keys); err != nil {
			return err
		}
	}
	samples, err := keyKindUsage(ctx, rdb, f, c.Samples)
	if err != nil {
		return err
	}
	_ = rdb.Close()
	debited, err := used()
	if err != nil {
		return err
	}
	n := float64(c.Seafarers)
	perSeafarer := float64(granted-base) / n
	out.figure("memory.seafarer.enrol", float64(enrolled-base)/n, "B")
	out.figure("memory.seafarer.grants", float64(granted-enrolled)/n, "B")
	out.figure("memory.seafarer", perSeafarer, "B")
	out.figure("memory.seafarer.grant_ledger", grantLedger, "B")
	out.figure("memory.seafarer.first_debit", float64(firstDebit-granted)/n, "B")
	perDebit := float64(debited-firstDebit) / (n * float64(c.DebitsEach))
	out.figure("memory.debit", perDebit, "B")
	entry := (after["ledger"] - before["ledger"]) / float64(c.DebitsEach)
	identity := (after["seen"] - before["seen"]) / float64(c.DebitsEach)
	out.figure("memory.entry.shallow", entry, "B")
	out.figure("memory.identity.shallow", identity, "B")
	out.info("memory.debit_setup", "%d debits (%d per seafarer after the first) through DebitBatch in pipelines of %d took %.1f s", c.Seafarers*c.DebitsEach, c.DebitsEach, c.Batch, debitTime.Seconds())
	for _, s := range samples {
		out.figure("memory.key."+s.kind, s.mean, "B")
	}

	// 4. Steady state: a few seafarers carried through a whole ledger horizon
	// of calls (3 a day), so each identity set holds a dedupe window of
	// identities and each ledger a horizon of entries, in the encodings
	// (hashtable, skiplist) those sizes take.
	depth, err := f.depth(ctx, srv.addr, meter, prefix, c, progress)
	if err != nil {
		return err
	}
	out.figure("memory.entry", depth.entry, "B")
	out.figure("memory.identity", depth.identity, "B")
	out.figure("memory.steady_seafarer", depth.perSeafarer, "B")
	out.figure("memory.steady.entries", depth.entries, "entries")
	out.figure("memory.steady.identities", depth.identities, "identities")

	mem, _ := redisInfo(ctx, meter, "memory")
	frag, _ := strconv.ParseFloat(mem["mem_fragmentation_ratio"], 64)
	out.figure("memory.fragmentation", frag, "x")

	// Projection to the fleet from the steady state.
	windowCalls := callsPerDay * dedupeWindow.Hours() / 24
	horizonCalls := callsPerDay * ledgerHorizon.Hours() / 24
	total := fleetSeafarers * depth.perSeafarer
	out.figure("memory.fleet.total", total/1e9, "GB")
	out.figure("memory.fleet.seafarers", fleetSeafarers*perSeafarer/1e9, "GB")
	out.figure("memory.fleet.ledger", fleetSeafarers*horizonCalls*depth.entry/1e9, "GB")
	out.figure("memory.fleet.identities", fleetSeafarers*windowCalls*depth.identity/1e9, "GB")
	out.figure("memory.fleet.rss", total*math.Max(frag, 1)/1e9, "GB")
	out.info("memory.setup", "a redis-server of its own (no persistence), keys under the service's prefix %q; %d seafarers enrolled (companies of 500, vessels of 25) with two 1800 s grants each, then 1 + %d carriersim voice calls each through DebitBatch, IndexStatements and SyncProgrammeUsage as the consumer makes them; used_memory (INFO memory) read before and after each step with no other client connected. Steady state: %d more seafarers, each with %d calls (3 a day) spread over the %s ledger horizon, so each keeps %.0f identities (dedupe window %s) and %.0f ledger entries; MEMORY USAGE (SAMPLES 0) of their keys. Fleet: %d seafarers × that steady state",
		prefix, c.Seafarers, c.DebitsEach, c.DepthSeafarers, int(horizonCalls), ledgerHorizon, depth.identities, dedupeWindow, depth.entries, fleetSeafarers)
	out.note("memory", "%s", memoryNote(perSeafarer, grantLedger, depth, samples))
	return nil
}

// memoryNote says what each figure is made of and what bounds it.
func memoryNote(perSeafarer, grantLedger float64, d depthFigures, samples []kindUsage) string {
	var parts string
	for _, s := range samples {
		if parts != "" {
			parts += ", "
		}
		parts += fmt.Sprintf("%s %.0f B", s.kind, s.mean)
	}
	return fmt.Sprintf("MEMORY USAGE by key kind (mean of the sample, after three calls; shared lists are divided by their members): %s. "+
		"Per seafarer, %.0f B of the %.0f B are the two grants' own ledger entries (the weekly bucket T:l:<week> that holds them, a key of its own). "+
		"A ledger entry is a compact record (about %.0f characters at steady state: ids, numbers and the event's own text, space-separated) appended to the string of its week; "+
		"what it costs beyond its characters is its share of the bucket key's overhead (key, object, expiry entry: about 150 B a week, shared by that week's entries) and the allocator's rounding of the string, which is what bounds it. "+
		"An identity is a 20-hex-character member with its score in T:seen; up to 128 of them stay in a compact listpack, beyond that a skiplist plus dict. "+
		"What bounds a seafarer without calls: 29-character ids repeated in every key and index member; the profile hash (14 fields with their names); the MSISDN and book-number claims, each a key of its own (a key costs about 70 B before its value) so that they can be claimed atomically in any cluster slot; "+
		"the grants hash, whose values (67 characters here, 79 with a real 29-character programme id) exceed Redis's default hash-max-listpack-value of 64, so it takes the hashtable encoding; and the expiry index, a member per grant in a skiplist ordered by expiry time for the expiry warner's windowed scans.",
		parts, grantLedger, perSeafarer, d.record)
}

// fleet is the seafarers the measurement enrols and how it calls them.
type fleet struct {
	prefix  string
	now     time.Time
	ids     []string
	msisdns []string
	seq     int // calls made so far, for distinct event ids
}

func (f *fleet) tag(id string) string { return crew.SeafarerTag(f.prefix, id) }

// enrol enrols n more seafarers, 500 to a company and 25 to a vessel.
func (f *fleet) enrol(ctx context.Context, rdb redis.UniversalClient, n, workers int) error {
	registry := crew.NewRedisStore(rdb, f.prefix, wuyou.SystemClock)
	first := len(f.ids)
	var companies []string
	for i := 0; i < n; i += 500 {
		co, err := registry.CreateCompany(ctx, fmt.Sprintf("Bench Shipping %d", first+i), fmt.Sprintf("BENCH-%d", first+i))
		if err != nil {
			return err
		}
		companies = append(companies, co.ID)
	}
	ids := make([]string, n)
	msisdns := make([]string, n)
	for i := range msisdns {
		msisdns[i] = fmt.Sprintf("+86139%08d", first+i)
	}
	err := fanout.Each(ctx, n, workers, func(ctx context.Context, i int) error {
		k := first + i
		sf, _, err := registry.Enrol(ctx, companies[i/500], crew.Enrolment{
			BookNo: fmt.Sprintf("BK%08d", k), Name: fmt.Sprintf("Seafarer %d", k), Nationality: "CN", MSISDN: msisdns[i],
			VesselIMO: benchIMO(k / 25), VesselName: fmt.Sprintf("MV Bench %d", k/25),
		})
		if err != nil {
			return fmt.Errorf("enrol %s: %w", msisdns[i], err)
		}
		ids[i] = sf.ID
		return nil
	})
	f.ids = append(f.ids, ids...)
	f.msisdns = append(f.msisdns, msisdns...)
	return err
}

// benchIMO is a valid IMO number (check digit included) for vessel v.
func benchIMO(v int) string {
	d := fmt.Sprintf("%06d", 900000+v%100000)
	sum := 0
	for i := range 6 {
		sum += int(d[i]-'0') * (7 - i)
	}
	return d + strconv.Itoa(sum%10)
}

// grant gives each of ids two grants of seconds, effective from `back` ago.
func (f *fleet) grant(ctx context.Context, rdb redis.UniversalClient, ids []string, workers int, back time.Duration, seconds int64) error {
	store := quota.NewRedisStore(rdb, f.prefix, wuyou.SystemClock, quota.Options{})
	return fanout.Each(ctx, len(ids), workers, func(ctx context.Context, i int) error {
		for g, prog := range []string{"pg_01JBENCHWELFARE", "pg_01JBENCHUNION"} {
			_, _, err := store.AddGrant(ctx, quota.GrantInput{
				ID: fmt.Sprintf("gr_01JBENCH%d_%s", g, ids[i]), SeafarerID: ids[i], ProgrammeID: prog, Seconds: seconds,
				EffectiveAt: f.now.Add(-back), ExpiresAt: f.now.Add(30 * 24 * time.Hour), Priority: g + 1,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// calls rates `each` simulated voice calls for every seafarer of f.ids, call
// times within `span` before now, oldest first.
func (f *fleet) calls(each int, span time.Duration) []quota.Usage {
	return f.callsOf(f.ids, f.msisdns, each, span)
}

func (f *fleet) callsOf(ids, msisdns []string, each int, span time.Duration) []quota.Usage {
	rate := rater()
	out := make([]quota.Usage, 0, len(ids)*each)
	step := span / time.Duration(max(each, 1))
	for k := range each {
		events, _, _ := simEvents(len(ids), msisdns, int64(1000+f.seq), f.now)
		f.seq++
		at := f.now.Add(-span + time.Duration(k)*step + step/2)
		for i, ev := range events {
			ue, err := carrier.DecodeUsageEvent(ev.Value)
			if err != nil {
				continue
			}
			// Each seafarer calls once in this round; the simulator picks the numbers.
			ue.Subject = msisdns[i]
			ue.Time = at.Add(time.Duration(i) * step / time.Duration(len(ids)+1))
			out = append(out, rate(ids[i], ue))
		}
	}
	return out
}

// debit applies usages as the consumer does: DebitBatch, IndexStatements,
// then SyncProgrammeUsage for the batch's seafarer-programme pairs.
func (f *fleet) debit(ctx context.Context, store *quota.RedisStore, usages []quota.Usage, batch int) error {
	for i := 0; i < len(usages); i += batch {
		chunk := usages[i:min(i+batch, len(usages))]
		results, err := store.DebitBatch(ctx, chunk)
		if err != nil {
			return err
		}
		debits := make([]quota.StatementDebit, len(chunk))
		for j, r := range results {
			if r.Duplicate {
				return fmt.Errorf("debit %s refused as a duplicate", chunk[j].EventID)
			}
			debits[j] = quota.StatementDebit{SeafarerID: chunk[j].SeafarerID, Entry: r.Entry}
		}
		if err := store.IndexStatements(ctx, debits); err != nil {
			return err
		}
		used := map[quota.SeafarerProgramme]bool{}
		for _, d := range debits {
			for _, dr := range d.Entry.Draws {
				if dr.ProgrammeID != "" {
					used[quota.SeafarerProgramme{SeafarerID: d.SeafarerID, ProgrammeID: dr.ProgrammeID}] = true
				}
			}
		}
		pairs := make([]quota.SeafarerProgramme, 0, len(used))
		for sp := range used {
			pairs = append(pairs, sp)
		}
		if err := store.SyncProgrammeUsage(ctx, pairs); err != nil {
			return err
		}
	}
	return nil
}

// ledgerKeys are the weekly ledger buckets a seafarer's entries can be in:
// calls are spread over a ledger horizon before now.
func (f *fleet) ledgerKeys(id string) []string {
	return quota.LedgerKeys(f.prefix, id, f.now.Add(-ledgerHorizon-8*24*time.Hour), f.now.Add(24*time.Hour))
}

// debitKeyKinds are the keys whose growth per call is split into ledger entry and identity.
func (f *fleet) debitKeyKinds() map[string]func(string) []string {
	return map[string]func(string) []string{
		"ledger": f.ledgerKeys,
		"seen":   func(id string) []string { return []string{f.tag(id) + ":seen"} },
	}
}

// meanUsage is the mean over a sample of ids of the summed MEMORY USAGE of keys(id).
func meanUsage(ctx context.Context, rdb redis.UniversalClient, ids []string, samples int, keys func(string) []string) (float64, error) {
	var total int64
	n := min(samples, len(ids))
	for i := range n {
		id := ids[i*len(ids)/n]
		for _, k := range keys(id) {
			b, err := rdb.MemoryUsage(ctx, k, 0).Result()
			if err != nil && err != redis.Nil {
				return 0, fmt.Errorf("MEMORY USAGE %s: %w", k, err)
			}
			total += b
		}
	}
	return float64(total) / float64(n), nil
}

// kindUsage is the mean MEMORY USAGE of one kind of key, per seafarer.
type kindUsage struct {
	kind string
	mean float64
}

// keyKindUsage measures each kind of key Wuyou keeps for a seafarer, on a
// sample; keys shared by many seafarers are divided by their size.
func keyKindUsage(ctx context.Context, rdb redis.UniversalClient, f *fleet, samples int) ([]kindUsage, error) {
	period := billing.PeriodOf(f.now)
	callPeriod := billing.PeriodOf(f.now.Add(-40 * time.Minute))
	per := []struct {
		kind string
		keys func(i int) []string
	}{
		{"profile", func(i int) []string { return []string{f.tag(f.ids[i]) + ":p"} }},
		{"msisdn_history", func(i int) []string { return []string{f.tag(f.ids[i]) + ":msisdns"} }},
		{"msisdn_claim", func(i int) []string { return []string{f.prefix + ":msisdn:" + f.msisdns[i]} }},
		{"book_claim", func(i int) []string { return []string{fmt.Sprintf("%s:book:BK%08d", f.prefix, i)} }},
		{"grants", func(i int) []string { return []string{f.tag(f.ids[i]) + ":g"} }},
		{"ledger", func(i int) []string { return f.ledgerKeys(f.ids[i]) }},
		{"seen", func(i int) []string { return []string{f.tag(f.ids[i]) + ":seen"} }},
		{"usage", func(i int) []string { return []string{f.tag(f.ids[i]) + ":u"} }},
		{"statement", func(i int) []string {
			return slices.Compact([]string{f.tag(f.ids[i]) + ":s:" + callPeriod, f.tag(f.ids[i]) + ":s:" + period})
		}},
		{"statement_calls", func(i int) []string {
			return slices.Compact([]string{f.tag(f.ids[i]) + ":c:" + callPeriod, f.tag(f.ids[i]) + ":c:" + period})
		}},
	}
	var out []kindUsage
	n := min(samples, len(f.ids))
	for _, p := range per {
		var total int64
		for j := range n {
			for _, k := range p.keys(j * len(f.ids) / n) {
				b, err := rdb.MemoryUsage(ctx, k, 0).Result()
				if err != nil && err != redis.Nil {
					return nil, fmt.Errorf("MEMORY USAGE %s: %w", k, err)
				}
				total += b
			}
		}
		out = append(out, kindUsage{p.kind, float64(total) / float64(n)})
	}
	// Shared keys: MEMORY USAGE of each, divided by the members it holds.
	shared := []struct{ kind, pattern string }{
		{"company_and_vessel_lists", f.prefix + ":{[cv][o:]*}:*"},
		{"expiry_index", f.prefix + ":expiring:*"},
		{"statement_sets", f.prefix + ":period:*"},
		{"programme_usage", f.prefix + ":{p:*"},
	}
	for _, s := range shared {
		var total int64
		iter := rdb.Scan(ctx, 0, s.pattern, 1000).Iterator()
		for iter.Next(ctx) {
			b, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
			if err == nil {
				total += b
			}
		}
		if err := iter.Err(); err != nil {
			return nil, err
		}
		out = append(out, kindUsage{s.kind, float64(total) / float64(len(f.ids))})
	}
	return out, nil
}

// depthFigures is the steady state of seafarers that called 3 times a day
// for a whole ledger horizon.
type depthFigures struct {
	entry, identity, perSeafarer float64
	entries, identities          float64
	record                       float64 // characters of a record, its newline included
}

// depth enrols c.DepthSeafarers more seafarers and calls each 3 times a day
// over the ledger horizon, oldest first, as if it had run that long.
func (f *fleet) depth(ctx context.Context, addr string, meter *redis.Client, prefix string, c memoryConfig, progress func(string, ...any)) (depthFigures, error) {
	var d depthFigures
	used := func() (int64, error) {
		m, err := redisInfo(ctx, meter, "memory")
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(m["used_memory"], 10, 64)
	}
	calls := int(callsPerDay * ledgerHorizon.Hours() / 24)
	progress("memory: steady state, %d seafarers × %d calls over %s", c.DepthSeafarers, calls, ledgerHorizon)
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: c.Workers + 4, ReadTimeout: 30 * time.Second})
	defer rdb.Close()
	before, err := used()
	if err != nil {
		return d, err
	}
	deep := &fleet{prefix: prefix, now: f.now, seq: f.seq}
	deep.ids = nil
	// Numbers and book numbers after the main fleet's.
	deep.ids, deep.msisdns = make([]string, 0, c.DepthSeafarers), nil
	if err := deep.enrolFrom(ctx, rdb, len(f.ids), c.DepthSeafarers, c.Workers); err != nil {
		return d, err
	}
	// Grants effective over the whole horizon and large enough that every
	// call draws from one: each entry carries one draw, as a covered call's does.
	if err := deep.grant(ctx, rdb, deep.ids, c.Workers, ledgerHorizon+24*time.Hour, 10_000_000); err != nil {
		return d, err
	}
	store := quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{DedupeWindow: dedupeWindow, LedgerHorizon: ledgerHorizon})
	// A little inside the horizon, so no entry is trimmed by the clock moving on meanwhile.
	usages := deep.callsOf(deep.ids, deep.msisdns, calls, ledgerHorizon-2*time.Hour)
	if err := deep.debit(ctx, store, usages, c.Batch); err != nil {
		return d, err
	}
	var ledger, seen, entries, identities, recordLen int64
	for _, id := range deep.ids {
		t := deep.tag(id)
		for _, k := range deep.ledgerKeys(id) {
			l, _ := rdb.MemoryUsage(ctx, k, 0).Result()
			v, _ := rdb.Get(ctx, k).Result()
			ledger += l
			entries += int64(strings.Count(v, "\n"))
			recordLen += int64(len(v))
		}
		s, _ := rdb.MemoryUsage(ctx, t+":seen", 0).Result()
		ni, _ := rdb.ZCard(ctx, t+":seen").Result()
		seen += s
		identities += ni
	}
	_ = rdb.Close()
	after, err := used()
	if err != nil {
		return d, err
	}
	n := float64(len(deep.ids))
	d.entries, d.identities = float64(entries)/n, float64(identities)/n
	d.entry = float64(ledger) / float64(entries)
	d.identity = float64(seen) / float64(identities)
	d.perSeafarer = float64(after-before) / n
	if entries > 0 {
		d.record = float64(recordLen) / float64(entries)
	}
	return d, nil
}

// enrolFrom enrols n seafarers numbered from first on.
func (f *fleet) enrolFrom(ctx context.Context, rdb redis.UniversalClient, first, n, workers int) error {
	f.ids = make([]string, first) // placeholders so numbering continues; dropped below
	f.msisdns = make([]string, first)
	if err := f.enrol(ctx, rdb, n, workers); err != nil {
		return err
	}
	f.ids, f.msisdns = f.ids[first:], f.msisdns[first:]
	return nil
}
