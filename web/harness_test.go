package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/signin"
	"github.com/wuyou/wuyou/token"
)

// stack is the service as `wuyoud dev` runs it, minus Kafka (what would be
// published is dropped): the real API (with the pages mounted by routes())
// over real HTTP, with the registry, programmes, issuances, grants, the
// ledger and statements in a fresh PostgreSQL database and the hot metering
// state in the embedded Redis-compatible store, and a signing key the test
// holds. Calls are metered as the consumer meters them after rating a
// carrier event: debited in the hot state, their entries recorded in the
// ledger.
type stack struct {
	t          *testing.T
	outbox     *outbox // the SMS the service wrote for the carrier's gateway
	base       string
	key        *token.SigningKey
	crew       *crew.PGStore
	quota      *quota.RedisStore
	ledger     *quota.PGLedger
	programmes *quota.PGProgrammes
	issuer     *quota.Issuer
	recurring  *quota.RecurringEngine
	company    *crew.Company
	seafarers  []*crew.Seafarer
}

// outbox stands in for the broker: it keeps the messages written to the
// SMS topic (sign-in codes, for the gateway) and drops every other.
type outbox struct {
	mu  sync.Mutex
	sms []kafka.Message
}

func (o *outbox) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range msgs {
		if m.Topic == carrier.NewTopics("").SMS {
			o.sms = append(o.sms, m)
		}
	}
	return nil
}

// smsTo is the text of every SMS written for msisdn, oldest first.
func (o *outbox) smsTo(t *testing.T, msisdn string) []string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	var texts []string
	for _, m := range o.sms {
		var ev struct {
			Type    string `json:"type"`
			Subject string `json:"subject"`
			Data    struct {
				Text string `json:"text"`
			} `json:"data"`
		}
		must(t, json.Unmarshal(m.Value, &ev))
		if ev.Subject == msisdn && ev.Type == signin.KindCode {
			texts = append(texts, ev.Data.Text)
		}
	}
	return texts
}

const testIssuer = "https://issuer.web.test"

func mustStack(t *testing.T) *stack {
	t.Helper()
	store := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: store.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })

	key, err := token.GenerateSigningKey("EdDSA")
	must(t, err)
	jwks, err := token.JWKS(key)
	must(t, err)
	verifier, err := api.NewVerifierFromJWKS(jwks, testIssuer, "wuyou", time.Now)
	must(t, err)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := pgtest.MustPool(t)
	s := &stack{t: t, key: key, outbox: &outbox{}}
	publisher := carrier.NewPublisher(s.outbox, carrier.NewTopics(""), time.Now)
	statements := quota.NewPGStatements(pool, wuyou.SystemClock)
	s.crew = crew.NewPGStore(pool, wuyou.SystemClock)
	s.quota = quota.NewRedisStore(rdb, "wuyou", wuyou.SystemClock, quota.Options{})
	s.ledger = quota.NewPGLedger(pool)
	s.programmes = quota.NewPGProgrammes(pool, wuyou.SystemClock, statements)
	s.issuer = quota.NewIssuer(s.programmes, s.quota, s.crew, wuyou.SystemClock)
	s.issuer.Log = log
	s.issuer.Publisher = carrier.GrantPublisher{Publisher: publisher, MSISDNs: s.crew, Ledger: s.ledger}
	s.recurring = quota.NewRecurringEngine(s.programmes, s.quota, wuyou.SystemClock)
	s.recurring.Log = log
	s.recurring.Publisher = s.issuer.Publisher
	// Sign-in by SMS code, its texts written to the outbox.
	ctx := context.Background()
	keys, err := signin.OpenKeyRing(ctx, pool, nil, signin.KeyOptions{TokenTTL: time.Hour})
	must(t, err)
	secret, err := signin.Secret(ctx, pool, "otp", time.Now())
	must(t, err)
	signIn, err := signin.New(signin.Config{Redis: rdb, Prefix: "wuyou", Secret: secret, Counter: api.NewRedisRateLimitStore(rdb, "wuyou"),
		Holders: s.crew, SMS: publisher, Keys: keys, Issuer: signin.Issuer, Audience: "wuyou", TokenTTL: time.Hour})
	must(t, err)
	signIn.Start(1)
	t.Cleanup(func() { signIn.Close(context.Background()) })
	verifier.AcceptOwn(keys, signin.Issuer, "wuyou")

	server := api.New(api.Config{
		SignIn: signIn, OwnKeys: keys,
		Crew: s.crew, Quota: s.quota, Programmes: s.programmes, Grants: quota.NewPGGrants(pool), Issuer: s.issuer,
		Ledger:   carrier.LedgerRecorder{Ledger: s.ledger, Publisher: publisher, Hot: s.quota},
		Entries:  s.ledger,
		Auditor:  &quota.Auditor{Pool: pool, Store: s.quota},
		Audit:    audit.NewPGLog(pool),
		Overview: statements,
		Billing: &billing.Statements{
			Store: statements, Registry: billing.JoinRegistry{Programmes: s.programmes, Crews: s.crew}, Now: wuyou.SystemClock, Currency: "CNY",
			CrewNames: s.crew, ProgrammeNames: s.programmes,
		},
		Verifier: verifier, Log: log,
	})
	addr, err := server.Listen("127.0.0.1:0")
	must(t, err)
	s.base = "http://" + addr.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
		_ = s.issuer.Close(ctx)
	})
	return s
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func (s *stack) token(role, sub, companyID string) string {
	s.t.Helper()
	tok, err := s.key.Mint(token.Claims{Issuer: testIssuer, Audience: "wuyou", Subject: sub, Role: role, CompanyID: companyID, TTL: time.Hour}, time.Now())
	must(s.t, err)
	return tok
}

// seedDemo enrols the demo company and its three seafarers, as `wuyoud dev`
// does, and gives each a 300-minute pack effective from effective.
func (s *stack) seedDemo(effective time.Time) *quota.Programme {
	s.t.Helper()
	ctx := context.Background()
	var err error
	s.company, err = s.crew.CreateCompany(ctx, "COSCO Demo Shipping 中远示范航运", "91310000MA1FL0001X")
	must(s.t, err)
	for _, e := range []crew.Enrolment{
		{BookNo: "C12345678", Name: "张伟", Nationality: "CN", MSISDN: "+8613800000001", VesselIMO: "9074729", VesselName: "MV Demo Star", SignOn: "2026-09-01", UnionMemberNo: "U-0001"},
		{BookNo: "C23456789", Name: "李娜", Nationality: "CN", MSISDN: "+8613800000002", VesselIMO: "9074729", VesselName: "MV Demo Star", SignOn: "2026-09-01", UnionMemberNo: "U-0002"},
		{BookNo: "C34567890", Name: "Wang Fang", Nationality: "CN", MSISDN: "+8613800000003", VesselIMO: "9074729", VesselName: "MV Demo Star", SignOn: "2026-10-15"},
	} {
		sf, _, err := s.crew.Enrol(ctx, s.company.ID, e)
		must(s.t, err)
		s.seafarers = append(s.seafarers, sf)
	}
	p := s.programme("出海无忧 2026 Q4 welfare pack", 300, 90, 1000)
	s.issue(p, "seed", quota.IssuanceTarget{CompanyID: s.company.ID, EffectiveAt: &effective})
	return p
}

func (s *stack) programme(name string, minutes int64, validDays int, budget int64) *quota.Programme {
	s.t.Helper()
	now := time.Now().UTC()
	p, err := s.programmes.CreateProgramme(context.Background(), quota.ProgrammeInput{
		Name: name, PackSeconds: minutes * 60, ValidDays: validDays, Priority: 10,
		BudgetPacks: budget, StartsAt: now.AddDate(0, -1, 0), EndsAt: now.AddDate(1, 0, 0),
	})
	must(s.t, err)
	return p
}

// sweep runs the monthly issue of recurring programmes once, as wuyoud does
// at start, every 30 s and after the registry changes. The stack runs no
// sweeps of its own: a test says when a month's grants are issued.
func (s *stack) sweep() quota.SweepReport {
	s.t.Helper()
	rep, err := s.recurring.Sweep(context.Background())
	must(s.t, err)
	return rep
}

func (s *stack) issue(p *quota.Programme, key string, target quota.IssuanceTarget) {
	s.t.Helper()
	iss, _, err := s.issuer.StartAndRun(context.Background(), p.ID, key, target, 1000)
	must(s.t, err)
	if iss.Status != "done" || iss.Issued != iss.Total {
		s.t.Fatalf("seed issuance %s: %+v", key, iss)
	}
}

// call meters one voice call abroad of sf, rated as the default tariff
// does: billable seconds are the duration rounded up to whole minutes.
func (s *stack) call(sf *crew.Seafarer, id string, at time.Time, seconds int64, country string) *quota.DebitResult {
	s.t.Helper()
	ctx := context.Background()
	res, err := s.quota.Debit(ctx, quota.Usage{
		SeafarerID: sf.ID, MSISDN: sf.MSISDN, Source: "urn:carrier:web-test", EventID: id, Type: "carrier.usage.voice",
		CallTime: at.UTC().Truncate(time.Second), DurationSeconds: seconds, BillableSeconds: (seconds + 59) / 60 * 60,
		CalledNumber: "+861012345678", VisitedCountry: country,
		OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: 60,
	})
	must(s.t, err)
	if res.Entry != nil && !res.Duplicate {
		entries := []quota.SeafarerEntry{{SeafarerID: sf.ID, Entry: res.Entry}}
		must(s.t, s.ledger.Append(ctx, entries))
		must(s.t, s.quota.Recorded(ctx, entries))
	}
	return res
}

// enrolFleet enrols n active seafarers in a new company.
func (s *stack) enrolFleet(name string, n int) *crew.Company {
	s.t.Helper()
	ctx := context.Background()
	c, err := s.crew.CreateCompany(ctx, name, "REG-"+name)
	must(s.t, err)
	for i := range n {
		_, _, err := s.crew.Enrol(ctx, c.ID, crew.Enrolment{
			BookNo: fmt.Sprintf("F%08d", i+1), Name: fmt.Sprintf("Crew %03d", i+1), Nationality: "CN",
			MSISDN: fmt.Sprintf("+86139%08d", i+1), VesselIMO: "9321483", VesselName: "MV Big Fleet",
		})
		must(s.t, err)
	}
	return c
}
