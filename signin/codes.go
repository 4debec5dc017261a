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

// codes keeps one-time codes in Redis. Per number, under one hash tag (so
// every script below touches one slot and runs unchanged on Redis Cluster):
//
//	<base>    the code: h (its HMAC), t (wrong tries), sf (the seafarer it
//	          was sent to, once the SMS is on its way); lives CodeTTL
//	<base>:c  the send cooldown (its TTL is the wait)
//	<base>:s  sends in the send window
//	<base>:v  tries in the try window; <base>:d tries in the day
//
// The number itself appears in no key: keys carry an HMAC of it. Every TTL
// is Redis's own, so replicas' clocks play no part.
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

type numberKeys struct{ code, cooldown, sends, tries, triesDay string }

func (c *codes) keys(msisdn string) numberKeys {
	base := c.prefix + ":otp:{" + c.numberTag(msisdn) + "}"
	return numberKeys{code: base, cooldown: base + ":c", sends: base + ":s", tries: base + ":v", triesDay: base + ":d"}
}

func (k numberKeys) all() []string { return []string{k.code, k.cooldown, k.sends, k.tries, k.triesDay} }

// sendScript stores a new code unless the number is in its cooldown or has
// used its sends of the window. A new code replaces the old one (its tries
// start again; the number's tries in the windows do not).
//
//	KEYS    the code, the cooldown, the sends
//	ARGV    digest, code ttl ms, cooldown ms, sends allowed, send window ms
//	→ {1, 0} stored; {0, ms to wait} refused
var sendScript = redis.NewScript(`
local wait = redis.call('PTTL', KEYS[2])
if wait > 0 then
  return {0, wait}
end
local sends = tonumber(redis.call('GET', KEYS[3]) or '0')
if sends >= tonumber(ARGV[4]) then
  return {0, math.max(redis.call('PTTL', KEYS[3]), 1)}
end
if redis.call('INCR', KEYS[3]) == 1 then
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 't', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, 0}
`)

// bindScript names the seafarer a code was sent to, if that code is still
// the number's.
//
//	KEYS    the code; ARGV digest, seafarer id → 1 bound, 0 replaced or gone
var bindScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'sf', ARGV[2])
  return 1
end
return 0
`)

// checkScript counts a try and compares the code. Over the number's tries
// of either window nothing is compared. Without a live code nothing is
// counted (there is nothing to guess), so nobody locks a seafarer out
// without first spending the number's sends. A right code is not used up
// here (consumeScript, once the token is made); a wrong one counts against
// the code, which is deleted at its last try.
//
//	KEYS    the code, tries in the window, tries in the day
//	ARGV    digest tried, tries per code, tries per window, window ms, tries per day
//	→ {1, 0, seafarer id} right; {0, 0, ''} wrong or no code; {-1, ms to wait, ''} refused
var checkScript = redis.NewScript(`
local limits = {{KEYS[2], tonumber(ARGV[3]), ARGV[4]}, {KEYS[3], tonumber(ARGV[5]), 86400000}}
for _, l in ipairs(limits) do
  if tonumber(redis.call('GET', l[1]) or '0') >= l[2] then
    return {-1, math.max(redis.call('PTTL', l[1]), 1), ''}
  end
end
local rec = redis.call('HMGET', KEYS[1], 'h', 'sf')
if not rec[1] then
  return {0, 0, ''}
end
for _, l in ipairs(limits) do
  if redis.call('INCR', l[1]) == 1 then
    redis.call('PEXPIRE', l[1], l[3])
  end
end
if rec[1] == ARGV[1] then
  return {1, 0, rec[2] or ''}
end
if redis.call('HINCRBY', KEYS[1], 't', 1) >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
end
return {0, 0, ''}
`)

// consumeScript uses a code up: of two verifies of one code, one wins.
//
//	KEYS    the code; ARGV digest → 1 used now, 0 already used or replaced
var consumeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// store keeps code for msisdn; wait > 0 means refused for that long.
func (c *codes) store(ctx context.Context, msisdn, code string, l Limits) (wait time.Duration, err error) {
	k := c.keys(msisdn)
	res, err := sendScript.Run(ctx, c.rdb, []string{k.code, k.cooldown, k.sends},
		c.digest(msisdn, code), l.CodeTTL.Milliseconds(), l.SendCooldown.Milliseconds(), l.SendsPerNumber, l.SendWindow.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("signin: store code: %w", err)
	}
	if res[0] == 1 {
		return 0, nil
	}
	return time.Duration(res[1]) * time.Millisecond, nil
}

// bind records that code went to seafarerID; false when the code was
// replaced meanwhile (the SMS is then not sent).
func (c *codes) bind(ctx context.Context, msisdn, code, seafarerID string) (bool, error) {
	n, err := bindScript.Run(ctx, c.rdb, []string{c.keys(msisdn).code}, c.digest(msisdn, code), seafarerID).Int()
	if err != nil {
		return false, fmt.Errorf("signin: bind code: %w", err)
	}
	return n == 1, nil
}

// check tries code for msisdn: right (with the seafarer it was sent to),
// or refused for wait, or wrong.
func (c *codes) check(ctx context.Context, msisdn, code string, l Limits) (ok bool, sentTo string, wait time.Duration, err error) {
	k := c.keys(msisdn)
	res, err := checkScript.Run(ctx, c.rdb, []string{k.code, k.tries, k.triesDay},
		c.digest(msisdn, code), l.TriesPerCode, l.TriesPerNumber, l.TryWindow.Milliseconds(), l.TriesPerNumberDay).Slice()
	if err != nil {
		return false, "", 0, fmt.Errorf("signin: check code: %w", err)
	}
	if len(res) != 3 {
		return false, "", 0, fmt.Errorf("signin: check code: unexpected reply %v", res)
	}
	verdict, _ := res[0].(int64)
	ms, _ := res[1].(int64)
	sentTo, _ = res[2].(string)
	switch verdict {
	case 1:
		return true, sentTo, 0, nil
	case -1:
		return false, "", time.Duration(ms) * time.Millisecond, nil
	}
	return false, "", 0, nil
}

// consume uses code up; false when another verify did first.
func (c *codes) consume(ctx context.Context, msisdn, code string) (bool, error) {
	n, err := consumeScript.Run(ctx, c.rdb, []string{c.keys(msisdn).code}, c.digest(msisdn, code)).Int()
	if err != nil {
		return false, fmt.Errorf("signin: use code: %w", err)
	}
	return n == 1, nil
}
