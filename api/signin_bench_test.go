package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/wuyou/wuyou/signin"
)

// BenchmarkSignInRequestTiming is an attacker timing POST /v1/auth/otp to
// tell enrolled numbers from others: single requests through the whole
// server, alternating an enrolled number and one nobody holds, each after a
// pause (so the SMS work of the one before is done), with the limits opened
// wide so every answer is 202. It reports the median and 90th percentile
// of each class and their ratio; nothing on the answer's path depends on
// enrolment (the roster is read after the answer), so the ratio should be
// 1 within noise. RELIABILITY.md records a run.
func BenchmarkSignInRequestTiming(b *testing.B) {
	r := mustSignInRig(b, signin.Limits{SendCooldown: time.Nanosecond, SendsPerNumber: 1 << 30, SendsPerAddress: 1 << 30})
	numbers := [2]string{r.a1.MSISDN, "+8613877776666"}
	var took [2][]time.Duration
	b.ResetTimer()
	for i := range b.N {
		class := i % 2
		body := []byte(`{"msisdn":"` + numbers[class] + `"}`)
		req := httptest.NewRequest(http.MethodPost, "/v1/auth/otp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := r.app.Test(req, -1)
		took[class] = append(took[class], time.Since(start))
		if err != nil || res.StatusCode != http.StatusAccepted {
			b.Fatalf("status %v, %v", res.StatusCode, err)
		}
		res.Body.Close()
		b.StopTimer()
		time.Sleep(2 * time.Millisecond)
		b.StartTimer()
	}
	if len(took[1]) == 0 {
		return
	}
	q := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))].Microseconds())
	}
	b.ReportMetric(q(took[0], 0.5), "enrolled-p50-µs")
	b.ReportMetric(q(took[1], 0.5), "unknown-p50-µs")
	b.ReportMetric(q(took[0], 0.9), "enrolled-p90-µs")
	b.ReportMetric(q(took[1], 0.9), "unknown-p90-µs")
	b.ReportMetric(q(took[0], 0.5)/q(took[1], 0.5), "p50-ratio")
}
