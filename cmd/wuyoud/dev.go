package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtemp"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

const devBanner = `
==========================================================================
 WUYOU EMBEDDED DEV MODE — NOTHING IS DURABLE
 Kafka is an in-process Kafka-protocol broker (kfake) on %s,
 Redis is an in-process Redis-compatible store (miniredis).
 %s
 Everything, including the signing key below, is lost when this stops.
 For real deployments see README.md ("Running against real Redis, Kafka
 and PostgreSQL").
==========================================================================
`

// devIssuer is the token issuer of the embedded mode.
const devIssuer = "https://dev.wuyou.invalid"

// runDevEnv runs wuyoud against embedded stand-ins, seeded with demo data.
// Of the WUYOU_* variables read through getenv it honours
// WUYOU_POSTGRES_URL: the PostgreSQL to use instead of a throwaway one
// (CONTRACT §7.1).
func runDevEnv(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wuyoud dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	simulate := fs.Bool("simulate", false, "stream simulated calls for the demo seafarers")
	httpAddr := fs.String("http", ":8080", "HTTP listen address")
	kafkaPort := fs.Int("kafka-port", 9092, "port of the embedded Kafka-protocol broker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env, err := ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if env.PostgresURL != "" {
		if err := env.validatePostgres(); err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
	}

	topics := carrier.NewTopics("")
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*kafkaPort), kfake.SeedTopics(8, topics.Usage))
	if err != nil {
		return fmt.Errorf("embedded Kafka on 127.0.0.1:%d: %w", *kafkaPort, err)
	}
	defer broker.Close()
	for _, t := range topics.All()[1:] {
		if err := broker.CreateTopic(t, 1, nil); err != nil {
			return fmt.Errorf("embedded Kafka: create %s: %w", t, err)
		}
	}
	store, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("embedded Redis: %w", err)
	}
	defer store.Close()
	db, err := devPostgres(ctx, env.PostgresURL, log)
	if err != nil {
		return err
	}
	defer db.stop(log)

	key, err := token.GenerateSigningKey("EdDSA")
	if err != nil {
		return err
	}
	jwks, err := token.JWKS(key)
	if err != nil {
		return err
	}
	verifier, err := api.NewVerifierFromJWKS(jwks, devIssuer, "wuyou", wuyou.SystemClock)
	if err != nil {
		return err
	}
	cfg := Config{
		HTTPAddr: *httpAddr, RedisAddrs: []string{store.Addr()}, RedisPrefix: "wuyou",
		KafkaBrokers: broker.ListenAddrs(), KafkaGroup: "wuyou-metering", JWTIssuer: devIssuer, JWTAudience: "wuyou",
		HomeCountry: "CN", DedupeWindow: 720 * time.Hour, LedgerHorizon: 2160 * time.Hour, ShutdownTimeout: 10 * time.Second,
		PostgresURL: db.url,
	}
	rdb := redis.NewClient(&redis.Options{Addr: store.Addr()})
	s, err := start(ctx, cfg, deps{rdb: rdb, verifier: verifier}, log)
	if err != nil {
		return err
	}
	demo, err := seedDemo(ctx, s)
	if err != nil {
		_ = s.stop(context.Background())
		return fmt.Errorf("seeding demo data: %w", err)
	}
	fmt.Fprintf(stdout, devBanner, strings.Join(broker.ListenAddrs(), ","), db.banner)
	if err := printDevGuide(stdout, s, key, demo); err != nil {
		return err
	}
	if *simulate {
		go simulateCalls(ctx, cfg.KafkaBrokers, topics.Usage, demo.msisdns, stdout)
		fmt.Fprintln(stdout, "\n--simulate: a call every 2 seconds from a demo seafarer abroad; watch the allowance go down.")
	}
	<-ctx.Done()
	discarded := "the embedded broker and store are discarded"
	if db.throwaway != nil {
		discarded = "the embedded broker, store and throwaway PostgreSQL are discarded"
	}
	fmt.Fprintln(stdout, "\nstopping;", discarded)
	// The service stops first; the deferred stops of PostgreSQL, the store
	// and the broker follow, in reverse order of their start.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return s.stop(sctx)
}

// devDatabase is the PostgreSQL of the embedded mode.
type devDatabase struct {
	url       string
	banner    string // the banner's line about it
	throwaway *pgtemp.Server
}

// devPostgres is the PostgreSQL at url when it is set (WUYOU_POSTGRES_URL),
// else a throwaway server started from the PostgreSQL server binaries on
// the machine. Without server binaries it fails with pgtemp's one-line
// message saying what to install.
func devPostgres(ctx context.Context, url string, log *slog.Logger) (*devDatabase, error) {
	if url != "" {
		return &devDatabase{url: url, banner: fmt.Sprintf("PostgreSQL: %s (yours)", maskPostgresURL(url))}, nil
	}
	pg, err := pgtemp.Start(ctx, log)
	if errors.Is(err, pgtemp.ErrNoBinaries) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("throwaway PostgreSQL: %w (or set WUYOU_POSTGRES_URL to use one of yours)", err)
	}
	return &devDatabase{
		url:       pg.URL(),
		banner:    fmt.Sprintf("PostgreSQL is a throwaway server in %s, removed when this stops\n (%s).", pg.Dir(), pg.URL()),
		throwaway: pg,
	}, nil
}

// stop stops and removes a throwaway server; one of the caller's own is
// left as it is.
func (d *devDatabase) stop(log *slog.Logger) {
	if d.throwaway == nil {
		return
	}
	if err := d.throwaway.Stop(); err != nil {
		log.Warn("stopping the throwaway PostgreSQL", "dir", d.throwaway.Dir(), "err", err)
	}
}

type demoData struct {
	company    *crew.Company
	seafarers  []*crew.Seafarer
	msisdns    []string
	programme  *quota.Programme
	issuanceID string
}

// seedDemo enrols a company with three seafarers and issues each a pack.
func seedDemo(ctx context.Context, s *service) (*demoData, error) {
	d := &demoData{}
	var err error
	if d.company, err = s.crew.CreateCompany(ctx, "COSCO Demo Shipping 中远示范航运", "91310000MA1FL0001X"); err != nil {
		return nil, err
	}
	people := []crew.Enrolment{
		{BookNo: "C12345678", Name: "张伟", Nationality: "CN", MSISDN: "+8613800000001", VesselIMO: "9074729", VesselName: "MV Demo Star", SignOn: "2026-09-01", UnionMemberNo: "U-0001"},
		{BookNo: "C23456789", Name: "李娜", Nationality: "CN", MSISDN: "+8613800000002", VesselIMO: "9074729", VesselName: "MV Demo Star", SignOn: "2026-09-01", UnionMemberNo: "U-0002"},
		{BookNo: "C34567890", Name: "Wang Fang", Nationality: "CN", MSISDN: "+8613800000003", VesselIMO: "9074729", VesselName: "MV Demo Star", SignOn: "2026-10-15"},
	}
	for _, e := range people {
		sf, _, err := s.crew.Enrol(ctx, d.company.ID, e)
		if err != nil {
			return nil, err
		}
		d.seafarers = append(d.seafarers, sf)
		d.msisdns = append(d.msisdns, sf.MSISDN)
	}
	now := time.Now().UTC()
	if d.programme, err = s.quota.CreateProgramme(ctx, quota.ProgrammeInput{
		Name: "出海无忧 2026 Q4 welfare pack", PackSeconds: 300 * 60, ValidDays: 90, Priority: 10,
		BudgetPacks: 1000, StartsAt: now.AddDate(0, -1, 0), EndsAt: now.AddDate(1, 0, 0),
	}); err != nil {
		return nil, err
	}
	iss, _, err := s.issuer.StartAndRun(ctx, d.programme.ID, "dev-seed", quota.IssuanceTarget{CompanyID: d.company.ID}, 100)
	if err != nil {
		return nil, err
	}
	d.issuanceID = iss.ID
	return d, nil
}

func printDevGuide(w io.Writer, s *service, key *token.SigningKey, d *demoData) error {
	mint := func(role, sub, companyID string) (string, error) {
		return key.Mint(token.Claims{Issuer: devIssuer, Audience: "wuyou", Subject: sub, Role: role, CompanyID: companyID, TTL: 24 * time.Hour}, time.Now())
	}
	base := "http://localhost" + portOf(s.addr.String())
	union, err := mint(token.RoleUnion, "union-staff-1", "")
	if err != nil {
		return err
	}
	company, err := mint(token.RoleCompany, "crew-manager-1", d.company.ID)
	if err != nil {
		return err
	}
	seafarer, err := mint(token.RoleSeafarer, d.seafarers[0].ID, "")
	if err != nil {
		return err
	}
	carrierTok, err := mint(token.RoleCarrier, "carrier-cmcc", "")
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "API\t%s (OpenAPI at %s/openapi.json, metrics at %s/metrics)\n", base, base, base)
	fmt.Fprintf(tw, "company\t%s  %s\n", d.company.ID, d.company.Name)
	for _, sf := range d.seafarers {
		fmt.Fprintf(tw, "seafarer\t%s  %s  %s\n", sf.ID, sf.Name, sf.MSISDN)
	}
	fmt.Fprintf(tw, "programme\t%s  %s (one pack of %d min each, issuance %s)\n", d.programme.ID, d.programme.Name, d.programme.PackSeconds/60, d.issuanceID)
	tw.Flush()
	fmt.Fprintf(w, "\nTokens (valid 24h):\n  export UNION_TOKEN=%s\n  export COMPANY_TOKEN=%s\n  export SEAFARER_TOKEN=%s\n  export CARRIER_TOKEN=%s\n", union, company, seafarer, carrierTok)
	fmt.Fprintf(w, "\nTry (paste as they are):\n")
	fmt.Fprintf(w, "  curl -s %s/v1/me/allowance -H 'Authorization: Bearer %s'\n", base, seafarer)
	fmt.Fprintf(w, "  curl -s %s/v1/companies/%s/seafarers -H 'Authorization: Bearer %s'\n", base, d.company.ID, company)
	fmt.Fprintf(w, "  curl -s %s/v1/seafarers/%s/usage -H 'Authorization: Bearer %s'\n", base, d.seafarers[0].ID, union)
	fmt.Fprintf(w, "  curl -s %s/v1/carrier/subscribers/%s/allowance -H 'Authorization: Bearer %s'\n", base, strings.ReplaceAll(d.msisdns[0], "+", "%2B"), carrierTok)
	fmt.Fprintf(w, "  curl -s %s/v1/programmes/%s -H 'Authorization: Bearer %s'\n", base, d.programme.ID, union)
	fmt.Fprintf(w, "\nSend a call yourself: go run ./cmd/carriersim --brokers %s --count 10 --msisdn-range %s-%s\n",
		strings.Join(s.cfg.KafkaBrokers, ","), d.msisdns[0], d.msisdns[len(d.msisdns)-1])
	return nil
}

func portOf(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return addr[i:]
	}
	return ":8080"
}

// simulateCalls produces one carrier voice call every two seconds from the
// demo seafarers, made by carriersim's generator (mostly abroad, some
// domestic, which draw nothing).
func simulateCalls(ctx context.Context, brokers []string, topic string, msisdns []string, stdout io.Writer) {
	cfg := sim.DefaultConfig()
	cfg.Source, cfg.MSISDNs, cfg.VoiceShare = "urn:carrier:dev-simulator", msisdns, 1
	cfg.Seed, cfg.FirstSeq = time.Now().UnixNano(), time.Now().Unix()
	gen, err := sim.New(cfg)
	if err != nil {
		fmt.Fprintln(stdout, "simulate:", err)
		return
	}
	w := carrier.NewWriter(brokers)
	defer w.Close()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			ev := gen.Next(now)
			if err := w.WriteMessages(ctx, kafka.Message{Topic: topic, Key: ev.Key, Value: ev.Value}); err != nil && ctx.Err() == nil {
				fmt.Fprintln(stdout, "simulate: produce failed:", err)
			}
		}
	}
}
