package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtemp"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// devIssuer is the token issuer of the embedded mode.
const devIssuer = "https://dev.wuyou.invalid"

// devDefaults are the values of the variables the embedded mode uses when
// they are not set; every other default is the service's own. Loopback, so
// a laptop in a café does not serve demo tokens to the room.
var devDefaults = map[string]string{
	"WUYOU_HTTP_ADDR":        "127.0.0.1:8080",
	"WUYOU_SHUTDOWN_TIMEOUT": "10s",
	"WUYOU_LOG_LEVEL":        "warn",
}

const devUsage = `usage: wuyoud dev [--simulate] [--http ADDR] [--kafka-port PORT]

Runs wuyoud with demo data and a generated signing key, on stand-ins for what
is not configured: an in-process Kafka-protocol broker unless WUYOU_KAFKA_BROKERS
is set, an in-process Redis-compatible store unless WUYOU_REDIS_ADDRS is set, a
throwaway PostgreSQL unless WUYOU_POSTGRES_URL is set. Every other WUYOU_*
variable that is set is honoured too (WUYOU_TOPIC_PREFIX, WUYOU_REDIS_PREFIX,
WUYOU_HOME_COUNTRY, WUYOU_TARIFF, WUYOU_DEDUPE_WINDOW, WUYOU_CLOCK_SKEW,
WUYOU_LOG_LEVEL, ...), except WUYOU_JWT_*: tokens are signed by the generated key.
It listens on WUYOU_HTTP_ADDR, else 127.0.0.1:8080 (loopback only).

flags:`

// runDevEnv runs wuyoud against embedded stand-ins, seeded with demo data.
// Every WUYOU_* variable read through getenv that is set is honoured
// (CONTRACT §1), the devDefaults beneath them: WUYOU_REDIS_ADDRS,
// WUYOU_KAFKA_BROKERS and WUYOU_POSTGRES_URL replace the embedded Redis,
// broker and throwaway PostgreSQL. The --http flag wins over
// WUYOU_HTTP_ADDR.
func runDevEnv(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wuyoud dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usage is printed below, to stdout when asked for
	simulate := fs.Bool("simulate", false, "stream simulated calls for the demo seafarers")
	httpAddr := fs.String("http", "", "HTTP listen address; wins over WUYOU_HTTP_ADDR (default: WUYOU_HTTP_ADDR, else 127.0.0.1:8080)")
	kafkaPort := fs.Int("kafka-port", 9092, "port of the embedded Kafka-protocol broker (unused with WUYOU_KAFKA_BROKERS)")
	printUsage := func(w io.Writer) {
		fmt.Fprintln(w, devUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return nil
	} else if err != nil {
		printUsage(stderr)
		return err
	}
	cfg, err := devConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if *httpAddr != "" {
		cfg.HTTPAddr = *httpAddr
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: durationsAsText}))
	routeRedisLog(log)
	topics := carrier.NewTopics(cfg.TopicPrefix)
	stores := devStores{}

	if len(cfg.KafkaBrokers) > 0 {
		if err := ensureTopics(ctx, cfg.KafkaBrokers, topics); err != nil {
			return fmt.Errorf("Kafka at %s (WUYOU_KAFKA_BROKERS): %w", strings.Join(cfg.KafkaBrokers, ","), err)
		}
		stores.lines = append(stores.lines, fmt.Sprintf("Kafka: %s (yours); calls are read from %s.", strings.Join(cfg.KafkaBrokers, ","), topics.Usage))
	} else {
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
		cfg.KafkaBrokers = broker.ListenAddrs()
		stores.embeddedKafka = true
		stores.lines = append(stores.lines, fmt.Sprintf("Kafka is an in-process Kafka-protocol broker (kfake) on %s.", strings.Join(cfg.KafkaBrokers, ",")))
	}

	var rdb redis.UniversalClient
	if len(cfg.RedisAddrs) > 0 {
		rdb = newRedis(cfg)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			_ = rdb.Close()
			return fmt.Errorf("Redis at %s (WUYOU_REDIS_ADDRS) does not answer: %w", strings.Join(cfg.RedisAddrs, ","), err)
		}
		stores.lines = append(stores.lines, fmt.Sprintf("Redis: %s (yours), keys under %s:.", strings.Join(cfg.RedisAddrs, ","), cfg.RedisPrefix))
	} else {
		store, err := miniredis.Run()
		if err != nil {
			return fmt.Errorf("embedded Redis: %w", err)
		}
		defer store.Close()
		cfg.RedisAddrs = []string{store.Addr()}
		rdb = redis.NewClient(&redis.Options{Addr: store.Addr()})
		stores.embeddedRedis = true
		stores.lines = append(stores.lines, "Redis is an in-process Redis-compatible store (miniredis).")
	}
	db, err := devPostgres(ctx, cfg.PostgresURL, log)
	if err != nil {
		_ = rdb.Close()
		return err
	}
	defer db.stop(log)
	cfg.PostgresURL = db.url
	stores.db = db
	stores.lines = append(stores.lines, db.banner)

	key, err := token.GenerateSigningKey("EdDSA")
	if err != nil {
		return err
	}
	jwks, err := token.JWKS(key)
	if err != nil {
		return err
	}
	verifier, err := api.NewVerifierFromJWKS(jwks, cfg.JWTIssuer, cfg.JWTAudience, wuyou.SystemClock)
	if err != nil {
		return err
	}
	s, err := start(ctx, cfg, deps{rdb: rdb, verifier: verifier}, log)
	if err != nil {
		_ = rdb.Close()
		return err
	}
	demo, err := seedDemo(ctx, s)
	if err != nil {
		_ = s.stop(context.Background())
		return fmt.Errorf("seeding demo data: %w", err)
	}
	sms, err := smsPrinter(ctx, cfg.KafkaBrokers, topics.SMS)
	if err != nil {
		_ = s.stop(context.Background())
		return fmt.Errorf("reading %s: %w", topics.SMS, err)
	}
	go sms(stdout)
	stores.printBanner(stdout)
	if err := printDevGuide(stdout, s, key, demo); err != nil {
		return err
	}
	if *simulate {
		carrierTok, err := key.Mint(token.Claims{Issuer: devIssuer, Audience: "wuyou", Subject: "carrier-simulator", Role: token.RoleCarrier, TTL: 24 * time.Hour}, time.Now())
		if err != nil {
			return err
		}
		sessions := &sim.HTTPSessions{Base: devBaseURL(s.addr), Token: carrierTok, Client: &http.Client{Timeout: 30 * time.Second}}
		go simulateCalls(ctx, cfg.KafkaBrokers, topics.Usage, demo.msisdns, sessions, stdout)
		fmt.Fprintf(stdout, "\n--simulate: a call every %s from a demo seafarer, mostly abroad; watch the allowance go down.\n"+
			" About half the calls go through the real-time session API first (CONTRACT 7.3), as the carrier's\n"+
			" switch would: open, an update every minute of the call, terminate (a minute of these calls\n"+
			" lasts %s, so the allowance shows what they hold as reserved meanwhile), then their CDR with\n"+
			" data.call_id = the session id, which settles the session. The rest send their CDR only.\n",
			simulateEvery, simulateMinute)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping;", stores.discarded())
	// The service stops first; the deferred stops of PostgreSQL, the store
	// and the broker follow, in reverse order of their start.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return s.stop(sctx)
}

// devConfig is the configuration of the embedded mode: the variables that
// are set, devDefaults beneath them, the service's defaults beneath those,
// and the generated signing key's issuer. It is validated as the service's
// is, but for what the embedded mode supplies itself (stores left unset,
// the key).
func devConfig(getenv func(string) string) (Config, error) {
	cfg, err := ConfigFromEnv(func(name string) string {
		if v := getenv(name); strings.TrimSpace(v) != "" {
			return v
		}
		return devDefaults[name]
	})
	if err != nil {
		return cfg, err
	}
	cfg.JWKSPath, cfg.JWTIssuer, cfg.JWTAudience = "", devIssuer, "wuyou"
	check := cfg
	check.JWKSPath = "(generated)"
	if len(check.RedisAddrs) == 0 {
		check.RedisAddrs = []string{"embedded"}
	}
	if len(check.KafkaBrokers) == 0 {
		check.KafkaBrokers = []string{"embedded"}
	}
	return cfg, check.Validate()
}

// ensureTopics creates on the caller's Kafka the topics the service uses,
// as the embedded broker has them (8 partitions of usage, 1 of the others,
// one replica: this is a demo), leaving those that exist as they are.
func ensureTopics(ctx context.Context, brokers []string, topics carrier.Topics) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics.All() {
		partitions := 1
		if t == topics.Usage {
			partitions = 8
		}
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	resp, err := client.CreateTopics(cctx, req)
	if err != nil {
		return err
	}
	for t, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	return nil
}

// devStores says, for the banner and the stop line, which of Kafka, Redis
// and PostgreSQL are stand-ins started here and which are the caller's.
type devStores struct {
	lines                        []string // one banner line (or two) each
	embeddedKafka, embeddedRedis bool
	db                           *devDatabase
}

// printBanner says loudly what is throwaway and what is the caller's.
func (d devStores) printBanner(w io.Writer) {
	headline := "NOTHING IS DURABLE"
	if !d.embeddedKafka || !d.embeddedRedis || d.db.throwaway == nil {
		headline = "DEMO DATA GOES TO WHAT YOU CONFIGURED"
	}
	rule := strings.Repeat("=", 74)
	fmt.Fprintf(w, "\n%s\n WUYOU EMBEDDED DEV MODE — %s\n", rule, headline)
	for _, l := range d.lines {
		fmt.Fprintf(w, " %s\n", l)
	}
	fmt.Fprintf(w, " What is embedded or throwaway, and the signing key below, is lost when\n"+
		" this stops. For real deployments see README.md (\"Running against real\n"+
		" Redis, Kafka and PostgreSQL\").\n%s\n", rule)
}

// discarded is the stop line's list of what goes away.
func (d devStores) discarded() string {
	var gone []string
	if d.embeddedKafka {
		gone = append(gone, "broker")
	}
	if d.embeddedRedis {
		gone = append(gone, "store")
	}
	switch len(gone) {
	case 0:
		if d.db.throwaway != nil {
			return "the throwaway PostgreSQL is discarded"
		}
		return "what you configured is left as it is"
	case 1:
		gone[0] = "the embedded " + gone[0]
	case 2:
		gone = []string{"the embedded broker", "store"}
	}
	if d.db.throwaway != nil {
		return strings.Join(gone, ", ") + " and throwaway PostgreSQL are discarded"
	}
	if len(gone) == 1 {
		return gone[0] + " is discarded"
	}
	return strings.Join(gone, " and ") + " are discarded"
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
	// A data pack beside the minutes (CONTRACT 7.2), so the phone page and
	// the allowance show a second unit.
	dataProgramme  *quota.Programme
	dataIssuanceID string
}

// The demo's company and programme, found again by these when a previous
// run left them in the same database (WUYOU_POSTGRES_URL).
const (
	demoCompanyName    = "COSCO Demo Shipping 中远示范航运"
	demoRegistrationNo = "91310000MA1FL0001X"
	demoProgrammeName  = "出海无忧 2026 Q4 welfare pack"
	demoDataName       = "出海无忧 data pack 2 GB"
)

// seedDemo enrols a company with three seafarers and issues each a pack.
// Run again on a database that has them (WUYOU_POSTGRES_URL), it uses what
// is there: the company, the seafarers (enrolment updates them by book
// number), the programme and the issuance (the same key issues nothing new).
func seedDemo(ctx context.Context, s *service) (*demoData, error) {
	d := &demoData{}
	var err error
	if d.company, err = demoCompany(ctx, s.crew); err != nil {
		return nil, fmt.Errorf("demo company: %w", err)
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
	if d.programme, err = demoProgramme(ctx, s.welfare, now, quota.ProgrammeInput{
		Name: demoProgrammeName, PackSeconds: 300 * 60, ValidDays: 90, Priority: 10,
		BudgetPacks: 1000, StartsAt: now.AddDate(0, -1, 0), EndsAt: now.AddDate(1, 0, 0),
	}); err != nil {
		return nil, fmt.Errorf("demo programme: %w", err)
	}
	iss, _, err := s.issuer.StartAndRun(ctx, d.programme.ID, "dev-seed", quota.IssuanceTarget{CompanyID: d.company.ID}, 100)
	if err != nil {
		return nil, err
	}
	d.issuanceID = iss.ID
	if d.dataProgramme, err = demoProgramme(ctx, s.welfare, now, quota.ProgrammeInput{
		Name: demoDataName, Unit: billing.UnitBytes, PackAmount: 2 << 30, ValidDays: 30, Priority: 10,
		BudgetPacks: 1000, StartsAt: now.AddDate(0, -1, 0), EndsAt: now.AddDate(1, 0, 0),
	}); err != nil {
		return nil, fmt.Errorf("demo data programme: %w", err)
	}
	iss, _, err = s.issuer.StartAndRun(ctx, d.dataProgramme.ID, "dev-seed-data", quota.IssuanceTarget{CompanyID: d.company.ID}, 100)
	if err != nil {
		return nil, err
	}
	d.dataIssuanceID = iss.ID
	return d, nil
}

// demoCompany creates the demo company, or finds the one a previous run
// created.
func demoCompany(ctx context.Context, registry *crew.PGStore) (*crew.Company, error) {
	c, err := registry.CreateCompany(ctx, demoCompanyName, demoRegistrationNo)
	if wuyou.ErrorCode(err) != wuyou.ECONFLICT {
		return c, err
	}
	f := wuyou.NameFilter{Query: "COSCO Demo Shipping"}
	for {
		page, next, err := registry.Companies(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			if c.RegistrationNo == demoRegistrationNo {
				return c, nil
			}
		}
		if next == "" {
			return nil, fmt.Errorf("registration number %s is taken by a company not named %q", demoRegistrationNo, demoCompanyName)
		}
		f.Cursor = next
	}
}

// demoProgramme creates a demo programme, or finds the one of that name a
// previous run created while it still runs.
func demoProgramme(ctx context.Context, welfare *quota.PGProgrammes, now time.Time, in quota.ProgrammeInput) (*quota.Programme, error) {
	f := wuyou.NameFilter{Query: in.Name}
	for {
		page, next, err := welfare.Programmes(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, p := range page {
			if p.Name == in.Name && now.Before(p.EndsAt) {
				return p, nil
			}
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return welfare.CreateProgramme(ctx, in)
}

func printDevGuide(w io.Writer, s *service, key *token.SigningKey, d *demoData) error {
	mint := func(role, sub, companyID string) (string, error) {
		return key.Mint(token.Claims{Issuer: devIssuer, Audience: "wuyou", Subject: sub, Role: role, CompanyID: companyID, TTL: 24 * time.Hour}, time.Now())
	}
	base := devBaseURL(s.addr)
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
	fmt.Fprintf(tw, "phone page\t%s/#token=%s (the first seafarer's page; open it in a phone-sized window)\n", base, seafarer)
	fmt.Fprintf(tw, "sign in\t%s/ with a seafarer's number below: the code by SMS is printed here (the carrier's gateway would send it)\n", base)
	fmt.Fprintf(tw, "console\t%s/console (staff console; paste UNION_TOKEN or COMPANY_TOKEN below)\n", base)
	fmt.Fprintf(tw, "company\t%s  %s\n", d.company.ID, d.company.Name)
	for _, sf := range d.seafarers {
		fmt.Fprintf(tw, "seafarer\t%s  %s  %s\n", sf.ID, sf.Name, sf.MSISDN)
	}
	fmt.Fprintf(tw, "programme\t%s  %s (one pack of %d min each, issuance %s)\n", d.programme.ID, d.programme.Name, d.programme.PackSeconds/60, d.issuanceID)
	fmt.Fprintf(tw, "programme\t%s  %s (one pack of %d MB of data each, issuance %s)\n", d.dataProgramme.ID, d.dataProgramme.Name, d.dataProgramme.PackSeconds>>20, d.dataIssuanceID)
	tw.Flush()
	fmt.Fprintf(w, "\nTokens (valid 24h):\n  export UNION_TOKEN=%s\n  export COMPANY_TOKEN=%s\n  export SEAFARER_TOKEN=%s\n  export CARRIER_TOKEN=%s\n", union, company, seafarer, carrierTok)
	fmt.Fprintf(w, "\nTry (paste as they are):\n")
	fmt.Fprintf(w, "  curl -s %s/v1/me/allowance -H 'Authorization: Bearer %s'\n", base, seafarer)
	fmt.Fprintf(w, "  curl -s %s/v1/companies/%s/seafarers -H 'Authorization: Bearer %s'\n", base, d.company.ID, company)
	fmt.Fprintf(w, "  curl -s %s/v1/seafarers/%s/usage -H 'Authorization: Bearer %s'\n", base, d.seafarers[0].ID, union)
	fmt.Fprintf(w, "  curl -s %s/v1/carrier/subscribers/%s/allowance -H 'Authorization: Bearer %s'\n", base, strings.ReplaceAll(d.msisdns[0], "+", "%2B"), carrierTok)
	fmt.Fprintf(w, "  curl -s %s/v1/programmes/%s -H 'Authorization: Bearer %s'\n", base, d.programme.ID, union)
	// One write, so a reader waiting for "Send a call yourself" sees both.
	brokers, first, last := strings.Join(s.cfg.KafkaBrokers, ","), d.msisdns[0], d.msisdns[len(d.msisdns)-1]
	fmt.Fprintf(w, "\nSend a call yourself: go run ./cmd/carriersim --brokers %s --count 10 --msisdn-range %s-%s\n"+
		"Or as the carrier's switch, through the real-time session API first (open, an update a minute,\n"+
		"terminate, then the CDR; --first-seq gives each run new call ids):\n"+
		"  go run ./cmd/carriersim --brokers %s --count 10 --msisdn-range %s-%s --sessions --server %s --token %s --first-seq $(date +%%s)\n",
		brokers, first, last, brokers, first, last, base, carrierTok)
	return nil
}

// smsPrinter stands in for the carrier's SMS gateway: the function it
// returns prints every text the service writes to wuyou.sms.v1 after this
// call (sign-in codes), until ctx ends, so a demo can sign in on the phone
// page.
func smsPrinter(ctx context.Context, brokers []string, topic string) (func(io.Writer), error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(dctx, "tcp", brokers[0], topic, 0)
	if err != nil {
		return nil, err
	}
	end, err := conn.ReadLastOffset()
	conn.Close()
	if err != nil {
		return nil, err
	}
	return func(stdout io.Writer) {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: time.Second})
		defer r.Close()
		if err := r.SetOffset(end); err != nil {
			return
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				return // ctx ended (or the broker went with it)
			}
			var ev struct {
				Subject string `json:"subject"`
				Data    struct {
					Text string `json:"text"`
				} `json:"data"`
			}
			if json.Unmarshal(m.Value, &ev) == nil {
				fmt.Fprintf(stdout, "SMS to %s (wuyou.sms.v1): %s\n", ev.Subject, ev.Data.Text)
			}
		}
	}, nil
}

// devBaseURL is the URL of the listener at addr: its own host when it is
// bound to one, else localhost.
func devBaseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://localhost:8080"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// How wuyoud dev --simulate paces its calls: one starts every
// simulateEvery; a call through a session lasts simulateMinute per minute
// of talk; simulateSessionShare of them go through sessions.
const (
	simulateEvery        = 2 * time.Second
	simulateMinute       = time.Second
	simulateSessionShare = 0.5
)

// simulateCalls starts one carrier voice call every simulateEvery from the
// demo seafarers, made by carriersim's generator (mostly abroad, some
// domestic, which draw nothing). About half of them go through the session
// API first (sim.Driver: open, an update every simulated minute,
// terminate), each in its own goroutine, and say so on stdout; then the
// call's CDR, data.call_id = the session id, is produced as any other.
func simulateCalls(ctx context.Context, brokers []string, topic string, msisdns []string, sessions sim.SessionAPI, stdout io.Writer) {
	cfg := sim.DefaultConfig()
	cfg.Source, cfg.MSISDNs, cfg.VoiceShare = "urn:carrier:dev-simulator", msisdns, 1
	cfg.Seed, cfg.FirstSeq = time.Now().UnixNano(), time.Now().Unix()
	gen, err := sim.New(cfg)
	if err != nil {
		fmt.Fprintln(stdout, "simulate:", err)
		return
	}
	var mu sync.Mutex // gen is not safe for concurrent use; nor is stdout
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, format+"\n", args...)
	}
	driver := &sim.Driver{API: sessions, Minute: simulateMinute}
	w := carrier.NewWriter(brokers)
	var calls sync.WaitGroup
	defer func() {
		calls.Wait()
		w.Close()
	}()
	produce := func(ev sim.Event) {
		if err := w.WriteMessages(ctx, kafka.Message{Topic: topic, Key: ev.Key, Value: ev.Value}); err != nil && ctx.Err() == nil {
			say("simulate: produce failed: %v", err)
		}
	}
	t := time.NewTicker(simulateEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			mu.Lock()
			ev := gen.Next(now)
			mu.Unlock()
			call, ok := sim.SessionCallOf(ev)
			if !ok || !sim.ChosenForSession(call.SessionID, simulateSessionShare) {
				produce(ev)
				continue
			}
			calls.Add(1)
			go func() {
				defer calls.Done()
				out, err := driver.Drive(ctx, call)
				if ctx.Err() != nil {
					return // stopping: the call is left to lapse
				}
				if err != nil {
					say("simulate: session %s: %v (its CDR settles it)", call.SessionID, err)
				}
				if err == nil && out.Used != call.Duration {
					mu.Lock()
					ev, err = gen.WithDuration(ev, out.Used)
					mu.Unlock()
					if err != nil {
						say("simulate: %v", err)
						return
					}
				}
				produce(ev)
				if out.Terminated {
					say("simulate: call %s went through a session: %d updates, terminated after %d s, charged %d s (%d covered, %d overage); CDR sent",
						call.SessionID, out.Updates, out.Used, out.Charge.Charged, out.Charge.Covered, out.Charge.Overage)
				}
			}()
		}
	}
}
