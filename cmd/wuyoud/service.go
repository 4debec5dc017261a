package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgschema"
	"github.com/wuyou/wuyou/quota"
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
	welfare  *quota.PGProgrammes // programmes, issuances and grants
	crew     *crew.RedisStore
	quota    *quota.RedisStore
	pg       *pgxpool.Pool   // nil without WUYOU_POSTGRES_URL
	ledger   *quota.PGLedger // the ledger's system of record; nil: Redis only (v1)
	addr     net.Addr

	stopConsumer context.CancelFunc
	consumerDone chan struct{}
	background   sync.WaitGroup
}

// deps are what the embedded mode and tests may supply instead of what the
// configuration names.
type deps struct {
	rdb      redis.UniversalClient // nil: dial cfg.RedisAddrs
	verifier *api.Verifier         // nil: read cfg.JWKSPath
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
		v, err := api.NewVerifier(cfg.JWKSPath, cfg.JWTIssuer, cfg.JWTAudience, d.now)
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

	s.crew = crew.NewRedisStore(s.rdb, cfg.RedisPrefix, d.now)
	s.quota = quota.NewRedisStore(s.rdb, cfg.RedisPrefix, d.now, quota.Options{DedupeWindow: cfg.DedupeWindow, LedgerHorizon: cfg.LedgerHorizon})
	s.welfare = quota.NewPGProgrammes(s.pg, d.now, s.quota) // seconds used: Redis, as the debit counts them
	s.issuer = quota.NewIssuer(s.welfare, s.quota, s.crew, d.now)
	s.issuer.Log = log
	var ledger carrier.LedgerWriter // a nil *PGLedger must stay a nil interface
	if s.ledger != nil {
		ledger = s.ledger
	}
	s.issuer.Publisher = carrier.GrantPublisher{Publisher: publisher, MSISDNs: s.crew, Ledger: ledger}
	held := carrier.NewHeldStore(s.rdb, cfg.RedisPrefix, topics)
	s.consumer = carrier.NewConsumer(carrier.ConsumerConfig{
		Brokers: cfg.KafkaBrokers, Group: cfg.KafkaGroup, Topics: topics, HomeCountry: cfg.HomeCountry,
		DedupeWindow: cfg.DedupeWindow, ClockSkew: cfg.ClockSkew, Tariff: tariff, Resolver: s.crew, Meter: s.quota,
		Held: held, Ledger: ledger, Publisher: publisher, Metrics: metrics, Log: log, Now: d.now,
	})
	// Usage that arrived before its MSISDN was registered is applied as soon
	// as the MSISDN is enrolled (and again by the consumer if this fails).
	s.crew.OnMSISDNAssigned = func(ctx context.Context, seafarerID, msisdn string, _ time.Time) {
		if err := s.consumer.ApplyHeld(context.WithoutCancel(ctx), msisdn, seafarerID); err != nil {
			log.Warn("held usage not applied yet; will be applied on the next event or enrolment", "seafarer_id", seafarerID, "err", err)
		}
	}

	s.server = api.New(api.Config{
		Crew: s.crew, Quota: s.quota, Programmes: s.welfare, Issuer: s.issuer, Ledger: carrier.LedgerRecorder{Ledger: ledger, Publisher: publisher},
		Entries: entriesReader(s.ledger), Verifier: verifier,
		Billing:  newStatements(s.quota, s.welfare, s.crew, tariff, d.now),
		Registry: reg, Log: log, Now: d.now,
		WriteRateLimit: cfg.WriteRateLimit, RateLimitStorage: api.NewRedisRateLimitStore(s.rdb, cfg.RedisPrefix),
		Ready: map[string]func(context.Context) error{
			"redis":    func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() },
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
	s.background.Add(3)
	go func() {
		defer s.background.Done()
		s.consumer.RunHeldExpiry(cctx, time.Minute)
	}()
	go func() {
		defer s.background.Done()
		if err := s.issuer.Resume(cctx); err != nil && cctx.Err() == nil {
			log.Error("resuming issuances failed", "err", err)
		}
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

// openPostgres connects to the system of record, migrates its schema
// (replicas starting together apply each migration once) and makes sure
// the ledger has this month's and next month's partitions.
func (s *service) openPostgres(ctx context.Context, cfg Config, now wuyou.Clock) error {
	target := maskPostgresURL(cfg.PostgresURL)
	pool, err := pgxpool.New(ctx, cfg.PostgresURL)
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

// pingPostgres is the readiness check of the system of record (ready
// without one in v1 mode).
func (s *service) pingPostgres(ctx context.Context) error {
	if s.pg == nil {
		return nil
	}
	return s.pg.Ping(ctx)
}

// entriesReader is where GET …/usage reads the ledger: PostgreSQL when it
// is configured, else (nil) Redis.
func entriesReader(l *quota.PGLedger) api.LedgerReader {
	if l == nil {
		return nil
	}
	return l
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
