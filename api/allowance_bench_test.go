package api

import (
	"context"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// fixedQuota answers Allowance with a copy of one allowance, as Redis would
// (a fresh value each time), and nothing else.
type fixedQuota struct {
	Quota
	a quota.Allowance
}

func (q fixedQuota) Allowance(_ context.Context, id string) (*quota.Allowance, error) {
	a := q.a
	a.SeafarerID = id
	a.Grants = make([]*quota.Grant, len(q.a.Grants))
	for i, g := range q.a.Grants {
		c := *g
		a.Grants[i] = &c
	}
	return &a, nil
}

// BenchmarkMyAllowance is what the API adds to GET /v1/me/allowance besides
// the sockets and the quota store: routing, every middleware, the token
// check (cached) and the JSON. "plain" is a bare fiber handler answering a
// fixed JSON, the wuyoubench baseline.
func BenchmarkMyAllowance(b *testing.B) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	key, err := token.GenerateSigningKey(token.AlgEdDSA)
	if err != nil {
		b.Fatal(err)
	}
	jwks, _ := token.JWKS(key)
	v, err := NewVerifierFromJWKS(jwks, "iss", "wuyou", nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := key.Mint(token.Claims{Issuer: "iss", Audience: "wuyou", Subject: "sf_01JBENCH", Role: token.RoleSeafarer, TTL: time.Hour}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	a := quota.Allowance{RemainingSeconds: 3420, RemainingMinutes: 57, Period: "2026-11", UsedSeconds: 180, AsOf: now}
	for i, days := range []int{30, 90} {
		a.Grants = append(a.Grants, &quota.Grant{
			ID: "gr_bench_1_" + string(rune('0'+i)), ProgrammeID: "pg_bench", GrantedSeconds: 1800, RemainingSeconds: 1800 - int64(i)*180,
			EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.AddDate(0, 0, days), IssuedAt: now.Add(-time.Hour), Priority: i, Status: quota.GrantActive,
		})
	}
	s := New(Config{Quota: fixedQuota{a: a}, Verifier: v})

	plain := fiber.New(fiber.Config{DisableStartupMessage: true})
	plain.Get("/v1/me/allowance", func(c *fiber.Ctx) error {
		return c.JSON(struct {
			SeafarerID       string `json:"seafarer_id"`
			RemainingSeconds int64  `json:"remaining_seconds"`
		}{"sf_plain", 1800})
	})

	run := func(b *testing.B, h fasthttp.RequestHandler) {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		req.SetRequestURI("/v1/me/allowance")
		req.Header.Set("Authorization", "Bearer "+tok)
		ctx.Init(&req, nil, nil)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			ctx.Response.Reset()
			h(&ctx)
		}
	}
	b.Run("api", func(b *testing.B) { run(b, s.App().Handler()) })
	b.Run("plain", func(b *testing.B) { run(b, plain.Handler()) })
}
