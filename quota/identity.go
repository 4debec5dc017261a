package quota

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
)

// Event identities are claimed across all seafarers before a debit, so
// one identity (CloudEvents source + id) is applied once however many
// MSISDNs it is sent for. The claims are sharded by the identity's hash
// into 256 slots ("<prefix>:{id:<xx>}"), each a hash identity -> claim and
// a sorted set identity -> call time by which claims older than the dedupe
// window are forgotten (a late event is never applied, so it needs none).
//
// A claim is "<seafarer id> <fingerprint>": who the identity is charged to,
// and what the event said. The seafarer's own seen set (debitScript) stays
// the at-most-once guard of the debit itself; the claim only decides whom
// to debit and whether a repeat is the same call.

// claimScript claims an identity once.
var claimScript = redis.NewScript(`
local claimsKey, byTimeKey = KEYS[1], KEYS[2]
local identity, claim, callTime, cutoff = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local held = redis.call('HGET', claimsKey, identity)
if held then return held end
-- Forget a few claims older than the window with each new one: bounded
-- work per call, and the shard keeps up as long as claims arrive.
local old = redis.call('ZRANGEBYSCORE', byTimeKey, '-inf', '(' .. cutoff, 'LIMIT', 0, 64)
if #old > 0 then
  redis.call('HDEL', claimsKey, unpack(old))
  redis.call('ZREM', byTimeKey, unpack(old))
end
redis.call('HSET', claimsKey, identity, claim)
redis.call('ZADD', byTimeKey, callTime, identity)
return claim
`)

type identityClaim struct {
	seafarerID, fingerprint string
	err                     error
}

func (s *RedisStore) claimKeys(identity string) (claims, byTime string) {
	t := s.prefix + ":{id:" + identity[:2] + "}"
	return t + ":claims", t + ":by_time"
}

// claim claims the identity of each usage in one pipeline and returns who
// holds each. An error means Redis could not be reached or refused service.
func (s *RedisStore) claim(ctx context.Context, us []Usage) ([]identityClaim, error) {
	if s.opts.Claims != nil {
		return s.claimElsewhere(ctx, us)
	}
	out := make([]identityClaim, len(us))
	cmds := make([]*redis.Cmd, len(us))
	cutoff := DedupeCutoff(s.now(), s.opts.DedupeWindow).Unix()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range us {
			if u.SeafarerID == "" || u.Source == "" || u.EventID == "" {
				continue // debitCmd says why
			}
			identity := DebitEntryID(u.Source, u.EventID)[2:]
			claims, byTime := s.claimKeys(identity)
			cmds[i] = claimScript.Run(ctx, p, []string{claims, byTime}, identity, u.SeafarerID+" "+u.fingerprint(), u.CallTime.Unix(), cutoff)
		}
		return nil
	})
	if isNoScript(err) {
		if err := claimScript.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("quota: load claim script: %w", err)
		}
		return s.claim(ctx, us)
	}
	for k, c := range cmds {
		if c == nil {
			out[k] = identityClaim{seafarerID: us[k].SeafarerID, fingerprint: us[k].fingerprint()}
			continue
		}
		v, err := c.Text()
		if err != nil {
			if err := classify(err); isOutage(err) {
				return nil, err
			} else {
				out[k] = identityClaim{err: err}
			}
			continue
		}
		i := strings.LastIndexByte(v, ' ') // the fingerprint is hex; a seafarer id may hold spaces
		if i < 0 {
			out[k] = identityClaim{err: &wuyou.Error{Code: wuyou.EINTERNAL, Reason: "apply_failed", Message: fmt.Sprintf("malformed identity claim %q", v)}}
			continue
		}
		out[k] = identityClaim{seafarerID: v[:i], fingerprint: v[i+1:]}
	}
	return out, nil
}

// claimElsewhere claims the identities in the ClaimStore (PostgreSQL): one
// round trip for the batch, and nothing kept in Redis.
func (s *RedisStore) claimElsewhere(ctx context.Context, us []Usage) ([]identityClaim, error) {
	out := make([]identityClaim, len(us))
	claims := make([]Claim, 0, len(us))
	at := make([]int, 0, len(us))
	for i, u := range us {
		if u.SeafarerID == "" || u.Source == "" || u.EventID == "" {
			out[i] = identityClaim{seafarerID: u.SeafarerID, fingerprint: u.fingerprint()} // debitCmd says why
			continue
		}
		claims = append(claims, Claim{Identity: DebitEntryID(u.Source, u.EventID)[2:], SeafarerID: u.SeafarerID,
			Fingerprint: u.fingerprint(), CallTime: u.CallTime})
		at = append(at, i)
	}
	held, err := s.opts.Claims.ClaimIdentities(ctx, claims)
	if err != nil {
		return nil, &wuyou.Error{Code: wuyou.EUNAVAILABLE, Message: err.Error()}
	}
	for j, c := range held {
		out[at[j]] = identityClaim{seafarerID: c.SeafarerID, fingerprint: c.Fingerprint}
	}
	return out, nil
}
