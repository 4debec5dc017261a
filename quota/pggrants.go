package quota

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
)

// PGGrants reads the grants ever issued (table grants, written by the
// issuer through PGProgrammes) and marks them voided. What a grant has left
// is hot state, kept in Redis (RedisStore); this is what Redis is rebuilt
// from.
type PGGrants struct {
	pool *pgxpool.Pool
}

// NewPGGrants returns the grants over pool, whose database is migrated.
func NewPGGrants(pool *pgxpool.Pool) *PGGrants {
	return &PGGrants{pool: pool}
}

// GrantRecord is a grant as the system of record keeps it: what was given,
// not what is left.
type GrantRecord struct {
	ID          string
	SeafarerID  string
	ProgrammeID string
	IssuanceID  string // "" for a grant given outside an issuance
	Seconds     int64
	Priority    int
	EffectiveAt time.Time
	ExpiresAt   time.Time
	IssuedAt    time.Time
	VoidedAt    *time.Time // nil while not voided
}

const grantColumns = `id, seafarer_id, programme_id, coalesce(issuance_id, ''), seconds, priority,
    effective_at, expires_at, issued_at, voided_at`

func scanGrantRecord(r pgx.CollectableRow) (*GrantRecord, error) {
	g := &GrantRecord{}
	err := r.Scan(&g.ID, &g.SeafarerID, &g.ProgrammeID, &g.IssuanceID, &g.Seconds, &g.Priority,
		&g.EffectiveAt, &g.ExpiresAt, &g.IssuedAt, &g.VoidedAt)
	if err != nil {
		return nil, err
	}
	g.EffectiveAt, g.ExpiresAt, g.IssuedAt = g.EffectiveAt.UTC(), g.ExpiresAt.UTC(), g.IssuedAt.UTC()
	if g.VoidedAt != nil {
		v := g.VoidedAt.UTC()
		g.VoidedAt = &v
	}
	return g, nil
}

// Grant returns one grant of a seafarer. ENOTFOUND, also for another
// seafarer's grant.
func (s *PGGrants) Grant(ctx context.Context, seafarerID, grantID string) (*GrantRecord, error) {
	if !storableKey(seafarerID) || !storableKey(grantID) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "grant %s not found", grantID)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1 AND seafarer_id = $2`, grantID, seafarerID)
	if err != nil {
		return nil, fmt.Errorf("quota: grant: %w", err)
	}
	g, err := pgx.CollectExactlyOneRow(rows, scanGrantRecord)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "grant %s not found", grantID)
	} else if err != nil {
		return nil, fmt.Errorf("quota: grant: %w", err)
	}
	return g, nil
}

// SeafarerGrants returns every grant a seafarer was given, voided ones
// included, in drawing order (priority, expiry, issue time, id). An unknown
// seafarer has none.
func (s *PGGrants) SeafarerGrants(ctx context.Context, seafarerID string) ([]*GrantRecord, error) {
	if !storableKey(seafarerID) {
		return []*GrantRecord{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+grantColumns+` FROM grants WHERE seafarer_id = $1
ORDER BY priority, expires_at, issued_at, id`, seafarerID)
	if err != nil {
		return nil, fmt.Errorf("quota: seafarer grants: %w", err)
	}
	gs, err := pgx.CollectRows(rows, scanGrantRecord)
	if err != nil {
		return nil, fmt.Errorf("quota: seafarer grants: %w", err)
	}
	if gs == nil {
		gs = []*GrantRecord{}
	}
	return gs, nil
}

// VoidGrant marks a seafarer's grant voided at at (kept to the second, as
// the grant's other times). The hot copy (RedisStore.VoidGrant) and the
// ledger entry are the caller's. ENOTFOUND, also for another seafarer's
// grant; ECONFLICT when it is already voided (its voided_at unchanged).
func (s *PGGrants) VoidGrant(ctx context.Context, seafarerID, grantID string, at time.Time) error {
	if !storableKey(seafarerID) || !storableKey(grantID) {
		return wuyou.Errorf(wuyou.ENOTFOUND, "grant %s not found", grantID)
	}
	// One statement: the row is locked while it is read and set, so of two
	// concurrent voids one sets it and the other sees it voided.
	var voided bool
	err := s.pool.QueryRow(ctx, `
WITH g AS (SELECT id, voided_at FROM grants WHERE id = $1 AND seafarer_id = $2 FOR UPDATE),
     v AS (UPDATE grants SET voided_at = $3 FROM g WHERE grants.id = g.id AND g.voided_at IS NULL RETURNING grants.id)
SELECT EXISTS (SELECT 1 FROM v) FROM g`, grantID, seafarerID, at.UTC().Truncate(time.Second)).Scan(&voided)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return wuyou.Errorf(wuyou.ENOTFOUND, "grant %s not found", grantID)
	case err != nil:
		return fmt.Errorf("quota: void grant: %w", err)
	case !voided:
		return wuyou.Errorf(wuyou.ECONFLICT, "grant %s is already voided", grantID)
	}
	return nil
}

// ExpiringGrants names the grants not voided that expire in (from, to], in
// expiry order (index grants_expiring). Whether they have seconds left is
// hot state: RedisStore.ExpiringBetween asks Redis.
func (s *PGGrants) ExpiringGrants(ctx context.Context, from, to time.Time) ([]GrantRef, error) {
	rows, _ := s.pool.Query(ctx, `SELECT seafarer_id, id FROM grants
WHERE voided_at IS NULL AND expires_at > $1 AND expires_at <= $2 ORDER BY expires_at, id`, from, to)
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[GrantRef])
	if err != nil {
		return nil, fmt.Errorf("quota: expiring grants: %w", err)
	}
	return refs, nil
}
