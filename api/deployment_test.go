package api

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/quota"
)

// deployment is one Wuyou deployment's stores, wired as wuyoud wires them
// minus Kafka (what would be published is dropped): the registry,
// programmes, issuances, grants, the ledger and statements in one
// PostgreSQL database, the hot metering state in Redis under a key prefix.
// Several servers over one deployment are replicas of one service.
type deployment struct {
	pool       *pgxpool.Pool
	rdb        redis.UniversalClient
	prefix     string
	crew       *crew.PGStore
	quota      *quota.RedisStore
	programmes *quota.PGProgrammes
	statements *quota.PGStatements
	ledger     *quota.PGLedger
	publisher  *carrier.Publisher
}

// MustDeployment returns a deployment on a fresh database and a fresh key
// prefix of the test Redis.
func MustDeployment(tb testing.TB) *deployment {
	tb.Helper()
	rdb, prefix := redistest.MustClient(tb)
	return newDeployment(pgtest.MustPool(tb), rdb, prefix)
}

// newDeployment builds the stores over pool and rdb under prefix.
func newDeployment(pool *pgxpool.Pool, rdb redis.UniversalClient, prefix string) *deployment {
	d := &deployment{pool: pool, rdb: rdb, prefix: prefix}
	d.crew = crew.NewPGStore(pool, wuyou.SystemClock)
	d.quota = quota.NewRedisStore(rdb, prefix, wuyou.SystemClock, quota.Options{})
	d.statements = quota.NewPGStatements(pool, wuyou.SystemClock)
	d.programmes = quota.NewPGProgrammes(pool, wuyou.SystemClock, d.statements)
	d.ledger = quota.NewPGLedger(pool)
	d.publisher = carrier.NewPublisher(discardProducer{}, carrier.NewTopics(""), time.Now)
	return d
}

// discardProducer accepts every message and keeps none: the API's tests
// have no broker.
type discardProducer struct{}

func (discardProducer) WriteMessages(context.Context, ...kafka.Message) error { return nil }

// newIssuer returns an issuer over the deployment that stores its grants'
// ledger entries in the ledger, as wuyoud's does. It is closed when the
// test ends.
func (d *deployment) newIssuer(tb testing.TB, log *slog.Logger) *quota.Issuer {
	tb.Helper()
	issuer := quota.NewIssuer(d.programmes, d.quota, d.crew, wuyou.SystemClock)
	issuer.Log = log
	issuer.Publisher = carrier.GrantPublisher{Publisher: d.publisher, MSISDNs: d.crew, Ledger: d.ledger}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = issuer.Close(ctx)
	})
	return issuer
}

// homeCountry is the deployment's home network: a session there draws
// nothing.
const homeCountry = "CN"

// config is the server configuration wuyoud builds over the deployment
// (without readiness checks, rate limit storage or a registry).
func (d *deployment) config(issuer *quota.Issuer, v *Verifier, log *slog.Logger) Config {
	return Config{
		Crew: d.crew, Quota: d.quota, Programmes: d.programmes, Grants: quota.NewPGGrants(d.pool), Issuer: issuer,
		Ledger:   carrier.LedgerRecorder{Ledger: d.ledger, Publisher: d.publisher, Hot: d.quota},
		Entries:  d.ledger,
		Auditor:  &quota.Auditor{Pool: d.pool, Store: d.quota},
		Audit:    audit.NewPGLog(d.pool),
		Overview: d.statements,
		Sessions: &carrier.Sessions{Store: d.quota, Resolver: d.crew, Tariff: billing.DefaultTariff(), HomeCountry: homeCountry,
			Recorder: carrier.LedgerRecorder{Ledger: d.ledger, Publisher: d.publisher, Hot: d.quota}, FinalActions: d.programmes},
		Billing: &billing.Statements{
			Store: d.statements, Registry: billing.JoinRegistry{Programmes: d.programmes, Crews: d.crew}, Now: wuyou.SystemClock, Currency: "CNY",
			CrewNames: d.crew, ProgrammeNames: d.programmes,
		},
		Verifier: v, Log: log,
	}
}

// meter applies one call to the hot state and records its ledger entry in
// the system of record, as the consumer does after rating a carrier event.
func (d *deployment) meter(tb testing.TB, u quota.Usage) *quota.DebitResult {
	tb.Helper()
	ctx := context.Background()
	r, err := d.quota.Debit(ctx, u)
	require.NoError(tb, err)
	require.NoError(tb, r.Err)
	if r.Entry != nil && !r.Duplicate {
		entries := []quota.SeafarerEntry{{SeafarerID: u.SeafarerID, Entry: r.Entry}}
		require.NoError(tb, d.ledger.Append(ctx, entries))
		require.NoError(tb, d.quota.Recorded(ctx, entries))
	}
	return r
}
