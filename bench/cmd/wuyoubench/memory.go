package main

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/fanout"
	"github.com/wuyou/wuyou/quota"
)

// The sizing the issue asks about: 1.9 million seafarers making 3 calls a
// day, identities remembered for the default dedupe window.
const (
	fleetSeafarers = 1_900_000
	callsPerDay    = 3
	dedupeWindow   = 720 * time.Hour
)

// Memory targets of the issue (14): Redis per seafarer at steady state,
// and for the whole fleet.
const (
	targetPerSeafarer = 4096
	targetFleetGB     = 8.0
)

// memoryConfig sizes the memory measurement.
type memoryConfig struct {
	Seafarers      int
	Calls          int // calls per seafarer, spread over the dedupe window
	Workers, Batch int
}

// runMemory measures what Redis keeps per seafarer at steady state, on a
// redis-server of its own so that INFO memory counts nothing else, and
// projects it to the fleet; and what PostgreSQL keeps of the same calls
// (the identity claims and the ledger), apart from Redis.
//
// Every seafarer is enrolled in PostgreSQL, given two grants, and makes
// c.Calls calls (3 a day over the 720 h dedupe window) through the
// consumer's path, batch by batch: Settle (claims in PostgreSQL, the debit
// script in Redis), the entries appended to the ledger in PostgreSQL, then
// Recorded (the pending records dropped).
func runMemory(ctx context.Context, args []string, env environment, out *results, progress func(string, ...any)) error {
	var c memoryConfig
	fs := flag.NewFlagSet("memory", flag.ContinueOnError)
	fs.IntVar(&c.Seafarers, "seafarers", 2_000, "seafarers enrolled, each with two grants and a dedupe window of calls")
	fs.IntVar(&c.Calls, "calls", int(callsPerDay*dedupeWindow.Hours()/24), "calls per seafarer, spread evenly over the dedupe window (3 a day)")
	fs.IntVar(&c.Workers, "workers", 32, "concurrent enrolments and grants")
	fs.IntVar(&c.Batch, "batch", carrier.DefaultBatchSize, "calls per batch (the consumer's batch size)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out.info("memory.command", "%s", command("wuyoubench", fs))
	srv, err := startRedis(ctx)
	if err != nil {
		return err
	}
	defer srv.stop()
	db, err := openDatabase(ctx, env, out)
	if err != nil {
		return err
	}
	defer db.drop()
	// INFO is read on a connection of its own, with the working pool
	// closed, so no client buffer is counted as data.
	meter := redis.NewClient(&redis.Options{Addr: srv.addr, PoolSize: 1})
	defer meter.Close()
	if server, err := redisInfo(ctx, meter, "server"); err == nil {
		out.info("memory.redis_version", "%s", server["redis_version"])
	}
	// used is used_memory without what clients and the script cache take
	// (INFO memory's mem_clients_normal, mem_clients_slaves,
	// used_memory_scripts): the working pool stays open between readings,
	// and its buffers are not data.
	used := func() (int64, error) {
		m, err := redisInfo(ctx, meter, "memory")
		if err != nil {
			return 0, err
		}
		var total int64
		for k, sign := range map[string]int64{"used_memory": 1, "mem_clients_normal": -1, "mem_clients_slaves": -1, "used_memory_scripts": -1} {
			v, _ := strconv.ParseInt(m[k], 10, 64)
			total += sign * v
		}
		return total, nil
	}
	const prefix = "wuyou" // the service's default WUYOU_REDIS_PREFIX: key lengths as in production
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr, PoolSize: c.Workers + 4, ReadTimeout: 30 * time.Second})
	defer rdb.Close()
	p, err := newPipeline(ctx, rdb, prefix, db.pool)
	if err != nil {
		return err
	}
	now := wuyou.SystemClock()
	base, err := used()
	if err != nil {
		return err
	}

	// 1. Enrolment: the registry is PostgreSQL's; Redis should not grow.
	started := time.Now()
	progress("memory: enrolling %d seafarers in PostgreSQL (%d at once)", c.Seafarers, c.Workers)
	msisdns := benchMSISDNs(c.Seafarers)
	ids, err := enrolEach(ctx, p.registry, msisdns, c.Workers)
	if err != nil {
		return err
	}
	enrolled, err := used()
	if err != nil {
		return err
	}
	out.info("memory.enrol_setup", "%d seafarers enrolled through crew.PGStore.Enrol, %d at once, in %.1f s", c.Seafarers, c.Workers, time.Since(started).Seconds())

	// 2. Two grants each, effective over the whole window and large enough
	// that every call draws from one (each entry carries a draw, as a
	// covered call's does).
	progress("memory: two grants to each")
	if err := fanout.Each(ctx, len(ids), c.Workers, func(ctx context.Context, i int) error {
		for g, prog := range []string{"pg_01JBENCHWELFARE0000000000", "pg_01JBENCHUNION000000000000"} {
			_, _, err := p.store.AddGrant(ctx, quota.GrantInput{
				ID: fmt.Sprintf("gr_01JBENCH%d_%s", g, ids[i]), SeafarerID: ids[i], ProgrammeID: prog, Seconds: 10_000_000,
				EffectiveAt: now.Add(-dedupeWindow - 24*time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour), Priority: g + 1,
			})
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	granted, err := used()
	if err != nil {
		return err
	}

	// 3. A dedupe window of calls, oldest first, through the consumer's path.
	usages := windowCalls(ids, msisdns, c.Calls, now)
	progress("memory: %d calls (%d each) through Settle, the PostgreSQL ledger and Recorded", len(usages), c.Calls)
	started = time.Now()
	if err := settleAsConsumer(ctx, p, usages, c.Batch); err != nil {
		return err
	}
	settleTime := time.Since(started)
	called, err := used()
	if err != nil {
		return err
	}

	keys, err := keyUsage(ctx, rdb, prefix)
	if err != nil {
		return err
	}
	n := float64(c.Seafarers)
	// The shared keys (the expiry index, a member per grant) are the
	// seafarers' too: each carries its share.
	var own float64
	for _, k := range keys {
		own += k.bytes
	}
	own /= n
	identities, identityBytes, pending, err := seenAndPending(ctx, rdb, prefix, ids)
	if err != nil {
		return err
	}
	perSeafarer := float64(called-base) / n
	out.figure("memory.redis.enrol", float64(enrolled-base)/n, "B")
	out.figure("memory.redis.grants", float64(granted-enrolled)/n, "B")
	out.figure("memory.redis.calls", float64(called-granted)/n, "B")
	out.figure("memory.redis.used_per_seafarer", perSeafarer, "B")
	out.figure("memory.redis.keys_per_seafarer", own, "B")
	out.figure("memory.redis.identities", identities/n, "identities")
	out.figure("memory.redis.identity", identityBytes/identities, "B")
	out.figure("memory.redis.pending_records", pending/n, "records")
	for _, k := range keys {
		out.figure("memory.key."+k.kind, k.bytes/n, "B")
	}

	mem, _ := redisInfo(ctx, meter, "memory")
	frag, _ := strconv.ParseFloat(mem["mem_fragmentation_ratio"], 64)
	out.figure("memory.fragmentation", frag, "x")
	fleet := fleetSeafarers * perSeafarer / 1e9
	out.figure("memory.fleet.total", fleet, "GB")
	out.figure("memory.fleet.ratio", fleet/targetFleetGB, "x")
	out.figure("memory.seafarer.ratio", own/targetPerSeafarer, "x")

	// PostgreSQL: the claims (and the ledger) of the same calls.
	claimBytes, err := relationBytes(ctx, db.pool, "event_claims")
	if err != nil {
		return err
	}
	ledgerBytes, err := relationBytes(ctx, db.pool, "ledger_entries")
	if err != nil {
		return err
	}
	out.figure("memory.pg.claims_per_seafarer", float64(claimBytes)/n, "B")
	out.figure("memory.pg.ledger_per_seafarer", float64(ledgerBytes)/n, "B")
	out.figure("memory.pg.fleet_claims", fleetSeafarers*float64(claimBytes)/n/1e9, "GB")

	out.info("memory.setup", "a redis-server of its own (no persistence) and a fresh PostgreSQL database; keys under the service's prefix %q; %d seafarers enrolled in PostgreSQL (crew.PGStore), two grants each (quota.RedisStore.AddGrant), then %d calls each (3 a day) spread evenly over the %s dedupe window, oldest first, through the consumer's path in batches of %d: Settle (identity claims in PostgreSQL, the debit script in Redis), the entries appended to the ledger in PostgreSQL (quota.PGLedger), then Recorded (the pending records dropped), %d calls in %.1f s; used_memory (INFO memory, less what clients' buffers and the script cache take) read before and after each step, and MEMORY USAGE (SAMPLES 0) of every key afterwards, by kind; PostgreSQL sizes are pg_total_relation_size (table, indexes, TOAST; partitions summed). Fleet: %d seafarers × used_memory per seafarer",
		prefix, c.Seafarers, c.Calls, dedupeWindow, c.Batch, len(usages), settleTime.Seconds(), fleetSeafarers)
	out.note("memory", "%s", memoryNote(keys, n, identityBytes/identities, identities/n, pending/n))
	return nil
}

// windowCalls rates `each` simulated voice calls for every seafarer, call
// times spread evenly over the dedupe window before now (two hours inside
// it, so none turns late meanwhile), oldest first.
func windowCalls(ids, msisdns []string, each int, now time.Time) []quota.Usage {
	rate := rater()
	span := dedupeWindow - 2*time.Hour
	step := span / time.Duration(max(each, 1))
	out := make([]quota.Usage, 0, len(ids)*each)
	for k := range each {
		events, _, _ := simEvents(len(ids), msisdns, int64(1000+k), now)
		at := now.Add(-span + time.Duration(k)*step)
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

// settleAsConsumer applies usages batch by batch as carrier.Consumer does:
// Settle, the applied entries appended to the ledger in PostgreSQL, then
// Recorded. Every usage must be applied.
func settleAsConsumer(ctx context.Context, p *pipeline, usages []quota.Usage, batch int) error {
	for i := 0; i < len(usages); i += batch {
		chunk := usages[i:min(i+batch, len(usages))]
		results, err := p.store.Settle(ctx, chunk)
		if err != nil {
			return err
		}
		entries := make([]quota.SeafarerEntry, 0, len(chunk))
		for j, r := range results {
			switch {
			case r.Err != nil:
				return fmt.Errorf("debit %s: %w", chunk[j].EventID, r.Err)
			case r.Duplicate || r.Conflicting || r.Entry == nil:
				return fmt.Errorf("debit %s not applied (duplicate %v, conflicting %v)", chunk[j].EventID, r.Duplicate, r.Conflicting)
			}
			entries = append(entries, quota.SeafarerEntry{SeafarerID: chunk[j].SeafarerID, Entry: r.Entry})
		}
		if err := p.ledger.Append(ctx, entries); err != nil {
			return err
		}
		if err := p.store.Recorded(ctx, entries); err != nil {
			return err
		}
	}
	return nil
}

// keyKind is the summed MEMORY USAGE of one kind of key.
type keyKind struct {
	kind   string  // the key without prefix and seafarer, months as YYYY-MM: "g", "seen", "m:YYYY-MM", "expiring:DAY"
	shared bool    // not under a seafarer's hash tag
	keys   int     // how many
	bytes  float64 // MEMORY USAGE summed
}

var (
	monthSuffix = regexp.MustCompile(`\d{4}-\d{2}(-\d{2})?`)
	seafarerTag = regexp.MustCompile(`^\{s:[^}]*\}:?`)
)

// keyUsage reads MEMORY USAGE of every key under prefix and sums it by
// kind: whatever keys the store writes, each is counted.
func keyUsage(ctx context.Context, rdb *redis.Client, prefix string) ([]keyKind, error) {
	byKind := map[string]*keyKind{}
	var batch []string
	flush := func() error {
		cmds := make([]*redis.IntCmd, len(batch))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.MemoryUsage(ctx, k, 0)
			}
			return nil
		})
		if err != nil && err != redis.Nil {
			return fmt.Errorf("MEMORY USAGE: %w", err)
		}
		for i, k := range batch {
			rest := strings.TrimPrefix(k, prefix+":")
			shared := !seafarerTag.MatchString(rest)
			kind := monthSuffix.ReplaceAllStringFunc(seafarerTag.ReplaceAllString(rest, ""), func(s string) string {
				if len(s) > 7 {
					return "DAY"
				}
				return "YYYY-MM"
			})
			if kind == "" {
				kind = "(tag)"
			}
			kk := byKind[kind]
			if kk == nil {
				kk = &keyKind{kind: kind, shared: shared}
				byKind[kind] = kk
			}
			kk.keys++
			kk.bytes += float64(cmds[i].Val())
		}
		batch = batch[:0]
		return nil
	}
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 500 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	out := make([]keyKind, 0, len(byKind))
	for _, k := range byKind {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].bytes > out[j].bytes })
	return out, nil
}

// seenAndPending sums, over all seafarers, the identities in their seen
// sets, those sets' MEMORY USAGE, and the pending records left (none, once
// everything is recorded).
func seenAndPending(ctx context.Context, rdb *redis.Client, prefix string, ids []string) (identities, bytes, pending float64, err error) {
	cards := make([]*redis.IntCmd, len(ids))
	sizes := make([]*redis.IntCmd, len(ids))
	lens := make([]*redis.IntCmd, len(ids))
	_, err = rdb.Pipelined(ctx, func(pp redis.Pipeliner) error {
		for i, id := range ids {
			t := crew.SeafarerTag(prefix, id)
			cards[i] = pp.ZCard(ctx, t+":seen")
			sizes[i] = pp.MemoryUsage(ctx, t+":seen", 0)
			lens[i] = pp.HLen(ctx, t+":r")
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return 0, 0, 0, err
	}
	for i := range ids {
		identities += float64(cards[i].Val())
		bytes += float64(sizes[i].Val())
		pending += float64(lens[i].Val())
	}
	return identities, bytes, pending, nil
}

// memoryNote says what each key kind holds and what bounds a seafarer.
func memoryNote(keys []keyKind, n, identity, identities, pending float64) string {
	var own, shared []string
	for _, k := range keys {
		s := fmt.Sprintf("%s %.0f B (%.3g keys)", k.kind, k.bytes/n, float64(k.keys)/n)
		if k.shared {
			shared = append(shared, s)
		} else {
			own = append(own, s)
		}
	}
	return fmt.Sprintf("MEMORY USAGE per seafarer by key kind, the seafarer's own keys (T = {s:<id>}): %s; keys shared by all seafarers, divided among them: %s. "+
		"T:g holds the grants (one field each), T:seen the identities of the calls inside the dedupe window (%.0f of them, %.0f B each: a 20-hex-character member and its call time; up to 128 stay in a compact listpack), T:m:YYYY-MM this month's billable and overage seconds, T:n the low and exhausted notes once announced; "+
		"T:r, the ledger records pending until the consumer has stored them in PostgreSQL, is empty at steady state (%.2f records left per seafarer). "+
		"No registry, ledger, statement figures, programme usage or identity claims are in Redis: they are PostgreSQL's (the claims' size is reported apart). "+
		"What bounds a seafarer now is the seen set (a window of identities) and the grants hash; the per-key overhead of Redis (about 70 B a key before its value, plus the expiry entry) is a good part of the rest.",
		strings.Join(own, ", "), orDash(strings.Join(shared, ", ")), identities, identity, pending)
}
