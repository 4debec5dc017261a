package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// A seafarer sets their own lang (issue 17): PATCH /v1/seafarers/{own id}
// and PATCH /v1/me, with a body of exactly {"lang"}.

// patch sends a PATCH with a JSON body to the server.
func patch(t *testing.T, f *apiFixture, path, tok, body string) (int, http.Header, []byte) {
	t.Helper()
	req := httptest.NewRequest("PATCH", path, strings.NewReader(body))
	req.Header.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	req.Header.Set(fiber.HeaderAuthorization, "Bearer "+tok)
	res, err := f.app.Test(req, 10_000)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, b
}

// langOf reads a seafarer's lang from the registry.
func langOf(t *testing.T, f *apiFixture, id string) string {
	t.Helper()
	sf, err := f.crew.Seafarer(context.Background(), id)
	require.NoError(t, err)
	return sf.Lang
}

// capturedProducer keeps what is published.
type capturedProducer struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (p *capturedProducer) WriteMessages(_ context.Context, ms ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, ms...)
	return nil
}

// lowNotification meters a call that takes A1 below 20% of their pack and
// records it as wuyoud records a debit (the langs read from the registry),
// and returns the wuyou.quota.low notification's data.
func lowNotification(t *testing.T, f *apiFixture, eventID string, seconds int64) map[string]any {
	t.Helper()
	ctx := context.Background()
	producer := &capturedProducer{}
	topics := carrier.NewTopics("")
	recorder := carrier.LedgerRecorder{Ledger: f.ledger, Publisher: carrier.NewPublisher(producer, topics, time.Now), Hot: f.quota, Langs: f.crew}
	u := quota.Usage{
		SeafarerID: f.a1.ID, MSISDN: f.a1.MSISDN, Source: "urn:carrier:test", EventID: eventID,
		Type: "carrier.usage.voice", CallTime: time.Now().UTC(), DurationSeconds: seconds, BillableSeconds: seconds,
		CalledNumber: calledNumber, VisitedCountry: "SG", OveragePrice: billing.Money{Minor: 300, Currency: "CNY"}, Increment: 60,
	}
	res, err := f.quota.Debit(ctx, u)
	require.NoError(t, err)
	require.NoError(t, recorder.RecordDebit(ctx, u, res))
	for _, m := range producer.msgs {
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		if ev.Type == carrier.NotifyQuotaLow {
			return ev.Data
		}
	}
	t.Fatalf("no wuyou.quota.low among %d messages", len(producer.msgs))
	return nil
}

func TestASeafarerSetsTheirOwnLangAndTheNextNotificationSpeaksIt(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	require.Equal(t, wuyou.LangZH, langOf(t, f, f.a1.ID), "enrolled with the default")

	status, _, body := patch(t, f, "/v1/me", f.seafarerA1, `{"lang":"en"}`)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var got struct {
		ID, Lang, MSISDN string
	}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, f.a1.ID, got.ID)
	require.Equal(t, wuyou.LangEN, got.Lang)
	require.Equal(t, wuyou.LangEN, langOf(t, f, f.a1.ID))

	// A1 holds one pack of 3600 s (the seeded call came before it): 3000 s
	// leave 600, below 20%. The notification speaks English.
	data := lowNotification(t, f, "cdr-after-lang", 3000)
	require.Equal(t, wuyou.LangEN, data["lang"])
	require.True(t, strings.HasPrefix(data["text"].(string), "Wuyou: 10 min of calls left, expires "), data["text"])

	// The same through PATCH /v1/seafarers/{own id}; the tag is read
	// case-insensitively.
	status, _, body = patch(t, f, "/v1/seafarers/"+f.a1.ID, f.seafarerA1, `{"lang":"ZH-cn"}`)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.Equal(t, wuyou.LangZH, langOf(t, f, f.a1.ID))

	// The change is on the audit trail, by the seafarer.
	status, _, body = f.do(t, apiRequest{method: "GET", path: "/v1/audit?resource=seafarers/" + f.a1.ID, token: f.union})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var trail struct {
		Items []struct {
			Actor   wuyou.Actor `json:"actor"`
			Summary string      `json:"summary"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal(body, &trail))
	require.Len(t, trail.Items, 2)
	for _, r := range trail.Items {
		require.Equal(t, token.RoleSeafarer, r.Actor.Role)
		require.Equal(t, f.a1.ID, r.Actor.Sub)
		require.Equal(t, "set lang", r.Summary)
	}
}

func TestASeafarerMayChangeOnlyTheirLang(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	before, err := f.crew.Seafarer(context.Background(), f.a1.ID)
	require.NoError(t, err)
	for _, path := range []string{"/v1/me", "/v1/seafarers/" + f.a1.ID} {
		for _, tc := range []struct{ name, body, names string }{
			{"msisdn", `{"msisdn":"+8613811112222"}`, "msisdn"},
			{"status", `{"status":"signed_off"}`, "status"},
			{"sign_off", `{"sign_off":"2026-12-31"}`, "sign_off"},
			{"sign_off cleared", `{"sign_off":null}`, "sign_off"},
			{"lang with another field", `{"lang":"en","vessel_name":"MV Elsewhere"}`, "vessel_name"},
			{"a field no one may set", `{"company_id":"co_other","lang":"en"}`, "company_id"},
		} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				status, header, body := patch(t, f, path, f.seafarerA1, tc.body)
				require.Equal(t, http.StatusForbidden, status, "%s", body)
				p := decodeProblem(t, header, body)
				require.Contains(t, p.Detail, "a seafarer may change only their lang")
				require.Contains(t, p.Detail, tc.names)
			})
		}
	}
	after, err := f.crew.Seafarer(context.Background(), f.a1.ID)
	require.NoError(t, err)
	require.Equal(t, before, after, "nothing changed, not even the lang beside a forbidden field")

	// Staff are not held to it.
	status, _, body := patch(t, f, "/v1/seafarers/"+f.a1.ID, f.companyAToken, `{"vessel_name":"MV Dong Fang 2","lang":"en"}`)
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.Equal(t, wuyou.LangEN, langOf(t, f, f.a1.ID))
}

func TestASeafarerCannotChangeAnotherSeafarer(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	for _, tc := range []struct {
		name, id, body string
	}{
		{"a shipmate's lang", f.a2.ID, `{"lang":"en"}`},
		{"another company's seafarer's lang", f.b1.ID, `{"lang":"en"}`},
		{"a shipmate's msisdn", f.a2.ID, `{"msisdn":"+8613811112222"}`},
		{"no such seafarer", "sf_nosuchseafarer", `{"lang":"en"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := patch(t, f, "/v1/seafarers/"+tc.id, f.seafarerA1, tc.body)
			require.Equal(t, http.StatusNotFound, status, "%s", body)
			require.Contains(t, decodeProblem(t, header, body).Detail, tc.id)
		})
	}
	require.Equal(t, wuyou.LangZH, langOf(t, f, f.a2.ID))
	require.Equal(t, wuyou.LangZH, langOf(t, f, f.b1.ID))

	// PATCH /v1/me is the seafarer's alone.
	for _, tok := range []string{f.union, f.companyAToken, f.carrierToken} {
		status, _, body := patch(t, f, "/v1/me", tok, `{"lang":"en"}`)
		require.Equal(t, http.StatusForbidden, status, "%s", body)
	}
}

func TestASeafarersBadLangIsA400NamingLang(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	for _, path := range []string{"/v1/me", "/v1/seafarers/" + f.a1.ID} {
		for _, tc := range []struct{ name, body string }{
			{"a language Wuyou does not speak", `{"lang":"fr"}`},
			{"empty", `{"lang":""}`},
			{"not a string", `{"lang":5}`},
			{"null", `{"lang":null}`},
			{"missing", `{}`},
		} {
			t.Run(fmt.Sprintf("%s %s", path, tc.name), func(t *testing.T) {
				status, header, body := patch(t, f, path, f.seafarerA1, tc.body)
				require.Equal(t, http.StatusBadRequest, status, "%s", body)
				p := decodeProblem(t, header, body)
				require.NotEmpty(t, p.Errors)
				require.Equal(t, "lang", p.Errors[0].Field)
			})
		}
		status, _, body := patch(t, f, path, f.seafarerA1, `not json`)
		require.Equal(t, http.StatusBadRequest, status, "%s", body)
	}
	require.Equal(t, wuyou.LangZH, langOf(t, f, f.a1.ID))
}
