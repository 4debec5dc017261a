package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/quota"
)

// Real-time credit control through the API (CONTRACT §7.3), every answer
// checked against api/openapi.json. The fixture's seafarers each hold one
// active pack of 3600 seconds (A1's seeded call came before it, so it drew
// nothing); calls abroad are in SG, the deployment's home is homeCountry.

// sessionPath is the path of a session's :update or :terminate, its id
// percent-encoded as a path segment.
func sessionPath(id, verb string) string {
	return "/v1/carrier/sessions/" + url.PathEscape(id) + ":" + verb
}

// mustSessionGrant decodes an open's or an update's answer.
func mustSessionGrant(tb testing.TB, answer []byte) quota.SessionGrant {
	tb.Helper()
	var g quota.SessionGrant
	require.NoError(tb, json.Unmarshal(answer, &g), "%s", answer)
	return g
}

// secondsBalance is the seconds balance of a seafarer's allowance.
func secondsBalance(t *testing.T, f *apiFixture, doc *openapi3.T, seafarerID string) quota.Balance {
	t.Helper()
	status, answer := sendDocumented(t, f, doc, http.MethodGet, "/v1/seafarers/"+seafarerID+"/allowance", f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	var a quota.Allowance
	require.NoError(t, json.Unmarshal(answer, &a))
	for _, b := range a.Balances {
		if b.Unit == "seconds" {
			return b
		}
	}
	t.Fatalf("no seconds balance: %s", answer)
	return quota.Balance{}
}

// requireProblemNamesField checks a 400 whose errors name field.
func requireProblemNamesField(t *testing.T, answer []byte, field string) {
	t.Helper()
	var p problem
	require.NoError(t, json.Unmarshal(answer, &p), "%s", answer)
	require.Equal(t, http.StatusBadRequest, p.Status, "%s", answer)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	require.Contains(t, fields, field, "the problem names the field: %s", answer)
}

func TestCarrierSession_OpenRepeatUpdateTerminateReserveThenChargeOnce(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	const id = "pgw1.cmcc.example;1876543210;523"
	open := map[string]any{"session_id": id, "msisdn": f.a1.MSISDN, "requested": 120,
		"visited_country": "SG", "called_number": "+6561234567"}

	status, first := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken, open)
	require.Equal(t, http.StatusCreated, status, "%s", first)
	g := mustSessionGrant(t, first)
	require.Equal(t, quota.SessionGrant{SessionID: id, Granted: 120, ValiditySeconds: 300, FinalAction: "continue_as_overage"}, g,
		"what was asked, valid 300 s, not final: 3480 seconds are left beyond it")

	// The carrier's switch retries its open: the same answer, nothing more held.
	status, again := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken, open)
	require.Equal(t, http.StatusCreated, status, "%s", again)
	require.JSONEq(t, string(first), string(again))
	b := secondsBalance(t, f, doc, f.a1.ID)
	require.EqualValues(t, 120, b.Reserved, "the open holds what it was granted")
	require.EqualValues(t, 3600, b.Remaining, "held, not drawn")

	// used is the usage so far: 60 used, 120 more asked, 180 held.
	update := map[string]any{"used": 60, "requested": 120}
	status, answer := sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "update"), f.carrierToken, update)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	require.EqualValues(t, 120, mustSessionGrant(t, answer).Granted)
	status, repeated := sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "update"), f.carrierToken, update)
	require.Equal(t, http.StatusOK, status, "a repeated update: %s", repeated)
	require.JSONEq(t, string(answer), string(repeated), "a repeated update answers the same")
	require.EqualValues(t, 180, secondsBalance(t, f, doc, f.a1.ID).Reserved, "what it used plus what it was granted")

	// Less used than an earlier update said is refused: used is cumulative.
	status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "update"), f.carrierToken, map[string]any{"used": 30, "requested": 60})
	require.Equal(t, http.StatusBadRequest, status, "%s", answer)
	requireProblemNamesField(t, answer, "used")
	require.Contains(t, string(answer), "must not be less than the 60 reported before")

	// 100 seconds are charged as 120 (whole minutes), covered by the pack.
	status, charged := sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "terminate"), f.carrierToken, map[string]any{"used": 100})
	require.Equal(t, http.StatusOK, status, "%s", charged)
	require.JSONEq(t, `{"charged":120,"covered":120,"overage":0}`, string(charged))
	// A repeated terminate, even with another used, is the same terminate.
	status, again = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "terminate"), f.carrierToken, map[string]any{"used": 200})
	require.Equal(t, http.StatusOK, status, "%s", again)
	require.JSONEq(t, string(charged), string(again), "a repeated terminate answers the same charge")

	b = secondsBalance(t, f, doc, f.a1.ID)
	require.EqualValues(t, 0, b.Reserved, "nothing held after the terminate")
	require.EqualValues(t, 3600-120, b.Remaining, "charged once")

	// An update after the terminate is a conflict: the call is over.
	status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "update"), f.carrierToken, map[string]any{"used": 100, "requested": 60})
	require.Equal(t, http.StatusConflict, status, "%s", answer)

	// The ledger has one debit for the session, identified by its id.
	status, answer = sendDocumented(t, f, doc, http.MethodGet, "/v1/seafarers/"+f.a1.ID+"/usage", f.union, nil)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	var usage struct {
		Items []quota.LedgerEntry `json:"items"`
	}
	require.NoError(t, json.Unmarshal(answer, &usage))
	var debits []quota.LedgerEntry
	for _, e := range usage.Items {
		if e.EventID == id {
			debits = append(debits, e)
		}
	}
	require.Len(t, debits, 1, "one ledger entry for the session: %s", answer)
	require.Equal(t, quota.KindDebit, debits[0].Kind)
	require.EqualValues(t, 120, debits[0].CoveredSeconds)
	require.Equal(t, quota.SessionSource, debits[0].Source)
}

func TestCarrierSession_ReservedUnitsCannotBeTakenByAnotherCallUntilReleased(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	openFor := func(id string, requested int64) quota.SessionGrant {
		status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken,
			map[string]any{"session_id": id, "msisdn": f.a2.MSISDN, "requested": requested, "visited_country": "SG"})
		require.Equal(t, http.StatusCreated, status, "%s", answer)
		return mustSessionGrant(t, answer)
	}
	// Asking for more than there is: all of it, and final.
	g := openFor("big-call", 4000)
	require.EqualValues(t, 3600, g.Granted)
	require.True(t, g.Final, "nothing is left beyond the grant")
	require.Equal(t, "continue_as_overage", g.FinalAction, "the default tariff's final action")
	require.EqualValues(t, 3600, secondsBalance(t, f, doc, f.a2.ID).Reserved)

	// A second call meanwhile gets nothing: the first one holds it all.
	g = openFor("second-call", 60)
	require.EqualValues(t, 0, g.Granted)
	require.True(t, g.Final)

	// The first call ends after 59 seconds: one minute is charged, the rest released.
	status, answer := sendDocumented(t, f, doc, http.MethodPost, sessionPath("big-call", "terminate"), f.carrierToken, map[string]any{"used": 59})
	require.Equal(t, http.StatusOK, status, "%s", answer)
	require.JSONEq(t, `{"charged":60,"covered":60,"overage":0}`, string(answer))
	status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath("second-call", "update"), f.carrierToken, map[string]any{"used": 0, "requested": 60})
	require.Equal(t, http.StatusOK, status, "%s", answer)
	require.EqualValues(t, 60, mustSessionGrant(t, answer).Granted, "released units are there for the next call")
}

func TestCarrierSession_AtHomeIsGrantedWhatItAsksAndHoldsNothing(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken,
		map[string]any{"session_id": "home-call", "msisdn": f.b1.MSISDN, "requested": 100000, "visited_country": homeCountry})
	require.Equal(t, http.StatusCreated, status, "%s", answer)
	g := mustSessionGrant(t, answer)
	require.EqualValues(t, 100000, g.Granted, "a call at home draws nothing, so it is granted what it asks, beyond the 3600 seconds held")
	require.False(t, g.Final)
	require.EqualValues(t, 0, secondsBalance(t, f, doc, f.b1.ID).Reserved, "and holds nothing")

	status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath("home-call", "terminate"), f.carrierToken, map[string]any{"used": 5000})
	require.Equal(t, http.StatusOK, status, "%s", answer)
	var ch quota.SessionCharge
	require.NoError(t, json.Unmarshal(answer, &ch))
	require.Zero(t, ch.Covered, "nothing drawn at home: %s", answer)
	require.Zero(t, ch.Overage, "and no overage: %s", answer)
	require.EqualValues(t, 3600, secondsBalance(t, f, doc, f.b1.ID).Remaining)
}

func TestCarrierSession_UnknownSubscribersSessionsAndForeignSessionIDsAreRefused(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	for _, tc := range []struct {
		name, path string
		body       map[string]any
		want       int
	}{
		{"an MSISDN nobody holds: 404", "/v1/carrier/sessions",
			map[string]any{"session_id": "nobody", "msisdn": "+8613700000000", "requested": 60}, http.StatusNotFound},
		{"an update of a session never opened: 404", sessionPath("never-opened", "update"),
			map[string]any{"used": 0, "requested": 60}, http.StatusNotFound},
		{"a terminate of a session never opened: 404", sessionPath("never-opened", "terminate"),
			map[string]any{"used": 60}, http.StatusNotFound},
		{"the first open of a session id for A1: 201", "/v1/carrier/sessions",
			map[string]any{"session_id": "shared-id", "msisdn": f.a1.MSISDN, "requested": 60}, http.StatusCreated},
		{"the same session id for another subscriber (B1): 409", "/v1/carrier/sessions",
			map[string]any{"session_id": "shared-id", "msisdn": f.b1.MSISDN, "requested": 60}, http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := sendDocumented(t, f, doc, http.MethodPost, tc.path, f.carrierToken, tc.body)
			require.Equal(t, tc.want, status, "%s", answer)
		})
	}
	require.EqualValues(t, 0, secondsBalance(t, f, doc, f.b1.ID).Reserved, "the refused open held nothing for B1")
}

func TestCarrierSession_BadBodiesAre400NamingTheField(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken,
		map[string]any{"session_id": "open-call", "msisdn": f.a1.MSISDN, "requested": 60, "visited_country": "SG"})
	require.Equal(t, http.StatusCreated, status, "%s", answer)

	open := func(change map[string]any, drop ...string) []byte {
		body := map[string]any{"session_id": "bad-body", "msisdn": f.a1.MSISDN, "unit": "seconds", "requested": 60, "visited_country": "SG"}
		for k, v := range change {
			body[k] = v
		}
		for _, k := range drop {
			delete(body, k)
		}
		return mustJSON(t, body)
	}
	for _, tc := range []struct {
		name, path string
		body       []byte
		field      string
	}{
		// open
		{"an empty session_id: the carrier could never name the session again", "/v1/carrier/sessions",
			open(map[string]any{"session_id": ""}), "session_id"},
		{"a session_id with a line break: it would corrupt logs and keys", "/v1/carrier/sessions",
			open(map[string]any{"session_id": "call\n1"}), "session_id"},
		{"a session_id with a space: its paths could not name it", "/v1/carrier/sessions",
			open(map[string]any{"session_id": "call 7"}), "session_id"},
		{"a session_id with a /: its paths could not name it", "/v1/carrier/sessions",
			open(map[string]any{"session_id": "pgw1/7"}), "session_id"},
		{"a session_id with a ?: its paths would end there", "/v1/carrier/sessions",
			open(map[string]any{"session_id": "call?7"}), "session_id"},
		{"a session_id of 129 characters: longer than any the contract allows", "/v1/carrier/sessions",
			open(map[string]any{"session_id": strings.Repeat("s", 129)}), "session_id"},
		{"an msisdn not in E.164 (no +): no seafarer could be found by it", "/v1/carrier/sessions",
			open(map[string]any{"msisdn": "13800000001"}), "msisdn"},
		{"unit minutes: amounts are in seconds, bytes or sms", "/v1/carrier/sessions",
			open(map[string]any{"unit": "minutes"}), "unit"},
		{"requested -1: nothing can be reserved below zero", "/v1/carrier/sessions",
			open(map[string]any{"requested": -1}), "requested"},
		{"requested missing: 0 would silently reserve nothing", "/v1/carrier/sessions",
			open(nil, "requested"), "requested"},
		{"requested as a string: amounts are whole numbers", "/v1/carrier/sessions",
			open(map[string]any{"requested": "60"}), "requested"},
		{"requested 1.5: amounts are whole numbers", "/v1/carrier/sessions",
			open(map[string]any{"requested": 1.5}), "requested"},
		{"an unknown field (duration): a misspelt field must not be ignored", "/v1/carrier/sessions",
			open(map[string]any{"duration": 60}), "duration"},
		{"a visited_country that is no ISO 3166 code: the call could not be rated", "/v1/carrier/sessions",
			open(map[string]any{"visited_country": "XX"}), "visited_country"},
		// update
		{"an update without used: the usage so far must be reported", sessionPath("open-call", "update"),
			mustJSON(t, map[string]any{"requested": 60}), "used"},
		{"an update with used -1", sessionPath("open-call", "update"),
			mustJSON(t, map[string]any{"used": -1, "requested": 60}), "used"},
		{"an update without requested", sessionPath("open-call", "update"),
			mustJSON(t, map[string]any{"used": 10}), "requested"},
		{"an update with requested as a string", sessionPath("open-call", "update"),
			mustJSON(t, map[string]any{"used": 10, "requested": "60"}), "requested"},
		{"an update with an unknown field (delta): used is cumulative, there is no delta", sessionPath("open-call", "update"),
			mustJSON(t, map[string]any{"used": 10, "requested": 60, "delta": 10}), "delta"},
		// terminate
		{"a terminate without used: the call cannot be charged", sessionPath("open-call", "terminate"),
			mustJSON(t, map[string]any{}), "used"},
		{"a terminate with used as a string", sessionPath("open-call", "terminate"),
			mustJSON(t, map[string]any{"used": "60"}), "used"},
		{"a terminate with an unknown field (charged): Wuyou charges, the carrier does not", sessionPath("open-call", "terminate"),
			mustJSON(t, map[string]any{"used": 60, "charged": 60}), "charged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := sendDocumented(t, f, doc, http.MethodPost, tc.path, f.carrierToken, tc.body)
			require.Equal(t, http.StatusBadRequest, status, "%s", answer)
			requireProblemNamesField(t, answer, tc.field)
		})
	}
	t.Run("a body that is not JSON", func(t *testing.T) {
		status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken, []byte("session_id=x"))
		require.Equal(t, http.StatusBadRequest, status, "%s", answer)
	})
	t.Run("two JSON objects in one body", func(t *testing.T) {
		status, answer := sendDocumented(t, f, doc, http.MethodPost, sessionPath("open-call", "terminate"), f.carrierToken, []byte(`{"used":1}{"used":2}`))
		require.Equal(t, http.StatusBadRequest, status, "%s", answer)
	})
	// None of the refused requests touched the open session.
	require.EqualValues(t, 60, secondsBalance(t, f, doc, f.a1.ID).Reserved)
}

func TestCarrierSession_IDsThatNeedEscapingInAPathAreReachable(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	for i, id := range []string{"cscf+1;2;3", "a%b", "会话-1", "a;b,c=d"} {
		t.Run(id, func(t *testing.T) {
			status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken,
				map[string]any{"session_id": id, "msisdn": f.a1.MSISDN, "requested": 60, "visited_country": "SG"})
			require.Equal(t, http.StatusCreated, status, "%s", answer)
			status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "update"), f.carrierToken,
				map[string]any{"used": 10, "requested": 60})
			require.Equal(t, http.StatusOK, status, "%s", answer)
			require.Equal(t, id, mustSessionGrant(t, answer).SessionID)
			status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "terminate"), f.carrierToken,
				map[string]any{"used": 10})
			require.Equal(t, http.StatusOK, status, "session %d: %s", i, answer)
		})
	}
	t.Run("a raw + in the path is a +, as RFC 3986 reads a path", func(t *testing.T) {
		const id = "raw+plus"
		status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken,
			map[string]any{"session_id": id, "msisdn": f.a1.MSISDN, "requested": 60, "visited_country": "SG"})
		require.Equal(t, http.StatusCreated, status, "%s", answer)
		status, answer = sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions/raw+plus:terminate", f.carrierToken,
			map[string]any{"used": 10})
		require.Equal(t, http.StatusOK, status, "%s", answer)
	})
}

func TestCarrierSession_RequestsAreNotRateLimited(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	const budget = 3
	cfg := f.server.cfg
	cfg.WriteRateLimit, cfg.Registry = budget, nil
	f.server = New(cfg)
	f.app = f.server.App()

	// The limit is in force: union staff's fourth company is refused.
	for i := 0; i <= budget; i++ {
		status, _, answer := f.do(t, apiRequest{method: http.MethodPost, path: "/v1/companies", token: f.union,
			contentType: "application/json", body: mustJSON(t, map[string]string{"name": "Gamma Lines", "registration_no": fmt.Sprintf("REG-G%d", i)})})
		if i < budget {
			require.Equal(t, http.StatusCreated, status, "%s", answer)
		} else {
			require.Equal(t, http.StatusTooManyRequests, status, "%s", answer)
		}
	}
	// The carrier's switches send one request per call set-up, update and
	// end, from one token: ten calls, thirty requests, none refused. Union
	// staff, out of budget, still reach the sessions too.
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("busy-%d", i)
		status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken,
			map[string]any{"session_id": id, "msisdn": f.a1.MSISDN, "requested": 60, "visited_country": "SG"})
		require.Equal(t, http.StatusCreated, status, "%s", answer)
		status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "update"), f.carrierToken,
			map[string]any{"used": 30, "requested": 60})
		require.Equal(t, http.StatusOK, status, "%s", answer)
		status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "terminate"), f.carrierToken,
			map[string]any{"used": 45})
		require.Equal(t, http.StatusOK, status, "%s", answer)
	}
	status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.union,
		map[string]any{"session_id": "by-staff", "msisdn": f.a1.MSISDN, "requested": 60, "visited_country": "SG"})
	require.Equal(t, http.StatusCreated, status, "%s", answer)
	require.EqualValues(t, 3600-10*60, secondsBalance(t, f, doc, f.a1.ID).Remaining, "ten calls of 45 seconds, a minute each")
}

// flakyLedger is the system of record's ledger, out of reach while down.
type flakyLedger struct {
	carrier.LedgerWriter
	down atomic.Bool
}

func (l *flakyLedger) Append(ctx context.Context, entries []quota.SeafarerEntry) error {
	if l.down.Load() {
		return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	return l.LedgerWriter.Append(ctx, entries)
}

func TestCarrierSession_TerminateWhilePostgreSQLIsDownIs503AndTerminatingAgainRecordsIt(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	ledger := &flakyLedger{LedgerWriter: f.ledger}
	sessions := *f.server.cfg.Sessions.(*carrier.Sessions)
	sessions.Recorder.Ledger = ledger
	cfg := f.server.cfg
	cfg.Sessions, cfg.Registry = &sessions, nil
	f.server = New(cfg)
	f.app = f.server.App()

	const id = "terminated-in-an-outage"
	status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken,
		map[string]any{"session_id": id, "msisdn": f.a1.MSISDN, "requested": 120, "visited_country": "SG"})
	require.Equal(t, http.StatusCreated, status, "%s", answer)

	// The call is charged in the hot state, but its ledger entry cannot be
	// stored: the carrier is told to come back.
	ledger.down.Store(true)
	status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "terminate"), f.carrierToken, map[string]any{"used": 100})
	require.Equal(t, http.StatusServiceUnavailable, status, "%s", answer)
	require.Contains(t, string(answer), "terminate again")
	b := secondsBalance(t, f, doc, f.a1.ID)
	require.EqualValues(t, 3600-120, b.Remaining, "charged all the same")
	require.EqualValues(t, 0, b.Reserved)
	sessionEntries := func() int {
		status, answer := sendDocumented(t, f, doc, http.MethodGet, "/v1/seafarers/"+f.a1.ID+"/usage", f.union, nil)
		require.Equal(t, http.StatusOK, status, "%s", answer)
		var usage struct {
			Items []quota.LedgerEntry `json:"items"`
		}
		require.NoError(t, json.Unmarshal(answer, &usage))
		n := 0
		for _, e := range usage.Items {
			if e.EventID == id {
				n++
			}
		}
		return n
	}
	require.Zero(t, sessionEntries(), "nothing in the ledger yet")

	// PostgreSQL is back: terminating again records the entry and charges
	// nothing more; a third terminate changes nothing.
	ledger.down.Store(false)
	for range 2 {
		status, answer = sendDocumented(t, f, doc, http.MethodPost, sessionPath(id, "terminate"), f.carrierToken, map[string]any{"used": 100})
		require.Equal(t, http.StatusOK, status, "%s", answer)
		require.JSONEq(t, `{"charged":120,"covered":120,"overage":0}`, string(answer))
	}
	require.Equal(t, 1, sessionEntries(), "one ledger entry for the session")
	require.EqualValues(t, 3600-120, secondsBalance(t, f, doc, f.a1.ID).Remaining, "charged once")
}

func TestCarrierSession_AFinalGrantEndingOnAProgrammeThatSaysTerminateTellsTheCarrierToTerminate(t *testing.T) {
	t.Parallel()
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	now := time.Now().UTC()
	programme := map[string]any{"name": "Calls home, cut at the end", "pack_seconds": 600, "valid_days": 30, "priority": 2,
		"starts_at": now.Add(-time.Hour), "ends_at": now.AddDate(1, 0, 0)}
	programme["final_action"] = "hang-up"
	status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/programmes", f.union, programme)
	require.Equal(t, http.StatusBadRequest, status, "%s", answer)
	requireProblemNamesField(t, answer, "final_action")

	programme["final_action"] = "terminate"
	status, answer = sendDocumented(t, f, doc, http.MethodPost, "/v1/programmes", f.union, programme)
	require.Equal(t, http.StatusCreated, status, "%s", answer)
	var p quota.Programme
	require.NoError(t, json.Unmarshal(answer, &p))
	require.Equal(t, "terminate", p.FinalAction)
	effective := now.Add(-time.Minute)
	iss, _, err := f.issuer.StartAndRun(context.Background(), p.ID, "cut-"+f.b1.ID,
		quota.IssuanceTarget{SeafarerIDs: []string{f.b1.ID}, EffectiveAt: &effective}, 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, iss.Issued)

	for _, tc := range []struct {
		name string
		sf   string
		want string
	}{
		// B1's new pack (priority 2) is drawn after the seed's, so a final
		// grant ends on it.
		{"B1's last pack says terminate", f.b1.MSISDN, "terminate"},
		{"A1 holds the seed's pack only: the tariff's default", f.a1.MSISDN, "continue_as_overage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := sendDocumented(t, f, doc, http.MethodPost, "/v1/carrier/sessions", f.carrierToken,
				map[string]any{"session_id": "final-" + tc.sf, "msisdn": tc.sf, "requested": 100000, "visited_country": "SG"})
			require.Equal(t, http.StatusCreated, status, "%s", answer)
			g := mustSessionGrant(t, answer)
			require.True(t, g.Final, "%s", answer)
			require.Equal(t, tc.want, g.FinalAction)
		})
	}
}
