package signin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// codes keeps one-time codes in Redis: per number one hash with the code's
// HMAC, its wrong tries and when it was sent, and two counters (sends and
// tries in their windows). The three share the number's hash tag, so each
// script below touches one slot and runs unchanged on Redis Cluster. The
// number itself appears in no key: keys carry an HMAC of it.
type codes struct {
	rdb    redis.UniversalClient
	prefix string
	secret []byte
}

// numberTag is the hash tag of a number's keys.
func (c *codes) numberTag(msisdn string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("msisdn\x00" + msisdn))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// digest is what a code is stored as: an HMAC under the shared secret, so a
// copy of Redis does not give away live codes, bound to the number.
func (c *codes) digest(msisdn, code string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("code\x00" + msisdn + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}

func (c *codes) keys(msisdn string) []string {
	base := c.prefix + ":otp:{" + c.numberTag(msisdn) + "}"
	return []string{base, base + ":s", base + ":v"}
}

// sendScript stores a new code unless the number is in its cooldown or has
// used its sends of the window. A new code replaces the old one (its tries
// start again; the number's tries in the window do not).
//
//	KEYS[1] the code: h (digest), t (wrong tries), at (sent, ms)
//	KEYS[2] sends in the window
//	ARGV    digest, code ttl ms, cooldown ms, sends allowed, send window ms, now ms
//	→ {1, 0} stored; {0, ms to wait} refused
var sendScript = redis.NewScript(`
local now = tonumber(ARGV[6])
local cooldown = tonumber(ARGV[3])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '')
if at and now - at < cooldown then
  return {0, cooldown - (now - at)}
end
local sends = tonumber(redis.call('GET', KEYS[2]) or '0')
if sends >= tonumber(ARGV[4]) then
  return {0, math.max(redis.call('PTTL', KEYS[2]), 1)}
end
if redis.call('INCR', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 't', 0, 'at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, 0}
`)

// verifyScript counts a try and checks the code. Over the number's tries
// of the window nothing is compared. A right code is deleted (single use);
// a wrong one counts against the code, which is deleted at its last try.
//
//	KEYS[1] the code; KEYS[2] the number's tries in the window
//	ARGV    digest tried, tries per code, tries per window, try window ms
//	→ {1, 0} right; {0, 0} wrong, expired or none; {-1, ms to wait} refused
var verifyScript = redis.NewScript(`
local tries = tonumber(redis.call('GET', KEYS[2]) or '0')
if tries >= tonumber(ARGV[3]) then
  return {-1, math.max(redis.call('PTTL', KEYS[2]), 1)}
end
if redis.call('INCR', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local stored = redis.call('HGET', KEYS[1], 'h')
if not stored then
  return {0, 0}
end
if stored == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
if redis.call('HINCRBY', KEYS[1], 't', 1) >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
end
return {0, 0}
`)

// store keeps code for msisdn; wait > 0 means refused for that long.
func (c *codes) store(ctx context.Context, msisdn, code string, l Limits, now time.Time) (wait time.Duration, err error) {
	res, err := sendScript.Run(ctx, c.rdb, c.keys(msisdn)[:2],
		c.digest(msisdn, code), l.CodeTTL.Milliseconds(), l.SendCooldown.Milliseconds(), l.SendsPerNumber, l.SendWindow.Milliseconds(), now.UnixMilli()).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("signin: store code: %w", err)
	}
	if res[0] == 1 {
		return 0, nil
	}
	return time.Duration(res[1]) * time.Millisecond, nil
}

// check tries code for msisdn: ok, or refused for wait, or wrong.
func (c *codes) check(ctx context.Context, msisdn, code string, l Limits) (ok bool, wait time.Duration, err error) {
	keys := c.keys(msisdn)
	res, err := verifyScript.Run(ctx, c.rdb, []string{keys[0], keys[2]},
		c.digest(msisdn, code), l.TriesPerCode, l.TriesPerNumber, l.TryWindow.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("signin: check code: %w", err)
	}
	switch res[0] {
	case 1:
		return true, 0, nil
	case -1:
		return false, time.Duration(res[1]) * time.Millisecond, nil
	}
	return false, 0, nil
}
