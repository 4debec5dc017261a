package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/signin"
)

// Sign-in bodies are fuzzed as every other write: anyone may send them, so
// whatever the body the answer is a 2xx or a 4xx problem (429 once a limit
// is reached, 413 over 1 KiB) naming the invalid fields of a body that
// decodes, never a 5xx.

func fuzzSignIn(f *testing.F, path string, check func(t *testing.T, body []byte, status int, header http.Header, answer []byte)) {
	r := mustSignInRig(f, signin.Limits{})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := r.app.Test(req, -1)
		require.NoError(t, err)
		defer res.Body.Close()
		answer, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		check(t, body, res.StatusCode, res.Header, answer)
	})
}

func FuzzRequestCodeBody(f *testing.F) {
	for _, seed := range []string{`{"msisdn":"+8613800000001"}`, `{"msisdn":"+8613877776666"}`, `{"msisdn":"13800000001"}`,
		`{"msisdn":8613800000001}`, `{"msisdn":"+86138\u0000"}`, `{}`, `[]`, `{"msisdn":"+8613800000001","code":"1"}`} {
		f.Add([]byte(seed))
	}
	fuzzSignIn(f, "/v1/auth/otp", func(t *testing.T, body []byte, status int, header http.Header, answer []byte) {
		requireContractAnswer[struct {
			MSISDN string `json:"msisdn"`
		}](t, body, status, header, answer)
	})
}

func FuzzVerifyCodeBody(f *testing.F) {
	for _, seed := range []string{`{"msisdn":"+8613800000001","code":"123456"}`, `{"msisdn":"+8613800000001","code":"12345"}`,
		`{"msisdn":"+8613800000001","code":123456}`, `{"msisdn":"+8613800000001","code":"１２３４５６"}`, `{"code":"123456"}`,
		`{"msisdn":"+8613800000001","code":"123456","role":"union"}`, `null`} {
		f.Add([]byte(seed))
	}
	fuzzSignIn(f, "/v1/auth/otp:verify", func(t *testing.T, body []byte, status int, header http.Header, answer []byte) {
		require.NotEqual(t, http.StatusOK, status, "a fuzzed body signed in: %q → %s", body, answer)
		requireContractAnswer[otpInput](t, body, status, header, answer)
	})
}
