// Package bench measures Wuyou. This file is the bulk enrolment benchmark;
// the programs under cmd/ measure the rest (see README.md).
package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/api"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/token"
)

const (
	bulkRows      = 10_000
	benchIss      = "https://issuer.bench.test"
	benchAudience = "wuyou"
)

// BenchmarkBulkEnrol10k posts a 10,000-row crew list (text/csv) to
// POST /v1/companies/{id}/seafarers:bulk of the real API server, listening
// on a loopback port, over the registry in PostgreSQL (crew.PGStore, a
// fresh database: internal/pgtest), and reports rows/s.
//
// Every iteration enrols a fresh company's crew with book numbers and
// MSISDNs never used before, so each row is a creation (the slower path:
// book number, MSISDN and profile are all written), and checks that all
// 10,000 were created. Building the CSV and the company is not timed. The
// database is dropped at the end.
//
//	go test -run x -bench BulkEnrol10k -benchtime 3x ./bench/
func BenchmarkBulkEnrol10k(b *testing.B) {
	pool := pgtest.MustPool(b)

	key, err := token.GenerateSigningKey(token.AlgEdDSA)
	if err != nil {
		b.Fatal(err)
	}
	jwks, err := token.JWKS(key)
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := api.NewVerifierFromJWKS(jwks, benchIss, benchAudience, nil)
	if err != nil {
		b.Fatal(err)
	}
	store := crew.NewPGStore(pool, wuyou.SystemClock)
	server := api.New(api.Config{
		Crew: store, Verifier: verifier,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	addr, err := server.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	})
	base := "http://" + addr.String()
	ctx := context.Background()

	var rows int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		company, err := store.CreateCompany(ctx, fmt.Sprintf("Bench Shipping %d", i), fmt.Sprintf("BENCH-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		token, err := key.Mint(token.Claims{
			Issuer: benchIss, Audience: benchAudience, Subject: "bench-crew-manager", Role: token.RoleCompany,
			CompanyID: company.ID, TTL: time.Hour,
		}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		body := crewListCSV(b, i)
		req, err := http.NewRequest(http.MethodPost, base+"/v1/companies/"+company.ID+"/seafarers:bulk", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+token)
		b.StartTimer()

		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		answer, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %.500s", res.StatusCode, answer)
		}
		var report struct {
			Total, Created, Failed int
		}
		if err := json.Unmarshal(answer, &report); err != nil {
			b.Fatal(err)
		}
		if report.Total != bulkRows || report.Created != bulkRows || report.Failed != 0 {
			b.Fatalf("iteration %d: total %d, created %d, failed %d; want %d created", i, report.Total, report.Created, report.Failed, bulkRows)
		}
		rows += report.Created
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// crewListCSV is a valid 10,000-row crew list whose book numbers and
// MSISDNs are unique to iteration i.
func crewListCSV(b *testing.B, i int) []byte {
	b.Helper()
	var buf bytes.Buffer
	buf.Grow(bulkRows * 100)
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"seafarer_book_no", "name", "nationality", "msisdn", "vessel_imo", "vessel_name", "sign_on", "sign_off", "union_member_no"})
	for n := 1; n <= bulkRows; n++ {
		_ = w.Write([]string{
			fmt.Sprintf("I%03d-%06d", i, n), fmt.Sprintf("Seafarer %d", n), "CN", fmt.Sprintf("+861%03d%07d", i%1000, n),
			"9074729", "MV Yuan Wang", "2026-01-15", "", fmt.Sprintf("U%d", n),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}
