package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/internal/pgschema"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
)

// devRun is `wuyoud dev` running in-process on free ports.
type devRun struct {
	out    *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

// mustStartDev runs `wuyoud dev` with env as its environment, on a free
// HTTP port and a free port for its Kafka-protocol broker (not 9092, which
// another dev mode on the machine may hold), and waits until it has printed
// its guide.
func mustStartDev(tb testing.TB, env map[string]string) *devRun {
	tb.Helper()
	return mustStartDevWith(tb, env, "--http", "127.0.0.1:0")
}

// mustStartDevWith is mustStartDev with args instead of its --http flag
// (the embedded broker still gets a free port).
func mustStartDevWith(tb testing.TB, env map[string]string, args ...string) *devRun {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devRun{out: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	args = append(args, "--kafka-port", strconv.Itoa(mustFreePort(tb)))
	go func() { d.done <- runDevEnv(ctx, args, func(k string) string { return env[k] }, d.out, io.Discard) }()
	tb.Cleanup(func() { d.stop(tb) })
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(d.out.String(), "Send a call yourself") {
		select {
		case err := <-d.done:
			d.done <- err
			tb.Fatalf("wuyoud dev ended before printing its guide: %v\n%s", err, d.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("wuyoud dev printed no guide within 2 minutes:\n%s", d.out.String())
		}
	}
	return d
}

// stop ends dev mode as SIGINT would and returns what it returned; calling
// it again returns nil.
func (d *devRun) stop(tb testing.TB) error {
	tb.Helper()
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		return err
	case <-time.After(time.Minute):
		tb.Fatalf("wuyoud dev did not stop within a minute")
		return nil
	}
}

func mustFreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer is an io.Writer a test may read while another goroutine
// writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var throwawayLine = regexp.MustCompile(`PostgreSQL is a throwaway server in (\S+), removed when this stops\s+\((postgres://\S+)\)\.`)

func TestDevStartsAThrowawayPostgreSQLAndRemovesItOnStop(t *testing.T) {
	t.Parallel()
	d := mustStartDev(t, nil)
	m := throwawayLine.FindStringSubmatch(d.out.String())
	require.NotNil(t, m, "the banner names the throwaway PostgreSQL's folder and URL:\n%s", d.out.String())
	dir, url := m[1], m[2]
	require.DirExists(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	version, err := pgschema.Version(ctx, pool)
	pool.Close()
	require.NoError(t, err, "the banner's URL reaches the throwaway server")
	latest, err := pgschema.Latest()
	require.NoError(t, err)
	require.Equal(t, latest, version, "the service migrated the throwaway server at start")

	require.NoError(t, d.stop(t), "dev mode stops cleanly")
	require.Contains(t, d.out.String(), "throwaway PostgreSQL are discarded")
	_, err = os.Stat(dir)
	require.True(t, errors.Is(err, os.ErrNotExist), "the throwaway server's folder is removed on stop: %v", err)
	_, err = pgx.Connect(ctx, url+"&connect_timeout=2")
	require.Error(t, err, "nothing listens on the throwaway server's URL any more")
}

func TestDevUsesWUYOU_POSTGRES_URLInsteadOfAThrowawayServerAndLeavesItRunning(t *testing.T) {
	t.Parallel()
	url := pgtest.MustURL(t)
	d := mustStartDev(t, map[string]string{"WUYOU_POSTGRES_URL": url})
	out := d.out.String()
	require.Contains(t, out, "PostgreSQL: "+maskPostgresURL(url)+" (yours)")
	require.NotContains(t, out, "throwaway server")

	require.NoError(t, d.stop(t), "dev mode stops cleanly")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err, "the caller's PostgreSQL is left as it was")
	conn.Close(ctx)
}

// Run again on the same PostgreSQL, dev mode uses the demo data the first
// run left there instead of failing on the company's registration number,
// and issues nothing twice; the new run's empty embedded Redis is rebuilt
// from PostgreSQL, so the demo seafarers still have their packs.
func TestDevRunAgainOnTheSameWUYOU_POSTGRES_URLUsesTheDemoDataThere(t *testing.T) {
	t.Parallel()
	url := pgtest.MustURL(t)
	env := map[string]string{"WUYOU_POSTGRES_URL": url}
	first := mustStartDev(t, env)
	require.NoError(t, first.stop(t))
	second := mustStartDev(t, env)
	require.Contains(t, second.out.String(), "Send a call yourself")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	count := func(table string) (n int) {
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n))
		return n
	}
	require.Equal(t, 1, count("companies"), "one demo company")
	require.Equal(t, 3, count("seafarers"), "three demo seafarers")
	require.Equal(t, 2, count("programmes"), "the demo's minutes and data programmes")
	require.Equal(t, 2, count("issuances"), "one demo issuance of each")
	require.Equal(t, 6, count("grants"), "a pack of each each, issued once")
	var bytesGrants int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM grants WHERE unit = 'bytes' AND seconds = 2147483648").Scan(&bytesGrants))
	require.Equal(t, 3, bytesGrants, "every demo seafarer has 2 GB of data")
	require.NoError(t, second.stop(t))
}

func TestDevRefusesAWUYOU_POSTGRES_URLThatDoesNotParseWithoutShowingItsPassword(t *testing.T) {
	t.Parallel()
	err := runDevEnv(context.Background(), nil, func(k string) string {
		return map[string]string{"WUYOU_POSTGRES_URL": "postgres://wuyou:s3cr3t-dev@db:notaport/wuyou"}[k]
	}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "WUYOU_POSTGRES_URL")
	require.NotContains(t, err.Error(), "s3cr3t-dev")
}

// devAPILine is the guide's line naming the API's base URL.
var devAPILine = regexp.MustCompile(`(?m)^API\s+(http://\S+) `)

// mustDevBase is the base URL the guide of d prints.
func mustDevBase(tb testing.TB, d *devRun) string {
	tb.Helper()
	m := devAPILine.FindStringSubmatch(d.out.String())
	require.NotNil(tb, m, "the guide names the API's URL:\n%s", d.out.String())
	return m[1]
}

func mustGet(tb testing.TB, url string) string {
	tb.Helper()
	resp, err := http.Get(url)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	require.Equal(tb, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	return string(body)
}

func TestDevListensOnWUYOU_HTTP_ADDRAndPrintsThePhonePageAndConsoleLinks(t *testing.T) {
	t.Parallel()
	addr := "127.0.0.1:" + strconv.Itoa(mustFreePort(t))
	d := mustStartDevWith(t, map[string]string{"WUYOU_HTTP_ADDR": addr, "WUYOU_POSTGRES_URL": pgtest.MustURL(t)})
	base := "http://" + addr
	require.Equal(t, base, mustDevBase(t, d))
	mustGet(t, base+"/healthz")
	out := d.out.String()
	require.Regexp(t, `(?m)^phone page\s+`+regexp.QuoteMeta(base)+`/#token=ey\S+ `, out)
	require.Regexp(t, `(?m)^console\s+`+regexp.QuoteMeta(base)+`/console `, out)
	m := regexp.MustCompile(`export SEAFARER_TOKEN=(\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m)
	require.Contains(t, out, base+"/#token="+m[1], "the phone page link carries the seafarer's token")
	mustGet(t, base+"/console")
	require.Contains(t, mustGet(t, base+"/metrics"), "wuyou_build_info{", "/metrics names the build")
}

// A demo signs in on the phone page: the code the service writes to
// wuyou.sms.v1 is printed, as the carrier's SMS gateway would send it.
func TestDevPrintsTheSignInCodeItSendsBySMS(t *testing.T) {
	t.Parallel()
	d := mustStartDev(t, map[string]string{"WUYOU_POSTGRES_URL": pgtest.MustURL(t)})
	base := mustDevBase(t, d)
	out := d.out.String()
	require.Regexp(t, `(?m)^sign in\s+`+regexp.QuoteMeta(base)+`/ `, out)
	m := regexp.MustCompile(`(?m)^seafarer\s+\S+\s+.+\s+(\+\d+)$`).FindStringSubmatch(out)
	require.NotNil(t, m, "the guide lists the seafarers' numbers:\n%s", out)
	res, err := http.Post(base+"/v1/auth/otp", "application/json", strings.NewReader(`{"msisdn":"`+m[1]+`"}`))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	line := regexp.MustCompile(`SMS to ` + regexp.QuoteMeta(m[1]) + ` \(wuyou.sms.v1\): (\d{6}) `)
	var code string
	MustWaitFor(t, 30*time.Second, "the SMS line", func() bool {
		if c := line.FindStringSubmatch(d.out.String()); c != nil {
			code = c[1]
			return true
		}
		return false
	})
	res, err = http.Post(base+"/v1/auth/otp:verify", "application/json", strings.NewReader(`{"msisdn":"`+m[1]+`","code":"`+code+`"}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
}

func TestDevHTTPFlagWinsOverWUYOU_HTTP_ADDR(t *testing.T) {
	t.Parallel()
	fromEnv := "127.0.0.1:" + strconv.Itoa(mustFreePort(t))
	fromFlag := "127.0.0.1:" + strconv.Itoa(mustFreePort(t))
	d := mustStartDevWith(t, map[string]string{"WUYOU_HTTP_ADDR": fromEnv, "WUYOU_POSTGRES_URL": pgtest.MustURL(t)}, "--http", fromFlag)
	require.Equal(t, "http://"+fromFlag, mustDevBase(t, d))
}

// TestDevBindsLoopbackOnlyByDefault needs 127.0.0.1:8080, the default; it
// skips when something else holds it.
func TestDevBindsLoopbackOnlyByDefault(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Skipf("127.0.0.1:8080 is taken, so the default cannot be tried: %v", err)
	}
	require.NoError(t, l.Close())
	d := mustStartDevWith(t, map[string]string{"WUYOU_POSTGRES_URL": pgtest.MustURL(t)})
	require.Equal(t, "http://127.0.0.1:8080", mustDevBase(t, d), "the listener is 127.0.0.1:8080")
	mustGet(t, "http://127.0.0.1:8080/healthz")
	// Nothing answers on the machine's other addresses.
	ifaddrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range ifaddrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.To4() == nil {
			continue
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(ipnet.IP.String(), "8080"), time.Second)
		if err == nil {
			conn.Close()
		}
		require.Error(t, err, "wuyoud dev answers on %s, not only on loopback", ipnet.IP)
	}
}

func TestDevUsesTheRedisOfWUYOU_REDIS_ADDRSWithItsKeysUnderWUYOU_REDIS_PREFIX(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.MustClient(t)
	d := mustStartDev(t, map[string]string{
		"WUYOU_REDIS_ADDRS": strings.Join(redistest.Addrs(), ","), "WUYOU_REDIS_PREFIX": prefix,
		"WUYOU_POSTGRES_URL": pgtest.MustURL(t),
	})
	out := d.out.String()
	require.Contains(t, out, "Redis: "+strings.Join(redistest.Addrs(), ",")+" (yours), keys under "+prefix+":")
	require.NotContains(t, out, "miniredis")
	require.NotContains(t, out, "NOTHING IS DURABLE")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := redistest.Keys(ctx, rdb, prefix+":*")
	require.NoError(t, err)
	require.NotEmpty(t, keys, "the demo data is in the configured Redis, under the prefix")
	require.NoError(t, d.stop(t))
	require.Contains(t, d.out.String(), "stopping; the embedded broker is discarded")
}

func TestDevUsesTheKafkaOfWUYOU_KAFKA_BROKERSAndCreatesItsPrefixedTopics(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	d := mustStartDev(t, map[string]string{
		"WUYOU_KAFKA_BROKERS": brokers, "WUYOU_TOPIC_PREFIX": "devtest.", "WUYOU_POSTGRES_URL": pgtest.MustURL(t),
	})
	out := d.out.String()
	require.Contains(t, out, "Kafka: "+brokers+" (yours); calls are read from devtest.carrier.usage.v1.")
	require.NotContains(t, out, "kfake")
	require.Contains(t, out, "--brokers "+brokers+" ", "carriersim is pointed at the configured brokers")

	conn, err := kafka.Dial("tcp", cluster.ListenAddrs()[0])
	require.NoError(t, err)
	defer conn.Close()
	for _, topic := range carrier.NewTopics("devtest.").All() {
		partitions, err := conn.ReadPartitions(topic)
		require.NoError(t, err, topic)
		require.NotEmpty(t, partitions, "dev mode created %s on the configured broker", topic)
	}
}

func TestDevConfigHonoursTheVariablesThatAreSetOverItsDefaults(t *testing.T) {
	cfg, err := devConfig(envOf(nil))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr, "loopback by default")
	require.Equal(t, slog.LevelWarn, cfg.LogLevel)
	require.Equal(t, "CN", cfg.HomeCountry)
	require.Empty(t, cfg.RedisAddrs, "empty: the embedded store")
	require.Empty(t, cfg.KafkaBrokers, "empty: the embedded broker")

	cfg, err = devConfig(envOf(map[string]string{
		"WUYOU_HTTP_ADDR": "127.0.0.1:9999", "WUYOU_TOPIC_PREFIX": "t.", "WUYOU_REDIS_PREFIX": "p",
		"WUYOU_HOME_COUNTRY": "PH", "WUYOU_TARIFF": "/etc/wuyou/tariff.yaml", "WUYOU_DEDUPE_WINDOW": "48h",
		"WUYOU_CLOCK_SKEW": "1h", "WUYOU_LOG_LEVEL": "debug",
		"WUYOU_REDIS_ADDRS": "r:6379", "WUYOU_KAFKA_BROKERS": "k:9092",
		"WUYOU_JWT_ISSUER": "https://idp.example", "WUYOU_JWT_JWKS": "/keys.json",
	}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9999", cfg.HTTPAddr)
	require.Equal(t, "t.", cfg.TopicPrefix)
	require.Equal(t, "p", cfg.RedisPrefix)
	require.Equal(t, "PH", cfg.HomeCountry)
	require.Equal(t, "/etc/wuyou/tariff.yaml", cfg.TariffPath)
	require.Equal(t, 48*time.Hour, cfg.DedupeWindow)
	require.Equal(t, time.Hour, cfg.ClockSkew)
	require.Equal(t, slog.LevelDebug, cfg.LogLevel)
	require.Equal(t, []string{"r:6379"}, cfg.RedisAddrs)
	require.Equal(t, []string{"k:9092"}, cfg.KafkaBrokers)
	require.Equal(t, devIssuer, cfg.JWTIssuer, "tokens are signed by the generated key, whatever WUYOU_JWT_* say")
}

func TestDevRefusesAnInvalidVariableNamingIt(t *testing.T) {
	for _, name := range []string{"WUYOU_HOME_COUNTRY", "WUYOU_DEDUPE_WINDOW", "WUYOU_LOG_LEVEL"} {
		err := runDevEnv(context.Background(), nil, envOf(map[string]string{name: "nonsense"}), io.Discard, io.Discard)
		require.ErrorContains(t, err, name)
	}
}

func TestDevHelpPrintsUsageAndExitsZero(t *testing.T) {
	for _, flag := range []string{"--help", "-h"} {
		var out, errOut bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"dev", flag}, envOf(nil), &out, &errOut), flag)
		require.Contains(t, out.String(), "usage: wuyoud dev")
		require.Contains(t, out.String(), "wins over WUYOU_HTTP_ADDR")
		require.Contains(t, out.String(), "127.0.0.1:8080")
		require.Empty(t, errOut.String())
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"dev", "--no-such-flag"}, envOf(nil), &out, &errOut)
	require.ErrorContains(t, err, "no-such-flag")
	require.Contains(t, errOut.String(), "usage: wuyoud dev", "a usage mistake prints the usage")
}
