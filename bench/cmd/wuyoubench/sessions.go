package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/fanout"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// Real-time credit control (CONTRACT §7.3) under load: `wuyoubench
// sessions` serves the carrier's session routes from api.New wired as
// cmd/wuyoud wires them (registry crew.PGStore, sessions in Redis beside the
// grants, each terminate's ledger entry appended to PostgreSQL by
// carrier.LedgerRecorder and published to Kafka, here kfake in process) and
// drives them with `wuyoubench sessionload`, a process of its own:
//
//   - open+terminate pairs/s, many connections in a closed loop, each pair
//     a new session id, the MSISDNs taken in turn from thousands of
//     seafarers with grants; next to the allowance read rate (GET
//     /v1/me/allowance, as line 3) sent by the same client on the same
//     connections, the two alternating over rounds;
//   - the maximum open rate (closed loop), then the p99 of opens sent at
//     half that rate (open loop, counted from when each was due) next to
//     the p99 of a plain fiber handler at the same rate.

type sessionsConfig struct {
	Seafarers  int
	Readers    int
	Conns      int
	Duration   time.Duration
	Rounds     int
	Requested  int64
	Used       int64
	Workers    int
	CPUProfile string
	PGConns    int32
}

// sessionStages times what a session request waits on, stage by stage: the
// stores the service is wired with, each wrapped.
type sessionStages struct {
	resolve, open, callOf, terminate, ledger, kafka, recorded stageTimer
}

type stageTimer struct{ calls, nanos atomic.Int64 }

func (t *stageTimer) since(start time.Time) {
	t.calls.Add(1)
	t.nanos.Add(int64(time.Since(start)))
}

// snapshot is the calls and total time of each stage so far, by name.
func (s *sessionStages) snapshot() map[string][2]int64 {
	m := map[string][2]int64{}
	for name, t := range s.named() {
		m[name] = [2]int64{t.calls.Load(), t.nanos.Load()}
	}
	return m
}

func (s *sessionStages) named() map[string]*stageTimer {
	return map[string]*stageTimer{
		"resolve": &s.resolve, "open": &s.open, "call_of": &s.callOf, "terminate": &s.terminate,
		"ledger": &s.ledger, "kafka": &s.kafka, "recorded": &s.recorded,
	}
}

// stageNames in the order a pair goes through them, with what each is.
var stageNames = []struct{ key, what string }{
	{"resolve", "MSISDN → seafarer (crew.PGStore, one PostgreSQL query)"},
	{"open", "RedisStore.OpenSession (hot-state check, SETNX of the session's index, the session script)"},
	{"call_of", "RedisStore.SessionCallOf (GET of the index, HGET of the session)"},
	{"terminate", "RedisStore.TerminateSession (hot-state check, the debit script, HGET of the session)"},
	{"ledger", "PGLedger.Append of the terminates' entries (one PostgreSQL transaction a group of terminates made at once, carrier.GroupLedger)"},
	{"kafka", "the ledger message written to kfake, acks awaited (kafka-go Writer, 2 ms batch timeout)"},
	{"recorded", "RedisStore.Recorded (HDEL of the pending record)"},
}

type timedResolver struct {
	carrier.Resolver
	t *stageTimer
}

func (r timedResolver) SeafarerIDsByMSISDN(ctx context.Context, msisdns []string) (map[string]string, error) {
	defer r.t.since(time.Now())
	return r.Resolver.SeafarerIDsByMSISDN(ctx, msisdns)
}

type timedSessionStore struct {
	carrier.SessionStore
	s *sessionStages
}

func (t timedSessionStore) OpenSession(ctx context.Context, o quota.SessionOpen) (*quota.SessionGrant, error) {
	defer t.s.open.since(time.Now())
	return t.SessionStore.OpenSession(ctx, o)
}

func (t timedSessionStore) SessionCallOf(ctx context.Context, id string) (string, quota.SessionCall, error) {
	defer t.s.callOf.since(time.Now())
	return t.SessionStore.SessionCallOf(ctx, id)
}

func (t timedSessionStore) TerminateSession(ctx context.Context, u quota.Usage) (*quota.DebitResult, *quota.SessionCharge, error) {
	defer t.s.terminate.since(time.Now())
	return t.SessionStore.TerminateSession(ctx, u)
}

type timedLedger struct {
	carrier.LedgerWriter
	t *stageTimer
}

func (l timedLedger) Append(ctx context.Context, entries []quota.SeafarerEntry) error {
	defer l.t.since(time.Now())
	return l.LedgerWriter.Append(ctx, entries)
}

type timedProducer struct {
	carrier.Producer
	t *stageTimer
}

func (p timedProducer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	defer p.t.since(time.Now())
	return p.Producer.WriteMessages(ctx, msgs...)
}

type timedHot struct {
	hot interface {
		Recorded(ctx context.Context, entries []quota.SeafarerEntry) error
	}
	t *stageTimer
}

func (h timedHot) Recorded(ctx context.Context, entries []quota.SeafarerEntry) error {
	defer h.t.since(time.Now())
	return h.hot.Recorded(ctx, entries)
}

// sessionGrantSeconds is each of a seafarer's two grants: far more than the
// run draws, so no open is ever refused or final.
const sessionGrantSeconds = 360_000

func runSessions(ctx context.Context, args []string, env environment, out *results, progress func(string, ...any)) error {
	var c sessionsConfig
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	fs.IntVar(&c.Seafarers, "seafarers", 10000, "seafarers enrolled with grants; the sessions' MSISDNs are theirs, taken in turn")
	fs.IntVar(&c.Readers, "readers", 100, "of them, the seafarers whose allowances are read (as line 3), with no sessions")
	fs.IntVar(&c.Conns, "conns", 32, "the load client's connections")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "each load run")
	fs.IntVar(&c.Rounds, "rounds", 2, "alternating rounds of allowance reads and session pairs (medians)")
	fs.Int64Var(&c.Requested, "requested", 60, "seconds each open asks for")
	fs.Int64Var(&c.Used, "used", 45, "seconds each terminate reports used")
	fs.IntVar(&c.Workers, "workers", 16, "concurrent enrolments and grants in the setup")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the CPU profile of this process (API server and kfake) during the last pairs round to this file (empty: none)")
	var pgConns int
	fs.IntVar(&pgConns, "pg-conns", 16, "the server's PostgreSQL pool size (16: what cmd/wuyoud opens from a WUYOU_POSTGRES_URL without pool_max_conns; 0: pgxpool's default, max(4, cores))")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.PGConns = int32(pgConns)
	if pgConns < 0 || c.Readers <= 0 || c.Seafarers <= c.Readers || c.Rounds <= 0 {
		return fmt.Errorf("need -rounds > 0, -pg-conns ≥ 0 and -seafarers > -readers > 0")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	l, db, done, err := openLabAndDatabase(ctx, env, env, "sessions", out)
	if err != nil {
		return err
	}
	defer done()
	pool := db.pool
	if c.PGConns > 0 {
		cfg, err := pgxpool.ParseConfig(env.PostgresURL)
		if err != nil {
			return err
		}
		cfg.ConnConfig.Database, cfg.MaxConns = db.name, c.PGConns
		if pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return err
		}
		defer pool.Close()
	}
	out.info("sessions.pg_conns", "%d", pool.Config().MaxConns)
	p, err := newPipeline(ctx, l.rdb, l.prefix, pool)
	if err != nil {
		return err
	}
	now := wuyou.SystemClock()

	progress("sessions: enrolling %d seafarers (PostgreSQL), two %d s grants each", c.Seafarers, sessionGrantSeconds)
	started := time.Now()
	msisdns := benchMSISDNs(c.Seafarers)
	ids, err := enrolEach(ctx, p.registry, msisdns, c.Workers)
	if err != nil {
		return err
	}
	err = fanout.Each(ctx, len(ids), c.Workers, func(ctx context.Context, i int) error {
		for g, days := range []int{30, 90} {
			if _, _, err := p.store.AddGrant(ctx, quota.GrantInput{
				ID: fmt.Sprintf("gr_bench_%d_%d", i, g), SeafarerID: ids[i], ProgrammeID: "pg_bench", Seconds: sessionGrantSeconds,
				EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.AddDate(0, 0, days), Priority: g,
			}); err != nil {
				return err
			}
		}
		if i >= c.Readers {
			return nil
		}
		// The readers are line 3's seafarers: two grants and a call.
		_, err := p.store.Debit(ctx, quota.Usage{
			SeafarerID: ids[i], Source: "urn:bench", EventID: "call-1", Type: "carrier.usage.voice",
			CallTime: now.Add(-time.Minute), DurationSeconds: 170, BillableSeconds: 180, Increment: 60,
		})
		return err
	})
	if err != nil {
		return err
	}
	out.info("sessions.enrol_setup", "%d seafarers enrolled and granted in %.1f s", c.Seafarers, time.Since(started).Seconds())

	// Kafka: kfake in process, as the metering benches; the topics wuyoud
	// publishes to exist.
	topics := carrier.NewTopics("")
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics.Usage), kfake.SeedTopics(1, topics.All()[1:]...))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer broker.Close()
	writer := carrier.NewWriter(broker.ListenAddrs())
	defer writer.Close()

	var st sessionStages
	tariff := billing.DefaultTariff()
	recorder := carrier.LedgerRecorder{
		// Terminates made at once share a commit, as in cmd/wuyoud.
		Ledger:    &carrier.GroupLedger{Ledger: timedLedger{p.ledger, &st.ledger}},
		Publisher: carrier.NewPublisher(timedProducer{writer, &st.kafka}, topics, wuyou.SystemClock),
		Hot:       timedHot{p.store, &st.recorded},
	}
	sessions := &carrier.Sessions{
		Store: timedSessionStore{p.store, &st}, Resolver: timedResolver{p.registry, &st.resolve},
		Tariff: tariff, HomeCountry: homeCountry, Recorder: recorder, FinalAction: tariff.FinalAction(),
	}
	key, err := token.GenerateSigningKey(token.AlgEdDSA)
	if err != nil {
		return err
	}
	const issuer = "https://issuer.bench"
	jwks, err := token.JWKS(key)
	if err != nil {
		return err
	}
	verifier, err := api.NewVerifierFromJWKS(jwks, issuer, "wuyou", nil)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	server := api.New(api.Config{
		Crew: p.registry, Quota: p.store, Ledger: recorder, Entries: p.ledger, Sessions: sessions, Verifier: verifier, Log: log,
	})
	apiAddr, err := server.Listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer server.Shutdown(context.Background())
	plainAddr, stopPlain, err := listenPlainSessions()
	if err != nil {
		return err
	}
	defer stopPlain()

	dir, err := os.MkdirTemp("", "wuyoubench-sessions-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	readerTokens := make([]string, c.Readers)
	for i := range readerTokens {
		if readerTokens[i], err = key.Mint(token.Claims{Issuer: issuer, Audience: "wuyou", Subject: ids[i], Role: token.RoleSeafarer, TTL: time.Hour}, time.Now()); err != nil {
			return err
		}
	}
	carrierToken, err := key.Mint(token.Claims{Issuer: issuer, Audience: "wuyou", Subject: "carrier-bench", Role: token.RoleCarrier, TTL: time.Hour}, time.Now())
	if err != nil {
		return err
	}
	files := map[string]string{
		"tokens":         strings.Join(readerTokens, "\n") + "\n",
		"carrier.tokens": carrierToken + "\n",
		"msisdns":        strings.Join(msisdns[c.Readers:], "\n") + "\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	apiURL, plainURL := "http://"+apiAddr.String(), "http://"+plainAddr.String()
	if err := checkAllowance(apiURL, readerTokens[0], ids[0]); err != nil {
		return err
	}
	debitsBefore, err := ledgerDebits(ctx, db.pool)
	if err != nil {
		return err
	}
	if err := checkSessionPair(apiURL, carrierToken, msisdns[c.Readers], c.Requested); err != nil {
		return err
	}

	load := func(url, mode string, extra ...string) []string {
		a := []string{"sessionload", "-url", url, "-mode", mode, "-conns", strconv.Itoa(c.Conns), "-duration", c.Duration.String()}
		switch mode {
		case "get":
			a = append(a, "-tokens", filepath.Join(dir, "tokens"))
		default:
			a = append(a, "-tokens", filepath.Join(dir, "carrier.tokens"), "-msisdns", filepath.Join(dir, "msisdns"),
				"-requested", strconv.FormatInt(c.Requested, 10), "-used", strconv.FormatInt(c.Used, 10))
		}
		return append(a, extra...)
	}
	shown := func(a []string) string {
		s := strings.ReplaceAll(strings.Join(a, " "), dir+"/", "")
		return "wuyoubench " + strings.ReplaceAll(s, apiURL, "http://127.0.0.1:PORT")
	}
	// The profile by its base name: where run.sh keeps it is of no interest.
	shownCommand := command("wuyoubench", fs)
	if c.CPUProfile != "" {
		shownCommand = strings.Replace(shownCommand, "-cpuprofile="+c.CPUProfile, "-cpuprofile="+filepath.Base(c.CPUProfile), 1)
	}
	out.info("sessions.command", "%s", shownCommand)
	out.info("sessions.pairs_command", "%s", shown(load(apiURL, "pairs")))
	out.info("sessions.reads_command", "%s", shown(load(apiURL, "get")))

	// (a) Allowance reads and session pairs, alternating, same client.
	var reads, pairs []float64
	var pairRuns []map[string]float64
	var pairsCost, readsCost cost
	var pairsDone, readsDone float64
	stagesBefore := st.snapshot()
	redisPairs, sentPairs := map[string]cmdStat{}, map[string]int64{}
	statsKnown := true
	for r := 0; r < c.Rounds; r++ {
		progress("sessions: round %d of %d: allowance reads (%s, %d connections)", r+1, c.Rounds, c.Duration, c.Conns)
		before := l.sample(ctx)
		m, err := runSessionLoadProcess(ctx, self, load(apiURL, "get"))
		if err != nil {
			return fmt.Errorf("allowance reads: %w", err)
		}
		readsCost = addCost(readsCost, l.sample(ctx).since(before))
		reads, readsDone = append(reads, m["rps"]), readsDone+m["requests"]

		progress("sessions: round %d of %d: open+terminate pairs", r+1, c.Rounds)
		stopProfile := func() error { return nil }
		if r == c.Rounds-1 {
			if stopProfile, err = startCPUProfile(c.CPUProfile); err != nil {
				return err
			}
		}
		statsBefore, serr := commandStats(ctx, l.rdb)
		sentBefore := l.sent.names()
		before = l.sample(ctx)
		m, err = runSessionLoadProcess(ctx, self, load(apiURL, "pairs"))
		if perr := stopProfile(); perr != nil && err == nil {
			err = perr
		}
		if err != nil {
			return fmt.Errorf("session pairs: %w", err)
		}
		pairsCost = addCost(pairsCost, l.sample(ctx).since(before))
		statsAfter, serr2 := commandStats(ctx, l.rdb)
		statsKnown = statsKnown && serr == nil && serr2 == nil
		for k, v := range statsSince(statsAfter, statsBefore) {
			a := redisPairs[k]
			redisPairs[k] = cmdStat{calls: a.calls + v.calls, usec: a.usec + v.usec}
		}
		for k, v := range namesSince(l.sent.names(), sentBefore) {
			sentPairs[k] += v
		}
		pairs, pairsDone = append(pairs, m["rps"]), pairsDone+m["requests"]
		pairRuns = append(pairRuns, m)
		progress("sessions: %.0f reads/s, %.0f pairs/s", reads[len(reads)-1], pairs[len(pairs)-1])
	}
	stagesPairs := stagesSince(st.snapshot(), stagesBefore)

	// Every pair charged once, its entry in the ledger.
	debitsAfter, err := ledgerDebits(ctx, db.pool)
	if err != nil {
		return err
	}
	if got, want := debitsAfter-debitsBefore, int64(pairsDone)+1; got != want {
		return fmt.Errorf("the ledger holds %d new debits after %d terminated sessions (and the check's one); want one each", got, want-1)
	}

	readRate, pairRate := median(slices.Clone(reads)), median(slices.Clone(pairs))
	last := pairRuns[len(pairRuns)-1]
	out.figure("sessions.pairs.rate", pairRate, "pairs/s")
	out.figure("sessions.pairs.p50_ms", last["p50_us"]/1000, "ms")
	out.figure("sessions.pairs.p99_ms", last["p99_us"]/1000, "ms")
	out.figure("sessions.pairs.open_p50_ms", last["open_p50_us"]/1000, "ms")
	out.figure("sessions.pairs.terminate_p50_ms", last["terminate_p50_us"]/1000, "ms")
	out.figure("sessions.reads.rps", readRate, "req/s")
	out.figure("sessions.pairs.ratio", pairRate/readRate, "x")
	pairCPU := float64(pairsCost.SelfCPU.Microseconds()) / pairsDone
	readCPU := float64(readsCost.SelfCPU.Microseconds()) / readsDone
	out.figure("sessions.pairs.cpu_us", pairCPU, "µs/pair")
	out.figure("sessions.reads.cpu_us", readCPU, "µs/req")
	out.info("sessions.setup", "%d seafarers enrolled in PostgreSQL (crew.PGStore, the server's pool %d connections), two %d s grants each in Redis; api.New wired as cmd/wuyoud wires the session routes: carrier.Sessions over quota.RedisStore (hot-state guard, identity claims in PostgreSQL) and the registry, its terminates recorded by carrier.LedgerRecorder (quota.PGLedger in PostgreSQL through carrier.GroupLedger, then published to kfake in process, then the pending record dropped); the load client `wuyoubench sessionload` in a process of its own, %d connections in a closed loop for %s a run: a pair opens a new session id (requested %d s, abroad) for the next of %d MSISDNs in turn and terminates it (used %d s); the allowance reads are GET %s rotating through %d seafarers' tokens (two grants and a call each, as line 3), same client and connections; %d rounds alternating reads and pairs, medians; checked: each terminate left one debit in the ledger",
		c.Seafarers, pool.Config().MaxConns, sessionGrantSeconds, c.Conns, c.Duration, c.Requested, c.Seafarers-c.Readers, c.Used, allowancePath, c.Readers, c.Rounds)
	redisPart := ""
	if statsKnown {
		for k, v := range redisPairs {
			if v.calls > 0 {
				v.usecPerCall = float64(v.usec) / float64(v.calls)
				redisPairs[k] = v
			}
		}
		usec, per := consumerUsec(redisPairs, sentPairs)
		var parts []string
		for _, name := range sortedStrings(mapKeys(per)) {
			if name == "info" || strings.HasPrefix(name, "config") {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %.2f a pair at %.1f µs", strings.ToUpper(name), float64(per[name].calls)/pairsDone, per[name].usecPerCall))
		}
		redisPart = fmt.Sprintf(" Redis (INFO commandstats over the pairs runs, each command counted in the share of its calls this process sent): %.0f µs of command time a pair (scripts' time includes the commands they call); by command, a pair: %s; %.1f Redis round trips a pair.", usec/pairsDone, strings.Join(parts, "; "), float64(pairsCost.RoundTrips)/pairsDone)
	}
	out.note("sessions.pairs", "%s A pair cost this process (API server and kfake broker) %.0f µs of CPU against %.0f µs for an allowance read; the client used %.2f cores. Per pair, the server waited on: %s.%s",
		pairsCost.bound("the bench process (API server, kfake broker)"), pairCPU, readCPU, last["cpu_s"]/last["wall_s"], stagesText(stagesPairs, pairsDone+1), redisPart)

	// (b) The maximum open rate, then the p99 at half of it.
	progress("sessions: opens at their maximum (closed loop, %s)", c.Duration)
	maxRun, err := runSessionLoadProcess(ctx, self, load(apiURL, "opens"))
	if err != nil {
		return fmt.Errorf("opens at the maximum: %w", err)
	}
	rate := maxRun["rps"] / 2
	half := func(url string) []string { return load(url, "opens", "-rate", strconv.FormatFloat(rate, 'f', 0, 64)) }
	out.info("sessions.opens_command", "%s", shown(load(apiURL, "opens")))
	out.info("sessions.half_command", "%s", shown(half(apiURL)))
	// The API and the plain handler alternate over the rounds, so both
	// share the machine's noise; each p99 is the median of its rounds'.
	var apiP99s, apiP50s, plainP99s, plainP50s, achieved []float64
	var halfCost cost
	var halfOpens, halfClient, halfWall float64
	stagesBefore = st.snapshot()
	for r := 0; r < c.Rounds; r++ {
		progress("sessions: round %d of %d: opens at %.0f/s (half the maximum), open loop", r+1, c.Rounds, rate)
		before := l.sample(ctx)
		m, err := runSessionLoadProcess(ctx, self, half(apiURL))
		if err != nil {
			return fmt.Errorf("opens at half the maximum: %w", err)
		}
		halfCost = addCost(halfCost, l.sample(ctx).since(before))
		apiP99s, apiP50s, achieved = append(apiP99s, m["p99_us"]), append(apiP50s, m["p50_us"]), append(achieved, m["achieved_rps"])
		halfOpens, halfClient, halfWall = halfOpens+m["requests"], halfClient+m["cpu_s"], halfWall+m["wall_s"]
		progress("sessions: round %d of %d: the plain handler at %.0f/s", r+1, c.Rounds, rate)
		m, err = runSessionLoadProcess(ctx, self, half(plainURL))
		if err != nil {
			return fmt.Errorf("plain handler at half the maximum: %w", err)
		}
		plainP99s, plainP50s = append(plainP99s, m["p99_us"]), append(plainP50s, m["p50_us"])
		progress("sessions: p99 %.2f ms (API) vs %.2f ms (plain)", apiP99s[r]/1000, plainP99s[r]/1000)
	}
	stagesHalf := stagesSince(st.snapshot(), stagesBefore)
	halfAPI := map[string]float64{"p99_us": median(slices.Clone(apiP99s)), "p50_us": median(slices.Clone(apiP50s)), "achieved_rps": median(slices.Clone(achieved))}
	halfPlain := map[string]float64{"p99_us": median(slices.Clone(plainP99s)), "p50_us": median(slices.Clone(plainP50s))}
	out.figure("sessions.opens.max_rps", maxRun["rps"], "opens/s")
	out.figure("sessions.opens.max_p99_ms", maxRun["p99_us"]/1000, "ms")
	out.figure("sessions.half.rate", halfAPI["achieved_rps"], "opens/s")
	out.figure("sessions.half.api.p50_ms", halfAPI["p50_us"]/1000, "ms")
	out.figure("sessions.half.api.p99_ms", halfAPI["p99_us"]/1000, "ms")
	out.figure("sessions.half.plain.p50_ms", halfPlain["p50_us"]/1000, "ms")
	out.figure("sessions.half.plain.p99_ms", halfPlain["p99_us"]/1000, "ms")
	out.figure("sessions.half.ratio", halfAPI["p99_us"]/halfPlain["p99_us"], "x")

	held, err := sessionsPerSeafarer(ctx, l, p.store, ids[c.Readers:])
	if err != nil {
		return err
	}
	out.info("sessions.half_setup", "the same server and client: opens alone (a new session id each, the MSISDNs in turn) in a closed loop on %d connections for %s give the maximum; then the client sends opens at half that rate, open loop, on up to %d connections, each latency counted from when the open was due (as wrk2 would); the same load goes to a plain fiber handler answering the same path with a fixed 201 JSON, for the baseline; by the end a seafarer's sessions hash held %.1f sessions on average (terminated ones wait there for the carrier's record, opened ones until they lapse and a day more)", c.Conns, c.Duration, c.Conns, held)
	halfNote := fmt.Sprintf("%s The client used %.2f cores. Medians of %d rounds, alternating API and plain handler: the p99s of the API's rounds were %s, of the plain handler's %s. The p50 of an open was %.2f ms at half the maximum against %.2f ms in the closed loop at the maximum (p99 %.2f ms). Per open, the server waited on: %s.",
		halfCost.bound("the bench process (API server, kfake broker)"), halfClient/halfWall, c.Rounds, msList(apiP99s), msList(plainP99s), halfAPI["p50_us"]/1000, maxRun["p50_us"]/1000, maxRun["p99_us"]/1000, stagesText(stagesHalf, halfOpens))
	if halfAPI["p50_us"] > 1.5*maxRun["p50_us"] {
		halfNote += " So opens queued: in these windows the server, its cores shared with the client, Redis, PostgreSQL and other work, kept up with fewer opens than the closed loop had at its maximum, and an open-loop p99 counts that queue, which a closed loop hides (coordinated omission)."
	}
	out.note("sessions.half", "%s", halfNote)
	return nil
}

// runSessionLoadProcess runs `wuyoubench sessionload` (self) and returns
// its figures; any failed request is an error.
func runSessionLoadProcess(ctx context.Context, self string, args []string) (map[string]float64, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, stderr.String())
	}
	m := parseFigures(stdout.String())
	if m["errors"] > 0 {
		return nil, fmt.Errorf("%v requests failed:\n%s", m["errors"], stdout.String())
	}
	if _, ok := m["p99_us"]; !ok {
		return nil, fmt.Errorf("the load client printed no p99_us:\n%s", stdout.String())
	}
	return m, nil
}

// checkSessionPair opens and terminates one session through the API and
// checks the answers: a benchmark of refusals would measure nothing.
func checkSessionPair(baseURL, carrierToken, msisdn string, requested int64) error {
	post := func(path, body string) (int, []byte, error) {
		req, err := http.NewRequest(http.MethodPost, baseURL+path, strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+carrierToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	code, body, err := post("/v1/carrier/sessions", fmt.Sprintf(`{"session_id":"bench-check","msisdn":%q,"unit":"seconds","requested":%d,"visited_country":"SG","called_number":"+6561234567"}`, msisdn, requested))
	if err != nil {
		return err
	}
	var g quota.SessionGrant
	if code != http.StatusCreated || json.Unmarshal(body, &g) != nil || g.Granted != requested {
		return fmt.Errorf("open answered %d %s; want 201 granting %d", code, body, requested)
	}
	code, body, err = post("/v1/carrier/sessions/bench-check:terminate", `{"used":45}`)
	if err != nil {
		return err
	}
	var ch quota.SessionCharge
	if code != http.StatusOK || json.Unmarshal(body, &ch) != nil || ch.Charged <= 0 || ch.Overage != 0 {
		return fmt.Errorf("terminate answered %d %s; want 200 charging the call from the grants", code, body)
	}
	return nil
}

// listenPlainSessions serves the baseline: fiber handlers on the measured
// paths answering a fixed small JSON, as cheap as a fiber route gets.
func listenPlainSessions() (net.Addr, func(), error) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Post("/v1/carrier/sessions", func(c *fiber.Ctx) error {
		return c.Status(fiber.StatusCreated).JSON(quota.SessionGrant{SessionID: "plain", Granted: 60, ValiditySeconds: 300, FinalAction: quota.FinalContinueAsOverage})
	})
	return listenApp(app)
}

// sessionsPerSeafarer is the mean length of the seafarers' sessions hashes.
func sessionsPerSeafarer(ctx context.Context, l *lab, _ *quota.RedisStore, ids []string) (float64, error) {
	pipe := l.rdb.Pipeline()
	for _, id := range ids {
		pipe.HLen(ctx, crew.SeafarerTag(l.prefix, id)+":x")
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		n += c.(interface{ Val() int64 }).Val()
	}
	return float64(n) / float64(len(ids)), nil
}

func addCost(a, b cost) cost {
	return cost{Wall: a.Wall + b.Wall, RedisCPU: a.RedisCPU + b.RedisCPU, SelfCPU: a.SelfCPU + b.SelfCPU,
		MachineCPU: a.MachineCPU + b.MachineCPU, Commands: a.Commands + b.Commands, RoundTrips: a.RoundTrips + b.RoundTrips}
}

func stagesSince(after, before map[string][2]int64) map[string][2]int64 {
	out := map[string][2]int64{}
	for k, v := range after {
		out[k] = [2]int64{v[0] - before[k][0], v[1] - before[k][1]}
	}
	return out
}

// stagesText says the mean wait of each stage per operation (n of them)
// and per call.
func stagesText(s map[string][2]int64, n float64) string {
	var parts []string
	var total float64
	for _, st := range stageNames {
		v := s[st.key]
		if v[0] == 0 {
			continue
		}
		per := float64(v[1]) / 1e6 / n
		total += per
		parts = append(parts, fmt.Sprintf("%s %.2f ms (%.2f calls)", st.what, per, float64(v[0])/n))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf("; %.2f ms in all", total)
}

func statsSince(after, before map[string]cmdStat) map[string]cmdStat {
	out := map[string]cmdStat{}
	for k, a := range after {
		b := before[k]
		d := cmdStat{calls: a.calls - b.calls, usec: a.usec - b.usec}
		if d.calls > 0 {
			d.usecPerCall = float64(d.usec) / float64(d.calls)
		}
		out[k] = d
	}
	return out
}

func namesSince(after, before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// msList formats microsecond figures as milliseconds, in their order.
func msList(us []float64) string {
	parts := make([]string, len(us))
	for i, v := range us {
		parts[i] = fmt.Sprintf("%.2f ms", v/1000)
	}
	return strings.Join(parts, ", ")
}
