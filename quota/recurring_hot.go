package quota

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

var _ RecurringHot = (*RedisStore)(nil)

// GrantsRemaining returns each grant's remaining seconds now (0 for a
// grant Redis does not hold, or a voided one), in one pipelined round trip.
// The monthly issue reads last month's remainder with it (the rollover).
// EUNAVAILABLE while the hot state is missing: a rebuilt Redis would
// otherwise read as "nothing left".
func (s *RedisStore) GrantsRemaining(ctx context.Context, refs []GrantRef) ([]int64, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if err := s.checkHot(ctx); err != nil {
		return nil, err
	}
	cmds := make([]*redis.StringCmd, len(refs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			cmds[i] = p.HGet(ctx, s.keys(r.SeafarerID).grants, r.GrantID)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("quota: grants remaining: %w", err)
	}
	out := make([]int64, len(refs))
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("quota: grants remaining: %w", err)
		}
		g, err := parseGrant(refs[i].GrantID, v)
		if err != nil {
			return nil, err
		}
		if !g.Voided {
			out[i] = g.RemainingSeconds
		}
	}
	return out, nil
}
