package api

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// The carrier's session requests are fuzzed as every other write (see
// fuzz_test.go): whatever the body or the session id in the path, the
// answer is a 2xx or a 4xx problem naming the invalid fields of a body
// that decodes, never a 5xx, and a refused request stores nothing.

func FuzzOpenSessionBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	f.Add([]byte(`{"session_id":"fz-1","msisdn":"+8613700000001","requested":60,"visited_country":"SG"}`))
	f.Add([]byte(`{"session_id":"fz-2","msisdn":"+8613700000001","unit":"bytes","requested":1048576}`))
	f.Add([]byte(`{"session_id":"fz-3","msisdn":"+8613700000001","unit":"minutes","requested":60}`))
	f.Add([]byte(`{"session_id":"","msisdn":"+86137","requested":-1}`))
	f.Add([]byte(`{"session_id":"a\u0000b","msisdn":"+8613700000001","requested":"60"}`))
	f.Add([]byte(`{"session_id":"fz-4","msisdn":"+8613700000002","requested":60}`))
	f.Add([]byte(`{"session_id":"fz-5","msisdn":"+8613700000001","requested":60,"call_time":"yesterday"}`))
	f.Add([]byte(`{"session_id":"fz-6","msisdn":"+8613700000001","requested":60,"extra":true}`))
	f.Add([]byte(`{"session_id":"fz-7","msisdn":"+8613700000001","requested":1e30}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		status, header, answer := fx.send(t, http.MethodPost, "/v1/carrier/sessions", body)
		requireContractAnswer[sessionOpenInput](t, body, status, header, answer)
	})
}

// fuzzSession opens a session for the fixture's seafarer to update and
// terminate.
func fuzzSession(f *testing.F, fx *fuzzFixture, id string) {
	f.Helper()
	body := fmt.Sprintf(`{"session_id":%q,"msisdn":"+8613700000001","requested":600,"visited_country":"SG"}`, id)
	status, _, answer := fx.send(&testing.T{}, http.MethodPost, "/v1/carrier/sessions", []byte(body))
	if status != http.StatusCreated {
		f.Fatalf("open %s: %d %s", id, status, answer)
	}
}

func FuzzUpdateSessionBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	fuzzSession(f, fx, "fz-update")
	f.Add("fz-update", []byte(`{"used":60,"requested":60}`))
	f.Add("fz-update", []byte(`{"used":30,"requested":60}`))
	f.Add("fz-update", []byte(`{"used":-1,"requested":60}`))
	f.Add("fz-update", []byte(`{"used":60}`))
	f.Add("fz-nobody", []byte(`{"used":60,"requested":60}`))
	f.Add("../x", []byte(`{"used":"60","requested":60}`))
	f.Add("", []byte(`[]`))
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		path := "/v1/carrier/sessions/" + url.PathEscape(id) + ":update"
		status, header, answer := fx.send(t, http.MethodPost, path, body)
		requireContractAnswer[sessionUpdateInput](t, body, status, header, answer)
	})
}

func FuzzTerminateSessionBody(f *testing.F) {
	fx := mustFuzzFixture(f)
	fuzzSession(f, fx, "fz-terminate")
	f.Add("fz-terminate", []byte(`{"used":125}`))
	f.Add("fz-terminate", []byte(`{"used":-5}`))
	f.Add("fz-terminate", []byte(`{}`))
	f.Add("fz-nobody", []byte(`{"used":1}`))
	f.Add("%00", []byte(`{"used":1.5}`))
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		path := "/v1/carrier/sessions/" + url.PathEscape(id) + ":terminate"
		status, header, answer := fx.send(t, http.MethodPost, path, body)
		requireContractAnswer[sessionTerminateInput](t, body, status, header, answer)
	})
}
