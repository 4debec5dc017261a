package quota

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ExpiryIndex names the grants that expire in a time range: the system of
// record's grants (PGGrants), so Redis keeps no index of its own.
type ExpiryIndex interface {
	ExpiringGrants(ctx context.Context, from, to time.Time) ([]GrantRef, error)
}

// GrantRef names one seafarer's grant.
type GrantRef struct {
	SeafarerID string
	GrantID    string
}

// ExpiringGrant is a grant found by ExpiringBetween.
type ExpiringGrant struct {
	SeafarerID string
	Grant      *Grant
}

// ExpiringBetween returns the grants expiring in (from, to] that still have
// seconds left and are not voided, in expiry order.
func (s *RedisStore) ExpiringBetween(ctx context.Context, from, to time.Time) ([]ExpiringGrant, error) {
	if s.opts.Expiries == nil {
		return nil, errors.New("quota: expiring grants: the store has no expiry index (Options.Expiries)")
	}
	refs, err := s.opts.Expiries.ExpiringGrants(ctx, from, to)
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	cmds := make([]*redis.StringCmd, len(refs))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			cmds[i] = p.HGet(ctx, s.keys(r.SeafarerID).grants, r.GrantID)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("quota: expiring grants: %w", err)
	}
	now := s.now()
	var out []ExpiringGrant
	for i, r := range refs {
		v, err := cmds[i].Result()
		if err != nil {
			continue // not in Redis: nothing left to warn about
		}
		g, err := parseGrant(r.GrantID, v)
		if err != nil {
			return nil, err
		}
		if g.Voided || g.RemainingSeconds == 0 {
			continue
		}
		g.Status = g.StatusAt(now)
		out = append(out, ExpiringGrant{SeafarerID: r.SeafarerID, Grant: g})
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
