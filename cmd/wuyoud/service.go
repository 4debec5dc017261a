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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
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
	crew     *crew.RedisStore
	quota    *quota.RedisStore
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

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	topics := carrier.NewTopics(cfg.TopicPrefix)
	s.writer = carrier.NewWriter(cfg.KafkaBrokers)
	publisher := carrier.NewPublisher(s.writer, topics, d.now)
	metrics := carrier.NewMetrics(reg)

	s.crew = crew.NewRedisStore(s.rdb, cfg.RedisPrefix, d.now)
	s.quota = quota.NewRedisStore(s.rdb, cfg.RedisPrefix, d.now, quota.Options{DedupeWindow: cfg.DedupeWindow, LedgerHorizon: cfg.LedgerHorizon})
	s.issuer = quota.NewIssuer(s.quota, s.crew, d.now)
	s.issuer.Log = log
	s.issuer.Publisher = carrier.GrantPublisher{Publisher: publisher, MSISDNs: s.crew}
	held := carrier.NewHeldStore(s.rdb, cfg.RedisPrefix, topics)
	s.consumer = carrier.NewConsumer(carrier.ConsumerConfig{
		Brokers: cfg.KafkaBrokers, Group: cfg.KafkaGroup, Topics: topics, HomeCountry: cfg.HomeCountry,
		DedupeWindow: cfg.DedupeWindow, ClockSkew: cfg.ClockSkew, Tariff: tariff, Resolver: s.crew, Meter: s.quota,
		Held: held, Publisher: publisher, Metrics: metrics, Log: log, Now: d.now,
	})
	// Usage that arrived before its MSISDN was registered is applied as soon
	// as the MSISDN is enrolled (and again by the consumer if this fails).
	s.crew.OnMSISDNAssigned = func(ctx context.Context, seafarerID, msisdn string, _ time.Time) {
		if err := s.consumer.ApplyHeld(context.WithoutCancel(ctx), msisdn, seafarerID); err != nil {
			log.Warn("held usage not applied yet; will be applied on the next event or enrolment", "msisdn", msisdn, "err", err)
		}
	}

	s.server = api.New(api.Config{
		Crew: s.crew, Quota: s.quota, Issuer: s.issuer, Ledger: publisher, Verifier: verifier,
		Billing:  newStatements(s.quota, s.crew, tariff, d.now),
		Registry: reg, Log: log, Now: d.now,
		WriteRateLimit: cfg.WriteRateLimit, RateLimitStorage: api.NewRedisRateLimitStore(s.rdb, cfg.RedisPrefix),
		Ready: map[string]func(context.Context) error{
			"redis": func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() },
			"kafka": func(ctx context.Context) error { return pingKafka(ctx, cfg.KafkaBrokers) },
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
	return errors.Join(errs...)
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
