package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/sms"
)

// Proves, against api/openapi.json (CONTRACT §7.4): the carrier's balance
// lookup with format=text answers one SMS of text/plain in the language
// asked for (the default zh-CN otherwise), naming what is left and the
// expiry date; an unknown format or lang is a 400 naming the parameter;
// without format the JSON answer is as it was.
func TestCarrierReadsTheBalanceAsOneSMSOfText(t *testing.T) {
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	path := "/v1/carrier/subscribers/" + msisdnPath(f.a1.MSISDN) + "/allowance"

	for _, tc := range []struct {
		name, query, lang, prefix string
	}{
		{"lang=en reads English", "?format=text&lang=en", wuyou.LangEN, "Left: 60 min, expires "},
		{"lang is case-insensitive", "?format=text&lang=ZH-cn", wuyou.LangZH, "剩余 60 分钟，"},
		{"no lang reads the seafarer's, zh-CN by default", "?format=text", wuyou.LangZH, "剩余 60 分钟，"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := f.do(t, apiRequest{method: http.MethodGet, path: path + tc.query, token: f.carrierToken})
			require.Equal(t, http.StatusOK, status, "%s", body)
			require.Equal(t, "text/plain; charset=utf-8", header.Get("Content-Type"))
			text := string(body)
			require.True(t, strings.HasPrefix(text, tc.prefix), text)
			require.True(t, sms.Fits(tc.lang, text), text)
			status, _ = sendDocumented(t, f, doc, http.MethodGet, path+tc.query, f.carrierToken, nil)
			require.Equal(t, http.StatusOK, status)
		})
	}

	for _, tc := range []struct{ query, field string }{
		{"?format=xml", "format"},
		{"?format=text&lang=fr", "lang"},
		{"?format=text&lang=zh", "lang"},
	} {
		t.Run("a bad "+tc.field+" "+tc.query+" is a 400 naming it", func(t *testing.T) {
			status, body := sendDocumented(t, f, doc, http.MethodGet, path+tc.query, f.carrierToken, nil)
			require.Equal(t, http.StatusBadRequest, status, "%s", body)
			require.Contains(t, string(body), `"field":"`+tc.field+`"`)
		})
	}

	t.Run("no lang reads the seafarer's lang, set by a PATCH", func(t *testing.T) {
		status, body := sendDocumented(t, f, doc, http.MethodPatch, "/v1/seafarers/"+f.a1.ID, f.union, map[string]any{"lang": "en"})
		require.Equal(t, http.StatusOK, status, "%s", body)
		require.Contains(t, string(body), `"lang":"en"`)
		_, _, text := f.do(t, apiRequest{method: http.MethodGet, path: path + "?format=text", token: f.carrierToken})
		require.True(t, strings.HasPrefix(string(text), "Left: 60 min, expires "), "%s", text)
		_, _, text = f.do(t, apiRequest{method: http.MethodGet, path: path + "?format=text&lang=zh-CN", token: f.carrierToken})
		require.True(t, strings.HasPrefix(string(text), "剩余 60 分钟，"), "lang= wins: %s", text)

		status, body = sendDocumented(t, f, doc, http.MethodPatch, "/v1/seafarers/"+f.a1.ID, f.union, map[string]any{"lang": "fr"})
		require.Equal(t, http.StatusBadRequest, status, "%s", body)
		require.Contains(t, string(body), `"field":"lang"`)
	})

	t.Run("without format the answer is the JSON it always was", func(t *testing.T) {
		status, body := sendDocumented(t, f, doc, http.MethodGet, path, f.carrierToken, nil)
		require.Equal(t, http.StatusOK, status, "%s", body)
		var got map[string]any
		require.NoError(t, json.Unmarshal(body, &got))
		require.EqualValues(t, 60*60, got["remaining_seconds"])
		require.EqualValues(t, 60, got["remaining_minutes"])
		require.NotEmpty(t, got["expires_at"])
	})
}
