package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
)

// Rate limiting of the write routes (CONTRACT §3: 429). Every POST, PUT,
// PATCH or DELETE under /v1 counts against its principal's budget of
// Config.WriteRateLimit requests a minute, in fixed one-minute windows;
// reads are not limited. The budget is per principal (role, company and
// subject of the verified token), so one noisy client does not starve
// another, and it lives in Redis, so it holds across replicas.
//
// The middleware is fiber's limiter. Over RedisRateLimitStore it counts with
// one atomic Redis script per request (WindowCounter) instead of fiber v2's
// own fixed window over a fiber.Storage, which reads, increments and writes
// the count back under one process-wide lock: that serialises every write
// request of a replica behind two Redis round trips and loses counts when
// two replicas race on one key (gofiber/fiber#4327, #4358).

// DefaultWriteRateLimit is the write budget of a principal, per minute, when
// Config.WriteRateLimit is 0.
// Generous on purpose: a crew manager enrolling seafarers one request at a
// time must not be throttled; it stops a runaway client, not normal work.
const DefaultWriteRateLimit = 6000

// rateLimitWindow is the length of one fixed window.
const rateLimitWindow = time.Minute

// WindowCounter counts requests in fixed windows, atomically across every
// process that shares it.
type WindowCounter interface {
	// Hit counts one request under key in the window that started with the
	// first request after the previous window ended. It returns the requests
	// counted in this window, this one included, and the time left until
	// the window ends.
	Hit(ctx context.Context, key string, window time.Duration) (hits int, resetIn time.Duration, err error)
}

// RedisRateLimitStore keeps rate-limit state in Redis under
// "<prefix>:rl:", on the deployment's key prefix. It is a fiber.Storage, so
// any storage-backed fiber middleware can use it, and a WindowCounter, which
// the write limiter prefers. Every call is bounded by the client's own
// timeouts (fiber.Storage passes no context). Close does not close the
// client, which belongs to the caller.
type RedisRateLimitStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisRateLimitStore returns a store over rdb; prefix is the deployment's
// key prefix (WUYOU_REDIS_PREFIX).
func NewRedisRateLimitStore(rdb redis.UniversalClient, prefix string) *RedisRateLimitStore {
	return &RedisRateLimitStore{rdb: rdb, prefix: prefix + ":rl:"}
}

var (
	_ fiber.Storage = (*RedisRateLimitStore)(nil)
	_ WindowCounter = (*RedisRateLimitStore)(nil)
)

// hitScript counts one request in a fixed window. Single key, so it runs
// unchanged on Redis Cluster.
//
//	KEYS[1]  the window's counter
//	ARGV[1]  window length in milliseconds
//	reply    {requests in the window including this one, milliseconds left}
//
// The first request of a window creates the counter with the window as its
// TTL; a counter that somehow lost its TTL gets one again rather than
// counting forever.
var hitScript = redis.NewScript(`
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
	redis.call('PEXPIRE', KEYS[1], ARGV[1])
	ttl = tonumber(ARGV[1])
end
return {hits, ttl}
`)

// Hit implements WindowCounter.
func (s *RedisRateLimitStore) Hit(ctx context.Context, key string, window time.Duration) (int, time.Duration, error) {
	reply, err := hitScript.Run(ctx, s.rdb, []string{s.prefix + key}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("api: rate limit window: %w", err)
	}
	if len(reply) != 2 {
		return 0, 0, fmt.Errorf("api: rate limit window: unexpected reply %v", reply)
	}
	return int(reply[0]), time.Duration(reply[1]) * time.Millisecond, nil
}

// Get implements fiber.Storage: nil, nil for a missing key.
func (s *RedisRateLimitStore) Get(key string) ([]byte, error) {
	if key == "" {
		return nil, nil
	}
	b, err := s.rdb.Get(context.Background(), s.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// Set implements fiber.Storage; exp 0 keeps the value until deleted. An
// empty key or value is ignored.
func (s *RedisRateLimitStore) Set(key string, val []byte, exp time.Duration) error {
	if key == "" || len(val) == 0 {
		return nil
	}
	return s.rdb.Set(context.Background(), s.prefix+key, val, exp).Err()
}

// Delete implements fiber.Storage.
func (s *RedisRateLimitStore) Delete(key string) error {
	if key == "" {
		return nil
	}
	return s.rdb.Del(context.Background(), s.prefix+key).Err()
}

// Reset implements fiber.Storage: it deletes every key of this store, on
// every master of a cluster, and nothing else under the deployment prefix.
func (s *RedisRateLimitStore) Reset() error {
	ctx := context.Background()
	unlink := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, s.prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			if err := c.Unlink(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, unlink)
	case *redis.Client:
		return unlink(ctx, c)
	default:
		return fmt.Errorf("api: rate limit store: cannot reset over %T", s.rdb)
	}
}

// Close implements fiber.Storage. The Redis client stays open: it is shared.
func (s *RedisRateLimitStore) Close() error { return nil }

// isWrite reports whether a request method changes state.
func isWrite(method string) bool {
	switch method {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return false
	}
	return true
}

// rateLimitKey names the budget a request draws on: its principal's when
// Authenticate has run, else its client address. Principals are hashed so
// the key has a bounded length, reveals no subject and cannot be forged by a
// subject that contains a separator.
func rateLimitKey(c *fiber.Ctx) string {
	p := PrincipalOf(c)
	if p.Role == "" {
		return "write:ip:" + c.IP()
	}
	sum := sha256.Sum256([]byte(p.Role + "\x00" + p.CompanyID + "\x00" + p.Subject))
	return "write:tok:" + hex.EncodeToString(sum[:16])
}

// limitWrites is the write routes' rate limiter; it runs after Authenticate.
func (s *Server) limitWrites() fiber.Handler {
	budget := s.cfg.WriteRateLimit
	cfg := limiter.Config{
		// The carrier's session requests are its switches' traffic, one
		// per call set-up and update, not people's changes: not limited.
		Next: func(c *fiber.Ctx) bool {
			return budget < 0 || !isWrite(c.Method()) || strings.HasPrefix(strings.ToLower(c.Path()), "/v1/carrier/sessions") // routes match any case
		},
		Max:          budget,
		Expiration:   rateLimitWindow,
		KeyGenerator: rateLimitKey,
		// The limiter has set Retry-After; the error handler keeps it.
		LimitReached: func(c *fiber.Ctx) error {
			return wuyou.Errorf(wuyou.ERATELIMITED, "more than %d changes a minute with this token; retry in %s seconds",
				budget, c.GetRespHeader(fiber.HeaderRetryAfter))
		},
		// nil: fiber's in-memory storage, which limits each replica alone.
		Storage: s.cfg.RateLimitStorage,
	}
	if counter, ok := s.cfg.RateLimitStorage.(WindowCounter); ok {
		cfg.LimiterMiddleware = atomicWindow{counter: counter, log: s.cfg.Log}
	}
	return limiter.New(cfg)
}

// atomicWindow is a fiber limiter strategy (limiter.LimiterHandler) over a
// WindowCounter: one atomic count per request, no process-wide lock, exact
// across replicas. It sets the same headers as fiber's fixed window.
//
// When the counter fails (Redis down or slow past its timeouts) the request
// is let through and a warning logged: a write needs Redis anyway and fails
// with 503 on its own, and a limiter that turned a Redis blip into refusals
// would make the outage larger.
type atomicWindow struct {
	counter WindowCounter
	log     *slog.Logger
}

func (w atomicWindow) New(cfg limiter.Config) fiber.Handler {
	limit := strconv.Itoa(cfg.Max)
	return func(c *fiber.Ctx) error {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		hits, resetIn, err := w.counter.Hit(c.UserContext(), cfg.KeyGenerator(c), cfg.Expiration)
		if err != nil {
			w.log.Warn("rate limit not checked; request let through", "method", utils.CopyString(c.Method()), "route", c.Route().Path, "request_id", requestIDOf(c), "err", err)
			return c.Next()
		}
		reset := strconv.FormatInt(max(1, int64((resetIn+time.Second-1)/time.Second)), 10)
		if hits > cfg.Max {
			c.Set(fiber.HeaderRetryAfter, reset)
			return cfg.LimitReached(c)
		}
		c.Set("X-RateLimit-Limit", limit)
		c.Set("X-RateLimit-Remaining", strconv.Itoa(cfg.Max-hits))
		c.Set("X-RateLimit-Reset", reset)
		return c.Next()
	}
}
