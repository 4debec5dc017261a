package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// harness is a running wuyoud against a real Redis, its own PostgreSQL
// database and an in-process Kafka-protocol broker, reached over real HTTP and Kafka connections.
type harness struct {
	t       *testing.T
	svc     *service
	base    string
	key     *token.SigningKey
	broker  *kfake.Cluster
	topics  carrier.Topics
	cfg     Config
	logs    *syncBuffer // wuyoud's JSON log, at debug
	started time.Time
	rdb     redis.UniversalClient
}

const testIssuer = "https://issuer.test"

func mustHarness(t *testing.T) *harness {
	t.Helper()
	rdb, prefix := redistest.MustClient(t)
	topics := carrier.NewTopics("")
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics.Usage), kfake.SeedTopics(1, topics.All()[1:]...))
	require.NoError(t, err)
	t.Cleanup(broker.Close)

	key, err := token.GenerateSigningKey("ES256")
	require.NoError(t, err)
	jwks, err := token.JWKS(key)
	require.NoError(t, err)
	jwksPath := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(jwksPath, jwks, 0o600))

	env := map[string]string{
		"WUYOU_HTTP_ADDR":     "127.0.0.1:0",
		"WUYOU_REDIS_ADDRS":   strings.Join(redistest.Addrs(), ","), // all of them: several mean Redis Cluster
		"WUYOU_REDIS_PREFIX":  prefix,
		"WUYOU_POSTGRES_URL":  pgtest.MustURL(t),
		"WUYOU_KAFKA_BROKERS": broker.ListenAddrs()[0],
		"WUYOU_KAFKA_GROUP":   "e2e",
		"WUYOU_JWT_JWKS":      jwksPath,
		"WUYOU_JWT_ISSUER":    testIssuer,
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	// The log is wuyoud's own (JSON, durations as text), kept at debug so
	// a test can read every line the run wrote.
	logs := &syncBuffer{}
	var logTo io.Writer = logs
	if testing.Verbose() {
		logTo = io.MultiWriter(logs, os.Stderr)
	}
	log := newLogger(logTo, slog.LevelDebug)
	// The service dials Redis itself from the configuration; rdb is the
	// test's own view of the same keys.
	svc, err := start(context.Background(), cfg, deps{}, log)
	require.NoError(t, err)
	h := &harness{t: t, svc: svc, base: "http://" + svc.addr.String(), key: key, broker: broker, topics: topics, cfg: cfg, logs: logs, started: time.Now(), rdb: rdb}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, svc.stop(ctx), "graceful stop")
	})
	return h
}

func (h *harness) token(role, sub, companyID string) string {
	h.t.Helper()
	tok, err := h.key.Mint(token.Claims{Issuer: testIssuer, Audience: "wuyou", Subject: sub, Role: role, CompanyID: companyID, TTL: time.Hour}, time.Now())
	require.NoError(h.t, err)
	return tok
}

// call sends a request and decodes the JSON answer into out (if not nil),
// returning the status.
func (h *harness) call(method, path, token string, body any, out any, headers ...string) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(h.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	require.NoError(h.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(h.t, err)
	if out != nil && res.StatusCode < 300 {
		require.NoError(h.t, json.Unmarshal(b, out), "body: %s", b)
	}
	if res.StatusCode >= 300 && testing.Verbose() {
		h.t.Logf("%s %s -> %d %s", method, path, res.StatusCode, b)
	}
	return res.StatusCode
}

// produce publishes usage events on carrier.usage.v1 as the carrier would.
func (h *harness) produce(events ...carrier.UsageEvent) {
	h.t.Helper()
	w := carrier.NewWriter(h.cfg.KafkaBrokers)
	defer w.Close()
	msgs := make([]kafka.Message, len(events))
	for i, ev := range events {
		b, err := json.Marshal(ev)
		require.NoError(h.t, err)
		msgs[i] = kafka.Message{Topic: h.topics.Usage, Key: []byte(ev.Subject), Value: b}
	}
	require.NoError(h.t, w.WriteMessages(context.Background(), msgs...))
}

func voiceCall(id, msisdn string, at time.Time, seconds int64, country string) carrier.UsageEvent {
	return carrier.UsageEvent{
		SpecVersion: "1.0", ID: id, Source: "urn:carrier:test", Type: carrier.TypeVoice, Time: at.UTC().Truncate(time.Second), Subject: msisdn,
		Data: carrier.UsageData{CallID: "c-" + id, Direction: "MO", DurationSeconds: seconds, CalledNumber: "+861012345678", VisitedCountry: country, Network: "terrestrial"},
	}
}

type allowanceBody struct {
	SeafarerID       string `json:"seafarer_id"`
	RemainingSeconds int64  `json:"remaining_seconds"`
	RemainingMinutes int64  `json:"remaining_minutes"`
	UsedSeconds      int64  `json:"used_seconds"`
	OverageSeconds   int64  `json:"overage_seconds"`
	Grants           []struct {
		ID               string `json:"id"`
		RemainingSeconds int64  `json:"remaining_seconds"`
		Status           string `json:"status"`
	} `json:"grants"`
}

// waitAllowance polls until the seafarer's used seconds reach want.
func (h *harness) waitUsed(seafarerID, token string, want int64) allowanceBody {
	h.t.Helper()
	var a allowanceBody
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		require.Equal(h.t, http.StatusOK, h.call("GET", "/v1/seafarers/"+seafarerID+"/allowance", token, nil, &a))
		if a.UsedSeconds >= want {
			return a
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("used seconds of %s stayed at %d, want %d", seafarerID, a.UsedSeconds, want)
	return a
}

// TestThinPath_CallIsMeteredFromCarrierEventToAllowance walks the whole path
// over HTTP, Kafka and Redis: company → seafarer → programme → pack → a
// carrier voice event → the allowance shows the call drawn, rounded up to
// whole minutes; a duplicate of the event changes nothing.
func TestThinPath_CallIsMeteredFromCarrierEventToAllowance(t *testing.T) {
	h := mustHarness(t)
	union := h.token(token.RoleUnion, "staff-1", "")

	var company struct{ ID string }
	require.Equal(t, http.StatusCreated, h.call("POST", "/v1/companies", union, map[string]string{"name": "Ocean Crew Ltd", "registration_no": "REG-1"}, &company))
	companyTok := h.token(token.RoleCompany, "manager", company.ID)

	var sf struct {
		ID     string
		Status string
	}
	require.Equal(t, http.StatusCreated, h.call("POST", "/v1/companies/"+company.ID+"/seafarers", companyTok, map[string]string{
		"seafarer_book_no": "B1234567", "name": "张伟", "msisdn": "+8613900000001", "nationality": "CN", "vessel_imo": "9074729",
	}, &sf))
	require.Equal(t, "active", sf.Status)

	var prog struct{ ID string }
	require.Equal(t, http.StatusCreated, h.call("POST", "/v1/programmes", union, map[string]any{
		"name": "Q4 pack", "pack_seconds": 1800, "valid_days": 30, "priority": 1, "budget_packs": 10,
		"starts_at": time.Now().Add(-time.Hour).UTC(), "ends_at": time.Now().Add(90 * 24 * time.Hour).UTC(),
	}, &prog))
	var iss struct {
		Status string
		Issued int64
	}
	require.Equal(t, http.StatusAccepted, h.call("POST", "/v1/programmes/"+prog.ID+"/issuances", union,
		map[string]any{"seafarer_ids": []string{sf.ID}}, &iss, "Idempotency-Key", "k-1"))
	require.Equal(t, "done", iss.Status)
	require.EqualValues(t, 1, iss.Issued)

	seafarerTok := h.token(token.RoleSeafarer, sf.ID, "")
	var before allowanceBody
	require.Equal(t, http.StatusOK, h.call("GET", "/v1/me/allowance", seafarerTok, nil, &before))
	require.EqualValues(t, 1800, before.RemainingSeconds)

	// 125 s abroad bills 180 s (rounded up to whole minutes); sent twice.
	call := voiceCall("cdr-1", "+8613900000001", time.Now().Add(time.Second), 125, "SG")
	h.produce(call, call)
	after := h.waitUsed(sf.ID, seafarerTok, 180)
	require.EqualValues(t, 1800-180, after.RemainingSeconds)
	require.EqualValues(t, (1800-180)/60, after.RemainingMinutes)

	// The duplicate arrives again later; a second, different call follows.
	// Once the second call shows, the duplicate must have been refused.
	h.produce(call, voiceCall("cdr-2", "+8613900000001", time.Now().Add(2*time.Second), 60, "JP"))
	after = h.waitUsed(sf.ID, seafarerTok, 240)
	require.EqualValues(t, 240, after.UsedSeconds, "the duplicated event was applied once")
	require.EqualValues(t, 1800-240, after.RemainingSeconds)

	var carrierView struct {
		MSISDN           string `json:"msisdn"`
		RemainingSeconds int64  `json:"remaining_seconds"`
	}
	require.Equal(t, http.StatusOK, h.call("GET", "/v1/carrier/subscribers/%2B8613900000001/allowance", h.token(token.RoleCarrier, "cmcc", ""), nil, &carrierView))
	require.EqualValues(t, 1800-240, carrierView.RemainingSeconds)
	require.Equal(t, "+8613900000001", carrierView.MSISDN)

	var usage struct {
		Items []struct {
			Kind           string `json:"kind"`
			EventID        string `json:"event_id"`
			CoveredSeconds int64  `json:"covered_seconds"`
			CalledNumber   string `json:"called_number"`
		} `json:"items"`
	}
	// The allowance shows a debit as soon as Redis applied it; its ledger
	// entry is in PostgreSQL when the batch is stored, a moment later.
	MustWaitFor(t, 10*time.Second, "cdr-2's entry in the ledger", func() bool {
		usage.Items = nil
		return h.call("GET", "/v1/seafarers/"+sf.ID+"/usage", companyTok, nil, &usage) == http.StatusOK && len(usage.Items) == 3
	})
	require.Len(t, usage.Items, 3, "two debits and the grant")
	require.Equal(t, "cdr-2", usage.Items[0].EventID, "newest first")
	require.Equal(t, "*********5678", usage.Items[0].CalledNumber, "companies never see called numbers")

	// The usage comes from PostgreSQL, the system of record: Redis holds
	// only the seafarer's hot state (grants, remembered events, this month's
	// figures, notification marks), no ledger and no profile, and no
	// record is left pending once the batch was stored and published.
	tag := crew.SeafarerTag(h.cfg.RedisPrefix, sf.ID)
	held, err := redistest.Keys(context.Background(), h.rdb, tag+":*")
	require.NoError(t, err)
	var kinds []string
	for _, k := range held {
		kinds = append(kinds, strings.TrimPrefix(k, tag+":"))
	}
	require.ElementsMatch(t, []string{"g", "seen", "m:" + billing.PeriodOf(time.Now())}, kinds, "the seafarer's keys in Redis")

	// The grant, cdr-1 and cdr-2, each under its deterministic id. A refusal
	// of cdr-1 made while its entry was still pending republishes it under
	// the same id (so a crash before publishing loses nothing); once it is
	// recorded, a refusal publishes nothing.
	types := map[string]string{}
	MustWaitFor(t, 10*time.Second, "the ledger topic", func() bool {
		for _, m := range MustReadToEnd(t, h.cfg.KafkaBrokers, h.topics.Ledger, 1) {
			var ev struct{ ID, Type string }
			require.NoError(t, json.Unmarshal(m.Value, &ev))
			types[ev.ID] = ev.Type
		}
		return len(types) >= 3
	})
	require.Len(t, types, 3, "one grant and two debits, under deterministic ids")
	require.Equal(t, "wuyou.ledger.debit", types[quota.DebitEntryID("urn:carrier:test", "cdr-1")])
	require.Equal(t, "wuyou.ledger.debit", types[quota.DebitEntryID("urn:carrier:test", "cdr-2")])

	h.RequireLogWithoutPersonalData(t, "+8613900000001", "8613900000001", "张伟", "+861012345678", "861012345678")
}

// RequireLogWithoutPersonalData checks the log of the run so far: every
// line is one JSON object (go-redis' lines too), and none holds any of
// personal (MSISDNs, names, called numbers: CONTRACT §7.6).
func (h *harness) RequireLogWithoutPersonalData(tb testing.TB, personal ...string) {
	tb.Helper()
	logs := h.logs.String()
	require.NotEmpty(tb, MustJSONLines(tb, logs), "the run logged nothing")
	for _, p := range personal {
		require.NotContains(tb, logs, p, "the log holds personal data")
	}
}

// TestMalformedEventIsDeadLetteredAndTheConsumerMovesOn: a bad event lands on
// the DLQ with its original bytes and reasons, and the next good one is applied.
func TestMalformedEventIsDeadLetteredAndTheConsumerMovesOn(t *testing.T) {
	h := mustHarness(t)
	union := h.token(token.RoleUnion, "staff-1", "")
	var company struct{ ID string }
	require.Equal(t, http.StatusCreated, h.call("POST", "/v1/companies", union, map[string]string{"name": "Blue Sea", "registration_no": "REG-2"}, &company))
	var sf struct{ ID string }
	require.Equal(t, http.StatusCreated, h.call("POST", "/v1/companies/"+company.ID+"/seafarers", union, map[string]string{
		"seafarer_book_no": "B7654321", "name": "Li Na", "msisdn": "+8613900000002",
	}, &sf))

	w := carrier.NewWriter(h.cfg.KafkaBrokers)
	defer w.Close()
	bad := []byte(`{"specversion":"1.0","id":"x"`)
	require.NoError(t, w.WriteMessages(context.Background(), kafka.Message{Topic: h.topics.Usage, Key: []byte("+8613900000002"), Value: bad}))
	h.produce(voiceCall("cdr-ok", "+8613900000002", time.Now(), 61, "NL"))
	a := h.waitUsed(sf.ID, union, 120)
	require.EqualValues(t, 120, a.OverageSeconds, "no grants: the whole call is overage")

	dlq := readTopic(t, h.cfg.KafkaBrokers, h.topics.DeadLetter, 1)
	require.Equal(t, bad, dlq[0].Value, "original bytes kept")
	headers := map[string]string{}
	for _, hd := range dlq[0].Headers {
		headers[hd.Key] = string(hd.Value)
	}
	require.Equal(t, "malformed_json", headers["error_code"])
	require.NotEmpty(t, headers["error"])
	h.RequireLogWithoutPersonalData(t, "+8613900000002", "8613900000002", "Li Na", "+861012345678")
}

// readTopic reads at least n messages from the start of a topic.
func readTopic(t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 3 * time.Second})
	defer r.Close()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, fmt.Sprintf("reading %s: got %d of %d", topic, len(out), n))
		out = append(out, m)
	}
	return out
}
