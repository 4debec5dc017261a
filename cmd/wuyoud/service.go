package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgschema"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/signin"
)

// service is one running wuyoud: the HTTP API and the metering consumer in
// one process, sharing one Redis client and one Kafka producer.
type service struct {
	log      *slog.Logger
	cfg      Config
	rdb      redis.UniversalClient
	writer   *kafka.Writer
	server   *api.Server
	consumer *carrier.Consumer
	issuer   *quota.Issuer
	// recurring issues recurring programmes' monthly grants (sweeps).
	recurring *quota.RecurringEngine
	welfare   *quota.PGProgrammes // programmes, issuances and grants
	crew      *crew.PGStore
	quota     *quota.RedisStore // the hot metering state
	claims    *quota.PGClaims
	pg        *pgxpool.Pool // the system of record
	ledger    *quota.PGLedger
	signin    *signin.Service // seafarers' one-time-code sign-in
	addr      net.Addr

	stopConsumer context.CancelFunc
	consumerDone chan struct{}
	background   sync.WaitGroup
}

// deps are what the embedded mode and tests may supply instead of what the
// configuration names.
type deps struct {
	rdb      redis.UniversalClient // nil: dial cfg.RedisAddrs
	verifier *api.Verifier         // nil: open cfg.JWKSPath (a file, a URL or inline JSON)
	now      wuyou.Clock
}

// newRedis dials Redis: one address is a single node, several a cluster.
// Every call has a timeout, so a hung Redis surfaces as an error. A context
// deadline shorter than these does not cut a command short
// (ContextTimeoutEnabled stays off: a command abandoned mid-flight has an
// unknown outcome and costs its connection); a caller that must answer
// sooner, like /readyz, stops waiting instead.
func newRedis(cfg Config) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         cfg.RedisAddrs,
		IsClusterMode: len(cfg.RedisAddrs) > 1,
		Password:      cfg.RedisPassword,
		DB:            cfg.RedisDB,
		DialTimeout:   2 * time.Second,
		ReadTimeout:   3 * time.Second,
		WriteTimeout:  3 * time.Second,
		PoolTimeout:   4 * time.Second,
	})
}

// start wires and starts everything; the listener is bound before it returns.
func start(ctx context.Context, cfg Config, d deps, log *slog.Logger) (*service, error) {
	if d.now == nil {
		d.now = wuyou.SystemClock
	}
	s := &service{log: log, cfg: cfg, rdb: d.rdb}
	if s.rdb == nil {
		s.rdb = newRedis(cfg)
	}
	tariff := billing.DefaultTariff()
	if cfg.TariffPath != "" {
		t, err := billing.LoadTariff(cfg.TariffPath)
		if err != nil {
			return nil, fmt.Errorf("WUYOU_TARIFF: %w", err)
		}
		tariff = t
	}
	verifier := d.verifier
	if verifier == nil {
		// A JWKS URL is fetched now and refreshed until ctx ends (SIGTERM):
		// verification goes on with the last keys while stopping.
		v, err := api.OpenVerifier(ctx, cfg.JWKSPath, cfg.JWTIssuer, cfg.JWTAudience, d.now, log)
		if err != nil {
			return nil, fmt.Errorf("WUYOU_JWT_JWKS: %w", err)
		}
		verifier = v
	}

	// PostgreSQL keeps the programmes, issuances and grants (v2): no start without it.
	if err := cfg.validatePostgres(); err != nil {
		return nil, err
	}
	if err := s.openPostgres(ctx, cfg, d.now); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(buildInfoCollector())
	topics := carrier.NewTopics(cfg.TopicPrefix)
	s.writer = carrier.NewWriter(cfg.KafkaBrokers)
	publisher := carrier.NewPublisher(s.writer, topics, d.now)
	metrics := carrier.NewMetrics(reg)

	// PostgreSQL keeps everything of record; Redis what metering changes.
	s.crew = crew.NewPGStore(s.pg, d.now)
	s.claims = quota.NewPGClaims(s.pg)
	grants := quota.NewPGGrants(s.pg)
	s.quota = quota.NewRedisStore(s.rdb, cfg.RedisPrefix, d.now, quota.Options{
		DedupeWindow: cfg.DedupeWindow, HotStateGuard: true, Claims: s.claims, Expiries: grants,
	})
	statements := quota.NewPGStatements(s.pg, d.now)
	s.welfare = quota.NewPGProgrammes(s.pg, d.now, statements) // seconds used: SQL over the ledger
	s.issuer = quota.NewIssuer(s.welfare, s.quota, s.crew, d.now)
	s.issuer.Log = log
	s.issuer.Publisher = carrier.GrantPublisher{Publisher: publisher, MSISDNs: s.crew, Ledger: s.ledger}
	s.recurring = quota.NewRecurringEngine(s.welfare, s.quota, d.now)
	s.recurring.Log = log
	s.recurring.Publisher = s.issuer.Publisher
	s.consumer = carrier.NewConsumer(carrier.ConsumerConfig{
		Brokers: cfg.KafkaBrokers, Group: cfg.KafkaGroup, Topics: topics, HomeCountry: cfg.HomeCountry,
		DedupeWindow: cfg.DedupeWindow, ClockSkew: cfg.ClockSkew, Tariff: tariff, Resolver: s.crew, Meter: s.quota,
		Held: carrier.NewPGHeld(s.pg), Ledger: s.ledger, Publisher: publisher, Metrics: metrics, Log: log, Now: d.now,
	})
	// Redis must hold the hot state before anything meters or issues: a new
	// deployment is marked, a Redis that came back empty is rebuilt from
	// PostgreSQL (the other replicas pause metering meanwhile).
	if rep, err := quota.EnsureHotState(ctx, s.pg, s.quota, quota.RebuildOptions{Quiesce: hotStateQuiesce}); err != nil {
		return nil, fmt.Errorf("Redis's hot metering state: %w", err)
	} else if rep != nil {
		log.Warn("Redis had lost the hot metering state; rebuilt it from PostgreSQL", "seafarers", rep.Seafarers, "grants", rep.Grants, "identities", rep.Identities, "took", rep.Took.String())
	}
	// Usage that arrived before its MSISDN was registered is applied as soon
	// as the MSISDN is enrolled (and again by the consumer if this fails).
	s.crew.OnMSISDNAssigned = func(ctx context.Context, seafarerID, msisdn string, _ time.Time) {
		if err := s.consumer.ApplyHeld(context.WithoutCancel(ctx), msisdn, seafarerID); err != nil {
			log.Warn("held usage not applied yet; will be applied on the next event or enrolment", "seafarer_id", seafarerID, "err", err)
		}
	}

	// Seafarers sign in with a code by SMS (§7.4); Wuyou signs their tokens
	// with its own keys, kept in PostgreSQL and rotated there.
	keys, err := signin.OpenKeyRing(ctx, s.pg, d.now, signin.KeyOptions{RotateEvery: cfg.KeyRotation, TokenTTL: cfg.SeafarerTokenTTL, Log: log})
	if err != nil {
		return nil, err
	}
	otpSecret, err := signin.Secret(ctx, s.pg, "otp", d.now())
	if err != nil {
		return nil, err
	}
	s.signin, err = signin.New(signin.Config{
		Redis: s.rdb, Prefix: cfg.RedisPrefix, Secret: otpSecret, Counter: api.NewRedisRateLimitStore(s.rdb, cfg.RedisPrefix),
		Holders: s.crew, SMS: publisher, Keys: keys, Issuer: signin.Issuer, Audience: cfg.JWTAudience,
		TokenTTL: cfg.SeafarerTokenTTL, Now: d.now, Log: log, Registry: reg,
	})
	if err != nil {
		return nil, err
	}
	verifier.AcceptOwn(keys, signin.Issuer, cfg.JWTAudience)

	recorder := carrier.LedgerRecorder{Ledger: s.ledger, Publisher: publisher, Hot: s.quota, Langs: s.crew}
	s.server = api.New(api.Config{
		Crew: s.crew, Quota: s.quota, Programmes: s.welfare, Grants: grants, Issuer: s.issuer,
		Ledger: recorder,
		Sessions: &carrier.Sessions{Store: s.quota, Resolver: s.crew, Tariff: tariff, HomeCountry: cfg.HomeCountry,
			// Terminates made at once share a ledger commit.
			Recorder:    carrier.LedgerRecorder{Ledger: &carrier.GroupLedger{Ledger: s.ledger}, Publisher: publisher, Hot: s.quota, Langs: s.crew},
			FinalAction: tariff.FinalAction(), Metrics: metrics,
			ClockSkew: cfg.ClockSkew, DedupeWindow: cfg.DedupeWindow, Now: d.now,
			FinalActions: s.welfare},
		Entries: s.ledger, Auditor: &quota.Auditor{Pool: s.pg, Store: s.quota}, Verifier: verifier,
		Audit:    audit.NewPGLog(s.pg),
		Billing:  newStatements(statements, s.welfare, s.crew, tariff, d.now),
		Overview: statements,
		Registry: reg, Log: log, Now: d.now, RecurringNudge: s.recurring.Nudge,
		WriteRateLimit: cfg.WriteRateLimit, RateLimitStorage: api.NewRedisRateLimitStore(s.rdb, cfg.RedisPrefix),
		SignIn: s.signin, OwnKeys: keys, TrustedProxies: cfg.TrustedProxies,
		Ready: map[string]func(context.Context) error{
			"redis":    s.checkHotState,
			"postgres": s.pingPostgres,
			"kafka":    func(ctx context.Context) error { return pingKafka(ctx, cfg.KafkaBrokers) },
			"metering": func(context.Context) error {
				if !metrics.Healthy() {
					return errors.New("consumer cannot store batches; retrying")
				}
				return nil
			},
		},
	})
	addr, err := s.server.Listen(cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	s.addr = addr

	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopConsumer = cancel
	s.consumerDone = make(chan struct{})
	go func() {
		defer close(s.consumerDone)
		if err := s.consumer.Run(cctx); err != nil {
			log.Error("consumer stopped", "err", err)
		}
	}()
	s.signin.Start(4) // stopped by stop(): the codes asked for before it still go out
	s.background.Add(7)
	go func() {
		defer s.background.Done()
		keys.Run(cctx)
	}()
	go func() {
		defer s.background.Done()
		s.consumer.RunHeldExpiry(cctx, time.Minute)
	}()
	go func() {
		defer s.background.Done()
		s.watchHotState(cctx, hotStateCheck)
	}()
	go func() {
		defer s.background.Done()
		s.forgetOldClaims(cctx, time.Minute)
	}()
	go func() {
		defer s.background.Done()
		if err := s.issuer.Resume(cctx); err != nil && cctx.Err() == nil {
			log.Error("resuming issuances failed", "err", err)
		}
	}()
	// Recurring programmes: a sweep now (the month's grants are issued at
	// start, catching up a month start the service was down at), then every
	// recurringSweep and after enrolments and sign-ons (the API's nudge).
	go func() {
		defer s.background.Done()
		s.recurring.Run(cctx, recurringSweep)
	}()
	warner := &carrier.ExpiryWarner{Store: s.quota, Publisher: publisher, MSISDNs: s.crew, Owner: replicaName(), Now: d.now, Log: log}
	go func() {
		defer s.background.Done()
		warner.Run(cctx, time.Minute)
	}()
	return s, nil
}

// stop shuts down in reverse order of start: stop taking requests and finish
// those in flight; stop consuming and commit what was applied; let
// background issuances reach a batch boundary; flush the producer; close Redis.
func (s *service) stop(ctx context.Context) error {
	var errs []error
	if err := s.server.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http: %w", err))
	}
	s.stopConsumer()
	select {
	case <-s.consumerDone:
	case <-ctx.Done():
		errs = append(errs, errors.New("consumer did not stop in time"))
	}
	if err := s.issuer.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("issuances: %w", err))
	}
	s.background.Wait()
	s.signin.Close(ctx) // the codes asked for before the stop go out, as long as ctx lasts
	if err := s.writer.Close(); err != nil {
		errs = append(errs, fmt.Errorf("kafka writer: %w", err))
	}
	if err := s.rdb.Close(); err != nil {
		errs = append(errs, fmt.Errorf("redis: %w", err))
	}
	if s.pg != nil {
		s.pg.Close()
	}
	return errors.Join(errs...)
}

// defaultPostgresConns is the connection pool's size unless
// WUYOU_POSTGRES_URL says pool_max_conns.
const defaultPostgresConns = 16

// openPostgres connects to the system of record, migrates its schema
// (replicas starting together apply each migration once) and makes sure
// the ledger has this month's and next month's partitions.
func (s *service) openPostgres(ctx context.Context, cfg Config, now wuyou.Clock) error {
	target := maskPostgresURL(cfg.PostgresURL)
	pcfg, err := pgxpool.ParseConfig(cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("WUYOU_POSTGRES_URL (%s): %w", target, err)
	}
	if !strings.Contains(cfg.PostgresURL, "pool_max_conns") {
		// pgx's default, the number of CPUs (4 at least), queues the
		// API's requests behind each other: the carrier's session calls
		// and allowance lookups come many at once.
		pcfg.MaxConns = max(pcfg.MaxConns, defaultPostgresConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("WUYOU_POSTGRES_URL (%s): %w", target, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return fmt.Errorf("PostgreSQL at %s does not answer: %w", target, err)
	}
	applied, err := pgschema.Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return fmt.Errorf("migrate PostgreSQL at %s: %w", target, err)
	}
	if len(applied) > 0 {
		s.log.Info("PostgreSQL schema migrated", "applied", len(applied))
	}
	s.pg, s.ledger = pool, quota.NewPGLedger(pool)
	t := now()
	if err := s.ledger.EnsureMonths(ctx, t, t.AddDate(0, 1, 0)); err != nil {
		pool.Close()
		return fmt.Errorf("PostgreSQL at %s: %w", target, err)
	}
	return nil
}

// pingPostgres is the readiness check of the system of record.
func (s *service) pingPostgres(ctx context.Context) error { return s.pg.Ping(ctx) }

// How wuyoud looks after Redis's hot state: how often it checks the mark,
// and how long a rebuild waits for batches that passed the check before
// the mark went (they store their entries in the meantime).
const (
	hotStateCheck   = 5 * time.Second
	hotStateQuiesce = 5 * time.Second
)

// recurringSweep is how often wuyoud issues recurring programmes' grants
// of the current month (docs/operations.md). A sweep with nothing to issue
// is one query per active recurring programme.
const recurringSweep = 30 * time.Second

// checkHotState is the readiness check of Redis: it answers, and holds the
// hot metering state written to it (a Redis that restarted does not, until
// the state is rebuilt).
func (s *service) checkHotState(ctx context.Context) error {
	current, err := s.quota.HotStateCurrent(ctx)
	if err != nil {
		return err
	}
	if !current {
		return quota.ErrHotStateMissing
	}
	return nil
}

// watchHotState rebuilds the hot state when Redis lost it or restarted
// while wuyoud runs (a restart without persistence, or with an everysec
// append-only file that may lack its last second): metering pauses on its
// own (the store is guarded) and resumes when the rebuild marks Redis
// again. One replica rebuilds; the others wait on the lock and find the
// mark.
func (s *service) watchHotState(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		current, err := s.quota.HotStateCurrent(ctx)
		if err != nil || current {
			continue // Redis out of reach (the checks say so), or nothing to do
		}
		s.log.Warn("Redis lost or restarted since the hot metering state was written; metering is paused while it is rebuilt from PostgreSQL")
		rep, err := quota.EnsureHotState(ctx, s.pg, s.quota, quota.RebuildOptions{Quiesce: hotStateQuiesce})
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("rebuilding the hot metering state failed; metering stays paused and the rebuild is tried again", "err", err)
		case rep != nil:
			s.log.Warn("hot metering state rebuilt; metering resumes", "seafarers", rep.Seafarers, "grants", rep.Grants, "identities", rep.Identities, "took", rep.Took.String())
		}
	}
}

// forgetOldClaims deletes the event identity claims of calls older than
// the dedupe window (with a day's margin), a bounded number at a time.
func (s *service) forgetOldClaims(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := quota.DedupeCutoff(time.Now(), s.cfg.DedupeWindow).Add(-24 * time.Hour)
		for ctx.Err() == nil {
			n, err := s.claims.Forget(ctx, cutoff, 5000)
			if err != nil {
				s.log.Warn("forgetting old event claims failed; tried again later", "err", err)
				break
			}
			if n < 5000 {
				break
			}
		}
	}
}

// replicaName names this process among replicas (for leases).
func replicaName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// pingKafka checks that a broker answers a metadata request.
func pingKafka(ctx context.Context, brokers []string) error {
	var errs []error
	for _, b := range brokers {
		conn, err := kafka.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		_, err = conn.Brokers()
		conn.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no Kafka broker answers: %w", errors.Join(errs...))
}
