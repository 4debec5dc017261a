package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

// logBuffer collects a server's log lines, safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines are the JSON log lines written so far.
func (b *logBuffer) lines(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(tb, json.Unmarshal([]byte(l), &m), "log line %q is not JSON", l)
		out = append(out, m)
	}
	return out
}

// MustCapturedLog is a debug-level JSON logger writing to a buffer.
func MustCapturedLog(tb testing.TB) (*slog.Logger, *logBuffer) {
	tb.Helper()
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// MustListen serves f's server on a loopback port, as wuyoud does, and
// returns its base URL.
func MustListen(tb testing.TB, f *apiFixture) string {
	tb.Helper()
	addr, err := f.server.Listen("127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.server.Shutdown(ctx)
	})
	return "http://" + addr.String()
}

// mixedTraffic is ordinary traffic: every method, found and not found,
// several routes, an MSISDN in a path.
func mixedTraffic(f *apiFixture) []apiRequest {
	return []apiRequest{
		{method: http.MethodGet, path: "/healthz"},
		{method: http.MethodDelete, path: "/v1/companies/" + f.companyA.ID, token: f.union},
		{method: http.MethodGet, path: "/v1/companies/" + f.companyA.ID, token: f.union},
		{method: http.MethodGet, path: "/v1/companies/" + f.companyA.ID, token: f.union},
		{method: http.MethodPost, path: "/v1/companies", token: f.union, contentType: fiber.MIMEApplicationJSON,
			body: []byte(`{"name":"Gamma Lines","registration_no":"REG-G"}`)},
		{method: http.MethodPatch, path: "/v1/seafarers/" + f.a1.ID, token: f.union, contentType: fiber.MIMEApplicationJSON,
			body: []byte(`{"vessel_name":"Ever Given"}`)},
		{method: http.MethodGet, path: "/v1/carrier/subscribers/" + msisdnPath(f.a1.MSISDN) + "/allowance", token: f.carrierToken},
		{method: http.MethodGet, path: "/v1/seafarers/no-such-seafarer", token: f.union},
		{method: http.MethodGet, path: "/no/such/route"},
		{method: http.MethodPut, path: "/v1/companies/" + f.companyA.ID, token: f.union},
		{method: http.MethodGet, path: "/v1/me/allowance", token: f.seafarerA1},
		{method: http.MethodHead, path: "/healthz"},
		{method: http.MethodOptions, path: "/v1/companies"},
	}
}

// send makes r over client to base.
func send(tb testing.TB, client *http.Client, base string, r apiRequest) (int, http.Header, []byte) {
	tb.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, base+r.path, body)
	require.NoError(tb, err)
	if r.contentType != "" {
		req.Header.Set(fiber.HeaderContentType, r.contentType)
	}
	if r.token != "" {
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	require.NoError(tb, err, "%s %s", r.method, r.path)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	return res.StatusCode, res.Header, b
}

var httpMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodConnect: true, http.MethodOptions: true, http.MethodTrace: true,
}

func TestMetricsStayScrapableAfterMixedTrafficOnKeepAliveConnections(t *testing.T) {
	f := MustAPIFixture(t)
	base := MustListen(t, f)
	client := &http.Client{Timeout: 10 * time.Second} // keep-alive: fiber reuses one connection's buffers

	for round := 0; round < 3; round++ {
		for _, r := range mixedTraffic(f) {
			send(t, client, base, r)
		}
		status, _, body := send(t, client, base, apiRequest{method: http.MethodGet, path: "/metrics"})
		require.Equal(t, http.StatusOK, status, "scrape %d: %s", round, body)

		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		require.NoError(t, err, "scrape %d does not parse:\n%s", round, body)
		latency := families["wuyou_http_request_duration_seconds"]
		require.NotNil(t, latency, "scrape %d has no request latency", round)
		seen := map[string]bool{}
		for _, m := range latency.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			require.True(t, httpMethods[labels["method"]], "method label %q is not an HTTP method", labels["method"])
			require.True(t, strings.HasPrefix(labels["route"], "/"), "route label %q", labels["route"])
			series := fmt.Sprint(labels)
			require.False(t, seen[series], "series %s appears twice", series)
			seen[series] = true
		}
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
			require.Contains(t, string(body), `method="`+m+`"`)
		}

		// promlint is the linter `promtool check metrics` runs; promtool
		// itself also runs when it is installed.
		problems, err := promlint.New(bytes.NewReader(body)).Lint()
		require.NoError(t, err, "scrape %d does not lint", round)
		require.Empty(t, problems, "scrape %d: promlint problems", round)
		if promtool, err := exec.LookPath("promtool"); err == nil {
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = bytes.NewReader(body)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "promtool check metrics:\n%s", out)
		} else {
			t.Log("promtool not installed; checked with expfmt and promlint")
		}
	}
}

func TestEveryRequestHasAnIDEchoedInTheResponseTheAccessLogAndProblems(t *testing.T) {
	log, logs := MustCapturedLog(t)
	f := MustAPIFixtureLogging(t, log)

	for _, tc := range []struct {
		name, sent string
		kept       bool
	}{
		{name: "none sent: a new one", sent: ""},
		{name: "a sane one is kept", sent: "req-2026-12-02.abc_DEF:1", kept: true},
		{name: "128 characters are kept", sent: strings.Repeat("a", 128), kept: true},
		{name: "129 characters are replaced", sent: strings.Repeat("a", 129)},
		{name: "non-ASCII is replaced", sent: "réq-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := map[string]string{}
			if tc.sent != "" {
				header[fiber.HeaderXRequestID] = tc.sent
			}
			status, h, body := f.do(t, apiRequest{method: http.MethodGet, path: "/v1/companies/no-such-company", token: f.union, header: header})
			require.Equal(t, http.StatusNotFound, status, "%s", body)
			id := h.Get(fiber.HeaderXRequestID)
			require.NotEmpty(t, id)
			require.True(t, saneRequestID(id))
			if tc.kept {
				require.Equal(t, tc.sent, id)
			} else {
				require.NotEqual(t, tc.sent, id)
			}
			p := decodeProblem(t, h, body)
			require.Equal(t, id, p.RequestID, "problem+json request_id")
			require.Contains(t, string(body), `"request_id":"`+id+`"`)

			var line map[string]any
			for _, l := range logs.lines(t) {
				if l["msg"] == "request" && l["request_id"] == id {
					line = l
				}
			}
			require.NotNil(t, line, "no access log line with request_id %q in\n%s", id, logs)
			require.Equal(t, "GET", line["method"])
			require.Equal(t, "/v1/companies/:id", line["route"])
			require.EqualValues(t, http.StatusNotFound, line["status"])
			require.IsType(t, float64(0), line["duration_ms"], "duration in milliseconds, a number")
		})
	}

	t.Run("the carrier's allowance is logged by route, without the MSISDN", func(t *testing.T) {
		status, h, body := f.do(t, apiRequest{method: http.MethodGet,
			path: "/v1/carrier/subscribers/" + msisdnPath(f.a1.MSISDN) + "/allowance", token: f.carrierToken})
		require.Equal(t, http.StatusOK, status, "%s", body)
		id := h.Get(fiber.HeaderXRequestID)
		require.Contains(t, logs.String(), `"route":"/v1/carrier/subscribers/:msisdn/allowance"`)
		require.Contains(t, logs.String(), id)
		requireNoPersonalData(t, logs.String(), f.a1.MSISDN, strings.TrimPrefix(f.a1.MSISDN, "+"))
	})
}

// requireNoPersonalData fails if logs hold any of personal.
func requireNoPersonalData(t *testing.T, logs string, personal ...string) {
	t.Helper()
	for _, p := range personal {
		require.NotContains(t, logs, p, "the logs hold personal data")
	}
}

// deadStores are a registry over a PostgreSQL and a quota store over a
// Redis that do not answer.
func deadStores(t *testing.T) (*crew.PGStore, *quota.RedisStore) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	pool, err := pgxpool.New(context.Background(), "postgres://wuyou@127.0.0.1:1/dead?sslmode=disable&connect_timeout=1")
	require.NoError(t, err) // connects on first use
	t.Cleanup(pool.Close)
	return crew.NewPGStore(pool, wuyou.SystemClock), quota.NewRedisStore(rdb, "dead:", wuyou.SystemClock, quota.Options{})
}

func TestLogsHoldNoMSISDNNameOrCalledNumberWhateverFails(t *testing.T) {
	log, logs := MustCapturedLog(t)
	f := MustAPIFixtureLogging(t, log)
	// The same verifier in front of a PostgreSQL and a Redis that are down:
	// every read is 503.
	deadCrew, deadQuota := deadStores(t)
	down := New(Config{Crew: deadCrew, Quota: deadQuota, Verifier: f.server.cfg.Verifier, Log: log,
		Ready: map[string]func(context.Context) error{"redis": func(context.Context) error { return fmt.Errorf("dial tcp 127.0.0.1:1: connection refused") }}})
	downFixture := &apiFixture{app: down.App()}

	unknown := "+8613712345678"
	enrolment := func(name, msisdn string) []byte {
		return mustJSON(t, map[string]string{"seafarer_book_no": fmt.Sprintf("X-%d", f.next()), "name": name, "msisdn": msisdn})
	}
	for _, tc := range []struct {
		name string
		on   *apiFixture
		req  apiRequest
		want int
	}{
		{"an unknown MSISDN", f, apiRequest{method: http.MethodGet, path: "/v1/carrier/subscribers/" + msisdnPath(unknown) + "/allowance", token: f.carrierToken}, 404},
		{"a known MSISDN while the stores are down", downFixture, apiRequest{method: http.MethodGet, path: "/v1/carrier/subscribers/" + msisdnPath(f.a1.MSISDN) + "/allowance", token: f.carrierToken}, 503},
		{"a seafarer while the stores are down", downFixture, apiRequest{method: http.MethodGet, path: "/v1/seafarers/" + f.a2.ID + "/usage", token: f.union}, 503},
		{"an enrolment while the stores are down", downFixture, apiRequest{method: http.MethodPost, path: "/v1/companies/" + f.companyA.ID + "/seafarers", token: f.union,
			contentType: fiber.MIMEApplicationJSON, body: enrolment("Zhao Lei", "+8613611112222")}, 503},
		{"readiness while the stores are down", downFixture, apiRequest{method: http.MethodGet, path: "/readyz"}, 503},
		{"an MSISDN in a path no route has", f, apiRequest{method: http.MethodGet, path: "/v1/subscribers/" + msisdnPath(f.b1.MSISDN), token: f.union}, 404},
		{"an MSISDN owned by another seafarer", f, apiRequest{method: http.MethodPost, path: "/v1/companies/" + f.companyA.ID + "/seafarers", token: f.union,
			contentType: fiber.MIMEApplicationJSON, body: enrolment("Sun Yu", f.b2.MSISDN)}, 409},
		{"a malformed MSISDN", f, apiRequest{method: http.MethodPatch, path: "/v1/seafarers/" + f.a2.ID, token: f.union,
			contentType: fiber.MIMEApplicationJSON, body: []byte(`{"msisdn":"13500001111"}`)}, 400},
		{"a bad bulk row", f, apiRequest{method: http.MethodPost, path: "/v1/companies/" + f.companyA.ID + "/seafarers:bulk", token: f.union,
			contentType: "text/csv", body: []byte("seafarer_book_no,name,msisdn\nX-1,Qian Hao,+86135\n")}, 200},
		{"a company's token on another company's seafarer", f, apiRequest{method: http.MethodGet, path: "/v1/seafarers/" + f.b1.ID + "/usage", token: f.companyAToken}, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := tc.on.do(t, tc.req)
			require.Equal(t, tc.want, status, "%s", body)
		})
	}
	require.Contains(t, logs.String(), "dependency unavailable", "the failures were logged")
	requireNoPersonalData(t, logs.String(),
		unknown, f.a1.MSISDN, f.a2.MSISDN, f.b1.MSISDN, f.b2.MSISDN, "8613611112222", "13500001111", "+86135",
		f.a1.Name, f.a2.Name, f.b1.Name, "Zhao Lei", "Sun Yu", "Qian Hao", calledNumber)
}
