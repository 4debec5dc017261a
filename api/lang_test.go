package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Proves, against api/openapi.json: an enrolment may give the seafarer's
// lang (zh-CN or en), which the seafarer's JSON shows, zh-CN when not
// given; anything else is a 400 naming lang; a bulk CSV may carry a lang
// column.
func TestEnrolmentSetsTheSeafarersLang(t *testing.T) {
	f := MustAPIFixture(t)
	doc := mustLoadOpenAPI(t)
	path := "/v1/companies/" + f.companyA.ID + "/seafarers"
	body := func(book, msisdn, lang string) map[string]any {
		b := map[string]any{"seafarer_book_no": book, "name": "Li Lei", "msisdn": msisdn}
		if lang != "" {
			b["lang"] = lang
		}
		return b
	}
	for _, tc := range []struct{ name, book, msisdn, lang, want string }{
		{"en as asked", "L-EN", "+8613800003001", "en", "en"},
		{"zh-CN when not given", "L-ZH", "+8613800003002", "", "zh-CN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := sendDocumented(t, f, doc, http.MethodPost, path, f.union, body(tc.book, tc.msisdn, tc.lang))
			require.Equal(t, http.StatusCreated, status, "%s", answer)
			var sf map[string]any
			require.NoError(t, json.Unmarshal(answer, &sf))
			require.Equal(t, tc.want, sf["lang"])
		})
	}
	t.Run("another lang is a 400 naming lang", func(t *testing.T) {
		status, answer := sendDocumented(t, f, doc, http.MethodPost, path, f.union, body("L-FR", "+8613800003003", "fr"))
		require.Equal(t, http.StatusBadRequest, status, "%s", answer)
		require.Contains(t, string(answer), `"field":"lang"`)
	})
	t.Run("a bulk CSV may carry a lang column", func(t *testing.T) {
		csv := "seafarer_book_no,name,msisdn,lang\nL-B1,Han Mei,+8613800003004,en\nL-B2,Lin Tao,+8613800003005,xx\n"
		status, _, answer := f.do(t, apiRequest{method: http.MethodPost, path: path + ":bulk", token: f.union, contentType: "text/csv", body: []byte(csv)})
		require.Equal(t, http.StatusOK, status, "%s", answer)
		var res struct {
			Created, Failed int
			Results         []struct {
				ID     string
				Status string
				Errors []struct{ Field string }
			}
		}
		require.NoError(t, json.Unmarshal(answer, &res))
		require.Equal(t, 1, res.Created)
		require.Equal(t, 1, res.Failed)
		require.Equal(t, "lang", res.Results[1].Errors[0].Field)
		status, answer = sendDocumented(t, f, doc, http.MethodGet, "/v1/seafarers/"+res.Results[0].ID, f.union, nil)
		require.Equal(t, http.StatusOK, status, "%s", answer)
		require.Contains(t, string(answer), `"lang":"en"`)
	})
}
