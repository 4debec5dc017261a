// Command chaos is Wuyou's fault harness. It runs wuyoud as a subprocess
// against a redis-server it starts with an append-only file, an in-process
// Kafka-protocol broker that keeps its log on disk and a PostgreSQL
// database of its own (wuyou_chaos_<random>, created per fsync mode on the
// server named by WUYOU_TEST_POSTGRES_URL, as tests use, and dropped at the
// end), and while a carriersim stream with redeliveries and reordering
// flows it
//
//   - kills wuyoud with SIGKILL at random points and starts a new one,
//   - kills redis-server with SIGKILL and starts it again on the same port
//     from the same AOF,
//   - makes Redis unreachable for 2–5 s (SIGSTOP, then SIGCONT),
//   - restarts the broker (close, then reopen on the same port and data
//     directory),
//   - under appendfsync everysec only, emulates a power loss: SIGKILL of
//     redis-server and its AOF cut back to its size 0.2–1 s earlier.
//
// At the end every seafarer's used seconds, remaining seconds and debit
// ledger entries (GET …/usage, read from PostgreSQL) are compared with a model computed from what was sent,
// and it reports the events lost and the events applied twice, per fsync
// mode. It exits 1 when an event was lost or applied twice under any mode,
// or when the harness itself could not run. Under everysec Redis
// acknowledges writes it may lose; wuyoud finds such a Redis by its new run
// id after the restart and rebuilds the hot state from PostgreSQL, so a
// power loss loses nothing either (RELIABILITY.md).
//
//	go run ./test/chaos -mode short                       # what make test runs (both fsync modes)
//	go run ./test/chaos -mode long -fsync both -report test-artifacts/chaos.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// The fault kinds.
const (
	faultWuyoudKill    = "wuyoud_sigkill"
	faultRedisKill     = "redis_sigkill"
	faultRedisPause    = "redis_unreachable"
	faultBrokerRestart = "broker_restart"
	// faultRedisPowerLoss is a SIGKILL of redis-server with its AOF cut
	// back by what it had not fsynced: only under everysec, as under always
	// Redis fsyncs before it replies and the cut is empty by definition.
	faultRedisPowerLoss = "redis_power_loss"
)

var faultKinds = []string{faultWuyoudKill, faultRedisKill, faultRedisPause, faultBrokerRestart}

// options are the command-line flags, with the mode's defaults filled in.
type options struct {
	mode, fsync, report string
	events, msisdns     int
	rounds              int // faults of each kind per fsync mode
	seed                uint64
	keep                bool
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "short", "short (about 2,000 events, one fault of each kind, under a minute) or long")
	fs.StringVar(&o.fsync, "fsync", "both", "Redis appendfsync: always, everysec or both")
	fs.IntVar(&o.events, "events", 0, "messages to send per fsync mode (default 2000 short, 20000 long)")
	fs.IntVar(&o.msisdns, "msisdns", 0, "seafarers (default 40 short, 200 long)")
	fs.IntVar(&o.rounds, "faults", 0, "faults of each kind per fsync mode (default 1 short, 4 long)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the fault schedule and the stream (default: from the clock)")
	fs.StringVar(&o.report, "report", "", "write the report as JSON to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (logs, AOF, broker data)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	short := o.mode == "short"
	if !short && o.mode != "long" {
		return o, fmt.Errorf("-mode must be short or long, not %q", o.mode)
	}
	def := func(v *int, s, l int) {
		if *v <= 0 {
			*v = map[bool]int{true: s, false: l}[short]
		}
	}
	def(&o.events, 2000, 20000)
	def(&o.msisdns, 40, 200)
	def(&o.rounds, 1, 4)
	if o.fsync != "always" && o.fsync != "everysec" && o.fsync != "both" {
		return o, fmt.Errorf("-fsync must be always, everysec or both, not %q", o.fsync)
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	return o, nil
}

// report is what one invocation found.
type report struct {
	Command   string       `json:"command"`
	Date      time.Time    `json:"date"`
	Nproc     int          `json:"nproc"`
	GoVersion string       `json:"go_version"`
	Mode      string       `json:"mode"`
	Seed      uint64       `json:"seed"`
	Runs      []modeReport `json:"runs"`
	Passed    bool         `json:"passed"`
}

// modeReport is one run against one appendfsync setting.
type modeReport struct {
	Fsync          string         `json:"fsync"`
	Seafarers      int            `json:"seafarers"`
	EventsSent     int64          `json:"events_sent"` // messages generated (Summary.Totals.Sent)
	Distinct       int64          `json:"distinct"`
	Duplicates     int64          `json:"duplicates"`
	Reordered      int64          `json:"reordered"`
	ProduceRetries int            `json:"produce_retries"` // chunks written again after a broker error (more redeliveries)
	Faults         map[string]int `json:"faults"`
	FaultLog       []faultRecord  `json:"fault_log"`
	verdict
	DrainSeconds   float64  `json:"drain_seconds"` // from the last message sent to everything committed
	ElapsedSeconds float64  `json:"elapsed_seconds"`
	Problems       []string `json:"problems,omitempty"`
}

// faultRecord is one injected fault.
type faultRecord struct {
	Kind   string  `json:"kind"`
	At     float64 `json:"at_seconds"` // since the stream started
	Detail string  `json:"detail"`
}

func (m modeReport) passed() bool {
	// Sums that disagree on a ledger whose event ids are all right are
	// never explained by a lost write: a failure under every fsync mode.
	if len(m.Problems) > 0 || m.EventsDoubled > 0 || m.SecondsDoubled > 0 || m.sumsWrongWithRightIDs > 0 {
		return false
	}
	return m.clean()
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server is not on PATH: install it (Debian: apt-get install redis-server; make test does) and run again")
	}
	work, err := os.MkdirTemp("", "wuyou-chaos-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stdout, "chaos: working directory", work)
	} else {
		defer os.RemoveAll(work)
	}
	bin, err := buildWuyoud(ctx, work)
	if err != nil {
		return err
	}
	rep := report{
		Command: "go run ./test/chaos " + strings.Join(args, " "), Date: time.Now().UTC(),
		Nproc: runtime.NumCPU(), GoVersion: runtime.Version(), Mode: o.mode, Seed: o.seed, Passed: true,
	}
	fsyncs := []string{o.fsync}
	if o.fsync == "both" {
		fsyncs = []string{"always", "everysec"}
	}
	fmt.Fprintf(stdout, "chaos: mode %s, %d messages, %d seafarers, %d faults of each kind, seed %d\n", o.mode, o.events, o.msisdns, o.rounds, o.seed)
	for i, fsync := range fsyncs {
		dir := filepath.Join(work, fsync)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		m, err := runMode(ctx, o, fsync, o.seed+uint64(i), redisBin, bin, dir, stdout)
		if err != nil {
			return fmt.Errorf("appendfsync %s: %w", fsync, err)
		}
		rep.Runs = append(rep.Runs, m)
		rep.Passed = rep.Passed && m.passed()
	}
	printReport(stdout, rep)
	if o.report != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.MkdirAll(filepath.Dir(o.report), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.report, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if !rep.Passed {
		return errors.New("events were lost or applied twice, or a process panicked (see above)")
	}
	return nil
}

// buildWuyoud builds the wuyoud binary of the module the harness belongs to.
func buildWuyoud(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", fmt.Errorf("run the harness inside the wuyou module (go env GOMOD: %v)", err)
	}
	bin := filepath.Join(dir, "wuyoud")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/wuyoud")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wuyoud: %v\n%s", err, b)
	}
	return bin, nil
}

const (
	group       = "chaos"
	partitions  = 4
	issuer      = "https://issuer.chaos.test"
	packSeconds = 3600
)

// world is the running system of one fsync mode. The fault injector is the
// only one that replaces its parts.
type world struct {
	redis  *redisServer
	broker *broker
	runner *wuyoudRunner
	mu     sync.Mutex
	wuyoud *wuyoud
}

func (w *world) current() *wuyoud {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wuyoud
}

// runMode runs the whole scenario against one appendfsync setting.
func runMode(ctx context.Context, o options, fsync string, runSeed uint64, redisBin, bin, dir string, stdout io.Writer) (modeReport, error) {
	began := time.Now()
	rng := rand.New(rand.NewPCG(runSeed, runSeed^0x9e3779b97f4a7c15))
	m := modeReport{Fsync: fsync, Seafarers: o.msisdns, Faults: map[string]int{}}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stdout, "[%s %6.1fs] %s\n", fsync, time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}

	redisPort, err := freePort()
	if err != nil {
		return m, err
	}
	// Created first, so it is dropped last: after every wuyoud is gone.
	db, err := createDatabase(ctx)
	if err != nil {
		return m, err
	}
	defer func() {
		if err := db.drop(); err != nil {
			logf("%v", err)
		}
	}()

	w := &world{redis: &redisServer{bin: redisBin, dir: filepath.Join(dir, "redis"), fsync: fsync, port: redisPort}}
	if err := os.MkdirAll(w.redis.dir, 0o755); err != nil {
		return m, err
	}
	if err := w.redis.start(ctx); err != nil {
		return m, err
	}
	defer w.redis.stop()
	stopSampling := make(chan struct{})
	defer close(stopSampling)
	go w.redis.sampleAOF(stopSampling)

	brokerPort, err := freePort()
	if err != nil {
		return m, err
	}
	w.broker = &broker{port: brokerPort, dir: filepath.Join(dir, "kafka"), partitions: partitions, topics: carrier.NewTopics("")}
	if err := w.broker.start(); err != nil {
		return m, err
	}
	defer func() { w.broker.stop() }()

	key, err := token.GenerateSigningKey(token.AlgES256)
	if err != nil {
		return m, err
	}
	jwks, err := token.JWKS(key)
	if err != nil {
		return m, err
	}
	jwksPath := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksPath, jwks, 0o600); err != nil {
		return m, err
	}
	token, err := key.Mint(token.Claims{Issuer: issuer, Audience: "wuyou", Subject: "chaos", Role: token.RoleUnion, TTL: 6 * time.Hour}, time.Now())
	if err != nil {
		return m, err
	}
	w.runner = &wuyoudRunner{bin: bin, dir: dir, env: map[string]string{
		"WUYOU_REDIS_ADDRS":      w.redis.addr(),
		"WUYOU_REDIS_PREFIX":     "chaos",
		"WUYOU_POSTGRES_URL":     db.url,
		"WUYOU_KAFKA_BROKERS":    strings.Join(w.broker.addrs(), ","),
		"WUYOU_KAFKA_GROUP":      group,
		"WUYOU_JWT_JWKS":         jwksPath,
		"WUYOU_JWT_ISSUER":       issuer,
		"WUYOU_SHUTDOWN_TIMEOUT": "15s",
	}}
	if w.wuyoud, err = w.runner.start(ctx); err != nil {
		return m, err
	}
	defer func() {
		if p := w.current(); p != nil {
			p.kill()
		}
	}()

	// Seed the crew and their packs over the API, then let a second pass
	// through the AOF settle before any fault can reach them: with everysec
	// the seeding itself must not be what a Redis kill loses.
	msisdns := make([]string, o.msisdns)
	for i := range msisdns {
		msisdns[i] = fmt.Sprintf("+86139%08d", i+1)
	}
	effective, start := sim.CallWindow(time.Now())
	client := func() apiClient { return apiClient{base: w.current().base, token: token} }
	crew, err := seed(client(), msisdns, packSeconds, effective)
	if err != nil {
		return m, fmt.Errorf("seeding: %w", err)
	}
	time.Sleep(1500 * time.Millisecond)
	logf("redis :%d (appendfsync %s), broker :%d, postgres database %s, wuyoud %s; %d seafarers seeded", redisPort, fsync, brokerPort, db.name, w.current().base, len(crew))

	cfg := sim.DefaultConfig()
	cfg.Seed = int64(runSeed % (1 << 62))
	cfg.Home = "CN"
	cfg.MSISDNs = msisdns
	cfg.Duplicates, cfg.Reorder = 0.10, 0.05
	cfg.Start, cfg.Step = start, 200*time.Millisecond
	msgs, sum, want, err := stream(cfg, o.events)
	if err != nil {
		return m, err
	}
	m.EventsSent, m.Distinct, m.Duplicates, m.Reordered = sum.Totals.Sent, sum.Totals.Distinct, sum.Totals.Duplicates, sum.Totals.Reordered

	// The faults, each kind rounds times, in a random order; the stream is
	// paced to last about as long as they take, so every fault lands while
	// messages arrive and are applied.
	var schedule []string
	for range o.rounds {
		schedule = append(schedule, faultKinds...)
		if fsync == "everysec" {
			schedule = append(schedule, faultRedisPowerLoss)
		}
	}
	rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
	const chunk = 50
	chunks := (len(msgs) + chunk - 1) / chunk
	pace := time.Duration(len(schedule)) * 5 * time.Second / time.Duration(chunks)

	streamStart := time.Now()
	var produced atomic.Bool
	var retries atomic.Int64
	produceErr := make(chan error, 1)
	go func() {
		produceErr <- produce(ctx, w.broker.addrs(), w.broker.topics.Usage, msgs, chunk, pace, &retries)
		produced.Store(true)
	}()

	for i, kind := range schedule {
		if err := sleepCtx(ctx, time.Duration(500+rng.IntN(2500))*time.Millisecond); err != nil {
			return m, err
		}
		detail, err := inject(ctx, w, kind, rng)
		if err != nil {
			return m, fmt.Errorf("fault %d (%s): %w", i+1, kind, err)
		}
		rec := faultRecord{Kind: kind, At: time.Since(streamStart).Seconds(), Detail: detail}
		if produced.Load() {
			rec.Detail += "; after the last message was sent"
		}
		m.Faults[kind]++
		m.FaultLog = append(m.FaultLog, rec)
		logf("fault %d/%d %s: %s", i+1, len(schedule), kind, rec.Detail)
	}
	if err := <-produceErr; err != nil {
		return m, err
	}
	m.ProduceRetries = int(retries.Load())
	lastSent := time.Now()
	logf("stream sent: %d messages (%d distinct), %d chunk retries", len(msgs), sum.Totals.Distinct, m.ProduceRetries)

	// Wait until the group has committed every message (every effect is
	// then stored, by the delivery guarantee), then until the accounts
	// match the model or stop changing.
	if err := waitCommitted(ctx, w.broker, 5*time.Minute); err != nil {
		return m, err
	}
	m.DrainSeconds = time.Since(lastSent).Seconds()
	logf("every message committed %.1fs after the last was sent", m.DrainSeconds)
	var last *verdict
	for deadline := time.Now().Add(60 * time.Second); ; {
		v, err := compare(ctx, client(), crew, want, packSeconds)
		if err != nil {
			return m, err
		}
		stable := last != nil && last.counts() == v.counts()
		m.verdict = v
		if v.clean() || stable || time.Now().After(deadline) {
			break
		}
		last = &v
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return m, err
		}
	}
	if len(m.lostIDs) > 0 {
		n, err := onLedgerTopic(ctx, w.broker, m.lostIDs)
		if err != nil {
			m.Problems = append(m.Problems, "reading the ledger topic: "+err.Error())
		}
		m.LostOnLedgerTopic = n
		logf("%d of the %d lost events are on %s: their debit was made and published, then lost from Redis", n, len(m.lostIDs), w.broker.topics.Ledger)
	}
	if err := w.current().terminate(20 * time.Second); err != nil {
		m.Problems = append(m.Problems, "last wuyoud on SIGTERM: "+err.Error())
	}
	w.wuyoud = nil
	m.Problems = append(m.Problems, w.runner.problems()...)
	m.ElapsedSeconds = time.Since(began).Seconds()
	logf("applied %d, lost %d, applied twice %d (seconds lost %d, doubled %d), ledger sums wrong for %d seafarers", m.EventsApplied, m.EventsLost, m.EventsDoubled, m.SecondsLost, m.SecondsDoubled, m.LedgerSumsWrong)
	return m, nil
}

// inject causes one fault and returns once the system is whole again (it
// may still be catching up).
func inject(ctx context.Context, w *world, kind string, rng *rand.Rand) (string, error) {
	var detail string
	switch kind {
	case faultWuyoudKill:
		// A random point, but one inside work when there is any: wait up
		// to 3s for messages the group has not committed.
		var behind int64
		for deadline := time.Now().Add(3 * time.Second); behind == 0 && time.Now().Before(deadline); {
			behind, _ = w.broker.committedBehind(ctx, group)
			if behind == 0 {
				time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
			}
		}
		w.current().kill()
		// The broker notices a killed member only at its session timeout
		// (10s); an orchestrator removes it at once, and so do we.
		if err := w.broker.removeMembers(ctx, group); err != nil {
			detail = "removing the dead member: " + err.Error() + "; "
		}
		p, err := w.runner.start(ctx)
		if err != nil {
			return "", err
		}
		w.mu.Lock()
		w.wuyoud = p
		w.mu.Unlock()
		detail += fmt.Sprintf("killed with %d messages not committed; new instance %s", behind, p.base)
	case faultRedisKill:
		if err := w.redis.kill(); err != nil {
			return "", err
		}
		down := time.Duration(200+rng.IntN(1800)) * time.Millisecond
		if err := sleepCtx(ctx, down); err != nil {
			return "", err
		}
		t := time.Now()
		if err := w.redis.start(ctx); err != nil {
			return "", err
		}
		detail = fmt.Sprintf("down %s, reloaded its AOF in %s", down.Round(time.Millisecond), time.Since(t).Round(time.Millisecond))
	case faultRedisPowerLoss:
		lag := time.Duration(200+rng.IntN(800)) * time.Millisecond
		cut, err := w.redis.powerLoss(lag)
		if err != nil {
			return "", err
		}
		t := time.Now()
		if err := w.redis.start(ctx); err != nil {
			return "", err
		}
		detail = fmt.Sprintf("AOF cut back to its size %s earlier (%d bytes dropped), reloaded in %s", lag.Round(time.Millisecond), cut, time.Since(t).Round(time.Millisecond))
	case faultRedisPause:
		pause := time.Duration(2000+rng.IntN(3000)) * time.Millisecond
		if err := w.redis.signal(syscall.SIGSTOP); err != nil {
			return "", err
		}
		err := sleepCtx(ctx, pause)
		if cerr := w.redis.signal(syscall.SIGCONT); cerr != nil {
			return "", cerr
		}
		if err != nil {
			return "", err
		}
		detail = fmt.Sprintf("SIGSTOP for %s", pause.Round(time.Millisecond))
	case faultBrokerRestart:
		w.broker.stop()
		down := time.Duration(500+rng.IntN(1500)) * time.Millisecond
		if err := sleepCtx(ctx, down); err != nil {
			return "", err
		}
		if err := w.broker.start(); err != nil {
			return "", err
		}
		detail = fmt.Sprintf("down %s, reopened from its data directory", down.Round(time.Millisecond))
	default:
		return "", fmt.Errorf("unknown fault %q", kind)
	}
	// Whole again: wuyoud answers /healthz and Redis PING.
	rdb := redis.NewClient(&redis.Options{Addr: w.redis.addr(), MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(60 * time.Second); ; {
		if w.current().healthy() && rdb.Ping(ctx).Err() == nil {
			return detail, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("not healthy 60s after the fault:\n%s", tail(w.current().logPath))
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// produce writes msgs to topic in chunks, one every pace, as the carrier
// would: a chunk the broker did not acknowledge is written again (which may
// redeliver some of its messages, as a real producer's retry does).
func produce(ctx context.Context, brokers []string, topic string, msgs []kafka.Message, chunk int, pace time.Duration, retries *atomic.Int64) error {
	w := carrier.NewWriter(brokers)
	defer func() { w.Close() }()
	for i := 0; i < len(msgs); i += chunk {
		part := make([]kafka.Message, 0, chunk)
		for _, m := range msgs[i:min(i+chunk, len(msgs))] {
			m.Topic = topic
			part = append(part, m)
		}
		for attempt := 0; ; attempt++ {
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := w.WriteMessages(wctx, part...)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil || attempt == 50 {
				return fmt.Errorf("producing the stream: %w", err)
			}
			retries.Add(1)
			w.Close()
			w = carrier.NewWriter(brokers)
			if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
				return err
			}
		}
		if err := sleepCtx(ctx, pace); err != nil {
			return err
		}
	}
	return nil
}

// waitCommitted waits until the consumer group has committed every message
// of the usage topic.
func waitCommitted(ctx context.Context, b *broker, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var behind int64 = -1
	for {
		n, err := b.committedBehind(ctx, group)
		if err == nil {
			if n == 0 {
				return nil
			}
			behind = n
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d messages still uncommitted after %s (last error: %v)", behind, timeout, err)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func printReport(out io.Writer, rep report) {
	fmt.Fprintf(out, "\nchaos report (%s, seed %d, %d CPUs, %s)\n", rep.Mode, rep.Seed, rep.Nproc, rep.Date.Format(time.RFC3339))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fsync\tsent\tdistinct\tdup\twuyoud kill\tredis kill\tredis stop\tbroker restart\tpower loss\tapplied\tlost\ttwice\ts lost\ts twice\tsums wrong\tdrain s\ttotal s\t")
	for _, m := range rep.Runs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t\n", m.Fsync, m.EventsSent, m.Distinct, m.Duplicates,
			m.Faults[faultWuyoudKill], m.Faults[faultRedisKill], m.Faults[faultRedisPause], m.Faults[faultBrokerRestart], m.Faults[faultRedisPowerLoss],
			m.EventsApplied, m.EventsLost, m.EventsDoubled, m.SecondsLost, m.SecondsDoubled, m.LedgerSumsWrong, m.DrainSeconds, m.ElapsedSeconds)
	}
	tw.Flush()
	for _, m := range rep.Runs {
		for _, e := range m.Examples {
			fmt.Fprintf(out, "  %s: %s\n", m.Fsync, e)
		}
		for _, p := range m.Problems {
			fmt.Fprintf(out, "  %s: PROBLEM %s\n", m.Fsync, p)
		}
	}
	fmt.Fprintf(out, "passed: %v\n", rep.Passed)
}

// onLedgerTopic counts how many of ids have a debit entry on the ledger
// topic: a lost event found there was applied and published, then lost
// from Redis, and could be restored from the topic.
func onLedgerTopic(ctx context.Context, b *broker, ids []string) (int, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	topic := b.topics.Ledger
	ends, err := endOffsets(ctx, b.addrs(), topic, 1)
	if err != nil || ends[0] == 0 {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.addrs(), Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	found := map[string]bool{}
	for {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			return len(found), err
		}
		var ev struct {
			Type string
			Data struct {
				EventID string `json:"event_id"`
			}
		}
		if json.Unmarshal(msg.Value, &ev) == nil && ev.Type == "wuyou.ledger.debit" && want[ev.Data.EventID] {
			found[ev.Data.EventID] = true
		}
		if msg.Offset >= ends[0]-1 {
			return len(found), nil
		}
	}
}
