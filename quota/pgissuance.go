package quota

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wuyou/wuyou"
)

// PGProgrammes as the Issuer's IssuanceStore. Lock order, in every
// transaction that takes both: the issuance row, then the programme row. The
// issuance lock makes overlapping runs of one issuance decide a batch one
// after the other (the second finds the outcomes recorded); the programme
// lock makes issuances of one programme take the budget in turns.

var _ IssuanceStore = (*PGProgrammes)(nil)

// issuanceColumns are read by scanIssuance, in its order.
const issuanceColumns = `id, programme_id, body_hash, status, total, issued, skipped, failed, next_position,
    effective_at, created_at, updated_at, coalesce(actor_sub, ''), coalesce(actor_role, ''), coalesce(actor_company_id, '')`

func scanIssuance(row pgx.Row) (*Issuance, string, error) {
	iss := &Issuance{Failures: []IssuanceFailure{}}
	var body string
	var actor wuyou.Actor
	err := row.Scan(&iss.ID, &iss.ProgrammeID, &body, &iss.Status, &iss.Total, &iss.Issued, &iss.Skipped, &iss.Failed,
		&iss.NextPosition, &iss.EffectiveAt, &iss.CreatedAt, &iss.UpdatedAt, &actor.Sub, &actor.Role, &actor.CompanyID)
	if err != nil {
		return nil, "", err
	}
	if actor.Sub != "" {
		iss.Actor = &actor
	}
	iss.EffectiveAt, iss.CreatedAt, iss.UpdatedAt = iss.EffectiveAt.UTC(), iss.CreatedAt.UTC(), iss.UpdatedAt.UTC()
	return iss, body, nil
}

// targetKind names what an issuance was asked to give packs to.
func targetKind(t IssuanceTarget) (kind string, id *string) {
	switch {
	case t.CompanyID != "":
		return "company", &t.CompanyID
	case t.VesselIMO != "":
		return "vessel", &t.VesselIMO
	}
	return "seafarers", nil
}

// CreateIssuance records the issuance and its targets in one transaction.
// Two requests with one key race on the unique (programme, key): the second
// waits for the first to commit, inserts nothing and returns the first.
func (s *PGProgrammes) CreateIssuance(ctx context.Context, in NewIssuance) (*Issuance, bool, error) {
	if !storableKey(in.ProgrammeID) {
		return nil, false, wuyou.Errorf(wuyou.ENOTFOUND, "programme not found")
	}
	status := IssuanceRunning
	if len(in.SeafarerIDs) == 0 {
		status = IssuanceDone
	}
	created := in.CreatedAt.UTC().Truncate(time.Microsecond)
	kind, targetID := targetKind(in.Target)
	var actor wuyou.Actor
	if in.Actor != nil {
		actor = *in.Actor
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("quota: start issuance: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	tag, err := tx.Exec(ctx, `
INSERT INTO issuances (id, programme_id, idempotency_key, body_hash, target_kind, target_id, status, effective_at,
    total, created_at, updated_at, actor_sub, actor_role, actor_company_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, nullif($11, ''), nullif($12, ''), nullif($13, ''))
ON CONFLICT ON CONSTRAINT issuance_key_once_per_programme DO NOTHING`,
		in.ID, in.ProgrammeID, in.IdempotencyKey, in.BodyHash, kind, targetID, status, in.EffectiveAt.UTC(),
		len(in.SeafarerIDs), created, actor.Sub, actor.Role, actor.CompanyID)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "23503": // foreign_key_violation
		return nil, false, wuyou.Errorf(wuyou.ENOTFOUND, "programme %s not found", in.ProgrammeID)
	case err != nil:
		return nil, false, pgProgrammeError("start issuance", err)
	case tag.RowsAffected() == 0:
		_ = tx.Rollback(ctx)
		iss, err := s.IssuanceByKey(ctx, in.ProgrammeID, in.IdempotencyKey, in.BodyHash)
		if err == nil && iss == nil {
			err = fmt.Errorf("quota: start issuance: the idempotency key is taken by no issuance")
		}
		return iss, false, err
	}
	if len(in.SeafarerIDs) > 0 {
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"issuance_targets"}, []string{"issuance_id", "position", "seafarer_id"},
			pgx.CopyFromSlice(len(in.SeafarerIDs), func(j int) ([]any, error) {
				return []any{in.ID, int64(j), in.SeafarerIDs[j]}, nil
			}))
		if err != nil {
			return nil, false, pgProgrammeError("store issuance targets", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, false, fmt.Errorf("quota: start issuance: %w", err)
	}
	return &Issuance{
		ID: in.ID, ProgrammeID: in.ProgrammeID, Status: status, Total: int64(len(in.SeafarerIDs)),
		Failures: []IssuanceFailure{}, EffectiveAt: in.EffectiveAt.UTC(), CreatedAt: created, UpdatedAt: created,
		Actor: in.Actor,
	}, true, nil
}

// IssuanceByKey returns the issuance recorded under the key, nil when there
// is none, or ECONFLICT when it was recorded for another body.
func (s *PGProgrammes) IssuanceByKey(ctx context.Context, programmeID, key, bodyHash string) (*Issuance, error) {
	if !storableKey(programmeID) || !storableKey(key) {
		return nil, nil
	}
	iss, body, err := scanIssuance(s.pool.QueryRow(ctx, `SELECT `+issuanceColumns+`
FROM issuances WHERE programme_id = $1 AND idempotency_key = $2`, programmeID, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("quota: issuance by key: %w", err)
	}
	if body != bodyHash {
		return nil, &wuyou.Error{Code: wuyou.ECONFLICT,
			Message: fmt.Sprintf("Idempotency-Key was already used for issuance %s with a different body", iss.ID)}
	}
	if iss.Failures, err = s.Failures(ctx, iss.ID, 0, MaxFailuresShown); err != nil {
		return nil, err
	}
	return iss, nil
}

// Issuance returns an issuance with its first MaxFailuresShown failures.
// ENOTFOUND.
func (s *PGProgrammes) Issuance(ctx context.Context, id string) (*Issuance, error) {
	if id == "" || !storableKey(id) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "issuance not found")
	}
	iss, _, err := scanIssuance(s.pool.QueryRow(ctx, `SELECT `+issuanceColumns+` FROM issuances WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "issuance %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("quota: issuance: %w", err)
	}
	if iss.Failures, err = s.failures(ctx, id, 0, MaxFailuresShown); err != nil {
		return nil, err
	}
	return iss, nil
}

// Failures returns up to limit failures of an issuance from offset, in
// target order. ENOTFOUND.
func (s *PGProgrammes) Failures(ctx context.Context, id string, offset, limit int) ([]IssuanceFailure, error) {
	if id == "" || !storableKey(id) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "issuance not found")
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM issuances WHERE id = $1)`, id).Scan(&exists); err != nil {
		return nil, fmt.Errorf("quota: issuance failures: %w", err)
	}
	if !exists {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "issuance %s not found", id)
	}
	return s.failures(ctx, id, offset, limit)
}

func (s *PGProgrammes) failures(ctx context.Context, id string, offset, limit int) ([]IssuanceFailure, error) {
	if offset < 0 || limit <= 0 {
		return []IssuanceFailure{}, nil
	}
	// The predicate is the partial index's, so only failures are read.
	rows, err := s.pool.Query(ctx, `
SELECT seafarer_id, outcome FROM issuance_targets
WHERE issuance_id = $1 AND outcome IN ('budget_exhausted', 'seafarer_not_found')
ORDER BY position OFFSET $2 LIMIT $3`, id, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("quota: issuance failures: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (IssuanceFailure, error) {
		var f IssuanceFailure
		err := r.Scan(&f.SeafarerID, &f.Reason)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("quota: issuance failures: %w", err)
	}
	if out == nil {
		out = []IssuanceFailure{}
	}
	return out, nil
}

// Targets returns up to n target seafarer ids from position from.
func (s *PGProgrammes) Targets(ctx context.Context, id string, from int64, n int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
SELECT seafarer_id FROM issuance_targets WHERE issuance_id = $1 AND position >= $2 ORDER BY position LIMIT $3`, id, from, n)
	if err != nil {
		return nil, fmt.Errorf("quota: issuance %s targets: %w", id, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("quota: issuance %s targets: %w", id, err)
	}
	return ids, nil
}

// DecideBatch decides a batch in one transaction: lock the issuance, read
// the batch's outcomes, lock the programme when some target is to be
// issued, insert as many grants as the budget allows (ON CONFLICT DO
// NOTHING, a safety net: a grant id exists only once its target is
// decided), raise packs_issued by the rows actually inserted, record the
// outcomes and the issuance's counters and progress, and read back the
// batch's grants for the hot step.
func (s *PGProgrammes) DecideBatch(ctx context.Context, b IssuanceBatch) (*DecidedBatch, error) {
	if len(b.Proposals) != len(b.SeafarerIDs) {
		return nil, fmt.Errorf("quota: decide issuance batch: %d proposals for %d seafarers", len(b.Proposals), len(b.SeafarerIDs))
	}
	if !storableKey(b.IssuanceID) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "issuance not found")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("quota: decide issuance batch: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	dec, err := s.decideIn(ctx, tx, b)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("quota: decide issuance batch: %w", err)
	}
	return dec, nil
}

func (s *PGProgrammes) decideIn(ctx context.Context, tx pgx.Tx, b IssuanceBatch) (*DecidedBatch, error) {
	fail := func(err error) (*DecidedBatch, error) {
		return nil, fmt.Errorf("quota: decide issuance %s batch at %d: %w", b.IssuanceID, b.Start, err)
	}
	var programmeID, status string
	var effective time.Time
	err := tx.QueryRow(ctx, `SELECT programme_id, status, effective_at FROM issuances WHERE id = $1 FOR UPDATE`,
		b.IssuanceID).Scan(&programmeID, &status, &effective)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "issuance %s not found", b.IssuanceID)
	} else if err != nil {
		return fail(err)
	}
	if status == IssuanceDone {
		return &DecidedBatch{Done: true}, nil
	}
	rows, err := tx.Query(ctx, `
SELECT seafarer_id, coalesce(outcome, '') FROM issuance_targets
WHERE issuance_id = $1 AND position >= $2 AND position < $3 ORDER BY position`,
		b.IssuanceID, b.Start, b.Start+int64(len(b.SeafarerIDs)))
	if err != nil {
		return fail(err)
	}
	outcomes := make([]string, 0, len(b.SeafarerIDs))
	for j := 0; rows.Next(); j++ {
		var id, outcome string
		if err := rows.Scan(&id, &outcome); err != nil {
			rows.Close()
			return fail(err)
		}
		if j >= len(b.SeafarerIDs) || id != b.SeafarerIDs[j] {
			rows.Close()
			return fail(fmt.Errorf("the stored targets differ from the batch at %d", j))
		}
		outcomes = append(outcomes, outcome)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if len(outcomes) != len(b.SeafarerIDs) {
		return fail(fmt.Errorf("%d stored targets for a batch of %d", len(outcomes), len(b.SeafarerIDs)))
	}

	wantIssue := 0
	for j, o := range outcomes {
		if o == "" && b.Proposals[j] == ProposeIssue {
			wantIssue++
		}
	}
	var prog *Programme
	allowed := int64(wantIssue)
	if wantIssue > 0 {
		if prog, err = s.programme(ctx, tx, programmeID, true); err != nil {
			return nil, err
		}
		if prog.BudgetPacks > 0 {
			allowed = min(allowed, max(prog.BudgetPacks-prog.PacksIssued, 0))
		}
	}
	var positions []int64
	var decided []string
	var newGrantIDs, newSeafarers []string
	var nIssued, nSkipped, nFailed int64
	for j, o := range outcomes {
		if o != "" {
			continue
		}
		switch p := b.Proposals[j]; {
		case p == ProposeIssue && allowed > 0:
			allowed--
			o = OutcomeIssued
			newGrantIDs = append(newGrantIDs, IssuanceGrantID(b.IssuanceID, b.SeafarerIDs[j]))
			newSeafarers = append(newSeafarers, b.SeafarerIDs[j])
			nIssued++
		case p == ProposeIssue:
			o = ReasonBudgetExhausted
			nFailed++
		case p == OutcomeSkipped:
			o = OutcomeSkipped
			nSkipped++
		case p == ReasonSeafarerNotFound:
			o = ReasonSeafarerNotFound
			nFailed++
		default:
			return fail(fmt.Errorf("unknown proposal %q", p))
		}
		outcomes[j] = o
		positions = append(positions, b.Start+int64(j))
		decided = append(decided, o)
	}
	if len(newGrantIDs) > 0 {
		expires := effective.Add(time.Duration(prog.ValidDays) * 24 * time.Hour)
		tag, err := tx.Exec(ctx, `
INSERT INTO grants (id, seafarer_id, programme_id, issuance_id, seconds, priority, effective_at, expires_at, issued_at, unit)
SELECT g.id, g.seafarer_id, $3, $4, $5, $6, $7, $8, $9, $10 FROM unnest($1::text[], $2::text[]) AS g(id, seafarer_id)
ON CONFLICT (id) DO NOTHING`,
			newGrantIDs, newSeafarers, programmeID, b.IssuanceID, prog.PackSeconds, prog.Priority, effective, expires,
			b.At.UTC().Truncate(time.Millisecond), unitOrSeconds(prog.Unit))
		if err != nil {
			return nil, pgProgrammeError("insert grants", err)
		}
		if n := tag.RowsAffected(); n > 0 {
			// programme_within_budget refuses the whole transaction should
			// this ever pass the budget.
			if _, err := tx.Exec(ctx, `UPDATE programmes SET packs_issued = packs_issued + $2 WHERE id = $1`, programmeID, n); err != nil {
				return nil, pgProgrammeError("count packs issued", err)
			}
		}
	}
	if len(positions) > 0 {
		_, err := tx.Exec(ctx, `
UPDATE issuance_targets t SET outcome = d.outcome
FROM unnest($2::bigint[], $3::text[]) AS d(position, outcome)
WHERE t.issuance_id = $1 AND t.position = d.position AND t.outcome IS NULL`, b.IssuanceID, positions, decided)
		if err != nil {
			return fail(err)
		}
	}
	_, err = tx.Exec(ctx, `
UPDATE issuances SET issued = issued + $2, skipped = skipped + $3, failed = failed + $4,
    next_position = greatest(next_position, $5), updated_at = $6
WHERE id = $1`, b.IssuanceID, nIssued, nSkipped, nFailed, b.Start, b.At.UTC())
	if err != nil {
		return nil, pgProgrammeError("count issuance outcomes", err)
	}

	grantIDs := make([]string, 0, len(outcomes))
	for j, o := range outcomes {
		if o == OutcomeIssued {
			grantIDs = append(grantIDs, IssuanceGrantID(b.IssuanceID, b.SeafarerIDs[j]))
		}
	}
	grants, err := s.hotGrants(ctx, tx, grantIDs)
	if err != nil {
		return fail(err)
	}
	return &DecidedBatch{Outcomes: outcomes, Grants: grants}, nil
}

// hotGrants reads the grants to put in the hot state: those of ids not
// voided, in the order of ids, each with the issue time of its row (the
// drawing order's last tie-break, so Redis and PostgreSQL order alike).
func (s *PGProgrammes) hotGrants(ctx context.Context, q querier, ids []string) ([]GrantInput, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `
SELECT g.id, g.seafarer_id, g.programme_id, g.seconds, g.priority, g.effective_at, g.expires_at, g.issued_at, g.unit,
    p.notify_at
FROM grants g JOIN programmes p ON p.id = g.programme_id
WHERE g.id = ANY($1::text[]) AND g.voided_at IS NULL`, ids)
	if err != nil {
		return nil, err
	}
	byID, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GrantInput, error) {
		var g GrantInput
		err := r.Scan(&g.ID, &g.SeafarerID, &g.ProgrammeID, &g.Seconds, &g.Priority, &g.EffectiveAt, &g.ExpiresAt, &g.IssuedAt, &g.Unit, &g.NotifyAt)
		g.EffectiveAt, g.ExpiresAt, g.IssuedAt = g.EffectiveAt.UTC(), g.ExpiresAt.UTC(), g.IssuedAt.UTC()
		g.Unit = storedUnit(g.Unit)
		return g, err
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]GrantInput, len(byID))
	for _, g := range byID {
		m[g.ID] = g
	}
	out := make([]GrantInput, 0, len(byID))
	for _, id := range ids {
		if g, ok := m[id]; ok {
			out = append(out, g)
		}
	}
	return out, nil
}

// FinishIssuance marks a running issuance done once every target is
// decided; nil when it is already done.
func (s *PGProgrammes) FinishIssuance(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `
UPDATE issuances SET status = 'done', next_position = total, updated_at = greatest(updated_at, $2)
WHERE id = $1 AND status = 'running'`, id, at.UTC())
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.ConstraintName == "issuance_done_when_all_decided":
		return fmt.Errorf("quota: finish issuance %s: not every target is decided", id)
	case err != nil:
		return fmt.Errorf("quota: finish issuance %s: %w", id, err)
	case tag.RowsAffected() == 1:
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM issuances WHERE id = $1)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("quota: finish issuance %s: %w", id, err)
	}
	if !exists {
		return wuyou.Errorf(wuyou.ENOTFOUND, "issuance %s not found", id)
	}
	return nil // done already
}

// RunningIssuances lists the ids of issuances not done, oldest first.
func (s *PGProgrammes) RunningIssuances(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM issuances WHERE status = 'running' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("quota: running issuances: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("quota: running issuances: %w", err)
	}
	return ids, nil
}
