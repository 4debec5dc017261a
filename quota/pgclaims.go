package quota

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Claim is one event identity and the seafarer it is charged to, with a
// fingerprint of the event's content (Usage.fingerprint).
type Claim struct {
	Identity    string
	SeafarerID  string
	Fingerprint string
	CallTime    time.Time
}

// ClaimStore keeps event identity claims outside the hot state: the first
// claim of an identity wins, and every later one is answered with it.
// RedisStore uses one when Options.Claims is set, else claims in Redis.
type ClaimStore interface {
	// ClaimIdentities claims each identity for its seafarer unless it is
	// claimed already, and returns the claim that holds for each, in the
	// order given. An error means the store could not be reached.
	ClaimIdentities(ctx context.Context, claims []Claim) ([]Claim, error)
}

// PGClaims keeps identity claims in PostgreSQL (event_claims).
type PGClaims struct{ pool *pgxpool.Pool }

// NewPGClaims returns claims kept in pool's database, which is migrated.
func NewPGClaims(pool *pgxpool.Pool) *PGClaims { return &PGClaims{pool: pool} }

// claimSQL inserts the batch's claims that are new and returns them; the
// others are read by heldSQL afterwards, in a statement of its own so that
// it sees a claim another transaction committed while this one waited on
// it (ON CONFLICT waits for it, but this statement's snapshot predates it).
const claimSQL = `
INSERT INTO event_claims (identity, seafarer_id, fingerprint, call_time)
SELECT DISTINCT ON (identity) identity, seafarer_id, fingerprint, call_time
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY AS c(identity, seafarer_id, fingerprint, call_time, n)
ORDER BY identity, n
ON CONFLICT (identity) DO NOTHING
RETURNING identity, seafarer_id, fingerprint`

const heldSQL = `SELECT identity, seafarer_id, fingerprint FROM event_claims WHERE identity = ANY($1::text[])`

// ClaimIdentities implements ClaimStore: one round trip for the new
// claims, one more when some identities were claimed before.
func (p *PGClaims) ClaimIdentities(ctx context.Context, claims []Claim) ([]Claim, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	ids := make([]string, len(claims))
	sfs := make([]string, len(claims))
	fps := make([]string, len(claims))
	times := make([]time.Time, len(claims))
	for i, c := range claims {
		ids[i], sfs[i], fps[i], times[i] = c.Identity, c.SeafarerID, c.Fingerprint, c.CallTime
	}
	held := make(map[string]Claim, len(claims))
	read := func(sql string, args ...any) error {
		rows, err := p.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c Claim
			if err := rows.Scan(&c.Identity, &c.SeafarerID, &c.Fingerprint); err != nil {
				return err
			}
			held[c.Identity] = c
		}
		return rows.Err()
	}
	if err := read(claimSQL, ids, sfs, fps, times); err != nil {
		return nil, fmt.Errorf("quota: claim event identities: %w", err)
	}
	if len(held) < len(distinct(ids)) {
		var rest []string
		for _, id := range ids {
			if _, ok := held[id]; !ok {
				rest = append(rest, id)
			}
		}
		if err := read(heldSQL, rest); err != nil {
			return nil, fmt.Errorf("quota: read event identity claims: %w", err)
		}
	}
	out := make([]Claim, len(claims))
	for i, c := range claims {
		h, ok := held[c.Identity]
		if !ok {
			return nil, fmt.Errorf("quota: claim of identity %s neither made nor found", c.Identity)
		}
		h.CallTime = c.CallTime
		out[i] = h
	}
	return out, nil
}

func distinct(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// Forget deletes up to limit claims of calls made before cutoff and
// returns how many it deleted: call it until it deletes fewer than limit.
// An event that old is late (never applied), so no one asks about it.
func (p *PGClaims) Forget(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	tag, err := p.pool.Exec(ctx, `
DELETE FROM event_claims WHERE identity IN (
    SELECT identity FROM event_claims WHERE call_time < $1 ORDER BY call_time LIMIT $2)`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("quota: forget old event claims: %w", err)
	}
	return tag.RowsAffected(), nil
}
