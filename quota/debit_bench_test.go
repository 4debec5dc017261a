package quota

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/redistest"
)

// BenchmarkDebitScriptRedisTime reports what one debit costs Redis, on a
// redis-server of its own, at the steady state the memory target assumes:
// 500 seafarers with two grants each and about 90 identities in their
// seen sets, debits sent in pipelines of 500 as DebitBatch sends them.
// "redis-cpu-us/debit" is the main thread's CPU time per debit (INFO cpu);
// "redis-us/debit" the script's time in INFO commandstats (wall time, so it
// counts waiting for a core on a busy machine); ns/op the client's wall time.
func BenchmarkDebitScriptRedisTime(b *testing.B) { benchmarkDebitRedisTime(b, debitScript) }

// BenchmarkEmptyScriptRedisTime is its baseline: the same seafarers, keys,
// arguments and pipelines, to a script that reads and writes nothing and
// replies as a debit of nothing would. It is the floor every script call
// pays (parsing 21 arguments, entering Lua, replying): what the debit
// costs above it is its own work.
func BenchmarkEmptyScriptRedisTime(b *testing.B) {
	benchmarkDebitRedisTime(b, redis.NewScript(`return {0, '', 0, 0, 0, {}}`))
}

// BenchmarkCommandsOnlyScriptRedisTime is the floor of any debit done by
// a script: the same seafarers, keys, arguments and pipelines, to a script
// that runs the commands a debit cannot do without and nothing else, no
// Lua beyond calling them: the grants and the sessions read, the identity
// remembered and the window trimmed, one grant written back, the pending
// record and its expiry, this month's two counters. What the debit costs
// above it is its logic (parsing, choosing the draws, the notes).
func BenchmarkCommandsOnlyScriptRedisTime(b *testing.B) {
	benchmarkDebitRedisTime(b, redis.NewScript(`
local grants = redis.call('HGETALL', KEYS[1])
redis.call('HGETALL', KEYS[6])
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('HSET', KEYS[1], grants[1], grants[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[6])
redis.call('HINCRBY', KEYS[4], ARGV[18], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[19], 0)
return {0, '', 0, 0, 0, {}}`))
}

func benchmarkDebitRedisTime(b *testing.B, script *redis.Script) {
	ctx := context.Background()
	srv := redistest.MustServer(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { rdb.Close() })
	clock := &meterClock{t: meterNow}
	// Claims are PostgreSQL's work in production: here every claim holds,
	// so Redis runs the debit script and nothing else.
	s := NewRedisStore(rdb, "bench", clock.Now, Options{Claims: claimsAsGiven{}})
	const seafarers = 500
	for i := 0; i < seafarers; i++ {
		id := fmt.Sprintf("sf_%04d", i)
		for g := 0; g < 2; g++ {
			in := activeGrant(id, fmt.Sprintf("gr_%04d_%d", i, g), 1_000_000)
			in.Priority = g + 1
			in.ExpiresAt = meterNow.AddDate(5, 0, 0)
			MustAddGrant(b, s, in)
		}
	}
	n := 0
	debit := func(count int) {
		us := make([]Usage, 0, 500)
		flush := func() {
			if len(us) == 0 {
				return
			}
			rs, err := s.DebitBatch(ctx, us)
			require.NoError(b, err)
			recorded := make([]SeafarerEntry, 0, len(rs))
			for _, r := range rs {
				require.NoError(b, r.Err)
				if r.Entry != nil {
					recorded = append(recorded, SeafarerEntry{SeafarerID: r.SeafarerID, Entry: r.Entry})
				}
			}
			require.NoError(b, s.Recorded(ctx, recorded))
			us = us[:0]
		}
		for i := 0; i < count; i++ {
			n++
			// Eight hours apart per seafarer, three calls a day, and the
			// clock just after each: the seen sets keep a window's worth.
			callTime := meterNow.Add(time.Duration(n/seafarers) * 8 * time.Hour)
			clock.Set(callTime.Add(time.Minute))
			us = append(us, voiceCall(fmt.Sprintf("sf_%04d", n%seafarers), "ev_"+strconv.Itoa(n), callTime, 95))
			if len(us) == cap(us) {
				flush()
			}
		}
		flush()
	}
	debit(90 * seafarers)
	defer func(debit *redis.Script) { debitScript = debit }(debitScript)
	debitScript = script
	require.NoError(b, script.Load(ctx, rdb).Err())
	require.NoError(b, rdb.ConfigResetStat(ctx).Err())
	cpuBefore := mainThreadCPU(b, rdb)
	b.ResetTimer()
	debit(b.N)
	b.StopTimer()
	b.ReportMetric((mainThreadCPU(b, rdb)-cpuBefore)*1e6/float64(b.N), "redis-cpu-us/debit")
	info, err := rdb.Info(ctx, "commandstats").Result()
	require.NoError(b, err)
	for _, line := range strings.Split(info, "\r\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") {
			continue
		}
		for _, kv := range strings.Split(strings.TrimPrefix(line, "cmdstat_evalsha:"), ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				usec, _ := strconv.ParseFloat(v, 64)
				b.ReportMetric(usec/float64(b.N), "redis-us/debit")
			}
		}
	}
}

// claimsAsGiven is a ClaimStore in which every claim holds as given.
type claimsAsGiven struct{}

func (claimsAsGiven) ClaimIdentities(_ context.Context, claims []Claim) ([]Claim, error) {
	return claims, nil
}

func (c *meterClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// mainThreadCPU is the CPU time, in seconds, Redis's main thread has spent
// (user and system): unlike commandstats' wall time, it leaves out the time
// the thread waited for a core on a busy machine, and includes the sockets.
func mainThreadCPU(tb testing.TB, rdb *redis.Client) float64 {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	require.NoError(tb, err)
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_user_main_thread" || k == "used_cpu_sys_main_thread" {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(tb, err)
			total += f
		}
	}
	return total
}
