package quota

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Grants about to expire are found through a per-day index:
//
//	<prefix>:expiring:<YYYY-MM-DD>  zset "<seafarer id>|<grant id>" -> expiry (unix s)
//
// One key per expiry day keeps each key small and spreads them over the
// cluster; a day's key expires a week after that day. The index only says
// where to look: remaining seconds and status are read from the grant itself.

// ExpiringGrant is a grant found by ExpiringBetween.
type ExpiringGrant struct {
	SeafarerID string
	Grant      *Grant
}

func (s *RedisStore) expiryDayKey(t time.Time) string {
	return s.prefix + ":expiring:" + t.UTC().Format("2006-01-02")
}

// expiryIndexTTL is how long, from now, the index of a day's expiries is
// kept: a week past the day. Relative to the store's clock, not Redis's, so
// tests with a clock work.
func expiryIndexTTL(expires, now time.Time) time.Duration {
	return max(expires.UTC().Truncate(24*time.Hour).Add(8*24*time.Hour).Sub(now), time.Hour)
}

func (s *RedisStore) indexExpiry(ctx context.Context, seafarerID, grantID string, expires time.Time) error {
	key := s.expiryDayKey(expires)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: float64(expires.Unix()), Member: seafarerID + "|" + grantID})
		p.Expire(ctx, key, expiryIndexTTL(expires, s.now()))
		return nil
	})
	if err != nil {
		return fmt.Errorf("quota: index grant expiry: %w", err)
	}
	return nil
}

// ExpiringBetween returns the grants expiring in (from, to] that still have
// seconds left and are not voided, in expiry order.
func (s *RedisStore) ExpiringBetween(ctx context.Context, from, to time.Time) ([]ExpiringGrant, error) {
	var members []string
	for day := from.UTC().Truncate(24 * time.Hour); !day.After(to); day = day.Add(24 * time.Hour) {
		ms, err := s.rdb.ZRangeByScore(ctx, s.expiryDayKey(day), &redis.ZRangeBy{
			Min: "(" + strconv.FormatInt(from.Unix(), 10), Max: strconv.FormatInt(to.Unix(), 10),
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("quota: expiring grants: %w", err)
		}
		members = append(members, ms...)
	}
	if len(members) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(members))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			sf, grant, _ := strings.Cut(m, "|")
			cmds[i] = p.HGet(ctx, s.keys(sf).grants, grant)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("quota: expiring grants: %w", err)
	}
	now := s.now()
	var out []ExpiringGrant
	for i, m := range members {
		v, err := cmds[i].Result()
		if err != nil {
			continue // the grant is gone
		}
		sf, id, _ := strings.Cut(m, "|")
		g, err := parseGrant(id, v)
		if err != nil {
			return nil, err
		}
		if g.Voided || g.RemainingSeconds == 0 {
			continue
		}
		g.Status = g.StatusAt(now)
		out = append(out, ExpiringGrant{SeafarerID: sf, Grant: g})
	}
	return out, nil
}

// ExpiryScan returns how far (an expiry time) grants have been looked at for
// expiry warnings, or the zero time.
func (s *RedisStore) ExpiryScan(ctx context.Context) (time.Time, error) {
	v, err := s.rdb.Get(ctx, s.prefix+":expiring:scanned").Int64()
	if err == redis.Nil {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("quota: expiry scan: %w", err)
	}
	return time.Unix(v, 0).UTC(), nil
}

// SetExpiryScan records how far grants have been looked at.
func (s *RedisStore) SetExpiryScan(ctx context.Context, upTo time.Time) error {
	return s.rdb.Set(ctx, s.prefix+":expiring:scanned", upTo.Unix(), 0).Err()
}

// TryLock takes a short lease named name for owner, so that among replicas
// one does a periodic job at a time. It reports whether the lease is held.
func (s *RedisStore) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	key := s.prefix + ":lock:" + name
	ok, err := s.rdb.SetNX(ctx, key, owner, ttl).Result()
	if err != nil || ok {
		return ok, err
	}
	held, err := s.rdb.Get(ctx, key).Result()
	if err == nil && held == owner {
		return true, s.rdb.PExpire(ctx, key, ttl).Err()
	}
	return false, nil
}
