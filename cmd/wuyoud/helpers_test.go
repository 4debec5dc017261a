package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/token"
)

// This file holds what the pipeline, crash and rebalance tests share: a
// stack (one Redis prefix, one PostgreSQL database, one in-process
// Kafka-protocol broker, one token signing key) that several wuyoud instances — in-process or subprocesses —
// run against; an HTTP client for the API; Kafka helpers that read topics
// to their end and wait for the consumer group to commit everything; and an
// independent model of what the metering must make of a stream of carrier
// events, written without calling the quota or carrier code.

const stackIssuer = "https://issuer.stack.test"

// wuyouStack is what every wuyoud of one test shares.
type wuyouStack struct {
	rdb      redis.UniversalClient
	prefix   string
	pgURL    string // the stack's own database, shared by its nodes as the prefix is
	broker   *kfake.Cluster
	brokers  []string
	topics   carrier.Topics
	key      *token.SigningKey
	jwksPath string
	// redisAddrs, when set, is the Redis the stack's wuyoud instances use
	// instead of the shared test Redis (a test's own, to restart).
	redisAddrs []string
}

// MustWuyouStack starts a broker whose usage topic has usagePartitions
// partitions (every other topic has one) and takes a fresh Redis prefix and
// a fresh, migrated PostgreSQL database.
func MustWuyouStack(tb testing.TB, usagePartitions int32) *wuyouStack {
	tb.Helper()
	return MustWuyouStackWithBroker(tb, usagePartitions)
}

// MustPool connects to the stack's database, for reading what wuyoud
// stored there.
func (st *wuyouStack) MustPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), st.pgURL)
	require.NoError(tb, err)
	tb.Cleanup(pool.Close)
	return pool
}

// redis is the Redis the stack's instances use.
func (st *wuyouStack) redis() []string {
	if len(st.redisAddrs) > 0 {
		return st.redisAddrs
	}
	return redistest.Addrs()
}

// env is the WUYOU_* environment of one wuyoud of the stack.
func (st *wuyouStack) env(httpAddr, group string) map[string]string {
	return map[string]string{
		"WUYOU_HTTP_ADDR":        httpAddr,
		"WUYOU_REDIS_ADDRS":      strings.Join(st.redis(), ","),
		"WUYOU_REDIS_PREFIX":     st.prefix,
		"WUYOU_POSTGRES_URL":     st.pgURL,
		"WUYOU_KAFKA_BROKERS":    strings.Join(st.brokers, ","),
		"WUYOU_KAFKA_GROUP":      group,
		"WUYOU_JWT_JWKS":         st.jwksPath,
		"WUYOU_JWT_ISSUER":       stackIssuer,
		"WUYOU_SHUTDOWN_TIMEOUT": "15s",
	}
}

// MustToken mints a token the stack's services accept.
func (st *wuyouStack) MustToken(tb testing.TB, role, subject, companyID string) string {
	tb.Helper()
	tok, err := st.key.Mint(token.Claims{Issuer: stackIssuer, Audience: "wuyou", Subject: subject, Role: role, CompanyID: companyID, TTL: 2 * time.Hour}, time.Now())
	require.NoError(tb, err)
	return tok
}

// wuyoudNode is one in-process wuyoud of a stack.
type wuyoudNode struct {
	svc     *service
	api     apiClient
	stopped bool
}

// MustStartNode starts an in-process wuyoud in consumer group group, on its
// own HTTP port. It is stopped gracefully at the end of the test unless
// MustStop stopped it before.
func (st *wuyouStack) MustStartNode(tb testing.TB, group string) *wuyoudNode {
	tb.Helper()
	return st.mustStartNode(tb, group, deps{})
}

// mustStartNode is MustStartNode with the service's dependencies d (a
// clock: MustStartNodeWithClock).
func (st *wuyouStack) mustStartNode(tb testing.TB, group string, d deps) *wuyoudNode {
	tb.Helper()
	env := st.env("127.0.0.1:0", group)
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	require.NoError(tb, err)
	require.NoError(tb, cfg.Validate())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	svc, err := start(context.Background(), cfg, d, log)
	require.NoError(tb, err)
	n := &wuyoudNode{svc: svc, api: apiClient{base: "http://" + svc.addr.String()}}
	tb.Cleanup(func() {
		if !n.stopped {
			n.MustStop(tb)
		}
	})
	return n
}

// MustStop stops the node gracefully: it commits what it applied and leaves
// the consumer group.
func (n *wuyoudNode) MustStop(tb testing.TB) {
	tb.Helper()
	n.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(tb, n.svc.stop(ctx), "graceful stop")
}

// apiClient calls the HTTP API of one wuyoud.
type apiClient struct{ base string }

var testHTTP = &http.Client{Timeout: 30 * time.Second}

// MustDo sends a JSON request with extra headers (name, value pairs) and
// decodes a 2xx answer into out (when not nil); it returns the status and
// the body.
func (c apiClient) MustDo(tb testing.TB, method, path, token string, body, out any, headers ...string) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(tb, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := testHTTP.Do(req)
	require.NoError(tb, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	if out != nil && res.StatusCode < 300 {
		require.NoError(tb, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
	return res.StatusCode, b
}

// MustCall is MustDo that insists on the status want.
func (c apiClient) MustCall(tb testing.TB, want int, method, path, token string, body, out any, headers ...string) {
	tb.Helper()
	status, b := c.MustDo(tb, method, path, token, body, out, headers...)
	require.Equal(tb, want, status, "%s %s: %s", method, path, b)
}

// MustMetrics reads /metrics and sums every sample of a metric over its
// labels, by metric name.
func (c apiClient) MustMetrics(tb testing.TB) map[string]float64 {
	tb.Helper()
	res, err := testHTTP.Get(c.base + "/metrics")
	require.NoError(tb, err)
	defer res.Body.Close()
	require.Equal(tb, http.StatusOK, res.StatusCode)
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		require.NoError(tb, err, "metrics line %q", line)
		out[name] += v
	}
	require.NoError(tb, sc.Err())
	return out
}

// Metering metric names (carrier.NewMetrics).
const (
	metricConsumed     = "wuyou_metering_events_consumed_total"
	metricApplied      = "wuyou_metering_events_applied_total"
	metricDuplicate    = "wuyou_metering_events_duplicate_total"
	metricLate         = "wuyou_metering_events_late_total"
	metricHeld         = "wuyou_metering_events_held_total"
	metricDeadLettered = "wuyou_metering_events_dead_lettered_total"
)

// seededSeafarer is one enrolled seafarer.
type seededSeafarer struct{ ID, MSISDN string }

// MustCompany creates a company and returns its id.
func MustCompany(tb testing.TB, c apiClient, union, name string) string {
	tb.Helper()
	var company struct{ ID string }
	c.MustCall(tb, http.StatusCreated, "POST", "/v1/companies", union, map[string]string{"name": name, "registration_no": "REG-" + name}, &company)
	return company.ID
}

// MustEnrolCrew enrols one seafarer per MSISDN with the bulk endpoint and
// returns them in the order given.
func MustEnrolCrew(tb testing.TB, c apiClient, union, companyID string, msisdns []string) []seededSeafarer {
	tb.Helper()
	rows := make([]map[string]string, len(msisdns))
	for i, m := range msisdns {
		rows[i] = map[string]string{"seafarer_book_no": "BK" + strings.TrimPrefix(m, "+"), "name": "Seafarer " + m, "msisdn": m, "nationality": "CN"}
	}
	var rep struct {
		Created int
		Failed  int
		Results []struct {
			Status string
			ID     string
		}
	}
	c.MustCall(tb, http.StatusOK, "POST", "/v1/companies/"+companyID+"/seafarers:bulk", union, rows, &rep)
	require.Equal(tb, len(msisdns), rep.Created, "every row enrolled: %+v", rep)
	out := make([]seededSeafarer, len(msisdns))
	for i, r := range rep.Results {
		require.Equal(tb, "created", r.Status)
		out[i] = seededSeafarer{ID: r.ID, MSISDN: msisdns[i]}
	}
	return out
}

// MustProgramme creates a programme of packs of packSeconds, valid 30 days,
// open for issuing since well before from.
func MustProgramme(tb testing.TB, c apiClient, union string, packSeconds int64, from time.Time) string {
	tb.Helper()
	var p struct{ ID string }
	c.MustCall(tb, http.StatusCreated, "POST", "/v1/programmes", union, map[string]any{
		"name": fmt.Sprintf("pack %ds", packSeconds), "pack_seconds": packSeconds, "valid_days": 30, "priority": 1,
		"budget_packs": 0, "starts_at": from.Add(-48 * time.Hour).UTC(), "ends_at": from.Add(90 * 24 * time.Hour).UTC(),
	}, &p)
	return p.ID
}

// MustIssue issues one pack of programmeID to each seafarer, effective at
// effective, and waits until the issuance is done.
func MustIssue(tb testing.TB, c apiClient, union, programmeID string, seafarerIDs []string, effective time.Time) {
	tb.Helper()
	var iss struct {
		ID     string
		Status string
		Issued int
		Total  int
	}
	c.MustCall(tb, http.StatusAccepted, "POST", "/v1/programmes/"+programmeID+"/issuances", union,
		map[string]any{"seafarer_ids": seafarerIDs, "effective_at": effective.UTC()}, &iss,
		"Idempotency-Key", "issue-"+programmeID)
	deadline := time.Now().Add(60 * time.Second)
	for iss.Status != "done" {
		require.True(tb, time.Now().Before(deadline), "issuance %s still %s", iss.ID, iss.Status)
		time.Sleep(50 * time.Millisecond)
		c.MustCall(tb, http.StatusOK, "GET", "/v1/issuances/"+iss.ID, union, nil, &iss)
	}
	require.Equal(tb, len(seafarerIDs), iss.Issued, "one pack each")
}

// observedAccount is what the API says about one seafarer's balance and
// ledger.
type observedAccount struct {
	Period           string
	RemainingSeconds int64 // allowance: grants active now
	UsedSeconds      int64 // allowance: billable seconds of the period
	OverageSeconds   int64 // allowance: overage seconds of the period
	// From the ledger (every debit entry, all periods):
	Debits          int
	BillableSeconds int64
	CoveredSeconds  int64
	OverageTotal    int64
	DebitEventIDs   map[string]int // event id -> debit entries carrying it
}

// MustObservedAccount reads a seafarer's allowance and pages through the
// whole ledger.
func MustObservedAccount(tb testing.TB, c apiClient, token, seafarerID string) observedAccount {
	tb.Helper()
	var a struct {
		Period           string `json:"period"`
		RemainingSeconds int64  `json:"remaining_seconds"`
		UsedSeconds      int64  `json:"used_seconds"`
		OverageSeconds   int64  `json:"overage_seconds"`
	}
	c.MustCall(tb, http.StatusOK, "GET", "/v1/seafarers/"+seafarerID+"/allowance", token, nil, &a)
	acc := observedAccount{Period: a.Period, RemainingSeconds: a.RemainingSeconds, UsedSeconds: a.UsedSeconds, OverageSeconds: a.OverageSeconds, DebitEventIDs: map[string]int{}}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(tb, pages, 1000, "ledger paging does not end")
		var page struct {
			Items []struct {
				Kind            string `json:"kind"`
				EventID         string `json:"event_id"`
				BillableSeconds int64  `json:"billable_seconds"`
				CoveredSeconds  int64  `json:"covered_seconds"`
				OverageSeconds  int64  `json:"overage_seconds"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		c.MustCall(tb, http.StatusOK, "GET", "/v1/seafarers/"+seafarerID+"/usage?limit=500&cursor="+url.QueryEscape(cursor), token, nil, &page)
		for _, e := range page.Items {
			if e.Kind != "debit" {
				continue
			}
			acc.Debits++
			acc.DebitEventIDs[e.EventID]++
			acc.BillableSeconds += e.BillableSeconds
			acc.CoveredSeconds += e.CoveredSeconds
			acc.OverageTotal += e.OverageSeconds
		}
		if page.NextCursor == "" {
			return acc
		}
		cursor = page.NextCursor
	}
}

// MustProduce writes messages to topic as the carrier would, waiting for the
// broker's acknowledgement.
func MustProduce(tb testing.TB, brokers []string, topic string, msgs []kafka.Message) {
	tb.Helper()
	if len(msgs) == 0 {
		return
	}
	w := carrier.NewWriter(brokers)
	defer w.Close()
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		m.Topic = topic
		out[i] = m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(tb, w.WriteMessages(ctx, out...))
}

// MustEndOffsets returns each partition's end offset (the offset the next
// message will get) for a topic with partitions partitions.
func MustEndOffsets(tb testing.TB, brokers []string, topic string, partitions int) []int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make([]int64, partitions)
	for p := range partitions {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		require.NoError(tb, err)
		end, err := conn.ReadLastOffset()
		conn.Close()
		require.NoError(tb, err)
		out[p] = end
	}
	return out
}

// MustReadToEnd reads every message of a topic's partitions, from the first
// to the end offset as of the call.
func MustReadToEnd(tb testing.TB, brokers []string, topic string, partitions int) []kafka.Message {
	tb.Helper()
	ends := MustEndOffsets(tb, brokers, topic, partitions)
	var out []kafka.Message
	for p, end := range ends {
		if end == 0 {
			continue
		}
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 2 << 20, MaxWait: 3 * time.Second})
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				require.NoError(tb, err, "reading %s/%d up to offset %d", topic, p, end)
				out = append(out, m)
				if m.Offset >= end-1 {
					return
				}
			}
		}()
	}
	return out
}

// committedBehind reports how many messages of topic the group has not
// committed yet; -1 when the group has committed nothing.
func committedBehind(tb testing.TB, st *wuyouStack, group, topic string, partitions int) int64 {
	tb.Helper()
	ends := MustEndOffsets(tb, st.brokers, topic, partitions)
	info := st.broker.GroupInfo(group)
	var behind int64
	for p, end := range ends {
		committed := int64(0)
		if info != nil {
			if c, ok := info.Commits[topic][int32(p)]; ok {
				committed = c.Offset
			}
		}
		if committed < end {
			behind += end - committed
		}
	}
	return behind
}

// MustWaitCommittedToEnd waits until the consumer group has committed every
// message now on topic: by the delivery guarantee, every effect of every
// message is then stored.
func MustWaitCommittedToEnd(tb testing.TB, st *wuyouStack, group, topic string, partitions int, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		behind := committedBehind(tb, st, group, topic, partitions)
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("group %s still has %d messages of %s uncommitted after %s", group, behind, topic, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MustWaitFor polls cond every 50ms until it holds or timeout passes.
func MustWaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- The independent model --------------------------------------------

// wireUsage is the part of a carrier event the model reads, decoded by the
// test itself (not by carrier.DecodeUsageEvent).
type wireUsage struct {
	ID      string    `json:"id"`
	Source  string    `json:"source"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	Data    struct {
		DurationSeconds int64  `json:"duration_seconds"`
		VisitedCountry  string `json:"visited_country"`
	} `json:"data"`
}

// modelCall is one distinct call the metering must apply.
type modelCall struct {
	ID       string
	At       time.Time
	Billable int64
}

// modelGrant is the one pack a seafarer holds in these tests.
type modelGrant struct {
	Seconds            int64
	Effective, Expires time.Time
}

// expectedAccount is what the model says one seafarer's account must show.
type expectedAccount struct {
	Debits                        int
	Billable, Covered, Overage    int64
	Remaining                     int64 // of the grant, if active at now
	UsedInPeriod, OverageInPeriod int64 // for the allowance's period
	EventIDs                      map[string]bool
	periodOfAllCalls              string // the month of every billable call
}

// billableOf rates a call as the default tariff does: a voice call away
// from home bills its duration rounded up to whole minutes; everything else
// bills nothing.
func billableOf(u wireUsage, home string) int64 {
	if u.Type != "carrier.usage.voice" || u.Data.VisitedCountry == home || u.Data.DurationSeconds <= 0 {
		return 0
	}
	return (u.Data.DurationSeconds + 59) / 60 * 60
}

// expectAccount computes a seafarer's account from its distinct calls and
// its one grant (nil for none). With a single grant the total covered does
// not depend on the order calls arrive in: every call whose time lies in the
// grant's validity draws from it until it is empty, so covered =
// min(grant, billable seconds of the calls inside its validity).
func expectAccount(calls []modelCall, g *modelGrant, now time.Time) expectedAccount {
	e := expectedAccount{Debits: len(calls), EventIDs: map[string]bool{}}
	var inside int64
	periods := map[string]bool{}
	for _, c := range calls {
		e.EventIDs[c.ID] = true
		e.Billable += c.Billable
		if g != nil && !c.At.Before(g.Effective) && c.At.Before(g.Expires) {
			inside += c.Billable
		}
		if c.Billable > 0 {
			periods[c.At.UTC().Format("2006-01")] = true
		}
	}
	if g != nil {
		e.Covered = min(g.Seconds, inside)
		if !now.Before(g.Effective) && now.Before(g.Expires) {
			e.Remaining = g.Seconds - e.Covered
		}
	}
	e.Overage = e.Billable - e.Covered
	if len(periods) == 1 {
		for p := range periods {
			e.periodOfAllCalls = p
		}
	}
	return e
}

// forPeriod fills UsedInPeriod and OverageInPeriod for the allowance's
// period. Every billable call of these tests falls in one month, so the
// period holds all of them or none.
func (e *expectedAccount) forPeriod(tb testing.TB, period string) {
	tb.Helper()
	switch {
	case e.Billable == 0 || e.periodOfAllCalls != period:
		require.True(tb, e.Billable == 0 || e.periodOfAllCalls != "", "billable calls span several months; the test's call times are wrong")
		e.UsedInPeriod, e.OverageInPeriod = 0, 0
	default:
		e.UsedInPeriod, e.OverageInPeriod = e.Billable, e.Overage
	}
}

// RequireAccountMatches compares what the API shows with the model.
func RequireAccountMatches(tb testing.TB, who string, want expectedAccount, got observedAccount) {
	tb.Helper()
	want.forPeriod(tb, got.Period)
	require.Equalf(tb, want.Debits, got.Debits, "%s: one debit ledger entry per distinct event", who)
	for id, n := range got.DebitEventIDs {
		require.Equalf(tb, 1, n, "%s: event %s debited %d times", who, id, n)
		require.Truef(tb, want.EventIDs[id], "%s: event %s debited but not expected", who, id)
	}
	require.Equalf(tb, want.Billable, got.BillableSeconds, "%s: billable seconds on the ledger", who)
	require.Equalf(tb, want.Covered, got.CoveredSeconds, "%s: covered seconds on the ledger", who)
	require.Equalf(tb, want.Overage, got.OverageTotal, "%s: overage seconds on the ledger", who)
	require.Equalf(tb, want.Remaining, got.RemainingSeconds, "%s: remaining seconds", who)
	require.Equalf(tb, want.UsedInPeriod, got.UsedSeconds, "%s: used seconds of %s", who, got.Period)
	require.Equalf(tb, want.OverageInPeriod, got.OverageSeconds, "%s: overage seconds of %s", who, got.Period)
}

// simMessage is one message the simulated carrier sent and what the model
// makes of it.
type simMessage struct {
	Msg       kafka.Message
	Kind      sim.Kind
	Malformed bool
	Late      bool // a late event or a redelivery of one
	Usage     wireUsage
	Identity  string
}

// MustSimStream generates n messages from cfg (sim.Generate) and classifies
// them: a redelivery is late when the event it repeats was.
func MustSimStream(tb testing.TB, cfg sim.Config, n int) ([]simMessage, *sim.Summary) {
	tb.Helper()
	var out []simMessage
	lateIDs := map[string]bool{}
	sum, err := sim.Generate(cfg, n, func(key, value []byte, kind sim.Kind) {
		m := simMessage{Msg: kafka.Message{Key: bytes.Clone(key), Value: bytes.Clone(value)}, Kind: kind}
		if kind == sim.Malformed {
			m.Malformed = true
			out = append(out, m)
			return
		}
		require.NoError(tb, json.Unmarshal(value, &m.Usage), "sim sent an undecodable valid event")
		m.Identity = m.Usage.Source + "\x00" + m.Usage.ID
		if kind == sim.Late {
			lateIDs[m.Identity] = true
		}
		m.Late = lateIDs[m.Identity]
		out = append(out, m)
	})
	require.NoError(tb, err)
	return out, sum
}

// distinctCalls returns, per MSISDN, the distinct calls among msgs that
// must be applied (valid and not late).
func distinctCalls(msgs []simMessage, home string) map[string][]modelCall {
	seen := map[string]bool{}
	out := map[string][]modelCall{}
	for _, m := range msgs {
		if m.Malformed || m.Late || seen[m.Identity] {
			continue
		}
		seen[m.Identity] = true
		out[m.Usage.Subject] = append(out[m.Usage.Subject], modelCall{ID: m.Usage.ID, At: m.Usage.Time, Billable: billableOf(m.Usage, home)})
	}
	return out
}

// kafkaMessages returns the wire messages of msgs.
func kafkaMessages(msgs []simMessage) []kafka.Message {
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		out[i] = m.Msg
	}
	return out
}

// MustFreeAddr returns a loopback address with a port nothing listens on.
func MustFreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	addr := l.Addr().String()
	require.NoError(tb, l.Close())
	return addr
}

// ---- Hostile input (hostile_test.go, hostile_property_test.go) ----------

// brokerMaxMessageBytes is the broker's message.max.bytes that the hostile
// tests set explicitly: Kafka's default, the bound one dead letter must fit.
const brokerMaxMessageBytes = 1048588

// MustWuyouStackWithBroker is MustWuyouStack whose broker takes extra
// options (broker configs such as message.max.bytes).
func MustWuyouStackWithBroker(tb testing.TB, usagePartitions int32, opts ...kfake.Opt) *wuyouStack {
	tb.Helper()
	rdb, prefix := redistest.MustClient(tb)
	pgURL := pgtest.MustURL(tb)
	topics := carrier.NewTopics("")
	opts = append([]kfake.Opt{kfake.NumBrokers(1),
		kfake.SeedTopics(usagePartitions, topics.Usage), kfake.SeedTopics(1, topics.All()[1:]...)}, opts...)
	broker, err := kfake.NewCluster(opts...)
	require.NoError(tb, err)
	tb.Cleanup(broker.Close)

	key, err := token.GenerateSigningKey(token.AlgES256)
	require.NoError(tb, err)
	jwks, err := token.JWKS(key)
	require.NoError(tb, err)
	jwksPath := filepath.Join(tb.TempDir(), "jwks.json")
	require.NoError(tb, os.WriteFile(jwksPath, jwks, 0o600))
	return &wuyouStack{rdb: rdb, prefix: prefix, pgURL: pgURL, broker: broker, brokers: broker.ListenAddrs(), topics: topics, key: key, jwksPath: jwksPath}
}

// MustReadFrom reads one partition of topic from offset from to its end
// offset as of the call.
func MustReadFrom(tb testing.TB, brokers []string, topic string, partition int, from int64) []kafka.Message {
	tb.Helper()
	end := MustEndOffsets(tb, brokers, topic, partition+1)[partition]
	if from >= end {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 2 << 20, MaxWait: 3 * time.Second})
	defer r.Close()
	require.NoError(tb, r.SetOffset(from))
	var out []kafka.Message
	for {
		m, err := r.ReadMessage(ctx)
		require.NoError(tb, err, "reading %s/%d from %d up to offset %d", topic, partition, from, end)
		out = append(out, m)
		if m.Offset >= end-1 {
			return out
		}
	}
}

// RequireReady requires /readyz to answer 200.
func RequireReady(tb testing.TB, c apiClient) {
	tb.Helper()
	res, err := testHTTP.Get(c.base + "/readyz")
	require.NoError(tb, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(tb, http.StatusOK, res.StatusCode, "/readyz: %s", b)
}

// RequireUsageRangeTo9999 requires a seafarer's usage over a range that
// reaches the year 9999 to answer 200.
func RequireUsageRangeTo9999(tb testing.TB, c apiClient, token, seafarerID string) {
	tb.Helper()
	q := "?from=" + url.QueryEscape("2000-01-01T00:00:00Z") + "&to=" + url.QueryEscape("9999-12-31T23:59:59Z") + "&limit=500"
	status, body := c.MustDo(tb, "GET", "/v1/seafarers/"+seafarerID+"/usage"+q, token, nil, nil)
	require.Equal(tb, http.StatusOK, status, "usage up to 9999: %s", body)
}

// notification is one message of wuyou.notifications.v1, as the test reads it.
type notification struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Source  string          `json:"source"`
	Data    json.RawMessage `json:"data"`
	Key     string          `json:"-"`
}

// MustNotifications reads every notification of the given types.
func MustNotifications(tb testing.TB, st *wuyouStack, types ...string) []notification {
	tb.Helper()
	want := map[string]bool{}
	for _, t := range types {
		want[t] = true
	}
	var out []notification
	for _, m := range MustReadToEnd(tb, st.brokers, st.topics.Notifications, 1) {
		var n notification
		require.NoError(tb, json.Unmarshal(m.Value, &n), "notification %q", m.Value)
		n.Key = string(m.Key)
		if want[n.Type] {
			out = append(out, n)
		}
	}
	return out
}

// RequireSameIDSameData requires every repeat of a notification id to carry
// the same type, subject and data as its first copy, and returns the first
// copy of each id in the order they first appeared.
func RequireSameIDSameData(tb testing.TB, ns []notification) []notification {
	tb.Helper()
	first := map[string]notification{}
	var distinct []notification
	for _, n := range ns {
		f, seen := first[n.ID]
		if !seen {
			first[n.ID] = n
			distinct = append(distinct, n)
			continue
		}
		require.Equal(tb, f.Type, n.Type, "notification %s repeated with another type", n.ID)
		require.Equal(tb, f.Subject, n.Subject, "notification %s repeated with another subject", n.ID)
		require.JSONEq(tb, string(f.Data), string(n.Data), "notification %s repeated with other data", n.ID)
	}
	return distinct
}

// MustLedgerExplainEveryBalance pages through GET /v1/ops/ledger-audit
// (what `wuyouctl audit` reads) and requires every seafarer's balance to be
// explained by its ledger: per grant, granted − drawn − voided = remaining,
// and every remembered event identity has its debit entry. It returns how
// many seafarers were checked.
func MustLedgerExplainEveryBalance(tb testing.TB, c apiClient, union string) int {
	tb.Helper()
	checked, cursor := 0, ""
	for pages := 0; ; pages++ {
		require.Less(tb, pages, 1000, "ledger audit paging does not end")
		var page struct {
			Items []struct {
				SeafarerID  string            `json:"seafarer_id"`
				OK          bool              `json:"ok"`
				Differences []json.RawMessage `json:"differences"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		c.MustCall(tb, http.StatusOK, "GET", "/v1/ops/ledger-audit?limit=500&cursor="+url.QueryEscape(cursor), union, nil, &page)
		for _, it := range page.Items {
			checked++
			require.Truef(tb, it.OK, "seafarer %s: balance not explained by the ledger: %s", it.SeafarerID, it.Differences)
		}
		if page.NextCursor == "" {
			return checked
		}
		cursor = page.NextCursor
	}
}

// RequireEveryPromiseKept checks, after a stream and its faults, every
// promise made about it, not balances only: each account (balance, used
// and overage, one ledger entry per call) equals the model; each
// programme's seconds_used and statements count exactly what its packs
// covered; every seafarer who ran out was notified; and the ledger audit
// explains every balance.
func RequireEveryPromiseKept(tb testing.TB, st *wuyouStack, c apiClient, union string, crew []seededSeafarer,
	grants map[string]*modelGrant, programmeOf map[string]string, calls map[string][]modelCall) {
	tb.Helper()
	now := time.Now()
	coveredByProgramme := map[string]int64{}
	exhausted := map[string]bool{} // MSISDNs whose pack the stream used up
	for _, sf := range crew {
		want := expectAccount(calls[sf.MSISDN], grants[sf.ID], now)
		got := MustObservedAccount(tb, c, union, sf.ID)
		RequireAccountMatches(tb, sf.MSISDN, want, got)
		coveredByProgramme[programmeOf[sf.ID]] += want.Covered
		if want.Covered == grants[sf.ID].Seconds {
			exhausted[sf.MSISDN] = true
		}
	}
	periods := map[string]bool{}
	for _, cs := range calls {
		for _, call := range cs {
			periods[billing.PeriodOf(call.At)] = true
		}
	}
	for programmeID, covered := range coveredByProgramme {
		var prog struct {
			SecondsUsed int64 `json:"seconds_used"`
		}
		c.MustCall(tb, http.StatusOK, "GET", "/v1/programmes/"+programmeID, union, nil, &prog)
		require.Equal(tb, covered, prog.SecondsUsed, "programme %s: seconds_used is exactly what its packs covered", programmeID)
		var stated int64
		for period := range periods {
			var s struct {
				CoveredSeconds int64 `json:"covered_seconds"`
			}
			c.MustCall(tb, http.StatusOK, "GET", "/v1/statements?period="+period+"&payer=programme:"+programmeID, union, nil, &s)
			stated += s.CoveredSeconds
		}
		require.Equal(tb, covered, stated, "programme %s: its statements count exactly what its packs covered", programmeID)
	}
	notified := map[string]bool{}
	for _, m := range MustReadToEnd(tb, st.brokers, st.topics.Notifications, 1) {
		var ev struct{ Type, Subject string }
		require.NoError(tb, json.Unmarshal(m.Value, &ev))
		if ev.Type == "wuyou.quota.exhausted" {
			notified[ev.Subject] = true
		}
	}
	var unnotified []string
	for m := range exhausted {
		if !notified[m] {
			unnotified = append(unnotified, m)
		}
	}
	require.Empty(tb, unnotified, "every seafarer who ran out was notified (%d ran out)", len(exhausted))
	audited := MustLedgerExplainEveryBalance(tb, c, union)
	require.GreaterOrEqual(tb, audited, len(crew), "every seafarer with grants was audited")
}
