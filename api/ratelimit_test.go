package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/token"
)

// storageOnly hides RedisRateLimitStore's WindowCounter, so the limiter falls
// back to fiber's own fixed window over the plain fiber.Storage.
type storageOnly struct{ fiber.Storage }

// rateLimitToken mints tokens of distinct principals for rate-limit tests.
func rateLimitToken(tb testing.TB, role, subject, companyID string) string {
	tb.Helper()
	c := seafarerClaims()
	c.Role, c.Subject, c.CompanyID = role, subject, companyID
	return bearer(MustMint(tb, MustAuthFixture(tb).ed, c))
}

// postCompany is a write request every union token may make; n keeps
// registration numbers apart.
func postCompany(tb testing.TB, ls *liveServer, authorization string, n int) liveResponse {
	tb.Helper()
	body := jsonOf(tb, map[string]string{"name": "Limit Shipping", "registration_no": fmt.Sprintf("RL-%d", n)})
	return ls.do(tb, http.MethodPost, "/v1/companies", authorization, bytes.NewReader(body))
}

// requireRateLimited checks the 429 of the contract: problem+json with a
// Retry-After within the window.
func requireRateLimited(tb testing.TB, res liveResponse) {
	tb.Helper()
	p := requireProblem(tb, res, http.StatusTooManyRequests)
	require.Equal(tb, "https://wuyou.dev/problems/rate_limited", p.Type)
	retry, err := strconv.Atoi(res.header.Get("Retry-After"))
	require.NoError(tb, err, "Retry-After %q", res.header.Get("Retry-After"))
	require.True(tb, retry >= 1 && retry <= 60, "Retry-After %d is within the one-minute window", retry)
}

func TestWriteRateLimit_OverTheBudgetIs429ProblemWithRetryAfter(t *testing.T) {
	const budget = 3
	for _, tt := range []struct {
		name    string
		storage func(rdb redis.UniversalClient, prefix string) fiber.Storage
	}{
		{"budget counted in Redis atomically", func(rdb redis.UniversalClient, prefix string) fiber.Storage {
			return NewRedisRateLimitStore(rdb, prefix)
		}},
		{"budget counted by fiber's fixed window over Redis storage", func(rdb redis.UniversalClient, prefix string) fiber.Storage {
			return storageOnly{NewRedisRateLimitStore(rdb, prefix)}
		}},
		{"budget counted in process", func(redis.UniversalClient, string) fiber.Storage { return nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := MustDeployment(t)
			ls := mustLiveServerOn(t, d, MustAuthFixture(t).verifier, func(c *Config) {
				c.WriteRateLimit, c.RateLimitStorage = budget, tt.storage(d.rdb, d.prefix)
			})
			union := rateLimitToken(t, token.RoleUnion, "officer-"+tt.name, "")
			for i := range budget {
				res := postCompany(t, ls, union, i)
				require.Equal(t, http.StatusCreated, res.status, "write %d of %d: %s", i+1, budget, res.body)
				require.Equal(t, strconv.Itoa(budget-i-1), res.header.Get("X-RateLimit-Remaining"))
			}
			requireRateLimited(t, postCompany(t, ls, union, budget))
		})
	}
}

func TestWriteRateLimit_TwoReplicasOnOneRedisShareTheBudget(t *testing.T) {
	const budget = 6
	d := MustDeployment(t)
	v := MustAuthFixture(t).verifier
	limit := func(c *Config) { c.WriteRateLimit = budget }
	replicas := []*liveServer{mustLiveServerOn(t, d, v, limit), mustLiveServerOn(t, d, v, limit)}
	union := rateLimitToken(t, token.RoleUnion, "officer-replicas", "")
	for i := range budget {
		res := postCompany(t, replicas[i%2], union, i)
		require.Equal(t, http.StatusCreated, res.status, "write %d: %s", i+1, res.body)
	}
	for _, ls := range replicas {
		requireRateLimited(t, postCompany(t, ls, union, 100))
	}
}

func TestWriteRateLimit_ReadsAreNotLimited(t *testing.T) {
	const budget = 2
	ls := MustLiveServer(t, MustAuthFixture(t).verifier, func(c *Config) { c.WriteRateLimit = budget })
	union := rateLimitToken(t, token.RoleUnion, "officer-reads", "")
	res := postCompany(t, ls, union, 0)
	require.Equal(t, http.StatusCreated, res.status)
	var co struct{ ID string }
	require.NoError(t, json.Unmarshal(res.body, &co))
	require.Equal(t, http.StatusCreated, postCompany(t, ls, union, 1).status)
	requireRateLimited(t, postCompany(t, ls, union, 2))
	for range 3 * budget {
		res := ls.do(t, http.MethodGet, "/v1/companies/"+co.ID, union, nil)
		require.Equal(t, http.StatusOK, res.status, "a read with a spent write budget: %s", res.body)
		require.Empty(t, res.header.Get("X-RateLimit-Remaining"))
	}
}

func TestWriteRateLimit_IsPerTokenSoAnotherPrincipalIsUnaffected(t *testing.T) {
	const budget = 2
	ls := MustLiveServer(t, MustAuthFixture(t).verifier, func(c *Config) { c.WriteRateLimit = budget })
	noisy := rateLimitToken(t, token.RoleUnion, "officer-noisy", "")
	for i := range budget {
		require.Equal(t, http.StatusCreated, postCompany(t, ls, noisy, i).status)
	}
	requireRateLimited(t, postCompany(t, ls, noisy, budget))

	// The same subject under another role, and another subject, each have
	// their own budget.
	for i, other := range []string{
		rateLimitToken(t, token.RoleUnion, "officer-quiet", ""),
		rateLimitToken(t, token.RoleCompany, "officer-noisy", "co-1"),
	} {
		res := ls.do(t, http.MethodPost, "/v1/companies", other, bytes.NewReader(jsonOf(t, map[string]string{"name": "Quiet", "registration_no": fmt.Sprintf("Q-%d", i)})))
		require.NotEqual(t, http.StatusTooManyRequests, res.status, "body: %s", res.body)
		require.Equal(t, strconv.Itoa(budget-1), res.header.Get("X-RateLimit-Remaining"))
	}
}

func TestWriteRateLimit_NegativeTurnsItOff(t *testing.T) {
	ls := MustLiveServer(t, MustAuthFixture(t).verifier, func(c *Config) { c.WriteRateLimit = -1 })
	union := rateLimitToken(t, token.RoleUnion, "officer-unlimited", "")
	for i := range 5 {
		require.Equal(t, http.StatusCreated, postCompany(t, ls, union, i).status)
	}
}

// failingCounter is a WindowCounter whose Redis is down.
type failingCounter struct{}

func (failingCounter) Hit(context.Context, string, time.Duration) (int, time.Duration, error) {
	return 0, 0, errors.New("dial tcp: connection refused")
}

func TestAtomicWindow_LetsRequestsThroughWhenTheCounterFails(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Post("/", limiter.New(limiter.Config{
		Max: 1, LimiterMiddleware: atomicWindow{counter: failingCounter{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))},
	}), func(c *fiber.Ctx) error { return c.SendStatus(http.StatusNoContent) })
	for range 3 {
		res, err := app.Test(httptest.NewRequest(http.MethodPost, "/", nil))
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, res.StatusCode)
	}
}

func TestRedisRateLimitStore_CountsAtomicallyAcrossClients(t *testing.T) {
	rdb, prefix := redistest.MustClient(t)
	other, _ := redistest.MustClient(t)
	stores := []*RedisRateLimitStore{NewRedisRateLimitStore(rdb, prefix), NewRedisRateLimitStore(other, prefix)}
	const workers, each = 16, 10
	var (
		mu   sync.Mutex
		seen []int
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				hits, resetIn, err := stores[w%2].Hit(context.Background(), "k", time.Minute)
				if !assertNoError(t, err) {
					return
				}
				if resetIn <= 0 || resetIn > time.Minute {
					t.Errorf("reset in %s, want within the window", resetIn)
				}
				mu.Lock()
				seen = append(seen, hits)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Ints(seen)
	want := make([]int, workers*each)
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, seen, "every request got its own count: none lost, none repeated")
	ttl, err := rdb.PTTL(context.Background(), prefix+":rl:k").Result()
	require.NoError(t, err)
	require.True(t, ttl > 0 && ttl <= time.Minute, "the window's counter expires with it: %s", ttl)
}

func TestRedisRateLimitStore_StartsANewWindowWhenTheOldOneEnds(t *testing.T) {
	rdb, prefix := redistest.MustClient(t)
	s := NewRedisRateLimitStore(rdb, prefix)
	ctx := context.Background()
	for want := 1; want <= 3; want++ {
		hits, _, err := s.Hit(ctx, "k", 200*time.Millisecond)
		require.NoError(t, err)
		require.Equal(t, want, hits)
	}
	time.Sleep(300 * time.Millisecond)
	hits, _, err := s.Hit(ctx, "k", 200*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, 1, hits)
}

func TestRedisRateLimitStore_IsAFiberStorageUnderTheDeploymentPrefix(t *testing.T) {
	rdb, prefix := redistest.MustClient(t)
	s := NewRedisRateLimitStore(rdb, prefix)
	ctx := context.Background()

	got, err := s.Get("absent")
	require.NoError(t, err)
	require.Nil(t, got, "a missing key is nil, nil")

	require.NoError(t, s.Set("a", []byte("1"), time.Minute))
	require.NoError(t, s.Set("b", []byte("2"), 0))
	require.NoError(t, s.Set("", []byte("x"), 0), "an empty key is ignored")
	require.NoError(t, s.Set("c", nil, 0), "an empty value is ignored")
	got, err = s.Get("a")
	require.NoError(t, err)
	require.Equal(t, []byte("1"), got)
	ttl, err := rdb.PTTL(ctx, prefix+":rl:a").Result()
	require.NoError(t, err)
	require.True(t, ttl > 0 && ttl <= time.Minute, "ttl %s", ttl)
	ttl, err = rdb.PTTL(ctx, prefix+":rl:b").Result()
	require.NoError(t, err)
	require.Equal(t, time.Duration(-1), ttl, "exp 0 keeps the value")
	n, err := rdb.Exists(ctx, prefix+":rl:c").Result()
	require.NoError(t, err)
	require.Zero(t, n)

	require.NoError(t, s.Delete("a"))
	got, err = s.Get("a")
	require.NoError(t, err)
	require.Nil(t, got)

	require.NoError(t, rdb.Set(ctx, prefix+":crew:keep", "x", 0).Err())
	require.NoError(t, s.Reset())
	got, err = s.Get("b")
	require.NoError(t, err)
	require.Nil(t, got, "Reset deletes the store's keys")
	kept, err := rdb.Get(ctx, prefix+":crew:keep").Result()
	require.NoError(t, err)
	require.Equal(t, "x", kept, "Reset leaves the rest of the deployment alone")

	require.NoError(t, s.Close())
	require.NoError(t, rdb.Ping(ctx).Err(), "Close leaves the shared client open")
}

// assertNoError reports err from a goroutine without stopping it.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

func TestRateLimitKey_IsThePrincipalOrElseTheClientAddress(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	var keys []string
	record := func(c *fiber.Ctx) error { keys = append(keys, rateLimitKey(c)); return nil }
	app.Post("/anonymous", record)
	app.Post("/signed-in", func(c *fiber.Ctx) error {
		c.Locals(principalKey{}, Principal{Role: token.RoleCompany, Subject: "manager", CompanyID: "co-1"})
		return c.Next()
	}, record)
	for _, path := range []string{"/anonymous", "/signed-in"} {
		_, err := app.Test(httptest.NewRequest(http.MethodPost, path, nil))
		require.NoError(t, err)
	}
	require.Equal(t, "write:ip:0.0.0.0", keys[0], "no principal: the client address")
	require.Regexp(t, `^write:tok:[0-9a-f]{32}$`, keys[1], "a principal: a hash of who it is, not the subject itself")
	require.NotContains(t, keys[1], "manager")
}
