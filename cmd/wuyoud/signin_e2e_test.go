package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wuyou/wuyou/token"
)

// Seafarers' sign-in (CONTRACT §7.4) through whole wuyoud services on a
// real Redis and PostgreSQL and an in-process Kafka-protocol broker: the
// code goes out on wuyou.sms.v1, any replica takes it, and a token one
// replica signed is good on every other and after a restart.

// smsEvent is one message of wuyou.sms.v1 as the carrier's gateway reads it.
type smsEvent struct {
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	Type        string `json:"type"`
	Subject     string `json:"subject"`
	Data        struct {
		Text string `json:"text"`
		Lang string `json:"lang"`
	} `json:"data"`
	Key string `json:"-"`
}

// mustSMS reads every message of wuyou.sms.v1.
func mustSMS(tb testing.TB, st *wuyouStack) []smsEvent {
	tb.Helper()
	var out []smsEvent
	for _, m := range MustReadToEnd(tb, st.brokers, st.topics.SMS, 1) {
		var e smsEvent
		require.NoError(tb, json.Unmarshal(m.Value, &e), "%s", m.Value)
		e.Key = string(m.Key)
		out = append(out, e)
	}
	return out
}

var smsCode = regexp.MustCompile(`^(\d{6}) `)

func TestSignInCodeOnTheSMSTopicGivesATokenEveryReplicaAccepts(t *testing.T) {
	st := MustWuyouStack(t, 1)
	a, b := st.MustStartNode(t, "signin-a"), st.MustStartNode(t, "signin-b")
	union := st.MustToken(t, token.RoleUnion, "union-1", "")
	company := MustCompany(t, a.api, union, "Sign-in Shipping")
	crew := MustEnrolCrew(t, a.api, union, company, []string{"+8613800001111", "+8613800002222"})
	// The second seafarer reads English.
	a.api.MustCall(t, http.StatusOK, "PATCH", "/v1/seafarers/"+crew[1].ID, union, map[string]string{"lang": "en"}, nil)

	const stranger = "+8613800009999"
	for _, n := range []string{crew[0].MSISDN, crew[1].MSISDN, stranger} {
		var ok struct {
			ExpiresIn int64 `json:"expires_in"`
		}
		a.api.MustCall(t, http.StatusAccepted, "POST", "/v1/auth/otp", "", map[string]string{"msisdn": n}, &ok)
		require.EqualValues(t, 300, ok.ExpiresIn)
	}
	var sms []smsEvent
	MustWaitFor(t, 15*time.Second, "two sign-in SMS on wuyou.sms.v1", func() bool { sms = mustSMS(t, st); return len(sms) >= 2 })
	time.Sleep(300 * time.Millisecond)
	sms = mustSMS(t, st)
	require.Len(t, sms, 2, "one SMS per enrolled number and none to the stranger: %+v", sms)
	codes := map[string]string{}
	for i, want := range []struct {
		sf   seededSeafarer
		lang string
	}{{crew[0], "zh-CN"}, {crew[1], "en"}} {
		var e *smsEvent
		for j := range sms {
			if sms[j].Subject == want.sf.MSISDN {
				e = &sms[j]
			}
		}
		require.NotNil(t, e, "no SMS to seafarer %d", i)
		require.Equal(t, "1.0", e.SpecVersion)
		require.Equal(t, "wuyou.sms.otp", e.Type)
		require.Equal(t, want.sf.ID, e.Key, "keyed by seafarer id")
		require.Equal(t, want.lang, e.Data.Lang)
		c := smsCode.FindStringSubmatch(e.Data.Text)
		require.NotNil(t, c, "%q", e.Data.Text)
		codes[want.sf.ID] = c[1]
	}

	// Replica b takes the code replica a sent; replica a accepts the token b signed.
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	b.api.MustCall(t, http.StatusOK, "POST", "/v1/auth/otp:verify", "", map[string]string{"msisdn": crew[0].MSISDN, "code": codes[crew[0].ID]}, &tok)
	require.Equal(t, "Bearer", tok.TokenType)
	require.EqualValues(t, 7*24*3600, tok.ExpiresIn, "WUYOU_SEAFARER_TOKEN_TTL's default")
	var allowance struct {
		SeafarerID string `json:"seafarer_id"`
	}
	a.api.MustCall(t, http.StatusOK, "GET", "/v1/me/allowance", tok.AccessToken, nil, &allowance)
	require.Equal(t, crew[0].ID, allowance.SeafarerID)
	// The code was used: no replica takes it again.
	status, body := a.api.MustDo(t, "POST", "/v1/auth/otp:verify", "", map[string]string{"msisdn": crew[0].MSISDN, "code": codes[crew[0].ID]}, nil)
	require.Equal(t, http.StatusUnauthorized, status, "%s", body)

	// Both replicas publish the same keys.
	_, jwksA := a.api.MustDo(t, "GET", "/.well-known/jwks.json", "", nil, nil)
	_, jwksB := b.api.MustDo(t, "GET", "/.well-known/jwks.json", "", nil, nil)
	require.JSONEq(t, string(jwksA), string(jwksB))
	keys, err := token.ParseJWKS(jwksA)
	require.NoError(t, err)
	require.Len(t, keys, 1)

	// After a restart of every replica the token still holds: the keys
	// live in PostgreSQL.
	a.MustStop(t)
	b.MustStop(t)
	c := st.MustStartNode(t, "signin-c")
	c.api.MustCall(t, http.StatusOK, "GET", "/v1/me/allowance", tok.AccessToken, nil, &allowance)
	// And the other seafarer's code, sent before the restart, still signs in.
	c.api.MustCall(t, http.StatusOK, "POST", "/v1/auth/otp:verify", "", map[string]string{"msisdn": crew[1].MSISDN, "code": codes[crew[1].ID]}, &tok)
	metrics := c.api.MustMetrics(t)
	require.EqualValues(t, 1, metrics["wuyou_signin_requests_total"], "one sign-in on this replica (the verify)")
}
