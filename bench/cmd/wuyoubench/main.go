// Command wuyoubench measures Wuyou's throughput against a real Redis, each
// figure next to a baseline measured in the same run (bench/run.sh runs it;
// BENCHMARKS.md records what it printed). Machines are noisy, so a figure
// alone says little: the ratio to its baseline is what carries from one
// machine to another.
//
// Every measurement prints machine-readable lines on stdout:
//
//	<key> <number> <unit>     a figure
//	info <key> <text>         context (versions, setup sizes, commands)
//	note <key> <text>         what bounds the figure, from measured CPU shares
//
// Progress goes to stderr. Each run keeps its keys under a fresh prefix and
// deletes them at the end, so it can share a Redis with tests.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const usageText = `usage:
  wuyoubench metering  [flags]   debit script vs HINCRBY script; end-to-end Kafka drain
  wuyoubench catchup   [flags]   drain a backlog of 1,000,000 events: time, events/s, first vs last tenth
  wuyoubench allowance [flags]   GET /v1/me/allowance under wrk vs a plain fiber handler
  wuyoubench sessions  [flags]   carrier session open+terminate pairs vs allowance reads; open p99 at half the maximum vs a plain handler
  wuyoubench issuance  [flags]   issuance to 10,000 seafarers vs bare AddGrant calls
  wuyoubench recurring [flags]   a recurring programme's month to 100,000 seafarers vs bare grant writes; idle sweep
  wuyoubench memory    [flags]   Redis bytes per seafarer at steady state and per identity; fleet projection; claims in PostgreSQL
  wuyoubench scaling   [flags]   end-to-end metering with 1 vs 8 partitions, 1 vs 2 consumers; profile
  wuyoubench gobench   [flags] -- go test -bench ...   a Go benchmark's metrics as figures (ledger, statements)
  wuyoubench report    [flags]   render the collected lines as a table and BENCHMARKS.md

Redis: WUYOU_TEST_REDIS_ADDRS (comma-separated; several mean Redis Cluster),
else 127.0.0.1:6379. PostgreSQL: WUYOU_TEST_POSTGRES_URL (a server on which
each measurement creates a fresh database and drops it at the end), else
` + defaultPostgresURL + `.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	env := environment{RedisAddrs: []string{"127.0.0.1:6379"}, PostgresURL: defaultPostgresURL}
	if v := os.Getenv("WUYOU_TEST_REDIS_ADDRS"); v != "" {
		env.RedisAddrs = strings.Split(v, ",")
	}
	if v := strings.TrimSpace(os.Getenv("WUYOU_TEST_POSTGRES_URL")); v != "" {
		env.PostgresURL = v
	}
	if err := run(ctx, os.Args[1:], env, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wuyoubench:", err)
		os.Exit(1)
	}
}

// environment is everything read from the process environment, read once in main.
type environment struct {
	RedisAddrs  []string
	PostgresURL string
}

func run(ctx context.Context, args []string, env environment, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usageText)
	}
	out := &results{w: stdout}
	started := time.Now()
	progress := func(format string, a ...any) {
		fmt.Fprintf(stderr, "  [%5.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, a...))
	}
	switch args[0] {
	case "metering":
		return runMetering(ctx, args[1:], env, out, progress)
	case "catchup":
		return runCatchup(ctx, args[1:], env, out, progress)
	case "allowance":
		return runAllowance(ctx, args[1:], env, out, progress)
	case "sessions":
		return runSessions(ctx, args[1:], env, out, progress)
	case "sessionload": // the load client of sessions, run by it
		return runSessionLoad(ctx, args[1:], stdout)
	case "issuance":
		return runIssuance(ctx, args[1:], env, out, progress)
	case "recurring":
		return runRecurring(ctx, args[1:], env, out, progress)
	case "memory":
		return runMemory(ctx, args[1:], env, out, progress)
	case "scaling":
		return runScaling(ctx, args[1:], env, out, progress)
	case "gobench":
		return runGoBench(ctx, args[1:], out, progress)
	case "report":
		return runReport(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usageText)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usageText)
}

// results prints the machine-readable lines; safe for concurrent use.
type results struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *results) figure(key string, value float64, unit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, "%s %s %s\n", key, strconv.FormatFloat(value, 'f', -1, 64), unit)
}

func (r *results) info(key, format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, "info %s %s\n", key, oneLine(fmt.Sprintf(format, a...)))
}

func (r *results) note(key, format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, "note %s %s\n", key, oneLine(fmt.Sprintf(format, a...)))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// command is the command line that runs what fs parsed, every flag spelled
// out with the value it had, so a figure can be reproduced exactly.
func command(name string, fs *flag.FlagSet) string {
	parts := []string{name, fs.Name()}
	fs.VisitAll(func(f *flag.Flag) {
		parts = append(parts, "-"+f.Name+"="+f.Value.String())
	})
	return strings.Join(parts, " ")
}

// lab is the Redis a measurement runs against: a client, a fresh key
// prefix for its keys, and a tally of what this process sent.
type lab struct {
	rdb    redis.UniversalClient
	prefix string
	sent   *tally
}

// openLab dials the Redis the benchmarks use and reports its version. close
// deletes every key under the lab's prefix.
func openLab(ctx context.Context, env environment, name string, out *results) (*lab, error) {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         env.RedisAddrs,
		IsClusterMode: len(env.RedisAddrs) > 1,
		DialTimeout:   2 * time.Second,
		ReadTimeout:   10 * time.Second,
		WriteTimeout:  10 * time.Second,
		// Enough for every concurrent worker of the setup and of the API.
		PoolSize: 64,
	})
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("no Redis at %v (set WUYOU_TEST_REDIS_ADDRS): %w", env.RedisAddrs, err)
	}
	if server, err := redisInfo(ctx, rdb, "server"); err == nil {
		out.info("redis_version", "%s", server["redis_version"])
	}
	l := &lab{rdb: rdb, sent: &tally{}}
	rdb.AddHook(l.sent)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	l.prefix = "wuyoubench:" + name + ":" + hex.EncodeToString(b)
	return l, nil
}

func (l *lab) close() {
	deletePrefix(l.rdb, l.prefix)
	_ = l.rdb.Close()
}

// tally counts the commands this process sends to Redis and the round trips
// they take (a pipeline is one), and the commands by name. It is a go-redis
// hook.
type tally struct {
	commands, roundTrips atomic.Int64
	mu                   sync.Mutex
	byName               map[string]int64
}

func (t *tally) count(cmds ...redis.Cmder) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byName == nil {
		t.byName = map[string]int64{}
	}
	for _, c := range cmds {
		t.byName[strings.ToLower(c.Name())]++
	}
}

// names is a copy of the counts by command name.
func (t *tally) names() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.byName))
	for k, v := range t.byName {
		out[k] = v
	}
	return out
}

func (t *tally) DialHook(next redis.DialHook) redis.DialHook { return next }

func (t *tally) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		t.commands.Add(1)
		t.roundTrips.Add(1)
		t.count(cmd)
		return next(ctx, cmd)
	}
}

func (t *tally) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		t.commands.Add(int64(len(cmds)))
		t.roundTrips.Add(1)
		t.count(cmds...)
		return next(ctx, cmds)
	}
}

// deletePrefix deletes every key under prefix, on every master when clustered.
func deletePrefix(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 1000 {
				c.Unlink(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			c.Unlink(ctx, batch...)
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}

// redisInfo returns the fields of one INFO section (of the first node).
func redisInfo(ctx context.Context, rdb redis.UniversalClient, section string) (map[string]string, error) {
	text, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// cost is what a stretch of work cost: wall time; CPU time of Redis's main
// thread (whoever it served: other clients of the same Redis included), of
// this process, and of the whole machine (every process, other people's
// included); and the commands and round trips this process sent Redis.
type cost struct {
	Wall, RedisCPU, SelfCPU, MachineCPU time.Duration
	Commands, RoundTrips                int64
}

// sample is a point from which cost is measured.
type sample struct {
	at                   time.Time
	redisCPU             time.Duration // -1: not known (cluster)
	selfCPU, machineCPU  time.Duration
	commands, roundTrips int64
}

func (l *lab) sample(ctx context.Context) sample {
	s := sample{at: time.Now(), redisCPU: -1, selfCPU: processCPU(), machineCPU: machineCPU(),
		commands: l.sent.commands.Load(), roundTrips: l.sent.roundTrips.Load()}
	if _, cluster := l.rdb.(*redis.ClusterClient); cluster {
		return s
	}
	cpu, err := redisInfo(ctx, l.rdb, "cpu")
	if err != nil {
		return s
	}
	// Redis 7 reports its main thread apart from I/O and background threads;
	// older ones only the whole process.
	sys, user := cpu["used_cpu_sys_main_thread"], cpu["used_cpu_user_main_thread"]
	if sys == "" {
		sys, user = cpu["used_cpu_sys"], cpu["used_cpu_user"]
	}
	a, _ := strconv.ParseFloat(sys, 64)
	b, _ := strconv.ParseFloat(user, 64)
	s.redisCPU = time.Duration((a + b) * float64(time.Second))
	return s
}

func (s sample) since(before sample) cost {
	u := cost{
		Wall: s.at.Sub(before.at), RedisCPU: -1, SelfCPU: s.selfCPU - before.selfCPU, MachineCPU: s.machineCPU - before.machineCPU,
		// The INFO command of the earlier sample is not the work measured.
		Commands: s.commands - before.commands - 1, RoundTrips: s.roundTrips - before.roundTrips - 1,
	}
	if s.redisCPU >= 0 && before.redisCPU >= 0 {
		u.RedisCPU = s.redisCPU - before.redisCPU
	}
	return u
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the CPU time all cores of the machine have spent busy
// (/proc/stat: everything but idle and iowait), or 0 when unknown.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ is 100 on Linux
}

// bound says, from the CPU shares of a stretch of work, what bounded it.
// self names what runs in this process.
func (u cost) bound(self string) string {
	wall := float64(u.Wall)
	redisShare, selfShare := float64(u.RedisCPU)/wall, float64(u.SelfCPU)/wall
	machineShare := float64(u.MachineCPU) / wall
	cores := runtime.NumCPU()
	shares := fmt.Sprintf("Redis's main thread was busy %.0f%% of the time and %s used %.2f cores; the machine's %d cores were %.0f%% busy in all (other processes included).",
		100*redisShare, self, selfShare, cores, 100*machineShare/float64(cores))
	switch {
	case u.RedisCPU < 0:
		return fmt.Sprintf("%s used %.2f cores of %d (Redis's CPU is not known on a cluster).", self, selfShare, cores)
	case redisShare >= 0.85:
		return shares + " Redis's single thread is saturated: the work done inside Redis bounds it."
	case machineShare >= 0.85*float64(cores):
		return shares + " The cores are saturated, so CPU shared between Redis, " + self + " and whatever else runs bounds it."
	case selfShare >= 0.85:
		return shares + " Go-side work on one core (encoding, decoding, scheduling) bounds it."
	default:
		return shares + " Nothing is saturated: waiting on round trips (each step waits for the previous reply) bounds it."
	}
}

// median of a non-empty slice (sorted in place).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
